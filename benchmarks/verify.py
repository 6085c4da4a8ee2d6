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
    """One whole-process run: wall seconds, peak RSS of the process tree, exit code, its output."""

    seconds: float
    peak_rss_mb: float
    returncode: int
    output: str = ""
    timed_out: bool = False


@dataclass(frozen=True)
class Summary:
    """The median of several runs of one measurement (``None`` where not measurable)."""

    seconds: float | None
    peak_rss_mb: float | None
    note: str = ""

    def cell(self) -> str:
        if self.seconds is None:
            return self.note or "n/a"
        return f"{self.seconds:.2f}" + (f" ({self.note})" if self.note else "")

    def rss(self) -> str:
        return "n/a" if self.peak_rss_mb is None else f"{self.peak_rss_mb:.0f}"


NA = Summary(None, None, "n/a")


def timed_run(cmd: Sequence[str], cwd: Path, timeout: float) -> Run:
    """Run ``cmd`` in a new process group: wall time and peak RSS (``wait4``) of its tree."""
    with tempfile.TemporaryFile() as out:
        start = time.perf_counter()
        proc = subprocess.Popen(
            list(cmd), cwd=cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        expired = threading.Event()

        def kill() -> None:
            expired.set()
            os.killpg(proc.pid, signal.SIGKILL)

        timer = threading.Timer(timeout, kill)
        timer.start()
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        timer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read().decode("utf-8", "replace")
    return Run(seconds, usage.ru_maxrss / 1024, proc.returncode, text, expired.is_set())


def summarize(
    runs: Sequence[Run], ok: Callable[[Run], bool] = lambda r: r.returncode == 0
) -> Summary:
    """Median wall time and median peak RSS; a note when a run failed or timed out."""
    if any(r.timed_out for r in runs):
        return Summary(None, None, f"timeout after {runs[-1].seconds:.0f}s")
    note = "" if all(ok(r) for r in runs) else f"exit {runs[-1].returncode}"
    seconds = statistics.median(r.seconds for r in runs)
    return Summary(seconds, statistics.median(r.peak_rss_mb for r in runs), note)


def project_for(n: int, root: Path) -> Path:
    """The synthetic history of ``n`` migrations (seed 0) under ``root``, generated once."""
    project = root / f"history-{n}"
    if not (project / "pyproject.toml").exists():
        synth.write_project(synth.generate(n, seed=0), project)
    return project


def measure_floor(project: Path, repeat: int) -> tuple[Summary, Summary]:
    """Apply every migration once with apsw: (subprocess wall time, in-process apply time)."""
    cmd = [sys.executable, "-c", FLOOR_SCRIPT, str(project / "migrations")]
    runs = [timed_run(cmd, project, 600) for _ in range(repeat)]
    inner = [float(r.output.strip().splitlines()[-1]) for r in runs if r.returncode == 0]
    inside = Summary(statistics.median(inner), None) if len(inner) == len(runs) else NA
    return summarize(runs), inside


def plugin_available(name: str = "d1check") -> bool:
    """Whether the pytest11 entry point ``name`` is installed and its module importable."""
    for ep in importlib.metadata.entry_points(group="pytest11"):
        if ep.name == name:
            return importlib.util.find_spec(ep.module.split(":")[0]) is not None
    return False


def measure_empty(n: int, root: Path, repeat: int) -> Summary:
    """pytest on ``n * 6`` items that do nothing: pytest's own cost for that many items."""
    folder = root / f"empty-{n}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    (folder / "test_empty.py").write_text(
        "import pytest\n\n\n"
        f"@pytest.mark.parametrize('i', range({n * ITEMS_PER_MIGRATION}))\n"
        "def test_item(i):\n    pass\n",
        encoding="utf-8",
    )
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_empty.py"]
    if plugin_available():
        cmd[3:3] = ["-p", "no:d1check"]
    return summarize([timed_run(cmd, folder, 600) for _ in range(repeat)])


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


def measure_cold(project: Path, repeat: int, workers: int | None = None) -> Summary:
    """Median of cold d1check runs on fresh copies of ``project``."""
    if not plugin_available():
        return NA
    return summarize(
        [r for r in (run_d1check(project, False, workers) for _ in range(repeat)) if r]
    )


def measure_warm(project: Path, repeat: int) -> Summary:
    """Median of warm reruns, in one copy of ``project`` after a first (cold) run there."""
    if not plugin_available():
        return NA
    warm_dir = Path(tempfile.mkdtemp(prefix="d1bench-warm-"))
    shutil.copytree(project, warm_dir, dirs_exist_ok=True)
    try:
        run_d1check(warm_dir, warm=True)
        return summarize([r for r in (run_d1check(warm_dir, True) for _ in range(repeat)) if r])
    finally:
        shutil.rmtree(warm_dir, ignore_errors=True)


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


