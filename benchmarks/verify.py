"""Speed benchmark of d1check's pytest run against its floors and against pytest-alembic.

Usage: ``python benchmarks/verify.py [--sizes 500,1000,2000] [--repeat 3]``. Prints the
measurements and a markdown table of the speed targets with PASS/FAIL. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import apsw

sys.path.insert(0, str(Path(__file__).resolve().parent))

import synth

ALEMBIC_VENV = Path("/tmp/d1bench-alembic-venv")
ALEMBIC_REQUIREMENTS = ("pytest<9", "pytest-alembic", "alembic", "sqlalchemy")
ITEMS_PER_MIGRATION = 6
FLOOR_SCRIPT = """
import pathlib, sys, time
import apsw
start = time.perf_counter()
conn = apsw.Connection(":memory:")
conn.execute("PRAGMA foreign_keys = ON")
for path in sorted(pathlib.Path(sys.argv[1]).glob("*.sql")):
    sql = path.read_text(encoding="utf-8")
    conn.execute("BEGIN")
    conn.execute(sql)
    conn.execute("COMMIT")
print(time.perf_counter() - start)
"""


@dataclass(frozen=True)
class Run:
    """One whole-process run: wall seconds, peak RSS of the process tree, exit code, its output,
    and the CPU seconds (user + system) of the process and every descendant it waited for."""

    seconds: float
    peak_rss_mb: float
    returncode: int
    output: str = ""
    timed_out: bool = False
    cpu_seconds: float = 0.0


@dataclass(frozen=True)
class Summary:
    """The median of several runs of one measurement (``None`` where not measurable)."""

    seconds: float | None
    peak_rss_mb: float | None
    note: str = ""
    cpu_seconds: float | None = None

    def cell(self) -> str:
        if self.seconds is None:
            return self.note or "n/a"
        return f"{self.seconds:.2f}" + (f" ({self.note})" if self.note else "")

    def rss(self) -> str:
        return "n/a" if self.peak_rss_mb is None else f"{self.peak_rss_mb:.0f}"

    def cpu(self) -> str:
        return "n/a" if self.cpu_seconds is None else f"{self.cpu_seconds:.2f}"


NA = Summary(None, None, "n/a")


def timed_run(cmd: Sequence[str], cwd: Path, timeout: float) -> Run:
    """Run ``cmd`` in a new process group: wall time, CPU time (``wait4``) and peak RSS of its
    tree (the sum over the group's processes, sampled every 50 ms; at least the largest single
    process's ``ru_maxrss``)."""
    with tempfile.TemporaryFile() as out:
        start = time.perf_counter()
        proc = subprocess.Popen(
            list(cmd), cwd=cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        expired, done = threading.Event(), threading.Event()
        peak = [0]

        def kill() -> None:
            expired.set()
            os.killpg(proc.pid, signal.SIGKILL)

        def sample() -> None:
            while not done.wait(0.05):
                peak[0] = max(peak[0], group_rss(proc.pid))

        timer, sampler = threading.Timer(timeout, kill), threading.Thread(target=sample)
        timer.start()
        sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        done.set()
        timer.cancel()
        sampler.join()
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read().decode("utf-8", "replace")
    rss = max(usage.ru_maxrss * 1024, peak[0]) / 2**20
    cpu = usage.ru_utime + usage.ru_stime
    return Run(seconds, rss, proc.returncode, text, expired.is_set(), cpu)


def group_rss(group: int) -> int:
    """The resident bytes of every process in the process group ``group`` (Linux ``/proc``)."""
    total, page = 0, os.sysconf("SC_PAGE_SIZE")
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as fh:
                fields = fh.read().rsplit(b")", 1)[1].split()
            if int(fields[2]) == group:
                with open(f"/proc/{entry.name}/statm", "rb") as fh:
                    total += int(fh.read().split()[1]) * page
        except (OSError, IndexError, ValueError):
            continue
    return total


def summarize(
    runs: Sequence[Run], ok: Callable[[Run], bool] = lambda r: r.returncode == 0
) -> Summary:
    """Median wall time and median peak RSS; a note when a run failed or timed out."""
    if any(r.timed_out for r in runs):
        return Summary(None, None, f"timeout after {runs[-1].seconds:.0f}s")
    note = "" if all(ok(r) for r in runs) else f"exit {runs[-1].returncode}"
    seconds = statistics.median(r.seconds for r in runs)
    cpu = statistics.median(r.cpu_seconds for r in runs)
    return Summary(seconds, statistics.median(r.peak_rss_mb for r in runs), note, cpu)


def project_for(n: int, root: Path) -> Path:
    """The synthetic history of ``n`` migrations (seed 0) under ``root``, generated once."""
    project = root / f"history-{n}"
    if not (project / "pyproject.toml").exists():
        synth.write_project(synth.generate(n, seed=0), project)
    return project


def floor_run(project: Path) -> tuple[Run, float | None]:
    """Apply every migration once with apsw: the subprocess run and its in-process apply time."""
    cmd = [sys.executable, "-c", FLOOR_SCRIPT, str(project / "migrations")]
    run = timed_run(cmd, project, 600)
    inner = float(run.output.strip().splitlines()[-1]) if run.returncode == 0 else None
    return run, inner


def plugin_available(name: str = "d1check") -> bool:
    """Whether the pytest11 entry point ``name`` is installed and its module importable."""
    for ep in importlib.metadata.entry_points(group="pytest11"):
        if ep.name == name:
            return importlib.util.find_spec(ep.module.split(":")[0]) is not None
    return False


def empty_project(n: int, root: Path) -> Path:
    """A folder whose test file has ``n * 6`` items that do nothing."""
    folder = root / f"empty-{n}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    (folder / "test_empty.py").write_text(
        "import pytest\n\n\n"
        f"@pytest.mark.parametrize('i', range({n * ITEMS_PER_MIGRATION}))\n"
        "def test_item(i):\n    pass\n",
        encoding="utf-8",
    )
    return folder


def empty_run(folder: Path, workers: int | None = None) -> Run:
    """pytest on the items that do nothing: pytest's own cost for that many items."""
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_empty.py"]
    if plugin_available():
        cmd[3:3] = ["-p", "no:d1check"]
    if workers is not None:
        cmd += ["-n", str(workers)]
    return timed_run(cmd, folder, 600)


def run_d1check(project_dir: Path, warm: bool, workers: int | None = None) -> Run | None:
    """One ``python -m pytest -q <project>`` with the d1check plugin; ``None`` if not installed.

    Cold runs work on a fresh copy of the project (no caches); a warm run reruns in place after it.
    """
    if not plugin_available():
        return None
    target = project_dir
    if not warm:
        target = Path(tempfile.mkdtemp(prefix="d1bench-cold-"))
        shutil.copytree(project_dir, target, dirs_exist_ok=True)
    cmd = [sys.executable, "-m", "pytest", "-q", str(target)]
    if workers is not None:
        cmd += ["-n", str(workers)]
    try:
        return timed_run(cmd, target, 900)
    finally:
        if not warm:
            shutil.rmtree(target, ignore_errors=True)


def warm_project(project: Path) -> Path | None:
    """A copy of ``project`` where d1check just ran (its caches in place), for warm reruns."""
    if not plugin_available():
        return None
    warm_dir = Path(tempfile.mkdtemp(prefix="d1bench-warm-"))
    shutil.copytree(project, warm_dir, dirs_exist_ok=True)
    run_d1check(warm_dir, warm=True)
    return warm_dir


def ensure_alembic_venv() -> Path:
    """The venv with pytest<9, pytest-alembic, alembic and SQLAlchemy; created on first use."""
    python = ALEMBIC_VENV / "bin" / "python"
    probe = [str(python), "-c", "import pytest_alembic, alembic, sqlalchemy"]
    if python.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return python
    subprocess.run([sys.executable, "-m", "venv", str(ALEMBIC_VENV)], check=True)
    pip = [str(python), "-m", "pip", "install", "-q", *ALEMBIC_REQUIREMENTS]
    subprocess.run(pip, check=True)
    return python


def split_sql(text: str) -> list[str]:
    """A file's statements at SQLite's boundaries (``apsw.complete``), comment lines dropped."""
    statements, pending = [], ""
    for line in text.splitlines():
        if not pending and line.lstrip().startswith("--"):
            continue
        pending += line + "\n"
        if apsw.complete(pending):
            statements.append(pending.strip())
            pending = ""
    if pending.strip():
        statements.append(pending.strip())
    return statements


def head_database(project: Path, path: Path) -> None:
    """Apply the whole history to a file database: the schema the alembic models describe."""
    conn = apsw.Connection(str(path))
    conn.execute("PRAGMA foreign_keys = ON")
    for sql_file in sorted((project / "migrations").glob("*.sql")):
        conn.execute("BEGIN")
        conn.execute(sql_file.read_text(encoding="utf-8"))
        conn.execute("COMMIT")
    conn.close()


def write_alembic_project(project: Path, outdir: Path) -> None:
    """An alembic project equivalent to ``project``: one revision per migration, same SQL."""
    template = Path(__file__).resolve().parent / "alembic_env"
    shutil.copytree(template, outdir, dirs_exist_ok=True)
    versions = outdir / "alembic" / "versions"
    versions.mkdir(parents=True, exist_ok=True)
    head_database(project, outdir / "head.sqlite")
    previous: str | None = None
    for sql_file in sorted((project / "migrations").glob("*.sql")):
        version = sql_file.name.split("_", 1)[0]
        rollback = project / "rollbacks" / f"{version}_rollback.sql"
        up, down = split_sql(sql_file.read_text("utf-8")), split_sql(rollback.read_text("utf-8"))
        (versions / f"r{version}.py").write_text(
            REVISION.format(rev=f"r{version}", down=repr(previous), up=repr(up), dn=repr(down)),
            encoding="utf-8",
        )
        previous = f"r{version}"


REVISION = '''"""Revision {rev}."""
from alembic import op

revision = "{rev}"
down_revision = {down}
branch_labels = None
depends_on = None

UP = {up}
DOWN = {dn}


def upgrade() -> None:
    for statement in UP:
        op.execute(statement)


def downgrade() -> None:
    for statement in DOWN:
        op.execute(statement)
'''


def alembic_command(project: Path, root: Path) -> tuple[list[str], Path]:
    """The command that runs pytest-alembic's four default tests on the equivalent alembic
    project (written on first use), and the folder to run it in."""
    python = ensure_alembic_venv()
    outdir = root / f"alembic-{project.name}"
    if not (outdir / "head.sqlite").exists():
        write_alembic_project(project, outdir)
    return [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_alembic.py"], outdir


@dataclass
class Row:
    """Everything measured at one size: the runs of each measurement, in rounds."""

    n: int
    runs: dict[str, list[Run]] = field(default_factory=dict)
    applies: list[float | None] = field(default_factory=list)  # floor, timed in process

    def add(self, name: str, run: Run | None) -> None:
        if run is not None:
            self.runs.setdefault(name, []).append(run)

    def summary(self, name: str) -> Summary:
        runs = self.runs.get(name)
        return summarize(runs) if runs else NA

    @property
    def floor_apply(self) -> Summary:
        values = [a for a in self.applies if a is not None]
        if not values or len(values) != len(self.applies):
            return NA
        return Summary(statistics.median(values), None)

    def per_round(self, value: Callable[[int], float | None]) -> float | None:
        """The median over rounds of a quantity computed within each round (``None`` when any
        round lacks it): ratios of runs made minutes apart would measure the machine's drift."""
        rounds = len(self.applies)
        values = [value(i) for i in range(rounds)]
        if not values or any(v is None for v in values):
            return None
        return statistics.median(v for v in values if v is not None)

    def seconds(self, name: str, i: int) -> float | None:
        """Wall seconds of round ``i``'s run (``None`` when it is missing or failed)."""
        run = self._run(name, i)
        return None if run is None else run.seconds

    def cpu(self, name: str, i: int) -> float | None:
        """CPU seconds of round ``i``'s run (``None`` when it is missing or failed)."""
        run = self._run(name, i)
        return None if run is None else run.cpu_seconds

    def _run(self, name: str, i: int) -> Run | None:
        runs = self.runs.get(name, [])
        if i >= len(runs) or runs[i].returncode != 0 or runs[i].timed_out:
            return None
        return runs[i]


def measure_size(n: int, root: Path, args: argparse.Namespace) -> Row:
    """Every measurement at size ``n``, in ``args.repeat`` rounds: each round runs every
    measurement once, so that ratios are taken between runs made close together."""
    project = project_for(n, root)
    empty = empty_project(n, root)
    warm_dir = warm_project(project)
    alembic = alembic_command(project, root) if n in args.alembic_sizes else None
    row = Row(n)
    try:
        for i in range(args.repeat):
            floor, inner = floor_run(project)
            row.add("floor", floor)
            row.applies.append(inner)
            row.add("empty", empty_run(empty))
            row.add("cold", run_d1check(project, warm=False))
            if warm_dir is not None:
                row.add("warm", run_d1check(warm_dir, warm=True))
            if n == args.xdist_size:
                order = (0, 2) if i % 2 == 0 else (2, 0)
                for workers in order:
                    row.add(f"n{workers}", run_d1check(project, warm=False, workers=workers))
                    row.add(f"empty-n{workers}", empty_run(empty, workers))
            if alembic is not None and (args.alembic_repeat is None or i < args.alembic_repeat):
                row.add("alembic", timed_run(alembic[0], alembic[1], args.alembic_timeout))
    finally:
        if warm_dir is not None:
            shutil.rmtree(warm_dir, ignore_errors=True)
    return row


def measurements_table(rows: Sequence[Row]) -> str:
    """The measurements as a markdown table (seconds; MB for RSS)."""
    head = (
        "| N | floor wall | floor apply | T_empty | T_cold | T_warm | pytest-alembic "
        "| CPU empty | CPU cold | RSS floor | RSS empty | RSS cold | RSS warm | RSS alembic |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n"
    )
    lines = []
    for r in rows:
        floor, empty, cold = r.summary("floor"), r.summary("empty"), r.summary("cold")
        warm, alembic = r.summary("warm"), r.summary("alembic")
        lines.append(
            f"| {r.n} | {floor.cell()} | {r.floor_apply.cell()} | {empty.cell()} "
            f"| {cold.cell()} | {warm.cell()} | {alembic.cell()} | {empty.cpu()} | {cold.cpu()} "
            f"| {floor.rss()} "
            f"| {empty.rss()} | {cold.rss()} | {warm.rss()} | {alembic.rss()} |"
        )
    return head + "\n".join(lines)


def xdist_table(rows: Sequence[Row]) -> str:
    """Wall and CPU seconds of the cold runs and of the items that do nothing, under ``-n 0`` and
    ``-n 2`` (medians), at the sizes where they ran."""
    names = ("n0", "n2", "empty-n0", "empty-n2")
    head = (
        "| N | cold -n 0 | cold -n 2 | empty -n 0 | empty -n 2 | CPU cold -n 0 | CPU cold -n 2 "
        "| CPU empty -n 0 | CPU empty -n 2 |\n|---|---|---|---|---|---|---|---|---|\n"
    )
    lines = []
    for r in rows:
        if not all(r.runs.get(name) for name in names):
            continue
        runs = [r.summary(name) for name in names]
        cells = [s.cell() for s in runs] + [s.cpu() for s in runs]
        lines.append(f"| {r.n} | " + " | ".join(cells) + " |")
    return head + "\n".join(lines) if lines else ""


@dataclass(frozen=True)
class Target:
    """One speed target of the issue and its verdict."""

    name: str
    value: str
    verdict: str


def _verdict(value: float | None, ok: Callable[[float], bool], fmt: str) -> tuple[str, str]:
    if value is None:
        return "n/a", "n/a"
    return fmt.format(value), "PASS" if ok(value) else "FAIL"


def _overhead_ratio(row: Row | None, run: str, cpu: bool = False) -> float | None:
    """``(T_run - T_empty) / floor``, the median over rounds; with ``cpu``, the same in CPU
    seconds (d1check's own work, whichever process did it)."""
    if row is None:
        return None
    measure = row.cpu if cpu else row.seconds

    def ratio(i: int) -> float | None:
        t, empty, floor = measure(run, i), measure("empty", i), row.applies[i]
        if t is None or empty is None or not floor:
            return None
        return (t - empty) / floor

    return row.per_round(ratio)


def _round_ratio(row: Row | None, top: str, bottom: str) -> float | None:
    """``T_top / T_bottom``, the median over the rounds that ran both."""
    if row is None or not row.runs.get(top) or not row.runs.get(bottom):
        return None
    rounds = min(len(row.runs[top]), len(row.runs[bottom]))
    values = [
        (t, b)
        for i in range(rounds)
        if (t := row.seconds(top, i)) is not None and (b := row.seconds(bottom, i))
    ]
    return statistics.median(t / b for t, b in values) if values else None


def evaluate(rows: Sequence[Row]) -> list[Target]:
    """The issue's targets over the measured rows (``n/a`` where a size or a tool is missing)."""
    by_n = {r.n: r for r in rows}
    r1000, r2000 = by_n.get(1000), by_n.get(2000)
    speedup = _round_ratio(r1000, "alembic", "cold")
    ratio_1000, ratio_2000 = _overhead_ratio(r1000, "cold"), _overhead_ratio(r2000, "cold")
    growth = ratio_2000 / ratio_1000 if ratio_1000 and ratio_2000 is not None else None
    rss = r2000.summary("cold").peak_rss_mb if r2000 else None
    xdist = _round_ratio(r1000, "n2", "n0")
    xdist_empty = _round_ratio(r1000, "empty-n2", "empty-n0")
    checks = [
        ("cold@1000 >= 5x faster than pytest-alembic", speedup, lambda v: v >= 5, "{:.1f}x"),
        ("(T_cold - T_empty) <= 8x floor @1000", ratio_1000, lambda v: v <= 8, "{:.2f}x floor"),
        ("overhead ratio @2000 <= 1.15x ratio @1000", growth, lambda v: v <= 1.15, "{:.2f}"),
        ("(T_warm - T_empty) <= 1x floor @1000", _overhead_ratio(r1000, "warm"), lambda v: v <= 1,
         "{:.2f}x floor"),
        ("peak RSS @2000 < 300 MB", rss, lambda v: v < 300, "{:.0f} MB"),
        ("pytest -n 2 <= pytest -n 0 @1000", xdist, lambda v: v <= 1, "{:.2f}x (n2/n0)"),
    ]  # fmt: skip
    targets = [Target(name, *_verdict(value, ok, fmt)) for name, value, ok, fmt in checks]
    if xdist_empty is not None:
        value = f"{xdist_empty:.2f}x (n2/n0)"
        targets.append(Target("context: the items that do nothing, -n 2 vs -n 0", value, "info"))
    cpu = _overhead_ratio(r1000, "cold", cpu=True)
    if cpu is not None:
        name = "context: (CPU_cold - CPU_empty) @1000, all processes"
        targets.append(Target(name, f"{cpu:.2f}x floor", "info"))
    return targets


def targets_table(targets: Sequence[Target]) -> str:
    """The targets as a markdown table."""
    lines = [f"| {t.name} | {t.value} | {t.verdict} |" for t in targets]
    return "| target | measured | verdict |\n|---|---|---|\n" + "\n".join(lines)


def _sizes(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--sizes",
        type=_sizes,
        default=[500, 1000, 2000],
        help="history sizes, comma-separated (default 500,1000,2000)",
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement (default 3)")
    parser.add_argument(
        "--alembic-sizes",
        type=_sizes,
        default=[500, 1000],
        help="sizes also run through pytest-alembic (default 500,1000; '' for none)",
    )
    parser.add_argument(
        "--alembic-repeat",
        type=int,
        default=None,
        help="rounds that also run pytest-alembic (default: every round)",
    )
    parser.add_argument(
        "--alembic-timeout",
        type=float,
        default=300,
        help="seconds before a pytest-alembic run is stopped (default 300)",
    )
    parser.add_argument(
        "--xdist-size",
        type=int,
        default=1000,
        help="size at which -n 2 and -n 0 are compared (default 1000)",
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "d1bench",
        help="where histories and projects are generated (default /tmp/d1bench)",
    )
    return parser.parse_args(argv)  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    """Measure every size, print the measurements and the targets."""
    args = parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    if not plugin_available():
        print("d1check's pytest plugin is not installed: its columns read n/a", flush=True)
    rows = []
    for n in args.sizes:
        print(f"measuring N={n} …", file=sys.stderr, flush=True)
        rows.append(measure_size(n, args.workdir, args))
    print(measurements_table(rows))
    print()
    xdist = xdist_table(rows)
    if xdist:
        print(xdist)
        print()
    print(targets_table(evaluate(rows)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
