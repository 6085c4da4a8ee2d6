"""Fixtures for a team's own tests: fresh D1-like databases at any migration version."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from d1check.config import load_config
from d1check.discovery import MigrationSet, discover
from d1check.engine import D1Database
from d1check.errors import D1CheckError
from d1check.history import apply_one, fresh_database
from d1check.tracking import TrackingStyle, tracking_name

_CHECKPOINTS = 8


class Migrator:
    """A database that moves through the history: `to("0003")`, `up()`, `down()`.

    Each Migrator owns its database; states are rebuilt from a small, bounded cache of earlier
    states shared by the session, so a test never replays more history than it must.
    """

    def __init__(self, migrations: MigrationSet, tracking_table: str, cache: StateCache) -> None:
        self.migrations = migrations
        self.style = TrackingStyle(tracking_table)
        self._cache = cache
        self._position = 0
        self.db = fresh_database(tracking_table)

    @property
    def version(self) -> str | None:
        """The version the database is at (None: no migration applied)."""
        if self._position == 0:
            return None
        m = self.migrations.migrations[self._position - 1]
        return m.version or m.name

    def to(self, version: str | None) -> D1Database:
        """Bring the database to `version` ("0003", a name, or None for empty)."""
        target = 0 if version is None else self._index(version) + 1
        if target < self._position:
            self.db.close()
            self.db, self._position = self._cache.nearest(self, target)
        self._forward(target)
        return self.db

    def latest(self) -> D1Database:
        """Bring the database to the last migration."""
        self._forward(len(self.migrations.migrations))
        return self.db

    def up(self, steps: int = 1) -> D1Database:
        """Apply the next `steps` migrations."""
        self._forward(min(self._position + steps, len(self.migrations.migrations)))
        return self.db

    def down(self, steps: int = 1) -> D1Database:
        """Run the rollbacks of the last `steps` applied migrations (rows stay as they are)."""
        for _ in range(steps):
            if self._position == 0:
                break
            migration = self.migrations.migrations[self._position - 1]
            if migration.rollback is None:
                raise D1CheckError(
                    f"{migration.path}: no rollback file to step down with; write "
                    f"rollbacks/{migration.version}_rollback.sql"
                )
            statements = list(migration.rollback.statements)
            self.db.run(statements, source=str(migration.rollback.path))
            with self.db.internal() as conn:
                conn.execute(
                    self.style.delete_sql(
                        tracking_name(migration.name, migration.file_name, self.style),
                        migration.version,
                    )
                )
            self._position -= 1
        return self.db

    def _forward(self, target: int) -> None:
        while self._position < target:
            migration = self.migrations.migrations[self._position]
            apply_one(self.db, migration, self.style)
            self._position += 1
            self._cache.offer(self, self._position)

    def _index(self, version: str) -> int:
        migration = self.migrations.find(version)
        return self.migrations.migrations.index(migration)


class StateCache:
    """Serialized states at a few versions (bounded), shared by a session's Migrators."""

    def __init__(self, limit: int = _CHECKPOINTS) -> None:
        self.limit = limit
        self._states: OrderedDict[tuple[str, int], bytes] = OrderedDict()

    def offer(self, migrator: Migrator, position: int) -> None:
        """Keep the pristine state at `position` if it was reached by migrations alone."""
        key = (str(migrator.migrations.migrations_dir), position)
        if key not in self._states and position % 10 == 0:
            self._states[key] = migrator.db.to_bytes()
            while len(self._states) > self.limit:
                self._states.popitem(last=False)

    def nearest(self, migrator: Migrator, target: int) -> tuple[D1Database, int]:
        """A fresh copy of the closest kept state at or before `target`."""
        prefix = str(migrator.migrations.migrations_dir)
        best = max((p for d, p in self._states if d == prefix and p <= target), default=0)
        if best == 0:
            return fresh_database(migrator.style.table), 0
        return D1Database.from_bytes(self._states[(prefix, best)]), best


_CACHE = pytest.StashKey[StateCache]()


def make_migrator(
    root: Path, family: str | None = None, cache: StateCache | None = None
) -> Migrator:
    """A Migrator for the project at `root` (usable without pytest)."""
    config = load_config(root)
    fam = config.family(family) if family else config.default_family
    migrations = discover(fam.migrations_dir, fam.rollbacks_dir, fam.migrations_pattern)
    return Migrator(migrations, fam.tracking_table, cache or StateCache())


def migrator_for(config: pytest.Config) -> Iterator[Migrator]:
    """The `d1_migrator` fixture's Migrator for the project at pytest's rootdir (states shared
    by the session), closed at the end."""
    if _CACHE not in config.stash:
        config.stash[_CACHE] = StateCache()
    migrator = make_migrator(Path(str(config.rootpath)), cache=config.stash[_CACHE])
    yield migrator
    migrator.db.close()


def rows(db: D1Database, sql: str, params: Sequence[object] = ()) -> list[dict[str, object]]:
    """Shorthand for `db.query`."""
    return db.query(sql, params)