def measure_alembic(project: Path, root: Path, repeat: int, timeout: float) -> Summary:
    """pytest-alembic's four default tests on the equivalent alembic project."""
    python = ensure_alembic_venv()
    outdir = root / f"alembic-{project.name}"
    if not (outdir / "head.sqlite").exists():
        write_alembic_project(project, outdir)
    cmd = [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_alembic.py"]
    runs: list[Run] = []
    for _ in range(repeat):
        runs.append(timed_run(cmd, outdir, timeout))
        if runs[-1].timed_out:
            break
    return summarize(runs)


@dataclass
class Row:
    """Everything measured at one size."""

    n: int
    floor_wall: Summary = NA
    floor_apply: Summary = NA
    empty: Summary = NA
    cold: Summary = NA
    warm: Summary = NA
    alembic: Summary = NA
    extra: dict[str, Summary] = field(default_factory=dict)


def measure_size(n: int, root: Path, args: argparse.Namespace) -> Row:
    """Every measurement at size ``n``."""
    project = project_for(n, root)
    row = Row(n)
    row.floor_wall, row.floor_apply = measure_floor(project, args.repeat)
    row.empty = measure_empty(n, root, args.repeat)
    row.cold, row.warm = measure_cold(project, args.repeat), measure_warm(project, args.repeat)
    if n == args.xdist_size:
        row.extra["n0"] = measure_cold(project, args.repeat, workers=0)
        row.extra["n2"] = measure_cold(project, args.repeat, workers=2)
    if n in args.alembic_sizes:
        row.alembic = measure_alembic(project, root, args.alembic_repeat, args.alembic_timeout)
    return row


def measurements_table(rows: Sequence[Row]) -> str:
    """The measurements as a markdown table (seconds; MB for RSS)."""
    head = (
        "| N | floor wall | floor apply | T_empty | T_cold | T_warm | pytest-alembic "
        "| RSS floor | RSS empty | RSS cold | RSS warm | RSS alembic |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|---|\n"
    )
    lines = [
        f"| {r.n} | {r.floor_wall.cell()} | {r.floor_apply.cell()} | {r.empty.cell()} "
        f"| {r.cold.cell()} | {r.warm.cell()} | {r.alembic.cell()} | {r.floor_wall.rss()} "
        f"| {r.empty.rss()} | {r.cold.rss()} | {r.warm.rss()} | {r.alembic.rss()} |"
        for r in rows
    ]
    return head + "\n".join(lines)


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


def _overhead_ratio(row: Row | None, run: str) -> float | None:
    if row is None:
        return None
    summary: Summary = getattr(row, run)
    t, empty, floor = summary.seconds, row.empty.seconds, row.floor_apply.seconds
    if t is None or empty is None or not floor:
        return None
    return (t - empty) / floor


def evaluate(rows: Sequence[Row]) -> list[Target]:
    """The issue's targets over the measured rows (``n/a`` where a size or a tool is missing)."""
    by_n = {r.n: r for r in rows}
    r1000, r2000 = by_n.get(1000), by_n.get(2000)
    speedup = None
    if r1000 and r1000.cold.seconds and r1000.alembic.seconds:
        speedup = r1000.alembic.seconds / r1000.cold.seconds
    ratio_1000, ratio_2000 = _overhead_ratio(r1000, "cold"), _overhead_ratio(r2000, "cold")
    growth = ratio_2000 / ratio_1000 if ratio_1000 and ratio_2000 is not None else None
    rss = r2000.cold.peak_rss_mb if r2000 else None
    xdist = None
    if r1000 and r1000.extra.get("n0") and r1000.extra.get("n2"):
        n0, n2 = r1000.extra["n0"].seconds, r1000.extra["n2"].seconds
        xdist = n2 / n0 if n0 and n2 is not None else None
    checks = [
        ("cold@1000 >= 5x faster than pytest-alembic", speedup, lambda v: v >= 5, "{:.1f}x"),
        ("(T_cold - T_empty) <= 8x floor @1000", ratio_1000, lambda v: v <= 8, "{:.2f}x floor"),
        ("overhead ratio @2000 <= 1.15x ratio @1000", growth, lambda v: v <= 1.15, "{:.2f}"),
        ("(T_warm - T_empty) <= 1x floor @1000", _overhead_ratio(r1000, "warm"), lambda v: v <= 1,
         "{:.2f}x floor"),
        ("peak RSS @2000 < 300 MB", rss, lambda v: v < 300, "{:.0f} MB"),
        ("pytest -n 2 <= pytest -n 0 @1000", xdist, lambda v: v <= 1, "{:.2f}x (n2/n0)"),
    ]  # fmt: skip
    return [Target(name, *_verdict(value, ok, fmt)) for name, value, ok, fmt in checks]


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
        "--alembic-repeat", type=int, default=1, help="runs of pytest-alembic per size (default 1)"
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
    print(targets_table(evaluate(rows)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
