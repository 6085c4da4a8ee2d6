"""One verification session of a project: its configuration, one history per family, the gate.

This is the plain-Python layer under the pytest plugin and the CLI: nothing here imports pytest.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from d1check.background import Background, worth_a_helper
from d1check.cache import ResultCache, chain
from d1check.checks import CHECK_NAMES, CheckResult, Policy, failed, passed, skipped
from d1check.config import Config, Family, load_config
from d1check.discovery import (
    Migration,
    MigrationSet,
    check_inside,
    discover,
    migration_paths,
    repository_root,
)
from d1check.errors import D1CheckError, MigrationFileError
from d1check.export import read_export
from d1check.fleet import FleetOptions
from d1check.history import History, replay
from d1check.local import apply_local, plan_local
from d1check.plan import git_commit
from d1check.project import check_checksums, check_sequence
from d1check.remote import parse_budget
from d1check.schema import diff_schemas, format_diff, read_schema
from d1check.segments import Segments, found_in_cache
from d1check.targets import PRODUCTION, resolve_targets

__all__ = [
    "CHECK_NAMES",
    "PROJECT_CHECKS",
    "GateCheck",
    "GateOptions",
    "GateScope",
    "Session",
    "gate_checks",
    "gate_scope",
    "run_gate",
]

Write = Callable[[str], None]

PROJECT_CHECKS = ("sequence", "checksums")
"""The project-level checks of a family, items on its migrations directory."""


def policy_for(config: Config, family: Family, migrations: MigrationSet | None = None) -> Policy:
    """The check policy of one family (with its migrations: whether policy failures should say
    how to adopt d1check on an existing history)."""
    return Policy(
        require_rollbacks=config.require_rollbacks,
        check_idempotency=config.check_idempotency,
        allow_destructive=config.allow_destructive,
        tracking_table=family.tracking_table,
        suggest_baseline=migrations is not None and looks_unbaselined(migrations),
    )


def looks_unbaselined(migrations: MigrationSet) -> bool:
    """An existing history that has no baseline yet: nothing recorded as shipped, and several
    migrations without rollbacks."""
    if any(m.shipped for m in migrations.migrations):
        return False
    return sum(m.rollback is None for m in migrations.migrations) >= 2


class Session:
    """The project under verification: migrations per family, computed once, on first need."""

    def __init__(
        self, config: Config, cache_dir: Path | None = None, *, segment_size: int | None = None
    ) -> None:
        self.config = config
        self.segment_size = segment_size
        self.cache = ResultCache(cache_dir) if cache_dir is not None else None
        self._sets: dict[str, MigrationSet | MigrationFileError] = {}
        self._histories: dict[str, History] = {}
        self._computed: dict[str, dict[str, dict[str, CheckResult]]] = {}
        self._prints: dict[str, list[str]] = {}
        self._files: dict[str, dict[str, Migration]] = {}
        self._positions: dict[str, dict[str, int]] = {}
        self._segments: dict[str, Segments] = {}
        self._helpers: dict[str, Background] = {}

    @classmethod
    def load(
        cls, root: Path, cache_dir: Path | None = None, *, segment_size: int | None = None
    ) -> Session:
        """Read the configuration of the project at `root` (ConfigError on bad configuration).

        With `cache_dir`, results and checkpoint states are kept there between runs; missing
        results are computed in segments of `segment_size` migrations (default: `segment_bounds`).
        """
        return cls(load_config(root), cache_dir, segment_size=segment_size)

    def family_for_dir(self, path: Path) -> str | None:
        """The family whose migrations directory is `path`, if any."""
        resolved = path.resolve()
        for family in self.config.families.values():
            if family.migrations_dir.resolve() == resolved:
                return family.name
        return None

    def migration_files(self, family: str) -> list[Path]:
        """The migration files of a family's migrations directory, in wrangler's order (its
        `*.sql` files, or those its `migrations_pattern` matches)."""
        fam = self.config.family(family)
        return [path for path, _ in migration_paths(fam.migrations_dir, fam.migrations_pattern)]

    def migrations(self, family: str) -> MigrationSet | MigrationFileError:
        """The family's migrations, or the error that stops them from being read."""
        if family not in self._sets:
            fam = self.config.family(family)
            try:
                found = discover(
                    _near(fam.migrations_dir), _near(fam.rollbacks_dir), fam.migrations_pattern
                )
                check_inside(found, repository_root(self.config.root))
                self._sets[family] = found
            except MigrationFileError as error:
                self._sets[family] = error
        return self._sets[family]

    def history(self, family: str) -> History | MigrationFileError:
        """The one pass over the family's history (created on first need)."""
        migrations = self.migrations(family)
        if isinstance(migrations, MigrationFileError):
            return migrations
        if family not in self._histories:
            fam = self.config.family(family)
            self._histories[family] = History(
                migrations,
                policy_for(self.config, fam, migrations),
                seed_files=self.config.seed_paths(),
            )
        return self._histories[family]

    def migration_result(self, family: str, file_name: str, check: str) -> CheckResult:
        """The result of `check` on the migration file `file_name`."""
        history = self.history(family)
        if isinstance(history, MigrationFileError):
            return _unreadable(check, history, file_name)
        migration = self._by_file(family, history).get(file_name)
        if migration is None:
            return failed(check, f"{file_name}: not found in {history.migrations.migrations_dir}")
        if self.cache is None:
            return history.results(migration)[check]
        if family in self._helpers and family not in self._computed:
            position = self._positions[family][file_name]
            return self._segments_of(family, history).wait_for(position)[0][check]
        return self._cached_results(family, history)[migration.name][check]

    def compute(self, family: str) -> None:
        """Run every check of `family` now (keeping the results in the cache, if there is one)."""
        history = self.history(family)
        if isinstance(history, MigrationFileError):
            return
        if self.cache is None:
            history.run_all()
        else:
            self._cached_results(family, history)

    def start_background(self, family: str, mode: str = "auto") -> bool:
        """Start a helper process that computes `family`'s missing results into the cache
        (`d1check.background`), so that the pass runs beside the caller's own work; results are
        then read segment by segment as they are stored. `mode`: `auto` (a helper when there is
        a second CPU and a long history to compute), `on`, `off`. True when one started."""
        if self.cache is None or family in self._helpers:
            return False
        history = self.history(family)
        if isinstance(history, MigrationFileError):
            return False
        missing = self._segments_of(family, history).missing_count()
        if not worth_a_helper(mode, missing):
            return False
        try:
            self._helpers[family] = Background.start(self.config.root, self.cache.directory, family)
        except OSError:
            return False  # no helper: the items compute the results themselves
        return True

    def stop_background(self, keep: Collection[str] = ()) -> None:
        """Stop the helper processes that still run, but those of the families in `keep` (what
        they finished stays in the cache)."""
        for family, helper in self._helpers.items():
            if family not in keep:
                helper.stop()

    def _by_file(self, family: str, history: History) -> dict[str, Migration]:
        if family not in self._files:
            migrations = history.migrations.migrations
            self._files[family] = {m.file_name: m for m in migrations}
            self._positions[family] = {m.file_name: i for i, m in enumerate(migrations)}
        return self._files[family]

    def _cached_results(self, family: str, history: History) -> dict[str, dict[str, CheckResult]]:
        if family not in self._computed:
            self._computed[family], self._prints[family] = self._compute_with_cache(family, history)
        return self._computed[family]

    def _segments_of(self, family: str, history: History) -> Segments:
        """The family's results as kept in the cache so far, and the means to compute the rest."""
        if family not in self._segments:
            assert self.cache is not None
            keys = chain(
                history.policy,
                history.seed_files,
                history.migrations.migrations,
                history.migrations.migrations_dir,
            )
            found = found_in_cache(self.cache, keys)
            self._segments[family] = Segments(self.cache, history, keys, found, self.segment_size)
        return self._segments[family]

    def _compute_with_cache(
        self, family: str, history: History
    ) -> tuple[dict[str, dict[str, CheckResult]], list[str]]:
        assert self.cache is not None
        segments = self._segments_of(family, history)
        keys, found = segments.keys, segments.found
        if segments.missing_count():
            segments.compute()
        complete = [f for f in found if f is not None]
        if keys and len(complete) == len(keys) and not self.cache.has_summary(keys[-1]):
            self.cache.store_summary(keys[-1], complete)
        migrations = history.migrations.migrations
        results = {m.name: f[0] for m, f in zip(migrations, found, strict=True) if f is not None}
        prints = [f[1] for f in found if f is not None]
        return results, prints

    def project_result(self, family: str, check: str) -> CheckResult:
        """The result of a project-level check (`sequence`, `checksums`)."""
        migrations = self.migrations(family)
        if isinstance(migrations, MigrationFileError):
            return failed(check, str(migrations))
        if check == "sequence":
            return check_sequence(migrations)
        return check_checksums(migrations)

    def is_production_export(self, path: Path) -> bool:
        """True for a file named by `production_schema`."""
        try:
            exports = self.config.production_schema_paths()
        except D1CheckError:
            return False
        return path.resolve() in {p.resolve() for p in exports}

    def production_result(self, path: Path) -> CheckResult:
        """Does the export equal the schema at some version? Which migrations are pending?"""
        family = self.config.default_family.name
        history = self.history(family)
        if isinstance(history, MigrationFileError):
            return failed("production", str(history))
        try:
            export = read_export(path)
        except D1CheckError as error:
            return failed("production", str(error))
        if self.cache is None:
            history.run_all()
            prints = history.fingerprints
        else:
            self._cached_results(family, history)
            prints = self._prints[family]
        names = [m.name for m in history.migrations.migrations]
        wanted = export.schema.fingerprint()
        if wanted in prints:
            k = len(prints) - 1 - prints[::-1].index(wanted)
            pending = names[k + 1 :]
            text = f"{path.name} matches {names[k]}"
            text += f"; pending: {', '.join(pending)}" if pending else "; nothing pending"
            return passed("production", text)
        return failed("production", _drift_message(path, export.applied, history))


