"""The SQL d1check writes into a database: wrangler's tracking table, the audit and lock tables."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from d1check.sqlfacts import effects
from d1check.statements import Statement

WRANGLER_TRACKING_DDL = (
    'CREATE TABLE IF NOT EXISTS "{table}"(\n'
    "\t\tid         INTEGER PRIMARY KEY AUTOINCREMENT,\n"
    "\t\tname       TEXT UNIQUE,\n"
    "\t\tapplied_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP NOT NULL\n"
    ")"
)

SEED_TRACKING_DDL = (
    'CREATE TABLE IF NOT EXISTS "{table}" (\n'
    "    id INTEGER PRIMARY KEY AUTOINCREMENT,\n"
    "    version TEXT NOT NULL UNIQUE,\n"
    "    name TEXT NOT NULL,\n"
    "    applied_at TEXT NOT NULL DEFAULT (datetime('now')),\n"
    "    checksum TEXT\n"
    ")"
)

AUDIT_TABLE = "_schema_audit"
AUDIT_DDL = (
    f'CREATE TABLE IF NOT EXISTS "{AUDIT_TABLE}" (\n'
    "    id INTEGER PRIMARY KEY AUTOINCREMENT,\n"
    "    migration_version TEXT NOT NULL,\n"
    "    migration_name TEXT NOT NULL,\n"
    "    checksum TEXT NOT NULL,\n"
    "    applied_by TEXT,\n"
    "    applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),\n"
    "    environment TEXT,\n"
    "    target TEXT,\n"
    "    git_commit TEXT,\n"
    "    bookmark TEXT,\n"
    "    duration_ms INTEGER,\n"
    "    action TEXT NOT NULL DEFAULT 'apply'\n"
    ")"
)

LOCK_TABLE = "_d1check_lock"
LOCK_SECONDS = 60.0
LOCK_DDL = (
    f'CREATE TABLE IF NOT EXISTS "{LOCK_TABLE}" (\n'
    "    id INTEGER PRIMARY KEY CHECK (id = 1),\n"
    "    owner TEXT NOT NULL,\n"
    "    run_id TEXT NOT NULL,\n"
    "    acquired_at REAL NOT NULL,\n"
    "    heartbeat_at REAL NOT NULL,\n"
    "    expires_at REAL NOT NULL\n"
    ")"
)
# Takes the lock row when it is free, expired, or already ours; parameters: owner, run id, now,
# now, expiry, now.
LOCK_TAKE = (
    f'INSERT INTO "{LOCK_TABLE}" (id, owner, run_id, acquired_at, heartbeat_at, expires_at) '
    "VALUES (1, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET owner = excluded.owner, "
    "run_id = excluded.run_id, acquired_at = excluded.acquired_at, heartbeat_at = "
    f'excluded.heartbeat_at, expires_at = excluded.expires_at WHERE "{LOCK_TABLE}".expires_at '
    f'< ? OR "{LOCK_TABLE}".run_id = excluded.run_id'
)


@dataclass(frozen=True)
class TrackingStyle:
    """How a database records applied migrations: wrangler's table or the seed-style one."""

    table: str

    @property
    def seed_style(self) -> bool:
        """True for the hand-written `_migrations(version, name, applied_at, checksum)` style."""
        return self.table != "d1_migrations" and self.table.lower() == "_migrations"

    def create_sql(self) -> str:
        """The CREATE TABLE statement, exactly as wrangler (or the seed guide) writes it."""
        template = SEED_TRACKING_DDL if self.seed_style else WRANGLER_TRACKING_DDL
        return template.format(table=self.table)

    def insert_sql(self, name: str, version: str, checksum: str) -> str:
        """The statement that records one applied migration (literal SQL, sent with it)."""
        if self.seed_style:
            short = name.split("_", 1)[1] if "_" in name else name
            return (
                f'INSERT INTO "{self.table}" (version, name, checksum) VALUES '
                f"({quote(version)}, {quote(short)}, {quote(checksum)});"
            )
        return f'INSERT INTO "{self.table}" (name) values ({quote(name)});'

    def delete_sql(self, name: str, version: str) -> str:
        """The statement that forgets one migration (used after its rollback)."""
        if self.seed_style:
            return f'DELETE FROM "{self.table}" WHERE version = {quote(version)};'
        return f'DELETE FROM "{self.table}" WHERE name = {quote(name)};'

    def select_applied_sql(self) -> str:
        """A query whose rows are (name,) of applied migrations, in the order they were applied."""
        if self.seed_style:
            return f"SELECT version || '_' || name AS name FROM \"{self.table}\" ORDER BY id"
        return f'SELECT name FROM "{self.table}" ORDER BY id'


def audit_insert_sql(
    *,
    version: str,
    name: str,
    checksum: str,
    applied_by: str,
    environment: str,
    target: str,
    git_commit: str | None,
    bookmark: str | None,
    action: str = "apply",
) -> str:
    """One `_schema_audit` row as literal SQL (its duration is filled in by a later update)."""
    values = ", ".join(
        quote(v)
        for v in (
            version,
            name,
            checksum,
            applied_by,
            environment,
            target,
            git_commit,
            bookmark,
            action,
        )
    )
    return (
        f'INSERT INTO "{AUDIT_TABLE}" (migration_version, migration_name, checksum, applied_by, '
        f"environment, target, git_commit, bookmark, action) VALUES ({values});"
    )


def quote(value: str | None) -> str:
    """A SQL literal for a string (or NULL)."""
    if value is None:
        return "NULL"
    return "'" + value.replace("'", "''") + "'"


def records_itself(statements: Sequence[Statement], table: str) -> bool:
    """True when a migration writes its own tracking row (the seed-guide style)."""
    return any(
        e.action == "insert" and e.table.lower() == table.lower()
        for s in statements
        for e in effects(s)
    )


EMPTY_VERSION = "(empty)"


def version_label(applied: Sequence[str]) -> str:
    """The version a list of applied tracking names leaves a database at (`(empty)` for none)."""
    return applied[-1].removesuffix(".sql") if applied else EMPTY_VERSION


def tracking_name(name: str, file_name: str, style: TrackingStyle) -> str:
    """How the tracking table names a migration: wrangler records the file name with `.sql`."""
    return name if style.seed_style else file_name
