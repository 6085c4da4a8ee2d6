"""The one pass over a history: each migration applied once, from the state before it, and checked.

The pass holds only the state before the migration being checked (plus copies while checking it)
and keeps, per version, a schema fingerprint: memory does not grow with the number of versions
beyond those small models. Results are computed on first need and kept.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from d1check.checks import (
    Applied,
    CheckResult,
    Policy,
    State,
    apply_in_place,
    needs_previous_database,
    run_checks,
    state_of,
    waiting_results,
)
from d1check.discovery import Migration, MigrationSet, read_sql_file
from d1check.engine import D1Database
from d1check.errors import SQLError
from d1check.rows import coverage_of, synthesize_rows
from d1check.sqlfacts import touched_tables
from d1check.statements import Statement
from d1check.tracking import TrackingStyle, records_itself, tracking_name

Progress = Callable[[int, int, Migration], None]
OnStep = Callable[[int, Migration, dict[str, CheckResult], "History"], None]


@dataclass
class SeedStatements:
    """Statements of the seed files, each run once, at the first version where it succeeds."""

    pending: list[tuple[str, Statement]] = field(default_factory=list)

    @classmethod
    def load(cls, paths: Sequence[Path]) -> SeedStatements:
        """Read the seed files (UTF-8 SQL)."""
        pending = []
        for path in paths:
            file = read_sql_file(path)
            pending += [(str(path), s) for s in file.statements]
        return cls(pending)

    def apply(self, db: D1Database) -> list[Statement]:
        """Run every pending statement that succeeds now (returned); keep the others for later."""
        still, ran = [], []
        for source, statement in self.pending:
            try:
                db.run([statement], source=source)
            except SQLError:
                still.append((source, statement))
            else:
                ran.append(statement)
        self.pending = still
        return ran


def fresh_database(tracking_table: str) -> D1Database:
    """An empty D1 database with wrangler's tracking table, created as wrangler creates it."""
    db = D1Database()
    with db.internal() as conn:
        conn.execute(TrackingStyle(tracking_table).create_sql())
    return db


