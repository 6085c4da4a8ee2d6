"""The pytest side of a project with D1 migrations: its configuration, the migration checks as
items, the `--apply` gate and the terminal sections. `d1check.plugin` registers this module as a
plugin only where there is something to check."""

from __future__ import annotations

import functools
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from d1check import session as d1session
from d1check.checks import CheckResult
from d1check.config import Config, load_config
from d1check.engine import engine_description
from d1check.errors import D1CheckError
from d1check.gate import require_credentials
from d1check.interrupts import Interrupted
from d1check.remote import check_token_env
from d1check.rows import SEED_FIX, Coverage
from d1check.targets import resolve_targets, target_names

MARKER = "d1check"
_SESSION = pytest.StashKey[d1session.Session]()
NOTES_PLUGIN = "d1check-notes"
_GATE_OPTIONS = pytest.StashKey[d1session.GateOptions]()
_NO_RUN_OPTIONS = {
    "collectonly": "--collect-only",
    "setupplan": "--setup-plan",
    "setuponly": "--setup-only",
}


class D1CheckWarning(UserWarning):
    """A check passed with something worth knowing (a file too large for one remote request)."""


def pytest_configure(config: pytest.Config) -> None:
    """Read the project's configuration and add its migrations to collection."""
    try:
        cache = config.cache.mkdir("d1check") if getattr(config, "cache", None) else None
        project = load_config(
            Path(str(config.rootpath)), norecursedirs=config.getini("norecursedirs")
        )
        state = d1session.Session(project, cache_dir=cache)
    except D1CheckError as error:
        raise pytest.UsageError(f"d1check: {error}") from error
    config.stash[_SESSION] = state
    config.pluginmanager.register(Notes(), NOTES_PLUGIN)
    _configure_gate(config, state)
    if config.args_source != pytest.Config.ArgsSource.ARGS:
        _add_migration_dirs(config, state.config)


def _configure_gate(config: pytest.Config, state: d1session.Session) -> None:
    """With --apply: check its options now, and (in the process that applies, not an xdist
    worker) record which items the selection runs."""
    if config.getoption("apply") is None:
        return
    _check_gate_options(config, state)
    if not hasattr(config, "workerinput"):
        config.stash[_RAN] = RanItems()
        config.pluginmanager.register(config.stash[_RAN], "d1check-ran-items")


def _check_gate_options(config: pytest.Config, state: d1session.Session) -> None:
    """Refuse, before anything runs, an `--apply` that cannot work: no target, an option under
    which no test runs, an unknown target, missing credentials for a remote one."""
    target = str(config.getoption("apply"))
    if not target.strip():
        raise pytest.UsageError(
            "d1check: --apply needs a target, one of: "
            f"{', '.join(target_names(state.config))} (leave --apply out to apply nothing)"
        )
    for dest, flag in _NO_RUN_OPTIONS.items():
        if getattr(config.option, dest, False):
            raise pytest.UsageError(
                f"d1check: --apply={target} with {flag}: no test runs, so nothing can pass "
                f"before the apply; drop {flag} to run the suite and apply, or drop --apply"
            )
    try:
        config.stash[_GATE_OPTIONS] = d1session.GateOptions.from_pytest(config)
        if target != "local":
            check_token_env()
            require_credentials(state.config, resolve_targets(state.config, target).targets)
    except D1CheckError as error:
        raise pytest.UsageError(f"d1check: --apply={target}: {error}") from error


