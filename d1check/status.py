"""What every database of a project holds, and structural diffs between any two schema sources.

The plain-Python layer under `d1check status` and `d1check diff`: nothing here prints.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from d1check.config import Config, Family
from d1check.discovery import MigrationSet, discover
from d1check.engine import D1Database
from d1check.errors import ConfigError, D1CheckError, GateRefused, MigrationFileError, RemoteError
from d1check.export import read_export
from d1check.gate import Expected, plan_target
from d1check.live import remote_schema
from d1check.local import applied_names, local_database_path, pending_migrations
from d1check.remote import DEFAULT_BUDGET, D1Client, RequestBudget, parse_budget
from d1check.schema import Difference, Schema, diff_schemas, format_diff, read_schema
from d1check.targets import Target, resolve_targets, target_names
from d1check.tracking import AUDIT_TABLE, EMPTY_VERSION, TrackingStyle, version_label

__all__ = [
    "ClientFactory",
    "ProjectStatus",
    "ResolvedName",
    "SchemaSource",
    "StatusRow",
    "default_client_factory",
    "diff_sources",
    "load_source",
    "project_status",
    "remote_target",
    "remote_targets",
]

ClientFactory = Callable[[Target], D1Client]
TOKEN_ENV = "CLOUDFLARE_API_TOKEN"
SQLITE_HEADER = b"SQLite format 3\x00"
EMPTY = EMPTY_VERSION
UNKNOWN = "-"
"""What a status cell shows for a value not known (not read, or none recorded)."""
NO_DATABASE = "(no database)"
"""The `applied` cell of a local database whose file does not exist yet."""


@dataclass(frozen=True)
class StatusRow:
    """One database: where it stands against the migrations of its family."""

    family: str
    environment: str
    target: str
    database: str
    applied: str
    pending: int | None
    drift: str
    last_applied: str
    detail: str = ""


@dataclass(frozen=True)
class ResolvedName:
    """What a target name resolves to (or why it does not)."""

    name: str
    targets: tuple[str, ...]
    skipped: tuple[str, ...] = ()
    problem: str = ""
    families: tuple[str, ...] = ()
    """The family of each target, in the order of `targets`."""

    @property
    def description(self) -> str:
        """The targets per family: `family db: app; family analytics: analytics`."""
        by_family: dict[str, list[str]] = {}
        for target, family in zip(self.targets, self.families, strict=True):
            by_family.setdefault(family, []).append(target)
        parts = [f"family {f}: {', '.join(names)}" for f, names in by_family.items()]
        return "; ".join(parts) or "no databases"


@dataclass(frozen=True)
class ProjectStatus:
    """Every local and remote database of a project, and the resolved target names."""

    rows: tuple[StatusRow, ...]
    resolved: tuple[ResolvedName, ...]


def default_client_factory(
    config: Config, budget: RequestBudget | str | None = DEFAULT_BUDGET
) -> ClientFactory:
    """D1 clients from the environment (CLOUDFLARE_API_TOKEN, CLOUDFLARE_ACCOUNT_ID), all under
    one API budget (`budget`, or the `N/S` text of one; None for no budget)."""
    shared = parse_budget(budget) if isinstance(budget, str) else budget

    def client_for(target: Target) -> D1Client:
        account = target.account_id or (config.wrangler.account_id if config.wrangler else None)
        return D1Client.from_env(account_id=account, budget=shared)

    return client_for


# --- status --------------------------------------------------------------------------------


def project_status(
    config: Config, *, family: str | None = None, clients: ClientFactory | None = None
) -> ProjectStatus:
    """Status of every local and remote database (of `family`, when given)."""
    families = [config.family(family)] if family else list(config.families.values())
    wanted = {f.name for f in families}
    sets = {
        f.name: discover(f.migrations_dir, f.rollbacks_dir, f.migrations_pattern) for f in families
    }
    expected = {n: Expected(s, config.family(n).tracking_table) for n, s in sets.items()}
    rows = [local_status(config, f, sets[f.name]) for f in families]
    resolved, targets = _remote_targets(config, wanted)
    factory = clients or default_client_factory(config)
    rows += [remote_status(t, sets[t.family], expected[t.family], factory) for t in targets]
    return ProjectStatus(tuple(rows), tuple(resolved))


def _remote_names(config: Config) -> list[str]:
    names = ["staging", "production", *config.environments]
    names += [n for n in config.environment_names() if n not in names]
    return list(dict.fromkeys(names))


def remote_targets(config: Config, family: str | None = None) -> list[Target]:
    """Every remote database of the project's target names (of `family`, when given), once."""
    wanted = {family} if family else set(config.families)
    return _remote_targets(config, wanted)[1]