def _near(path: Path) -> Path:
    """`path` relative to the working directory when it lies below it (for readable messages)."""
    try:
        return path.resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        return path


def _unreadable(check: str, error: MigrationFileError, file_name: str) -> CheckResult:
    if error.path.name == file_name:
        return failed(check, str(error))
    return skipped(check, f"cannot verify the history: {error.path.name} cannot be read")


def _drift_message(path: Path, applied: tuple[str, ...] | None, history: History) -> str:
    migrations = history.migrations.migrations
    names = [m.name for m in migrations]
    upto = len(migrations)
    if applied:
        last = applied[-1].removesuffix(".sql")
        upto = names.index(last) + 1 if last in names else upto
    db = replay(migrations[:upto], tracking_table=history.policy.tracking_table)
    expected = read_schema(db, ignore=history.ignore)
    db.close()
    export = read_export(path)
    version = names[upto - 1] if upto else "the empty database"
    return (
        f"{path}: the production schema matches no version of the history; compared with "
        f"{version} (expected → production):\n"
        + format_diff(diff_schemas(expected, export.schema))
        + "\nfix: someone changed production by hand; write a migration that makes the change, "
        "or revert it in production"
    )


@dataclass(frozen=True)
class GateOptions:
    """How `--apply` runs: confirmation, dry run, backups, report, API budget."""

    yes: bool = False
    dry_run: bool = False
    backup_dir: Path | None = None
    report: Path | None = None
    api_budget: str = "1200/300"
    fleet: FleetOptions | None = None

    @classmethod
    def from_pytest(cls, config: Any) -> GateOptions:
        """Read (and check) the options from a pytest config; ConfigError on a bad value."""
        backup = config.getoption("backup_dir")
        report = config.getoption("d1check_report")
        budget = str(config.getoption("api_budget"))
        parse_budget(budget)
        return cls(
            yes=bool(config.getoption("yes")),
            dry_run=bool(config.getoption("dry_run")),
            backup_dir=Path(backup) if backup else None,
            report=Path(report) if report else None,
            api_budget=budget,
            fleet=FleetOptions(
                concurrency=int(config.getoption("concurrency")),
                canary=int(config.getoption("canary")),
                max_failures=int(config.getoption("max_failures")),
                resume=config.getoption("resume"),
            ),
        )

    def for_targets(self, count: int) -> GateOptions:
        """A fleet rollout for several databases (or a resumed run); one database at a time
        through the plain gate otherwise."""
        if self.fleet is not None and (count > 1 or self.fleet.resume):
            return self
        return replace(self, fleet=None)


