"""The pytest plugin: options, collection of the migration checks as items, the `--apply` gate."""

from __future__ import annotations

import functools
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from d1check import session as d1session
from d1check.background import MODES
from d1check.checks import CheckResult
from d1check.config import Config
from d1check.engine import engine_description
from d1check.errors import D1CheckError
from d1check.fixtures import d1_db, d1_migrator
from d1check.rows import SEED_FIX, Coverage
from d1check.targets import resolve_targets
from d1check.testing import d1_emulator

__all__ = ["d1_db", "d1_emulator", "d1_engine", "d1_migrator"]

MARKER = "d1check"
_SESSION = pytest.StashKey[d1session.Session]()
_GATE_OPTIONS = pytest.StashKey[d1session.GateOptions]()


@pytest.fixture(scope="session")
def d1_engine() -> Iterator[Any]:
    """The real D1 engine behind the REST API, one per test session (per xdist worker); the
    container support is imported only when a test asks for it."""
    from d1check.containers import engine_for_session

    yield from engine_for_session()


class D1CheckWarning(UserWarning):
    """A check passed with something worth knowing (a file too large for one remote request)."""


def pytest_addoption(parser: pytest.Parser) -> None:
    """The d1check options, all in one group."""
    group = parser.getgroup("d1check", "D1 migration checks (d1check)")
    group.addoption(
        "--apply",
        metavar="TARGET",
        default=None,
        help="after the whole session passes, apply pending migrations to TARGET: local, "
        "staging, production, a client id or an environment name (default: apply nothing)",
    )
    group.addoption("--yes", action="store_true", help="confirm --apply without a prompt (CI)")
    group.addoption(
        "--dry-run", action="store_true", help="with --apply: print the plan, change nothing"
    )
    group.addoption(
        "--backup-dir", metavar="DIR", default=None, help="export each target here first"
    )
    group.addoption(
        "--d1check-report", metavar="FILE", default=None, help="write the apply summary as JSON"
    )
    group.addoption(
        "--concurrency",
        type=int,
        default=8,
        help="with several databases: how many are migrated at once (default 8)",
    )
    group.addoption(
        "--canary",
        type=int,
        default=1,
        help="with several databases: migrate and verify this many first (default 1)",
    )
    group.addoption(
        "--max-failures",
        type=int,
        default=3,
        help="stop starting databases after this many failures (default 3)",
    )
    group.addoption(
        "--resume",
        metavar="RUN",
        default=None,
        help="continue an interrupted rollout from its journal (.d1check/runs/RUN.jsonl)",
    )
    group.addoption(
        "--api-budget",
        metavar="N/S",
        default="1200/300",
        help="never send more than N API requests in any S seconds (default 1200/300; `none`)",
    )
    group.addoption(
        "--d1check-background",
        choices=MODES,
        default="auto",
        help="run the pass over the history in a helper process beside pytest's own work: auto "
        "(with a second CPU and at least 100 migrations to check), on, off (default auto)",
    )


def pytest_configure(config: pytest.Config) -> None:
    """Register the marker, read the project's configuration, add its migrations to collection."""
    config.addinivalue_line("markers", f"{MARKER}: a D1 migration check collected by d1check")
    try:
        cache = config.cache.mkdir("d1check") if getattr(config, "cache", None) else None
        state = d1session.Session.load(Path(str(config.rootpath)), cache_dir=cache)
    except D1CheckError as error:
        raise pytest.UsageError(f"d1check: {error}") from error
    config.stash[_SESSION] = state
    if config.getoption("apply"):
        _check_gate_options(config, state)
    if config.args_source != pytest.Config.ArgsSource.ARGS:
        _add_migration_dirs(config, state.config)


def _check_gate_options(config: pytest.Config, state: d1session.Session) -> None:
    target = config.getoption("apply")
    try:
        config.stash[_GATE_OPTIONS] = d1session.GateOptions.from_pytest(config)
        if target != "local":
            resolve_targets(state.config, target)
    except D1CheckError as error:
        raise pytest.UsageError(f"d1check: --apply={target}: {error}") from error