def _remote_targets(config: Config, wanted: set[str]) -> tuple[list[ResolvedName], list[Target]]:
    resolved: list[ResolvedName] = []
    targets: dict[tuple[str, str], Target] = {}
    for name in _remote_names(config):
        try:
            resolution = resolve_targets(config, name)
        except ConfigError as error:
            resolved.append(ResolvedName(name, (), problem=str(error)))
            continue
        mine = [t for t in resolution.targets if t.family in wanted]
        skipped = [f"{s.target.name} ({s.reason})" for s in resolution.skipped]
        resolved.append(
            ResolvedName(
                name,
                tuple(t.name for t in mine),
                tuple(skipped),
                families=tuple(t.family for t in mine),
            )
        )
        for target in mine:
            targets.setdefault((target.family, target.database_id or target.database_name), target)
    return resolved, list(targets.values())


def local_status(config: Config, family: Family, migrations: MigrationSet) -> StatusRow:
    """The local database of `family`: applied, pending, drift (checksums and schema)."""
    path = local_database_path(config, family)
    style = TrackingStyle(family.tracking_table_for(family.local_database))
    database = family.local_database
    label = database.database_name if database else _relative(path, config.root)
    row = StatusRow(family.name, "local", f"local:{family.name}", label, "", 0, "", UNKNOWN)
    if not path.exists():
        count = len(migrations.migrations)
        return replace(row, applied=NO_DATABASE, pending=count, drift="none")
    db = D1Database(path)
    try:
        applied = applied_names(db, style)
        last = _last_applied_local(db, style.table)
        problems = _local_drift(db, migrations, applied, style, str(path))
    except GateRefused as refused:
        applied, last, problems = applied_names(db, style), UNKNOWN, [str(refused)]
    finally:
        db.close()
    pending = _pending_count(migrations, applied, style, str(path))
    drift = "drift" if problems else "none"
    return replace(
        row,
        applied=version_label(applied),
        pending=pending,
        drift=drift,
        last_applied=last,
        detail="\n".join(problems),
    )


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def _pending_count(
    migrations: MigrationSet, applied: list[str], style: TrackingStyle, where: str
) -> int | None:
    try:
        return len(pending_migrations(migrations, applied, style, where))
    except GateRefused:
        return None


def _last_applied_local(db: D1Database, table: str) -> str:
    with db.internal() as conn:
        if not _has_table(conn, table):
            return UNKNOWN
        rows = conn.execute(f'SELECT max(applied_at) FROM "{table}"').fetchall()
    return str(rows[0][0]) if rows and rows[0][0] is not None else UNKNOWN


def _has_table(conn: Any, name: str) -> bool:
    sql = "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?"
    return bool(conn.execute(sql, (name,)).fetchall())


def _local_drift(
    db: D1Database, migrations: MigrationSet, applied: list[str], style: TrackingStyle, where: str
) -> list[str]:
    pending_migrations(migrations, applied, style, where)
    problems = _changed_files(db, migrations)
    expected = Expected(migrations, style.table).at(len(applied))
    diffs = diff_schemas(expected, read_schema(db, ignore=[style.table]))
    if diffs:
        problems.append(
            f"{where}: the schema is not the schema of {version_label(applied)}, "
            "expected → local:\n"
            + format_diff(diffs)
            + "\nfix: `d1check reset` rebuilds the local database from the migrations"
        )
    return problems


def _changed_files(db: D1Database, migrations: MigrationSet) -> list[str]:
    with db.internal() as conn:
        if not _has_table(conn, AUDIT_TABLE):
            return []
        rows = conn.execute(
            f"SELECT migration_name, checksum FROM \"{AUDIT_TABLE}\" WHERE action = 'apply' "
            "ORDER BY id"
        ).fetchall()
    recorded = {str(name): str(checksum) for name, checksum in rows}
    changed = [
        m.file_name
        for m in migrations.migrations
        if m.name in recorded and recorded[m.name] != m.file.sha256
    ]
    if not changed:
        return []
    return [
        f"changed since they were applied (checksums differ): {', '.join(changed)}\n"
        "fix: restore those files as applied and write a new migration"
    ]


def remote_status(
    target: Target, migrations: MigrationSet, expected: Expected, clients: ClientFactory
) -> StatusRow:
    """A remote database, read through the API; "no credentials" when there is no token."""
    row = StatusRow(
        target.family,
        target.environment,
        target.name,
        target.database_name,
        UNKNOWN,
        None,
        "",
        UNKNOWN,
    )
    if not os.environ.get(TOKEN_ENV):
        return replace(row, drift="no credentials", detail=f"{TOKEN_ENV} is not set")
    try:
        client = clients(target)
    except ConfigError as error:
        return replace(row, drift="no credentials", detail=str(error))
    try:
        plan = plan_target(client, target, migrations, expected)
        last = _last_applied_remote(client, plan.db_id, target.tracking_table)
    except D1CheckError as error:
        return replace(row, drift="error", detail=f"{target.name}: {error}")
    finally:
        client.close()
    style = TrackingStyle(target.tracking_table)
    pending = _pending_count(migrations, list(plan.applied), style, target.name)
    return replace(
        row,
        applied=version_label(plan.applied),
        pending=pending,
        drift="drift" if plan.refusal else "none",
        last_applied=last,
        detail=plan.refusal,
    )