@dataclass(frozen=True)
class GateCheck:
    """One check the gate needs to pass: the id of its item (`migrations/0003_x.sql::destructive`,
    relative to the root the ids are given from) and its result."""

    item_id: str
    result: CheckResult


@dataclass(frozen=True)
class GateScope:
    """What `--apply=TARGET` is about to apply: migration files per family (wrangler's order),
    and whether production databases are among the targets."""

    files: dict[str, list[str]]
    production: bool


def gate_scope(state: Session, target: str) -> GateScope:
    """For `local`, the migrations pending in each family's local database (every migration of
    a family whose local database cannot be read); for a remote target, every migration of the
    families of its databases (what is pending there is known only once the databases are read;
    checks of applied migrations are cached and cheap). ConfigError for an unknown target."""
    if target == "local":
        families = {name: _pending_files(state, name) for name in state.config.families}
        return GateScope(families, production=False)
    resolution = resolve_targets(state.config, target)
    names = dict.fromkeys(t.family for t in resolution.targets)
    files = {name: [p.name for p in state.migration_files(name)] for name in names}
    production = any(t.environment == PRODUCTION for t in resolution.targets)
    return GateScope(files, production)


def _pending_files(state: Session, family: str) -> list[str]:
    try:
        plan = plan_local(state.config, state.config.family(family))
    except D1CheckError:
        return [p.name for p in state.migration_files(family)]
    return [m.file_name for m in plan.pending]


