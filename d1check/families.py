"""Families: databases that share one history of migrations, and how they are found without
configuration (which `d1_databases` entries of the wrangler configs share a history).

Each entry (by binding) is a family with its own `migrations_dir`; entries whose directories are
the same share a family; an `[env.*]` entry joins the family of its binding (or of its own
`migrations_dir` when it sets one, as wrangler then reads that directory for it). A database
that two families would both migrate is refused: d1check never guesses which history it has.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from d1check.clients import ClientRegistry
from d1check.errors import ConfigError
from d1check.wrangler import WranglerConfig, WranglerDatabase

__all__ = [
    "DEFAULT_FAMILY",
    "DatabaseGroup",
    "Family",
    "check_nested_migrations",
    "check_unambiguous",
    "database_groups",
    "group_names",
    "implicit_families",
    "nested_sql_files",
]

DEFAULT_FAMILY = "default"
DEFAULT_MIGRATIONS_DIR = "migrations"
DEFAULT_ROLLBACKS_DIR = "rollbacks"
DEFAULT_TRACKING_TABLE = "d1_migrations"


def check_table_name(name: str, key: str) -> None:
    """ConfigError unless `name` can name the tracking table in the SQL d1check writes: no
    control character, no quote or bracket."""
    bad = next((c for c in name if c < " " or c == "\x7f" or c in "\"'`[]"), None)
    if bad is not None or not name.strip():
        what = "is empty" if bad is None else f"holds {bad!r}"
        raise ConfigError(
            f"{key} {name!r} {what}: a tracking table name must be plain (letters, digits, _); "
            f"fix {key} in the configuration"
        )


@dataclass(frozen=True)
class Family:
    """Databases that share one migrations directory and tracking table."""

    name: str
    migrations_dir: Path
    rollbacks_dir: Path
    tracking_table: str
    tracking_table_configured: bool
    binding: str | None
    clients: bool
    databases: tuple[WranglerDatabase, ...]
    environment_databases: tuple[WranglerDatabase, ...] = ()
    migrations_pattern: str | None = None
    """wrangler's `migrations_pattern` relative to `migrations_dir` (`*/migration.sql`); None
    for wrangler's default, `*.sql`."""
    wrangler: WranglerConfig | None = None
    """The wrangler config the family's databases are entries of."""

    def __post_init__(self) -> None:
        for database in (*self.databases, *self.environment_databases):
            if database.migrations_table:
                check_table_name(database.migrations_table, "migrations_table")
        check_table_name(self.tracking_table, "tracking_table")

    @property
    def local_database(self) -> WranglerDatabase | None:
        """The wrangler entry whose local (miniflare) file is the family's local database."""
        return self.databases[0] if self.databases else None

    @property
    def folder(self) -> Path | None:
        """The folder of the family's wrangler config (where wrangler keeps `.wrangler/`)."""
        return self.wrangler.folder if self.wrangler is not None else None

    def tracking_table_for(self, database: WranglerDatabase | None) -> str:
        """The tracking table of `database`: configured, else its `migrations_table`, else
        `d1_migrations`; for a database with no wrangler entry (a client), the family's."""
        if self.tracking_table_configured or database is None:
            return self.tracking_table
        return database.migrations_table or DEFAULT_TRACKING_TABLE

    def owns(self, database: WranglerDatabase) -> bool:
        """Whether a wrangler entry (top level or env) belongs to this family."""
        return database in self.databases or database in self.environment_databases


@dataclass(frozen=True)
class DatabaseGroup:
    """The entries of one wrangler config that share a migrations directory."""

    wrangler: WranglerConfig
    migrations_dir: Path
    migrations_pattern: str | None
    databases: tuple[WranglerDatabase, ...]
    environment_databases: tuple[WranglerDatabase, ...]

    @property
    def entries(self) -> tuple[WranglerDatabase, ...]:
        """Every entry of the group, top-level first."""
        return self.databases + self.environment_databases

    @property
    def first_binding(self) -> str:
        """The binding the group is named after: its first entry's."""
        return self.entries[0].binding

    def holds(self, name: str, database_id: str | None) -> bool:
        """Whether one of the group's entries is the database `name` / `database_id`."""
        return any(db.same_database(name, database_id) for db in self.entries)