def _last_applied_remote(client: D1Client, db_id: str, table: str) -> str:
    try:
        results = client.query(db_id, f'SELECT max(applied_at) AS at FROM "{table}"', write=False)
    except RemoteError as error:
        if "no such table" in str(error):
            return UNKNOWN
        raise
    rows = results[0].results if results else []
    value = rows[0].get("at") if rows else None
    return str(value) if value is not None else UNKNOWN


# --- diff ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SchemaSource:
    """A schema and where it came from, for the diff header."""

    label: str
    schema: Schema


def load_source(
    config: Config, spec: str, *, family: Family, clients: ClientFactory | None = None
) -> SchemaSource:
    """The schema `spec` names: a sqlite file, an export `.sql` file, a version, or a target."""
    path = Path(spec)
    if not path.is_file() and not path.is_absolute():
        path = config.root / spec
    if path.is_file():
        return _file_source(path, family)
    migrations = discover(family.migrations_dir, family.rollbacks_dir, family.migrations_pattern)
    if _is_version(spec, migrations):
        return _version_source(spec, migrations, family)
    if spec == "local":
        local = local_database_path(config, family)
        if not local.exists():
            raise ConfigError(
                f"local: no local database at {local}; create it with `d1check reset`"
            )
        return _file_source(local, family, label=f"local:{family.name}")
    try:
        target = remote_target(config, spec, family.name)
    except ConfigError as error:
        raise ConfigError(
            f"{spec!r} is neither a file, a version of {family.migrations_dir}, nor a target: "
            f"{error}"
        ) from None
    client = (clients or default_client_factory(config))(target)
    try:
        db_id = target.database_id or client.database_id(target.database_name)
        schema = remote_schema(client, db_id, [target.tracking_table])
    finally:
        client.close()
    return SchemaSource(f"{target.name} (remote {target.database_name})", schema)


def _by_database_name(config: Config, name: str) -> list[Target]:
    found: dict[str, Target] = {}
    for target_name in _remote_names(config):
        try:
            targets = resolve_targets(config, target_name).targets
        except ConfigError:
            continue
        for target in targets:
            if name in (target.name, target.database_name):
                found.setdefault(target.database_id or target.database_name, target)
    return list(found.values())


def remote_target(config: Config, name: str, family: str | None = None) -> Target:
    """The one remote database `name` (a target name, or the name a summary shows for a
    database) resolves to, in `family`; ConfigError otherwise."""
    try:
        targets = list(resolve_targets(config, name).targets)
    except ConfigError:
        targets = _by_database_name(config, name)
        if not targets:
            raise
    targets = [t for t in targets if family is None or t.family == family]
    remote = [t for t in targets if t.remote]
    if len(remote) != 1:
        found = ", ".join(t.name for t in remote) or "no remote database"
        names = ", ".join(n for n in target_names(config) if n != "local")
        raise ConfigError(
            f"target {name!r} resolves to {found}; name exactly one remote database "
            f"(targets: {names})"
        )
    return remote[0]


def _is_version(spec: str, migrations: MigrationSet) -> bool:
    key = spec.removesuffix(".sql")
    return key.isdigit() or any(m.name == key for m in migrations.migrations)


def _version_source(spec: str, migrations: MigrationSet, family: Family) -> SchemaSource:
    key = spec.removesuffix(".sql")
    expected = Expected(migrations, family.tracking_table)
    if key.isdigit() and int(key) == 0 and not any(m.number == 0 for m in migrations.migrations):
        return SchemaSource("version 0 (the empty database)", expected.at(0))
    migration = migrations.find(key)
    count = migrations.migrations.index(migration) + 1
    return SchemaSource(f"version {migration.name}", expected.at(count))


def _file_source(path: Path, family: Family, *, label: str | None = None) -> SchemaSource:
    with path.open("rb") as fh:
        header = fh.read(len(SQLITE_HEADER))
    if header == SQLITE_HEADER:
        db = D1Database(path)
        try:
            schema = read_schema(db, ignore=[family.tracking_table])
        finally:
            db.close()
        return SchemaSource(label or f"sqlite file {path}", schema)
    if path.suffix.lower() == ".sql":
        export = read_export(path, tracking_table=family.tracking_table)
        return SchemaSource(label or f"export {path}", export.schema)
    raise MigrationFileError(
        path, "neither a SQLite database nor an export (.sql); name a .sqlite or .sql file"
    )


def diff_sources(a: SchemaSource, b: SchemaSource) -> list[Difference]:
    """The structural differences from `a` to `b`."""
    return diff_schemas(a.schema, b.schema)
