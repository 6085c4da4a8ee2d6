"""Families without configuration: which `d1_databases` entries of a wrangler config share one
history of migrations.

Each entry (by binding) is a family with its own `migrations_dir`; entries whose directories are
the same share a family; an `[env.*]` entry joins the family of its binding (or of its own
`migrations_dir` when it sets one, as wrangler then reads that directory for it). A database
that two families would both migrate is refused: d1check never guesses which history it has.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from d1check.errors import ConfigError
from d1check.wrangler import WranglerConfig, WranglerDatabase

__all__ = [
    "DatabaseGroup",
    "check_unambiguous",
    "database_groups",
    "group_names",
    "nested_sql_files",
]

DEFAULT_MIGRATIONS_DIR = "migrations"


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


def _shown(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix() or "."
    except ValueError:
        return str(path)


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
