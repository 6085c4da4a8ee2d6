"""Differential run of d1check against workerd over real-world D1 migration histories.

Usage::

    python benchmarks/realworld.py CORPUS [--baseline] [--json] [--only ID,...]
        [--cache DIR] [--recompute] [--cached] [--write-manifest] [--no-apply]

CORPUS holds one folder per history: a project's wrangler config (at the folder's root or in a
subfolder) and its migrations directories, laid out as in the project. For every D1 database of
every config found, the script

1. asks workerd (``wrangler d1 migrations apply DB --local`` on a fresh copy) whether the whole
   history builds on an empty database, and which migration fails with what error if not;
2. runs d1check as a user would from the history's root (``python -m pytest -q -p
   no:cacheprovider``), after ``d1check baseline`` (or ``d1check hash`` where baseline does not
   exist) with ``--baseline``; and parses the passed/failed/skipped counts and failing items;
3. compares: they agree when workerd builds the history and d1check is green, or when workerd
   fails at migration X and d1check's ``X::applies`` fails;
4. where workerd builds the history, runs ``pytest --apply=local --yes -k applies`` on another
   fresh copy (the ``::applies`` items alone, so that policy items do not hold the gate) and
   compares the local database d1check leaves with workerd's: sqlite_schema rows outside the
   internal tables and d1check's own ``_schema_audit``, the tracking table's names, and the
   file's place (where wrangler, run beside the config, keeps it).

``D1CHECK_WRANGLER`` names the wrangler executable (wrangler 4.164 with workerd). Verdicts and
the schemas they leave are kept in CORPUS/.workerd (``--cache``; outside the repository, since
they hold the projects' SQL) and reused while the files are unchanged (``--recompute`` to redo).
Without wrangler, ``--cached`` reads the verdicts from ``benchmarks/realworld-manifest.json``
(no schema comparison then).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import apsw

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from d1check.discovery import wrangler_order_key  # noqa: E402
from d1check.local import local_id, miniflare_file_name  # noqa: E402
from d1check.wrangler import (  # noqa: E402
    WRANGLER_FILES,
    load_wrangler_config,
)
from d1check.wrangler import read_json as _read_json  # noqa: E402
from d1check.wrangler import read_toml as _read_toml  # noqa: E402

MANIFEST = Path(__file__).with_name("realworld-manifest.json")
SKIPPED_DIRS = {"node_modules", ".wrangler", ".git", ".d1check"}
INTERNAL_TABLES = re.compile(r"^(sqlite_|_cf_)")
AUDIT_TABLE = "_schema_audit"  # d1check's own record of what it applied (documented)
POLICY_CHECKS = {"rollback", "idempotent", "destructive", "sequence"}
FACT_CHECKS = {"applies", "d1", "rows", "checksums"}
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_ERROR_LINE = re.compile(r"✘ \[ERROR\] (.*)")
_COUNT = re.compile(r"(\d+) (passed|failed|skipped|errors?|xfailed|xpassed|warnings?)")
_SUMMARY_LINE = re.compile(r"^(FAILED|ERROR) (\S+)(?: - (.*))?$")
_TIMEOUT = 600
D1CHECK = (sys.executable, "-c", "from d1check.cli import main; main()")


@dataclass(frozen=True)
class Database:
    """One D1 database of a history: its config, binding and migrations directory."""

    history: str
    root: Path
    config: Path
    binding: str
    tracking_table: str
    migrations_dir: Path
    pattern: str | None = None

    @property
    def key(self) -> str:
        """`history:binding`."""
        return f"{self.history}:{self.binding}"

    def migration_names(self) -> list[str]:
        """The files wrangler applies, named as its tracking table names them, in its order:
        `*.sql` in the migrations directory, or the `migrations_pattern` glob's matches
        (relative to the config) named by their path under the migrations directory."""
        if self.pattern:
            paths = self.config.parent.glob(self.pattern)
            names = [p.resolve().relative_to(self.migrations_dir).as_posix() for p in paths]
        elif self.migrations_dir.is_dir():
            names = [p.name for p in self.migrations_dir.glob("*.sql")]
        else:
            names = []
        return sorted(names, key=wrangler_order_key)


@dataclass(frozen=True)
class Schema:
    """What a database holds after the history: schema rows and tracking names."""

    rows: tuple[tuple[str, str, str, str], ...]
    tracking: tuple[str, ...]

    def digest(self) -> str:
        """A short hash of the schema rows and tracking names (kept in the manifest)."""
        text = json.dumps([list(r) for r in self.rows] + [list(self.tracking)])
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Verdict:
    """workerd's verdict on one database's history."""

    applied: int
    failed: str | None
    error: str
    schema_digest: str | None
    seconds: float
    schema: Schema | None = None
    note: str = ""

    @property
    def builds(self) -> bool:
        """True when the whole history applied on an empty database."""
        return self.failed is None


@dataclass(frozen=True)
class Failure:
    """A failing d1check item: its id and the first line of its message."""

    item: str
    message: str

    @property
    def check(self) -> str:
        """The check name after `::` (applies, rollback, …)."""
        return self.item.rsplit("::", 1)[-1]

    @property
    def file(self) -> str:
        """The migration file name the item belongs to."""
        return Path(self.item.rsplit("::", 1)[0]).name


@dataclass(frozen=True)
class Run:
    """One d1check pytest run over a history."""

    exit_code: int
    counts: dict[str, int]
    failures: tuple[Failure, ...]
    usage_error: str
    seconds: float

    @property
    def green(self) -> bool:
        """True when pytest exited 0."""
        return self.exit_code == 0

    @property
    def collected_nothing(self) -> bool:
        """True when pytest found no item at all (exit 5)."""
        return self.exit_code == 5

    def failing(self, check: str) -> list[Failure]:
        """The failures of one check."""
        return [f for f in self.failures if f.check == check]


@dataclass(frozen=True)
class Comparison:
    """workerd and d1check on one database, and how they compare."""

    database: str
    files: int
    verdict: Verdict
    run: Run
    agrees: bool
    facts_agree: bool
    local: str = ""
    notes: list[str] = field(default_factory=list)


# -- histories -------------------------------------------------------------------------------


def find_configs(root: Path, depth: int = 3) -> list[Path]:
    """Wrangler configs with D1 databases at `root` or up to `depth` folders below."""
    found: list[Path] = []
    for folder in _folders(root, depth):
        config = next((folder / n for n in WRANGLER_FILES if (folder / n).is_file()), None)
        if config is not None and load_wrangler_config(config).databases:
            found.append(config)
    return found


def _folders(root: Path, depth: int) -> Iterator[Path]:
    yield root
    if depth == 0:
        return
    for child in sorted(root.iterdir()):
        if child.is_dir() and child.name not in SKIPPED_DIRS and not child.name.startswith("."):
            yield from _folders(child, depth - 1)


def databases_of(history: Path) -> list[Database]:
    """Every top-level D1 database of every wrangler config of the history."""
    result = []
    for config in find_configs(history):
        patterns = migration_patterns(config)
        for db in load_wrangler_config(config).databases:
            directory = (config.parent / (db.migrations_dir or "migrations")).resolve()
            table = db.migrations_table or "d1_migrations"
            pattern = patterns.get(db.binding)
            entry = Database(history.name, history, config, db.binding, table, directory, pattern)
            result.append(entry)
    return result


def migration_patterns(config: Path) -> dict[str, str]:
    """`migrations_pattern` of the top-level databases that set one, by binding."""
    data = _read_toml(config) if config.suffix == ".toml" else _read_json(config)
    entries = data.get("d1_databases", []) if isinstance(data, dict) else []
    return {
        str(e["binding"]): str(e["migrations_pattern"])
        for e in entries
        if isinstance(e, dict) and e.get("migrations_pattern") and e.get("binding")
    }


def histories(corpus: Path, only: Sequence[str] = ()) -> list[Path]:
    """The history folders of the corpus (every folder with a wrangler config)."""
    folders = [p for p in sorted(corpus.iterdir()) if p.is_dir() and not p.name.startswith(".")]
    return [p for p in folders if (not only or p.name in only) and find_configs(p)]


def _scratch_copy(history: Path, parent: Path) -> Path:
    target = parent / history.name
    ignore = shutil.ignore_patterns(".wrangler", ".d1check", "d1check.sum", "__pycache__")
    shutil.copytree(history, target, ignore=ignore)
    return target


def _in_copy(db: Database, copy: Path, path: Path) -> Path:
    return copy / path.relative_to(db.root)


# -- workerd -------------------------------------------------------------------------------


def _wrangler_env() -> dict[str, str]:
    env = {**os.environ, "CI": "1", "WRANGLER_SEND_METRICS": "false", "NO_COLOR": "1"}
    for key in ("CLOUDFLARE_API_TOKEN", "CLOUDFLARE_ACCOUNT_ID"):
        env.pop(key, None)
    return env


def error_message(output: str) -> str:
    """The last `✘ [ERROR] …` text wrangler printed, ANSI codes removed; '' when none."""
    found = _ERROR_LINE.findall(_ANSI.sub("", output))
    return found[-1].strip() if found else ""


def read_schema(path: Path, tracking_table: str) -> Schema:
    """sqlite_schema rows outside the internal tables, and the tracking table's names."""
    conn = apsw.Connection(str(path), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        rows = tuple(
            (str(t), str(n), str(tb), str(s))
            for t, n, tb, s in conn.execute(
                "SELECT type, name, tbl_name, sql FROM sqlite_schema ORDER BY type, name"
            )
            if not INTERNAL_TABLES.match(str(tb)) and s is not None
        )
        tables = {r[1] for r in rows if r[0] == "table"}
        tracking: tuple[str, ...] = ()
        if tracking_table in tables:
            query = f'SELECT name FROM "{tracking_table}" ORDER BY id'
            tracking = tuple(str(r[0]) for r in conn.execute(query))
        return Schema(rows, tracking)
    finally:
        conn.close()


def _sqlite_files(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.sqlite")) if folder.is_dir() else []


def workerd_verdict(db: Database, wrangler: Path, scratch: Path) -> Verdict:
    """`wrangler d1 migrations apply BINDING --local` on a fresh copy of the history."""
    copy = _scratch_copy(db.root, scratch)
    config = _in_copy(db, copy, db.config)
    start = time.perf_counter()
    done = _apply(wrangler, db.binding, config, scratch / "state")
    note = ""
    if _config_refused(done):
        note = "wrangler 4 refuses the config (" + _refusal(done) + "); verdict with its D1 entry"
        config = _minimal_config(db, config)
        done = _apply(wrangler, db.binding, config, scratch / "state")
    seconds = time.perf_counter() - start
    state = scratch / "state"
    files = _sqlite_files(state / "v3" / "d1")
    schema = read_schema(files[0], db.tracking_table) if files else None
    applied = schema.tracking if schema else ()
    names = db.migration_names()
    if done.returncode == 0:
        digest = schema.digest() if schema else None
        return Verdict(len(applied), None, "", digest, seconds, schema, note)
    message = error_message(done.stderr) or error_message(done.stdout)
    if not message:
        message = f"wrangler exited {done.returncode}: {done.stderr.strip()[-300:]}"
    pending = [n for n in names if n not in applied]
    failed = pending[0] if pending else "<wrangler>"
    return Verdict(len(applied), failed, message.splitlines()[0], None, seconds, schema, note)


def _apply(
    wrangler: Path, binding: str, config: Path, state: Path
) -> subprocess.CompletedProcess[str]:
    args = [str(wrangler), "d1", "migrations", "apply", binding, "--local"]
    args += ["--config", str(config), "--persist-to", str(state)]
    return subprocess.run(
        args,
        cwd=config.parent,
        env=_wrangler_env(),
        capture_output=True,
        text=True,
        timeout=_TIMEOUT,
        check=False,
    )


def _config_refused(done: subprocess.CompletedProcess[str]) -> bool:
    return done.returncode != 0 and "configuration:" in error_message(done.stderr + done.stdout)


def _refusal(done: subprocess.CompletedProcess[str]) -> str:
    text = _ANSI.sub("", done.stderr + done.stdout)
    reasons = re.findall(r"^\s+- (.+)$", text, re.MULTILINE)
    return "; ".join(r.strip() for r in reasons)[:200] or "configuration error"


def _minimal_config(db: Database, config: Path) -> Path:
    """The project's D1 entry alone, beside the original config (same relative paths)."""
    entry = next(d for d in load_wrangler_config(config).databases if d.binding == db.binding)
    lines = ['name = "realworld"', 'compatibility_date = "2025-01-01"', "", "[[d1_databases]]"]
    for key in ("binding", "database_name", "database_id", "migrations_dir", "migrations_table"):
        value = getattr(entry, key)
        if value is not None:
            lines.append(f"{key} = {json.dumps(value)}")
    if db.pattern:
        lines.append(f"migrations_pattern = {json.dumps(db.pattern)}")
    target = config.parent / "wrangler.realworld.toml"
    target.write_text("\n".join(lines) + "\n")
    return target


# -- d1check -------------------------------------------------------------------------------


def _d1check_env() -> dict[str, str]:
    env = {**os.environ, "COLUMNS": "100000", "PYTHONPATH": str(REPO)}
    env.pop("PYTEST_ADDOPTS", None)
    return env


def has_baseline_command() -> bool:
    """True when this d1check has the `baseline` command."""
    done = subprocess.run(
        [*D1CHECK, "--help"],
        env=_d1check_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    return bool(re.search(r"^\s+baseline\b", done.stdout, re.MULTILINE))


def write_baseline(copy: Path, use_baseline: bool) -> str:
    """`d1check baseline` (or `d1check hash` as its stand-in) at the copy's root."""
    command = "baseline" if use_baseline else "hash"
    done = subprocess.run(
        [*D1CHECK, command, "--root", str(copy)],
        cwd=copy,
        env=_d1check_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    return "" if done.returncode == 0 else f"d1check {command}: {done.stderr.strip()[:300]}"


def parse_pytest(output: str, exit_code: int, seconds: float) -> Run:
    """Counts, failing items and any usage error from `pytest -q -rfE` output."""
    lines = _ANSI.sub("", output).splitlines()
    failures = []
    for line in lines:
        match = _SUMMARY_LINE.match(line)
        if match:
            failures.append(Failure(match.group(2), (match.group(3) or "").strip()))
    counts: dict[str, int] = {}
    tail = next((ln for ln in reversed(lines) if re.search(r" in [\d.]+s", ln)), "")
    for number, kind in _COUNT.findall(tail):
        counts[kind.rstrip("s") if kind.startswith(("error", "warning")) else kind] = int(number)
    usage = ""
    if exit_code in (3, 4):
        usage = next((ln for ln in lines if "error" in ln.lower()), lines[-1] if lines else "")
    return Run(exit_code, counts, tuple(failures), usage.strip(), seconds)


def run_pytest(copy: Path, extra: Sequence[str] = ()) -> Run:
    """`python -m pytest -q -p no:cacheprovider` at the copy's root, as a user would."""
    args = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rfE", *extra]
    start = time.perf_counter()
    done = subprocess.run(
        args,
        cwd=copy,
        env=_d1check_env(),
        capture_output=True,
        text=True,
        timeout=_TIMEOUT,
        check=False,
    )
    return parse_pytest(done.stdout + done.stderr, done.returncode, time.perf_counter() - start)


def d1check_run(history: Path, scratch: Path, baseline: str | None) -> Run:
    """d1check over a fresh copy; `baseline` is None, "baseline" or "hash"."""
    copy = _scratch_copy(history, scratch)
    if baseline:
        problem = write_baseline(copy, baseline == "baseline")
        if problem:
            return Run(-1, {}, (), problem, 0.0)
    return run_pytest(copy)


def d1check_local(db: Database, scratch: Path, baseline: str | None) -> tuple[str, Schema | None]:
    """`pytest --apply=local --yes -k applies` on a fresh copy; the local database it leaves.

    Only the `::applies` items are selected, so that policy items (rollback files, idempotency)
    that real histories rarely satisfy do not keep the gate from applying."""
    copy = _scratch_copy(db.root, scratch)
    if baseline:
        write_baseline(copy, baseline == "baseline")
    run = run_pytest(copy, ["--apply=local", "--yes", "-k", "applies"])
    if not run.green:
        return f"not applied: `pytest --apply=local -k applies` exit {run.exit_code}", None
    files = _sqlite_files(copy / ".wrangler") + _sqlite_files(copy / ".d1check")
    files += _sqlite_files(_in_copy(db, copy, db.config.parent) / ".wrangler")
    for path in dict.fromkeys(files):
        schema = read_schema(path, db.tracking_table)
        if schema.tracking:
            return path.relative_to(copy).as_posix(), schema
    return "no local database with tracking rows found", None


def wrangler_local_path(db: Database) -> str:
    """Where `wrangler dev` / `wrangler d1 … --local`, run beside the config, keep the database."""
    entry = next(d for d in load_wrangler_config(db.config).databases if d.binding == db.binding)
    name = miniflare_file_name(local_id(entry))
    folder = db.config.parent.relative_to(db.root)
    return (folder / ".wrangler/state/v3/d1/miniflare-D1DatabaseObject" / name).as_posix()


# -- comparison ----------------------------------------------------------------------------


def facts_failures(run: Run) -> list[Failure]:
    """Failures of the checks that state facts about the history (not policy)."""
    return [f for f in run.failures if f.check in FACT_CHECKS]


def agreement(verdict: Verdict, run: Run, files: int) -> tuple[bool, bool]:
    """(strict, facts): strict compares with the whole run, facts ignores policy items.
    A run that collects nothing from a history with migrations never agrees."""
    if run.usage_error:
        return False, False
    if run.collected_nothing:
        return not files, not files
    if verdict.builds:
        return run.green, not facts_failures(run)
    first = run.failing("applies")
    at_failure = bool(first) and first[0].file == verdict.failed
    return at_failure, at_failure


def schema_differences(workerd: Schema, local: Schema) -> list[str]:
    """What differs between workerd's database and d1check's local one."""
    notes = []
    ours = {r[:2]: r[3] for r in local.rows if r[2] != AUDIT_TABLE}
    theirs = {r[:2]: r[3] for r in workerd.rows}
    for key in sorted(theirs.keys() - ours.keys()):
        notes.append(f"missing locally: {key[0]} {key[1]}")
    for key in sorted(ours.keys() - theirs.keys()):
        notes.append(f"only locally: {key[0]} {key[1]}")
    for key in sorted(theirs.keys() & ours.keys()):
        if theirs[key] != ours[key]:
            notes.append(f"different sql: {key[0]} {key[1]}")
    if workerd.tracking != local.tracking:
        notes.append(f"tracking rows differ: workerd {workerd.tracking} local {local.tracking}")
    return notes


def compare(
    db: Database, verdict: Verdict, run: Run, scratch: Path, baseline: str | None, apply: bool
) -> Comparison:
    """One database's comparison, with the local-apply check where workerd builds it."""
    files = len(db.migration_names())
    strict, facts = agreement(verdict, run, files)
    local, notes = "", []
    if apply and verdict.builds and verdict.schema is not None:
        where, schema = d1check_local(db, scratch, baseline)
        local = where
        if schema is not None:
            notes = schema_differences(verdict.schema, schema)
            expected = wrangler_local_path(db)
            if where != expected:
                notes.append(f"local database at {where}; wrangler (beside the config): {expected}")
            local = "same" if not notes else f"differs ({len(notes)})"
    return Comparison(db.key, files, verdict, run, strict, facts, local, notes)


# -- verdict cache (outside the repository: it holds schema SQL) ----------------------------


def _cache_file(cache: Path, db: Database) -> Path:
    return cache / f"{db.key.replace(':', '__')}.json"


def load_cached(cache: Path, db: Database) -> Verdict | None:
    """A verdict computed before, with its schema, if the cache has one for the same files."""
    path = _cache_file(cache, db)
    if not path.is_file():
        return None
    data = json.loads(path.read_text())
    if data["files_digest"] != _files_digest(db):
        return None
    schema = data["schema"]
    return Verdict(
        data["applied"],
        data["failed"],
        data["error"],
        data["schema_digest"],
        data["seconds"],
        Schema(tuple(tuple(r) for r in schema["rows"]), tuple(schema["tracking"]))
        if schema
        else None,
        data["note"],
    )


def store_cached(cache: Path, db: Database, verdict: Verdict) -> None:
    """Keep a verdict and its schema for later runs."""
    cache.mkdir(parents=True, exist_ok=True)
    data = asdict(verdict)
    data["files_digest"] = _files_digest(db)
    _cache_file(cache, db).write_text(json.dumps(data))


def _files_digest(db: Database) -> str:
    h = hashlib.sha256()
    for name in db.migration_names():
        h.update(name.encode() + b"\0" + (db.migrations_dir / name).read_bytes())
    h.update((db.pattern or "").encode())
    return h.hexdigest()


# -- manifest ------------------------------------------------------------------------------


def load_manifest() -> dict[str, dict[str, object]]:
    """The manifest's entries by database key."""
    if not MANIFEST.is_file():
        return {}
    return {e["key"]: e for e in json.loads(MANIFEST.read_text())["histories"]}


def cached_verdict(entry: dict[str, object]) -> Verdict:
    """workerd's verdict as the manifest records it (no schema rows: only their digest)."""
    data = entry["workerd"]
    assert isinstance(data, dict)
    return Verdict(
        int(data["applied"]),
        data["failed"],
        str(data["error"]),
        data.get("schema_digest"),
        float(data.get("seconds", 0.0)),
        None,
        str(data.get("note", "")),
    )


def manifest_entry(db: Database, verdict: Verdict, source: dict[str, object]) -> dict[str, object]:
    """Metadata only: where the history comes from and workerd's verdict (no SQL)."""
    return {
        "key": db.key,
        "repo": source.get("repo"),
        "commit": source.get("commit"),
        "config_path": source.get("config_repo_path", str(db.config.relative_to(db.root))),
        "config_renamed_to": source.get("config") if source.get("renamed") else None,
        "migrations_path": _repo_migrations_path(db, source),
        "binding": db.binding,
        "migrations": len(db.migration_names()),
        "workerd": {
            "builds": verdict.builds,
            "applied": verdict.applied,
            "failed": verdict.failed,
            "error": verdict.error,
            "schema_digest": verdict.schema_digest,
            "seconds": round(verdict.seconds, 1),
            "note": verdict.note,
        },
    }


def _repo_migrations_path(db: Database, source: dict[str, object]) -> str:
    local = str(db.migrations_dir.relative_to(db.root.resolve()))
    for entry in source.get("migrations", []) or []:
        if isinstance(entry, dict) and entry.get("local") == local:
            return str(entry["repo_path"])
    return local


def _source(history: Path) -> dict[str, object]:
    meta = history / ".corpus.json"
    return json.loads(meta.read_text()) if meta.is_file() else {}


# -- output --------------------------------------------------------------------------------


def _verdict_text(verdict: Verdict) -> str:
    if verdict.builds:
        return f"builds ({verdict.applied})"
    return f"fails at {verdict.failed}: {verdict.error[:60]}"


def _run_text(run: Run) -> str:
    if run.usage_error:
        return f"usage error: {run.usage_error[:60]}"
    if run.collected_nothing:
        return "no items"
    c = run.counts
    return f"{c.get('passed', 0)}p {c.get('failed', 0)}f {c.get('skipped', 0)}s"


def print_table(results: Sequence[Comparison]) -> None:
    """A table of every database and the totals."""
    width = max([len(r.database) for r in results] + [8])
    print(f"{'database':<{width}} files  {'workerd':<40} {'d1check':<14} agree facts local")
    for r in results:
        print(
            f"{r.database:<{width}} {r.files:>5}  {_verdict_text(r.verdict)[:40]:<40} "
            f"{_run_text(r.run)[:14]:<14} {'yes' if r.agrees else 'NO':<5} "
            f"{'yes' if r.facts_agree else 'NO':<5} {r.local}"
        )
    print()
    for r in results:
        for f in facts_failures(r.run) if not r.facts_agree else []:
            print(f"  {r.database}: {f.item}: {f.message[:160]}")
        for note in r.notes:
            print(f"  {r.database}: local: {note}")
    builds = sum(r.verdict.builds for r in results)
    print(
        f"\n{len(results)} databases; workerd builds {builds}, fails {len(results) - builds}; "
        f"d1check green {sum(r.run.green for r in results)}; "
        f"agree {sum(r.agrees for r in results)}; facts agree {sum(r.facts_agree for r in results)}"
    )


def _as_json(results: Sequence[Comparison]) -> str:
    out = []
    for r in results:
        data = asdict(r)
        data["verdict"].pop("schema", None)
        data["verdict"]["builds"] = r.verdict.builds
        data["run"]["green"] = r.run.green
        out.append(data)
    return json.dumps(out, indent=1, default=str)


# -- main ----------------------------------------------------------------------------------


def _wrangler() -> Path | None:
    configured = os.environ.get("D1CHECK_WRANGLER")
    return Path(configured) if configured and Path(configured).is_file() else None


def run_corpus(args: argparse.Namespace) -> list[Comparison]:
    """Every database of every history, compared."""
    only = tuple(filter(None, args.only.split(","))) if args.only else ()
    baseline = None
    if args.baseline:
        baseline = "baseline" if has_baseline_command() else "hash"
        print(f"baseline written with `d1check {baseline}`", file=sys.stderr)
    wrangler = None if args.cached else _wrangler()
    if wrangler is None and not args.cached:
        raise SystemExit("D1CHECK_WRANGLER is not set: set it, or use --cached")
    manifest = load_manifest()
    results, entries = [], []
    for history in histories(args.corpus, only):
        with tempfile.TemporaryDirectory(prefix="d1rw-") as tmp:
            scratch = Path(tmp)
            run = d1check_run(history, scratch / "d1check", baseline)
            for i, db in enumerate(databases_of(history)):
                cached = load_cached(args.cache, db) if not args.recompute else None
                if cached is not None:
                    verdict = cached
                elif wrangler is not None:
                    verdict = workerd_verdict(db, wrangler, scratch / f"workerd-{i}")
                    store_cached(args.cache, db, verdict)
                elif db.key in manifest:
                    verdict = cached_verdict(manifest[db.key])
                else:
                    print(f"{db.key}: not in the manifest, skipped", file=sys.stderr)
                    continue
                result = compare(db, verdict, run, scratch / f"local-{i}", baseline, args.apply)
                results.append(result)
                entries.append(manifest_entry(db, verdict, _source(history)))
                print(f"{db.key}: {_verdict_text(verdict)[:70]}", file=sys.stderr)
    if args.write_manifest:
        MANIFEST.write_text(json.dumps({"histories": entries}, indent=1) + "\n")
    return results


def main(argv: Sequence[str] | None = None) -> int:
    """Run the corpus and print the table (or JSON)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("corpus", type=Path)
    parser.add_argument("--baseline", action="store_true", help="record shipped migrations first")
    parser.add_argument("--json", action="store_true", help="print JSON instead of the table")
    parser.add_argument("--only", default="", help="comma-separated history folder names")
    parser.add_argument("--cached", action="store_true", help="workerd verdicts from the manifest")
    parser.add_argument("--write-manifest", action="store_true", help="rewrite the manifest")
    parser.add_argument("--no-apply", dest="apply", action="store_false", help="skip --apply")
    parser.add_argument(
        "--cache",
        type=Path,
        default=None,
        help="where workerd's verdicts and schemas are kept (default: CORPUS/.workerd)",
    )
    parser.add_argument("--recompute", action="store_true", help="ignore the verdict cache")
    args = parser.parse_args(argv)
    args.cache = args.cache or args.corpus / ".workerd"
    results = run_corpus(args)
    if args.json:
        print(_as_json(results))
    else:
        print_table(results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