def _joined(folder: Path, relative: str) -> Path:
    return Path(os.path.normpath(folder / relative))


def _directories(wrangler: WranglerConfig) -> dict[str, str]:
    """The migrations directory of each top-level binding."""
    found: dict[str, str] = {}
    for db in wrangler.databases:
        found.setdefault(db.binding, db.migrations_dir or DEFAULT_MIGRATIONS_DIR)
    return found


def _directory_of(db: WranglerDatabase, top: dict[str, str]) -> str:
    return db.migrations_dir or top.get(db.binding) or DEFAULT_MIGRATIONS_DIR


def _pattern(db: WranglerDatabase, wrangler: WranglerConfig) -> str | None:
    """The entry's `migrations_pattern` relative to its `migrations_dir`, checked as wrangler
    checks it."""
    raw = db.migrations_pattern
    if raw is None:
        return None
    where = f"{wrangler.path}: d1_databases entry {db.binding!r}"
    if db.migrations_dir is None:
        raise ConfigError(
            f"{where}: migrations_pattern {raw!r} is set without migrations_dir; wrangler refuses "
            'that too: add migrations_dir (e.g. "migrations") and start the pattern with it'
        )
    directory = os.path.normpath(db.migrations_dir).replace("\\", "/")
    pattern = os.path.normpath(raw).replace("\\", "/")
    if directory == ".":
        return pattern
    if not pattern.startswith(directory + "/"):
        raise ConfigError(
            f"{where}: migrations_pattern {raw!r} must start with {directory + '/'!r} to match "
            f"migrations_dir {db.migrations_dir!r} (wrangler refuses it otherwise); "
            f'e.g. "{directory}/*/migration.sql"'
        )
    return pattern[len(directory) + 1 :]


def database_groups(wrangler: WranglerConfig) -> list[DatabaseGroup]:
    """The families of one wrangler config, in the order of their first entries."""
    top = _directories(wrangler)
    members: dict[Path, list[WranglerDatabase]] = {}
    for db in wrangler.every_database():
        members.setdefault(_joined(wrangler.folder, _directory_of(db, top)), []).append(db)
    return [_group(wrangler, directory, dbs) for directory, dbs in members.items()]


def _group(
    wrangler: WranglerConfig, directory: Path, dbs: Sequence[WranglerDatabase]
) -> DatabaseGroup:
    patterns = {_pattern(db, wrangler) for db in dbs if db.migrations_pattern is not None}
    if len(patterns) > 1:
        bindings = ", ".join(sorted({db.binding for db in dbs}))
        raise ConfigError(
            f"{wrangler.path}: the d1_databases entries of {directory} ({bindings}) set different "
            f"migrations_pattern values ({', '.join(sorted(str(p) for p in patterns))}); one "
            "directory is one history: give them the same pattern"
        )
    return DatabaseGroup(
        wrangler=wrangler,
        migrations_dir=directory,
        migrations_pattern=next(iter(patterns), None),
        databases=tuple(db for db in dbs if db.environment is None),
        environment_databases=tuple(db for db in dbs if db.environment is not None),
    )


def _label(db: WranglerDatabase) -> str:
    section = f"[env.{db.environment}] " if db.environment else ""
    return f"{section}binding {db.binding!r}"


def check_unambiguous(groups: Sequence[DatabaseGroup], root: Path) -> None:
    """ConfigError when one database belongs to two families (two migrations directories)."""
    for i, group in enumerate(groups):
        for other in groups[i + 1 :]:
            for db in group.entries:
                clash = next(
                    (o for o in other.entries if o.same_database(db.database_name, db.database_id)),
                    None,
                )
                if clash is not None:
                    raise ConfigError(_ambiguous(db, group, clash, other, root))


