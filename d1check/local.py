"""The local database: wrangler's miniflare file (or `.d1check/local.sqlite`) and applying to it."""

from __future__ import annotations

import getpass
import hashlib
import hmac
import time
from dataclasses import dataclass
from pathlib import Path

from d1check.config import Config, Family, WranglerDatabase
from d1check.discovery import Migration, MigrationSet, discover
from d1check.engine import D1Database
from d1check.errors import GateRefused, SQLError
from d1check.statements import Statement
from d1check.tracking import (
    AUDIT_DDL,
    TrackingStyle,
    audit_insert_sql,
    records_itself,
    tracking_name,
)

MINIFLARE_DIR = Path(".wrangler/state/v3/d1/miniflare-D1DatabaseObject")
FALLBACK_DATABASE = Path(".d1check/local.sqlite")
_MINIFLARE_KEY = hashlib.sha256(b"miniflare-D1DatabaseObject").digest()


def miniflare_file_name(database_id: str) -> str:
    """The file name miniflare gives the local D1 database whose id is `database_id`."""
    a = hmac.new(_MINIFLARE_KEY, database_id.encode(), hashlib.sha256).digest()[:16]
    b = hmac.new(_MINIFLARE_KEY, a, hashlib.sha256).digest()[:16]
    return (a + b).hex() + ".sqlite"


def local_id(database: WranglerDatabase) -> str:
    """The id wrangler's local mode keys a database by: preview id, else id, else binding."""
    return database.preview_database_id or database.database_id or database.binding


def local_database_path(config: Config, family: Family) -> Path:
    """Where the family's local database lives (wrangler's file, or `.d1check/local.sqlite`)."""
    database = family.local_database
    if database is None:
        name = (
            FALLBACK_DATABASE
            if family.name == "default"
            else Path(f".d1check/{family.name}.sqlite")
        )
        return config.root / name
    folder = family.folder or config.root
    return folder / MINIFLARE_DIR / miniflare_file_name(local_id(database))


@dataclass(frozen=True)
class LocalPlan:
    """What applying to one local database would do."""

    family: str
    path: Path
    applied: tuple[str, ...]
    pending: tuple[Migration, ...]


@dataclass(frozen=True)
class LocalResult:
    """What applying to one local database did."""

    family: str
    path: Path
    applied_before: tuple[str, ...]
    applied_now: tuple[str, ...]
    seconds: float


def applied_names(db: D1Database, style: TrackingStyle) -> list[str]:
    """Names of the migrations recorded in the tracking table (empty when it does not exist)."""
    with db.internal() as conn:
        exists = conn.execute(
            "SELECT 1 FROM sqlite_schema WHERE type='table' AND name=?", (style.table,)
        ).fetchall()
        if not exists:
            return []
        return [str(r[0]) for r in conn.execute(style.select_applied_sql())]


def pending_migrations(
    migrations: MigrationSet, applied: list[str], style: TrackingStyle, where: str
) -> tuple[Migration, ...]:
    """The migrations not applied yet; GateRefused when the applied ones are not a prefix."""
    names = [tracking_name(m.name, m.file_name, style) for m in migrations.migrations]
    unknown = [a for a in applied if a not in names]
    if unknown:
        raise GateRefused(
            f"{where}: applied migrations that are not in {migrations.migrations_dir}: "
            f"{', '.join(unknown)}\nfix: restore those files (or reset the database) first"
        )
    done = set(applied)
    pending = [m for m, n in zip(migrations.migrations, names, strict=True) if n not in done]
    first_pending = next((i for i, n in enumerate(names) if n not in done), len(names))
    late = [n for n in names[first_pending:] if n in done]
    if late:
        raise GateRefused(
            f"{where}: {', '.join(late)} applied, but the earlier {names[first_pending]} is not: "
            "the database has a different history than the files\nfix: renumber the new "
            "migration after the applied ones"
        )
    return tuple(pending)


def plan_local(config: Config, family: Family) -> LocalPlan:
    """Read the local database of `family` and list its pending migrations."""
    migrations = discover(family.migrations_dir, family.rollbacks_dir, family.migrations_pattern)
    path = local_database_path(config, family)
    style = TrackingStyle(family.tracking_table_for(family.local_database))
    applied: list[str] = []
    if path.exists():
        db = D1Database(path)
        try:
            applied = applied_names(db, style)
        finally:
            db.close()
    pending = pending_migrations(migrations, applied, style, str(path))
    return LocalPlan(family.name, path, tuple(applied), pending)


def apply_local(config: Config, *, git_commit: str | None = None) -> list[LocalResult]:
    """Apply pending migrations to every family's local database; each with its tracking row."""
    plans = [plan_local(config, family) for family in config.families.values()]
    results = []
    for plan, family in zip(plans, config.families.values(), strict=True):
        results.append(_apply_plan(plan, family, git_commit))
    return results


def _apply_plan(plan: LocalPlan, family: Family, git_commit: str | None) -> LocalResult:
    started = time.monotonic()
    plan.path.parent.mkdir(parents=True, exist_ok=True)
    style = TrackingStyle(family.tracking_table_for(family.local_database))
    db = D1Database(plan.path)
    done: list[str] = []
    try:
        with db.internal() as conn:
            conn.execute(style.create_sql())
            conn.execute(AUDIT_DDL)
        for migration in plan.pending:
            db.run(_with_records(migration, style, git_commit), source=str(migration.path))
            done.append(tracking_name(migration.name, migration.file_name, style))
    except SQLError as error:
        raise GateRefused(
            f"{plan.path}: {error}\napplied before the failure: {', '.join(done) or 'none'}"
        ) from error
    finally:
        db.close()
    return LocalResult(
        plan.family, plan.path, plan.applied, tuple(done), time.monotonic() - started
    )


def _with_records(
    migration: Migration, style: TrackingStyle, git_commit: str | None
) -> list[Statement]:
    records = [
        style.insert_sql(
            tracking_name(migration.name, migration.file_name, style),
            migration.version,
            migration.file.sha256,
        ),
        audit_insert_sql(
            version=migration.version,
            name=migration.name,
            checksum=migration.file.sha256,
            applied_by=_user(),
            environment="local",
            target="local",
            git_commit=git_commit,
            bookmark=None,
        ),
    ]
    statements = list(migration.file.statements)
    if records_itself(migration.file.statements, style.table):
        records = records[1:]
    return statements + [Statement(sql, 0, 0, True) for sql in records]


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