def _add_migration_dirs(config: pytest.Config, project: Config) -> None:
    covered = [Path(a).resolve() for a in config.args]
    for family in project.families.values():
        path = family.migrations_dir.resolve()
        if path.is_dir() and not any(path == c or c in path.parents for c in covered):
            config.args.append(str(path))


def pytest_report_header(config: pytest.Config) -> list[str]:
    """The engine and the migrations d1check verifies."""
    state = config.stash.get(_SESSION, None)
    if state is None:
        return []
    lines = [f"d1check: {engine_description()}"]
    for family in state.config.families.values():
        rel = _relative(family.migrations_dir, state.config.root)
        lines.append(
            f"d1check: family {family.name}: {rel} (tracking table {family.tracking_table})"
        )
    target = config.getoption("apply")
    if target:
        lines.append(f"d1check: --apply={target} once the whole session passes")
    return lines


def _relative(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix() or "."
    except ValueError:
        return str(path)


def pytest_collect_directory(path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    """The configured migrations directories become d1check collectors."""
    state = parent.config.stash.get(_SESSION, None)
    if state is None:
        return None
    family = state.family_for_dir(path)
    if family is None:
        return None
    return MigrationsDirectory.from_parent(parent, path=path, family=family)


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    """Each production schema export becomes a `::production` item."""
    state = parent.config.stash.get(_SESSION, None)
    if state is None or not state.is_production_export(file_path):
        return None
    return ExportFile.from_parent(parent, path=file_path)


class MigrationsDirectory(pytest.Directory):
    """A migrations directory: project items, then one file collector per migration."""

    def __init__(self, *, family: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.family = family

    def collect(self) -> Iterator[pytest.Item | pytest.Collector]:
        state = self.config.stash[_SESSION]
        if not hasattr(self.config, "workerinput"):
            state.start_background(self.family, self.config.getoption("d1check_background"))
        for check in ("sequence", "checksums"):
            yield CheckItem.from_parent(
                self, name=check, family=self.family, check=check, migration=None
            )
        for path in state.migration_files(self.family):
            yield MigrationFile.from_parent(self, path=path, family=self.family)


class MigrationFile(pytest.File):
    """One migration file: one item per check."""

    def __init__(self, *, family: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.family = family

    def collect(self) -> Iterator[pytest.Item]:
        for check in d1session.CHECK_NAMES:
            yield CheckItem.from_parent(
                self, name=check, family=self.family, check=check, migration=self.path.name
            )


class ExportFile(pytest.File):
    """A production schema export: one `::production` item."""

    def collect(self) -> Iterator[pytest.Item]:
        yield CheckItem.from_parent(
            self, name="production", family="", check="production", migration=None
        )


class CheckFailed(Exception):
    """An expected check failure: reported as its message, without a traceback."""


@functools.cache
def _mark() -> pytest.Mark:
    """The `d1check` mark, built once (after the marker is registered) for every item."""
    decorator: pytest.MarkDecorator = getattr(pytest.mark, MARKER)
    return decorator.mark


class CheckItem(pytest.Item):
    """One d1check check of one migration (or of the project)."""

    def __init__(self, *, family: str, check: str, migration: str | None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.family = family
        self.check = check
        self.migration = migration
        mark = _mark()
        self.keywords[MARKER] = mark
        self.own_markers.append(mark)

    def _result(self) -> CheckResult:
        state = self.config.stash[_SESSION]
        if self.check == "production":
            return state.production_result(self.path)
        if self.migration is None:
            return state.project_result(self.family, self.check)
        return state.migration_result(self.family, self.migration, self.check)

    def runtest(self) -> None:
        result = self._result()
        if result.coverage is not None:
            self.user_properties.append((_DATA, _coverage_record(self, result.coverage)))
        for warning in result.warnings:
            warnings.warn(D1CheckWarning(warning), stacklevel=1)
        if result.outcome == "skipped":
            raise pytest.skip.Exception(result.message, _use_item_location=True)
        if result.failed:
            raise CheckFailed(result.message)

    def repr_failure(
        self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None
    ) -> str | Any:
        if isinstance(excinfo.value, CheckFailed | D1CheckError):
            return f"d1check {self.check}: {excinfo.value}"
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"{self.path.stem}::{self.name}"


_GATE_LINES = pytest.StashKey[list[str]]()


def pytest_collection_finish(session: pytest.Session) -> None:
    """Stop the helper processes no selected item needs (all of them under --collect-only)."""
    state = session.config.stash.get(_SESSION, None)
    if state is None:
        return
    needed = set() if session.config.option.collectonly else families_in(session.items, state)
    state.stop_background(keep=needed)


def families_in(items: Iterable[pytest.Item], state: d1session.Session) -> set[str]:
    """The families whose pass the d1check items among `items` read."""
    families = set()
    for item in items:
        if not isinstance(item, CheckItem):
            continue
        if item.check == "production":
            families.add(state.config.default_family.name)
        elif item.migration is not None:
            families.add(item.family)
    return families


def pytest_unconfigure(config: pytest.Config) -> None:
    """Stop the helper processes that still run."""
    state = config.stash.get(_SESSION, None)
    if state is not None:
        state.stop_background()


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """The gate: with --apply, apply pending migrations only if the whole session passed."""
    config = session.config
    target = config.getoption("apply")
    if not target or hasattr(config, "workerinput"):
        return
    state = config.stash.get(_SESSION, None)
    if state is None:
        return
    lines: list[str] = []
    config.stash[_GATE_LINES] = lines
    outcome = d1session.run_gate(
        state,
        target=target,
        suite_passed=exitstatus == 0 and session.testsfailed == 0,
        failed_count=session.testsfailed,
        options=config.stash[_GATE_OPTIONS],
        write=lines.append,
    )
    if not outcome:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


_DATA = "d1check data"


def _coverage_record(item: CheckItem, coverage: Coverage) -> dict[str, Any]:
    """What the `d1check data` section needs of one migration's coverage (plain values, so that
    pytest-xdist carries it from a worker)."""
    return {
        "family": item.family,
        "migration": item.migration,
        "filled": coverage.filled,
        "total": coverage.total,
        "empty": [list(pair) for pair in coverage.empty],
    }


def _data_section(terminalreporter: Any, config: pytest.Config) -> None:
    """How many tables held rows before the last migration checked, and every table that stayed
    empty before some migration (its data checks did not run), with the reason and the fix."""
    records = [
        value
        for reports in terminalreporter.stats.values()
        for report in reports
        if getattr(report, "when", None) == "call"
        for name, value in getattr(report, "user_properties", ())
        if name == _DATA
    ]
    state = config.stash.get(_SESSION, None)
    if not records or state is None:
        return
    terminalreporter.section(_DATA, sep="-")
    for family in sorted({r["family"] for r in records}):
        for line in _family_data_lines(
            state, family, [r for r in records if r["family"] == family]
        ):
            terminalreporter.write_line(line)


def _family_data_lines(
    state: d1session.Session, family: str, records: list[dict[str, Any]]
) -> list[str]:
    order = {path.name: k for k, path in enumerate(state.migration_files(family))}
    records = sorted(records, key=lambda r: order.get(r["migration"], len(order)))
    last = records[-1]
    lines = [
        f"family {family}: {last['filled']} of {last['total']} tables held rows (synthesized "
        f"where empty) before {last['migration']}, the last migration checked"
    ]
    first_empty: dict[tuple[str, str], str] = {}
    for record in records:
        for table, reason in record["empty"]:
            first_empty.setdefault((table, reason), record["migration"])
    if first_empty:
        lines.append(f"tables that stayed empty ({len(first_empty)}; their rows were not checked):")
    for (table, reason), migration in first_empty.items():
        lines.append(f"  {table}: empty before {migration}: {reason}")
        lines.append(f"    fix: {SEED_FIX}")
    return lines


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    """How many tables held rows, and what the gate did, each in a section of its own."""
    _data_section(terminalreporter, config)
    lines = config.stash.get(_GATE_LINES, [])
    if lines:
        terminalreporter.section(f"d1check --apply={config.getoption('apply')}", sep="-")
        for line in lines:
            terminalreporter.write_line(line)