def _ambiguous(
    db: WranglerDatabase,
    group: DatabaseGroup,
    clash: WranglerDatabase,
    other: DatabaseGroup,
    root: Path,
) -> str:
    def where(entry: WranglerDatabase, g: DatabaseGroup) -> str:
        migrations = _shown(g.migrations_dir, root)
        return f"{_label(entry)} of {_shown(g.wrangler.path, root)} (migrations {migrations})"

    return (
        f"database {db.database_name!r} is both {where(db, group)} and {where(clash, other)}: "
        "which migrations it holds is ambiguous. Give both entries the same migrations_dir, or "
        "declare the families in [tool.d1check.families.NAME] (migrations_dir, binding)"
    )


def group_names(groups: Sequence[DatabaseGroup], root: Path) -> list[str]:
    """Stable, readable family names: `default` for a single family; else the binding, lower-
    cased, prefixed by the config's folder (`services/api:db`) when there are several configs."""
    if len(groups) == 1:
        return ["default"]
    configs = {g.wrangler.path for g in groups}
    names: list[str] = []
    for group in groups:
        name = group.first_binding.lower()
        if len(configs) > 1:
            folder = _shown(group.wrangler.folder, root)
            alone = sum(1 for g in groups if g.wrangler.path == group.wrangler.path) == 1
            name = folder if alone else f"{folder}:{name}"
        if name in names:
            raise ConfigError(
                f"{group.wrangler.path}: two families would both be called {name!r} (bindings "
                "that differ only in case); rename one binding or declare "
                "[tool.d1check.families.NAME]"
            )
        names.append(name)
    return names


def nested_sql_files(directory: Path, depth: int = 2) -> list[Path]:
    """`*.sql` files in the subfolders of `directory` (at most `depth` levels), when the directory
    itself holds none: a layout wrangler's default pattern (`*.sql`) does not read."""
    if not directory.is_dir() or any(p.suffix == ".sql" for p in directory.iterdir()):
        return []
    found: list[Path] = []
    level = [p for p in directory.iterdir() if p.is_dir() and not p.name.startswith(".")]
    for _ in range(depth):
        below: list[Path] = []
        for folder in level:
            for path in sorted(folder.iterdir()):
                if path.is_dir() and not path.name.startswith("."):
                    below.append(path)
                elif path.suffix == ".sql" and path.is_file():
                    found.append(path)
        level = below
    return sorted(found)


# -- families of a project ----------------------------------------------------------------


def _plain_family(root: Path, tool: Mapping[str, Any], has_clients: bool) -> Family:
    """The one family of a project without a wrangler config."""
    configured = tool.get("tracking_table")
    return Family(
        name=DEFAULT_FAMILY,
        migrations_dir=root / tool.get("migrations_dir", DEFAULT_MIGRATIONS_DIR),
        rollbacks_dir=root / tool.get("rollbacks_dir", DEFAULT_ROLLBACKS_DIR),
        tracking_table=configured or DEFAULT_TRACKING_TABLE,
        tracking_table_configured=bool(configured),
        binding=None,
        clients=has_clients,
        databases=(),
    )


def implicit_families(
    root: Path,
    tool: Mapping[str, Any],
    wranglers: Sequence[WranglerConfig],
    clients: ClientRegistry | None,
    where: str,
) -> dict[str, Family]:
    if not wranglers:
        return {DEFAULT_FAMILY: _plain_family(root, tool, clients is not None)}
    groups = [g for w in wranglers for g in database_groups(w)]
    if not groups:
        return {DEFAULT_FAMILY: _plain_family(root, tool, clients is not None)}
    check_unambiguous(groups, root)
    if tool.get("migrations_dir") and len(groups) > 1:
        raise ConfigError(_one_dir_for_several(groups, where))
    names = group_names(groups, root)
    owner = _clients_owner(groups, names, clients)
    several = {w.path: sum(1 for g in groups if g.wrangler is w) > 1 for w in wranglers}
    return {
        name: _group_family(name, group, tool, several[group.wrangler.path], name == owner)
        for name, group in zip(names, groups, strict=True)
    }