class History:
    """The verification of one migrations directory, computed in one pass on first need."""

    def __init__(
        self,
        migrations: MigrationSet,
        policy: Policy | None = None,
        *,
        seed_files: Sequence[Path] = (),
        progress: Progress | None = None,
        on_step: OnStep | None = None,
    ) -> None:
        self.migrations = migrations
        self.policy = policy or Policy()
        self.seed_files = tuple(seed_files)
        self.progress = progress
        self.on_step = on_step
        self._results: dict[str, dict[str, CheckResult]] = {}
        self._fingerprints: list[str] = []
        self._position = 0
        self._state: State | None = None
        self._seeds: SeedStatements | None = None
        self._broken: Migration | None = None
        self._seed_index: dict[int, int] = {}
        self._empty: D1Database | None = None
        self._empty_tables: dict[tuple[str, str], str] = {}

    @property
    def ignore(self) -> list[str]:
        """Tables the schema model leaves out (the tracking table)."""
        return [self.policy.tracking_table]

    def results(self, migration: Migration) -> dict[str, CheckResult]:
        """The results of every check on `migration`, advancing the pass up to it if needed."""
        while migration.name not in self._results and self._position < len(
            self.migrations.migrations
        ):
            self._step()
        return self._results[migration.name]

    def run_rest(self) -> None:
        """Check every migration after the current position."""
        while self._position < len(self.migrations.migrations):
            self._step()

    def run_to(self, position: int) -> None:
        """Check every migration up to `position` (a count of migrations from the start)."""
        while self._position < min(position, len(self.migrations.migrations)):
            self._step()

    def replay_to(self, position: int) -> None:
        """Advance to `position` without checking: the state becomes exactly the one the checked
        pass leaves there (the same seed statements and synthesized rows), with no results."""
        while self._position < min(position, len(self.migrations.migrations)):
            self._step(check=False)

    def run_all(self) -> dict[str, dict[str, CheckResult]]:
        """Check every migration; results by migration name."""
        for migration in self.migrations.migrations:
            self.results(migration)
        return dict(self._results)

    @property
    def fingerprints(self) -> list[str]:
        """Schema fingerprints after each migration checked so far (index 0: the first)."""
        return list(self._fingerprints)

    def failed(self) -> bool:
        """True when any check of the pass so far failed."""
        return any(r.failed for results in self._results.values() for r in results.values())

    def _start(self) -> State:
        self._seeds = SeedStatements.load(self.seed_files)
        self._empty = fresh_database(self.policy.tracking_table)
        db = fresh_database(self.policy.tracking_table)
        db.track_changes()
        return state_of(db, self.ignore)

    def _apply_to_empty(self, migration: Migration) -> SQLError | None:
        """Apply `migration` to the database built from empty, as wrangler applies it (with its
        tracking row): the error, if it fails."""
        assert self._empty is not None
        try:
            apply_one(self._empty, migration, TrackingStyle(self.policy.tracking_table))
        except SQLError as error:
            return error
        return None

    @property
    def position(self) -> int:
        """How many migrations the pass has checked."""
        return self._position

    def state_bytes(self) -> tuple[bytes, list[int], bytes] | None:
        """The state after the last checked migration, the indexes of still-pending seed
        statements and the database built from empty (None when that migration did not apply)."""
        if self._state is None or self._seeds is None or self._empty is None:
            return None
        pending = [self._seed_index[id(s)] for _, s in self._seeds.pending]
        return self._state.db.to_bytes(), pending, self._empty.to_bytes()

    def resume(self, position: int, data: bytes, pending_seeds: list[int], empty: bytes) -> None:
        """Continue the pass after `position` migrations, from a state kept earlier."""
        seeds = SeedStatements.load(self.seed_files)
        self._index_seeds(seeds)
        seeds.pending = [seeds.pending[i] for i in pending_seeds]
        self._seeds = seeds
        self._empty = D1Database.from_bytes(empty)
        db = D1Database.from_bytes(data)
        db.track_changes()
        self._state = state_of(db, self.ignore)
        self._position = position

    def _index_seeds(self, seeds: SeedStatements) -> None:
        self._seed_index = {id(s): i for i, (_, s) in enumerate(seeds.pending)}

    def _step(self, *, check: bool = True) -> None:
        migration = self.migrations.migrations[self._position]
        self._position += 1
        if self.progress is not None:
            self.progress(self._position, len(self.migrations.migrations), migration)
        if self._broken is not None:
            if not check:
                return
            self._results[migration.name] = waiting_results(migration, self._broken, self.policy)
            if self.on_step is not None:
                self.on_step(self._position, migration, self._results[migration.name], self)
            return
        if self._state is None:
            self._state = self._start()
            assert self._seeds is not None
            self._index_seeds(self._seeds)
        before = self._prepare(self._state)
        keep = check and needs_previous_database(migration, self.policy)
        empty_error = self._apply_to_empty(migration)
        applied = apply_in_place(
            before, migration, self.policy, keep=keep, empty_error=empty_error, empty_checked=True
        )
        if not check:
            self._advance(applied)
            return
        self._results[migration.name] = run_checks(applied)
        self._advance(applied)
        if self.on_step is not None:
            self.on_step(self._position, migration, self._results[migration.name], self)

    def _prepare(self, state: State) -> State:
        """Run what seed statements apply now and give empty tables rows (only tables that
        could be empty are looked at, and the virtual tables); fingerprints of untouched tables
        are carried forward. The state says which tables stayed empty, and why."""
        assert self._seeds is not None
        ran = self._seeds.apply(state.db)
        taken = state.db.take_changes()
        changed = None if taken is None else taken | touched_tables(ran)
        could_be_empty = [
            name
            for name in state.schema.tables
            if changed is None
            or name.lower() in changed
            or name not in state.rows
            or not state.rows[name].count
        ]
        scope = [*could_be_empty, *state.schema.virtual_tables]
        empty = synthesize_rows(state.db, state.schema, only=scope) if scope else {}
        taken = state.db.take_changes()
        if changed is not None and taken is not None:
            changed |= taken
        prepared = state_of(
            state.db, self.ignore, previous=state, changed=changed, same_schema=not ran
        )
        prepared.coverage = coverage_of(prepared.schema, empty)
        self._record_empty(empty)
        return prepared

    def _record_empty(self, empty: dict[str, str]) -> None:
        migration = self.migrations.migrations[self._position - 1]
        for table, reason in empty.items():
            self._empty_tables.setdefault((table, reason), migration.name)

    @property
    def empty_tables(self) -> list[tuple[str, str, str]]:
        """Every table that stayed empty before some migration of the pass so far, with the
        reason: (table, first migration it was empty before, reason)."""
        return [(table, name, reason) for (table, reason), name in self._empty_tables.items()]

    def _advance(self, applied: Applied) -> None:
        if applied.empty_error is not None:
            self._stop_at(applied)
            return
        if applied.after is None:
            applied.before.db.close()
            self._state = self._from_empty()
        else:
            self._state = applied.after
        self._fingerprints.append(self._state.schema.fingerprint())

    def _stop_at(self, applied: Applied) -> None:
        """A migration that does not build from empty: the pass cannot go on."""
        (applied.after or applied.before).db.close()
        if self._empty is not None:
            self._empty.close()
        self._broken = applied.migration
        self._state = self._empty = None

    def _from_empty(self) -> State:
        """Go on after a migration that fails only with rows: from the database built from
        empty, whose tables get rows again (seed statements from the start, then synthesized)."""
        assert self._empty is not None
        db = self._empty.copy()
        db.track_changes()
        self._seeds = SeedStatements.load(self.seed_files)
        self._index_seeds(self._seeds)
        return state_of(db, self.ignore)

    def last_fingerprint(self) -> str:
        """The schema fingerprint after the last checked migration ("" when it did not apply)."""
        return self._fingerprints[-1] if self._state is not None and self._fingerprints else ""


def replay(
    migrations: Sequence[Migration], *, tracking_table: str = "d1_migrations", record: bool = True
) -> D1Database:
    """A fresh database with `migrations` applied in order (and recorded in the tracking table)."""
    db = fresh_database(tracking_table)
    style = TrackingStyle(tracking_table)
    for migration in migrations:
        apply_one(db, migration, style if record else None)
    return db


def apply_one(db: D1Database, migration: Migration, style: TrackingStyle | None) -> None:
    """Apply one migration and (when `style` is given) its tracking row, in one transaction."""
    statements = list(migration.file.statements)
    if style is not None and not records_itself(statements, style.table):
        name = tracking_name(migration.name, migration.file_name, style)
        statements.append(
            Statement(style.insert_sql(name, migration.version, migration.file.sha256), 0, 0, True)
        )
    db.run(statements, source=str(migration.path))


def iter_versions(migrations: MigrationSet) -> Iterator[str]:
    """Version labels in order (the name when a file has no number)."""
    for m in migrations.migrations:
        yield m.version or m.name