class RanItems:
    """The ids of the items reported in this session (by this process or, under xdist, by its
    workers): what the selection ran."""

    def __init__(self) -> None:
        self.ids: set[str] = set()

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Remember the item of every report."""
        self.ids.add(report.nodeid)


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
    lines += _wrangler_lines(state.config)
    for family in state.config.families.values():
        rel = _relative(family.migrations_dir, state.config.root)
        if family.migrations_pattern is not None:
            rel += f" (migrations_pattern {family.migrations_pattern})"
        lines.append(
            f"d1check: family {family.name}: {rel} (tracking table {family.tracking_table})"
        )
    target = config.getoption("apply")
    if target:
        lines.append(f"d1check: --apply={target} once the whole session passes")
    return lines


def _wrangler_lines(project: Config) -> list[str]:
    """The wrangler configs read, where they were found, and the files wrangler ignores."""
    lines = []
    below = " (found in a subfolder: the root has none)" if project.found_below else ""
    for wrangler in project.wranglers:
        ignored = ", ".join(p.name for p in wrangler.ignored)
        note = f"; {ignored} ignored: wrangler reads {wrangler.path.name} first" if ignored else ""
        rel = _relative(wrangler.path, project.root)
        lines.append(f"d1check: wrangler config {rel}{below}{note}")
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
        for check in d1session.PROJECT_CHECKS:
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
        name = self.path.relative_to(self.parent.path).as_posix() if self.parent else self.path.name
        for check in d1session.CHECK_NAMES:
            yield CheckItem.from_parent(
                self, name=check, family=self.family, check=check, migration=name
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
        if result.note:
            self.user_properties.append((NOTE_PROPERTY, result.note))
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
        label = self.migration.removesuffix(".sql") if self.migration else self.path.stem
        return self.path, 0, f"{label}::{self.name}"


_GATE_LINES = pytest.StashKey[list[str]]()
NOTE_PROPERTY = "d1check-note"


class Notes:
    """The notes of passing checks, gathered from the reports (so from xdist workers too)."""

    def __init__(self) -> None:
        self.notes: list[tuple[str, str]] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Keep the notes a check's report carries."""
        if report.when == "call":
            self.notes += [
                (report.nodeid, str(value))
                for name, value in report.user_properties
                if name == NOTE_PROPERTY
            ]


_RAN = pytest.StashKey[RanItems]()


def pytest_collection_finish(session: pytest.Session) -> None:
    """Stop the helper processes no selected item needs (all of them under --collect-only);
    with --apply the gate reads every family's pass."""
    config = session.config
    state = config.stash.get(_SESSION, None)
    if state is None:
        return
    if config.option.collectonly:
        needed: set[str] = set()
    elif config.getoption("apply") is not None:
        needed = set(state.config.families)
    else:
        needed = families_in(session.items, state)
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
    """The gate: with --apply, apply pending migrations only if the selected tests passed and
    every check of what it applies passed, computed here whatever was selected (by the xdist
    controller, not its workers). A selection of no tests fails nothing: then the gate's own
    checks decide, and the session exits 0 once the apply succeeded."""
    config = session.config
    target = config.getoption("apply")
    if target is None or hasattr(config, "workerinput"):
        return
    state = config.stash.get(_SESSION, None)
    if state is None:
        return
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.ensure_newline()  # the rollout's progress starts on a line of its own
    lines: list[str] = []
    config.stash[_GATE_LINES] = lines
    nothing_ran = exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED
    try:
        outcome = d1session.run_gate(
            state,
            target=target,
            suite_passed=(exitstatus == pytest.ExitCode.OK or nothing_ran)
            and not session.testsfailed,
            failed_count=session.testsfailed,
            options=config.stash[_GATE_OPTIONS],
            write=lines.append,
            ran=config.stash[_RAN].ids,
            rootdir=config.rootpath,
        )
    except Interrupted:
        session.exitstatus = pytest.ExitCode.INTERRUPTED
        return
    if not outcome:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    elif nothing_ran:
        session.exitstatus = pytest.ExitCode.OK


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
    """Notes of passing checks, how many tables held rows, and what the gate did, each in a
    section of its own."""
    notes = config.pluginmanager.get_plugin(NOTES_PLUGIN)
    if isinstance(notes, Notes) and notes.notes:
        terminalreporter.section("d1check notes", sep="-")
        for nodeid, note in notes.notes:
            terminalreporter.write_line(f"{nodeid}: {note}")
    _data_section(terminalreporter, config)
    lines = config.stash.get(_GATE_LINES, [])
    if lines:
        terminalreporter.section(f"d1check --apply={config.getoption('apply')}", sep="-")
        for line in lines:
            terminalreporter.write_line(line)