def _one_dir_for_several(groups: Sequence[DatabaseGroup], where: str) -> str:
    found = "; ".join(
        f"{', '.join(sorted({d.binding for d in g.entries}))} → {g.migrations_dir}" for g in groups
    )
    return (
        f"{where}] migrations_dir is one directory, but the wrangler config has several "
        f"histories ({found}); declare each in [tool.d1check.families.NAME] "
        "(binding, migrations_dir) instead"
    )


def _group_family(
    name: str, group: DatabaseGroup, tool: Mapping[str, Any], several: bool, clients: bool
) -> Family:
    first = group.entries[0]
    configured = tool.get("tracking_table")
    folder = group.wrangler.folder
    rollbacks = folder / tool.get("rollbacks_dir", DEFAULT_ROLLBACKS_DIR)
    migrations = tool.get("migrations_dir")
    return Family(
        name=name,
        migrations_dir=folder / migrations if migrations else group.migrations_dir,
        rollbacks_dir=rollbacks / first.binding.lower() if several else rollbacks,
        tracking_table=configured or first.migrations_table or DEFAULT_TRACKING_TABLE,
        tracking_table_configured=bool(configured),
        binding=first.binding,
        clients=clients,
        databases=group.databases,
        environment_databases=group.environment_databases,
        migrations_pattern=group.migrations_pattern,
        wrangler=group.wrangler,
    )


def _clients_owner(
    groups: Sequence[DatabaseGroup], names: Sequence[str], clients: ClientRegistry | None
) -> str | None:
    """The family the client registry's databases belong to; ConfigError when that is not
    clear (several families, and the clients' databases name none or several of them)."""
    if clients is None:
        return None
    if len(groups) == 1:
        return names[0]
    owners = {
        name
        for name, group in zip(names, groups, strict=True)
        for c in clients.clients
        if group.holds(c.database_name, c.database_id)
    }
    if len(owners) == 1:
        return owners.pop()
    found = f"families {', '.join(sorted(owners))}" if owners else "none of them"
    raise ConfigError(
        f"{clients.path}: the wrangler config has several families ({', '.join(names)}) and the "
        f"client databases match {found} by database_name or database_id; say which family "
        "the clients belong to: [tool.d1check.families.NAME] with binding, migrations_dir "
        "and clients = true"
    )


def check_nested_migrations(families: Mapping[str, Family], root: Path) -> None:
    """A migrations directory with no `*.sql` of its own but subfolders that hold some is never
    checked silently as empty: ConfigError saying what was found and what to configure."""
    dirs = {f.migrations_dir.resolve() for f in families.values()}
    for family in families.values():
        if family.migrations_pattern is not None:
            continue
        nested = [
            p
            for p in nested_sql_files(family.migrations_dir)
            if not any(d in p.resolve().parents for d in dirs - {family.migrations_dir.resolve()})
        ]
        if nested:
            raise ConfigError(_nested_message(family, nested, root))


def _nested_message(family: Family, nested: Sequence[Path], root: Path) -> str:
    rel = _shown(family.migrations_dir, root)
    inner = _shown(family.migrations_dir, family.folder or root)
    examples = ", ".join(_shown(p, root) for p in nested[:3])
    more = f" and {len(nested) - 3} more" if len(nested) > 3 else ""
    where = family.wrangler.path.name if family.wrangler else "wrangler.toml"
    return (
        f"{rel}: no *.sql migrations in the folder itself, but its subfolders hold {examples}"
        f"{more}; wrangler applies only {rel}/*.sql, so nothing would be checked. If these files "
        f"are one history in nested folders (an ORM's layout), set migrations_pattern = "
        f'"{inner}/*/migration.sql" (the files\' own pattern) beside migrations_dir in the '
        f"d1_databases entry of {where}; if each subfolder is the history of another database, "
        "declare one [tool.d1check.families.NAME] with migrations_dir per subfolder"
    )


def _shown(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix() or "."
    except ValueError:
        return str(path)