def gate_checks(state: Session, target: str, rootdir: Path) -> list[GateCheck]:
    """Every check `--apply=target` needs to pass, computed here whatever a test run selected:
    each check of each migration in `gate_scope`, the project checks (`sequence`, `checksums`)
    of those families, and for production the `::production` check of each export. Item ids are
    relative to `rootdir`. ConfigError for an unknown target or a bad `production_schema`."""
    scope = gate_scope(state, target)
    checks: list[GateCheck] = []
    for family, files in scope.files.items():
        directory = state.config.family(family).migrations_dir
        for check in PROJECT_CHECKS:
            result = state.project_result(family, check)
            checks.append(GateCheck(f"{_node_path(directory, rootdir)}::{check}", result))
        for name in files:
            node = _node_path(directory / name, rootdir)
            for check in CHECK_NAMES:
                result = state.migration_result(family, name, check)
                checks.append(GateCheck(f"{node}::{check}", result))
    if scope.production:
        for path in state.config.production_schema_paths():
            result = state.production_result(path)
            checks.append(GateCheck(f"{_node_path(path, rootdir)}::production", result))
    return checks


def _node_path(path: Path, rootdir: Path) -> str:
    """`path` as pytest writes it in an item id: relative to the rootdir, with `/`."""
    try:
        return path.resolve().relative_to(rootdir.resolve()).as_posix()
    except ValueError:
        return path.as_posix()


def run_gate(
    state: Session,
    *,
    target: str,
    suite_passed: bool,
    failed_count: int,
    options: GateOptions,
    write: Write,
    ran: Collection[str] = (),
    rootdir: Path | None = None,
) -> bool:
    """Apply pending migrations to `target` if the suite passed and every check the apply needs
    passed (`gate_checks`, item ids relative to `rootdir`, default the project root; those not
    among the item ids in `ran` are reported as checked beyond the selection); False when
    anything failed."""
    if not suite_passed:
        write(
            f"d1check: the session did not pass ({failed_count} failed): nothing applied to "
            f"{target}"
        )
        return False
    if not _gate_checks_pass(state, target, ran, rootdir or state.config.root, write):
        return False
    if target == "local":
        return _apply_local(state, options, write)
    from d1check.gate import apply_remote

    try:
        count = len(resolve_targets(state.config, target).targets)
    except D1CheckError as error:
        write(f"d1check: apply to {target} refused: {error}")
        return False
    return apply_remote(
        state.config, target=target, options=options.for_targets(count), write=write
    )


def _gate_checks_pass(
    state: Session, target: str, ran: Collection[str], rootdir: Path, write: Write
) -> bool:
    try:
        checks = gate_checks(state, target, rootdir)
    except D1CheckError as error:
        write(f"d1check: apply to {target} refused: {error}")
        return False
    failures = [c for c in checks if c.result.failed]
    if failures:
        _report_failed_checks(target, failures, write)
        return False
    done = set(ran)
    beyond = sum(1 for c in checks if c.item_id not in done)
    if beyond:
        write(f"d1check: checked {beyond} items beyond the selection (-k/-m/paths): all passed")
    return True


def _report_failed_checks(target: str, failures: list[GateCheck], write: Write) -> None:
    write(
        f"d1check: {len(failures)} check(s) that --apply={target} needs failed: nothing "
        f"applied to {target}"
    )
    for check in failures:
        write(f"  {check.item_id}: {_first_line(check)}")
    write(
        "fix: run `pytest` on the whole project to see each failure in full; the apply needs "
        "every check of the migrations it applies to pass"
    )


def _first_line(check: GateCheck) -> str:
    """The first line of the check's message, without the file name the item id already says."""
    lines = check.result.message.splitlines()
    first = lines[0] if lines else "failed"
    head, sep, rest = first.partition(": ")
    item_file = check.item_id.partition("::")[0]
    if sep and rest and Path(head).name == Path(item_file).name:
        return rest
    return first


def _shown(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path)


def _apply_local(state: Session, options: GateOptions, write: Write) -> bool:
    config = state.config
    try:
        if options.dry_run:
            for family in config.families.values():
                plan = plan_local(config, family)
                pending = ", ".join(m.name for m in plan.pending) or "nothing"
                where = _shown(plan.path, config.root)
                write(f"d1check: dry run: local {family.name} ({where}): would apply {pending}")
            return True
        results = apply_local(config, git_commit=git_commit(config.root))
    except D1CheckError as error:
        write(f"d1check: apply to local failed: {error}")
        return False
    for result in results:
        rel = _shown(result.path, config.root)
        if result.applied_now:
            write(
                f"d1check: local {result.family} ({rel}): applied {len(result.applied_now)} "
                f"migration(s): {', '.join(result.applied_now)} ({result.seconds:.2f}s)"
            )
        else:
            count = len(result.applied_before)
            write(f"d1check: local {result.family} ({rel}): up to date ({count} applied)")
    return True
