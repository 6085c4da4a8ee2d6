"""`d1check rollback`: run the rollback file of the last applied migration and forget it.

The rollback, the removal of its tracking row and an audit row (`action='rollback'`) land in one
transaction (locally) or one request (remote); the schema is then compared with the version before.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

from d1check.config import Config, Family
from d1check.discovery import Migration, discover
from d1check.engine import D1Database
from d1check.errors import ConfigError, GateRefused, MigrationFileError, SQLError
from d1check.fleet import journaled, locked
from d1check.journal import new_run_id
from d1check.lease import guard_sql
from d1check.live import applied_migrations, remote_schema
from d1check.local import applied_names, local_database_path
from d1check.plan import Expected, RunContext
from d1check.remote import D1Client
from d1check.schema import Schema, diff_schemas, format_diff, read_schema
from d1check.statements import Statement
from d1check.targets import Target
from d1check.tracking import (
    AUDIT_DDL,
    TrackingStyle,
    audit_insert_sql,
    tracking_name,
    version_label,
)
from d1check.writes import send_sql


@dataclass(frozen=True)
class RollbackPlan:
    """What rolling back one database means: the migration, and what stays applied."""

    where: str
    migration: Migration
    applied: tuple[str, ...]
    expected: Schema


@dataclass(frozen=True)
class RolledBack:
    """One database after a rollback."""

    where: str
    migration: str
    now_at: str
    bookmark: str = ""


def plan_rollback(
    family: Family, version: str, applied: list[str], where: str, style: TrackingStyle
) -> RollbackPlan:
    """Check that `version` is the last applied migration and has a rollback file."""
    migrations = discover(family.migrations_dir, family.rollbacks_dir, family.migrations_pattern)
    migration = migrations.find(version)
    name = tracking_name(migration.name, migration.file_name, style)
    if not applied or applied[-1].removesuffix(".sql") != name.removesuffix(".sql"):
        last = applied[-1] if applied else "nothing"
        raise ConfigError(
            f"{where}: {migration.name} is not the last applied migration (last applied: "
            f"{last}); roll back the migrations after it first, newest first"
        )
    if migration.rollback is None:
        wanted = family.rollbacks_dir / f"{migration.version}_rollback.sql"
        raise MigrationFileError(migration.path, f"no rollback file: write {wanted} to undo it")
    expected = Expected(migrations, family.tracking_table).at(len(applied) - 1)
    return RollbackPlan(where, migration, tuple(applied[:-1]), expected)


def rollback_records(
    plan: RollbackPlan, style: TrackingStyle, *, by: str, environment: str, target: str
) -> list[str]:
    """The tracking-row removal and the audit row, as literal SQL."""
    m = plan.migration
    return [
        style.delete_sql(tracking_name(m.name, m.file_name, style), m.version),
        audit_insert_sql(
            version=m.version,
            name=m.name,
            checksum=m.file.sha256,
            applied_by=by,
            environment=environment,
            target=target,
            git_commit=None,
            bookmark=None,
            action="rollback",
        ),
    ]


def _now_at(plan: RollbackPlan) -> str:
    return version_label(plan.applied)


def _verify(plan: RollbackPlan, live: Schema) -> None:
    diffs = diff_schemas(plan.expected, live)
    if diffs:
        raise GateRefused(
            f"{plan.where}: after rolling back {plan.migration.name}, the schema is not the "
            f"schema of {_now_at(plan)}, expected → now:\n{format_diff(diffs)}\n"
            f"fix: correct {plan.migration.rollback.path if plan.migration.rollback else ''}"
        )


def rollback_local(config: Config, family: Family, version: str, *, by: str) -> RolledBack:
    """Roll back `version` on the family's local database (no credentials needed)."""
    path = local_database_path(config, family)
    if not path.exists():
        raise ConfigError(f"local: no local database at {path}; nothing to roll back")
    style = TrackingStyle(family.tracking_table_for(family.local_database))
    db = D1Database(path)
    try:
        applied = applied_names(db, style)
        plan = plan_rollback(family, version, applied, f"local:{family.name}", style)
        assert plan.migration.rollback is not None
        records = rollback_records(plan, style, by=by, environment="local", target="local")
        with db.internal() as conn:
            conn.execute(AUDIT_DDL)
        statements = list(plan.migration.rollback.statements)
        statements += [Statement(sql, 0, 0, True) for sql in records]
        try:
            db.run(statements, source=str(plan.migration.rollback.path))
        except SQLError as error:
            raise GateRefused(
                f"local:{family.name}: rollback failed, nothing changed: {error}"
            ) from error
        _verify(plan, read_schema(db, ignore=[style.table]))
    finally:
        db.close()
    return RolledBack(plan.where, plan.migration.name, _now_at(plan))


def plan_remote(client: D1Client, family: Family, target: Target, version: str) -> RollbackPlan:
    """Read the target's applied migrations and plan the rollback of `version`."""
    db_id = _db_id(client, target)
    style = TrackingStyle(target.tracking_table)
    applied = applied_migrations(client, db_id, style)
    return plan_rollback(family, version, applied, target.name, style)


def _db_id(client: D1Client, target: Target) -> str:
    return target.database_id or client.database_id(target.database_name)


def rollback_remote(
    client: D1Client,
    target: Target,
    plan: RollbackPlan,
    *,
    by: str,
    runs_dir: Path | None = None,
) -> RolledBack:
    """Take a bookmark, then send the rollback with its records in one request, and verify."""
    assert plan.migration.rollback is not None
    db_id = _db_id(client, target)
    style = TrackingStyle(target.tracking_table)
    ctx = RunContext(new_run_id(), by, None)
    journal = journaled(runs_dir, ctx.run_id, "rollback", target) if runs_dir else nullcontext()
    with journal, locked(client, target, db_id, ctx) as held:
        m = plan.migration
        if tuple(held.live.applied) != (*plan.applied, tracking_name(m.name, m.file_name, style)):
            raise GateRefused(
                f"{target.name}: the applied migrations changed since the rollback was planned "
                f"(now: {version_label(list(held.live.applied))}); nothing rolled back, run again"
            )
        bookmark = client.bookmark(db_id)
        parts = [guard_sql(ctx.run_id)]
        parts += [
            s.sql if s.terminated else s.sql + ";" for s in plan.migration.rollback.statements
        ]
        parts += rollback_records(
            plan, style, by=by, environment=target.environment, target=target.name
        )
        send_sql(client, db_id, "\n".join(parts))
        _verify(plan, remote_schema(client, db_id, [style.table]))
    return RolledBack(target.name, plan.migration.name, _now_at(plan), bookmark)


def rollback_file(plan: RollbackPlan) -> Path:
    """The rollback file a plan runs."""
    assert plan.migration.rollback is not None
    return plan.migration.rollback.path
