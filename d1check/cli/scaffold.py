"""`d1check new`: the next numbered migration and its rollback, from the packaged templates."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.resources import files
from pathlib import Path
from string import Template

from d1check.config import Family
from d1check.discovery import MigrationSet, discover
from d1check.errors import ConfigError

DEFAULT_WIDTH = 4


@dataclass(frozen=True)
class NewMigration:
    """The files `d1check new` wrote."""

    migration: Path
    rollback: Path


def slug(name: str) -> str:
    """`"Add review fields"` → `"add_review_fields"`; ConfigError when nothing is left."""
    text = re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_").lower()
    if not text:
        raise ConfigError(
            f"migration name {name!r} has no letters or digits; name it for what it does, "
            "e.g. `d1check new add_review_fields`"
        )
    return text


def next_version(migrations: MigrationSet) -> str:
    """The next number, as wide as the existing files (the widest, when they are mixed)."""
    numbered = [m for m in migrations.migrations if m.number is not None and m.version]
    width = max((len(m.version) for m in numbered), default=DEFAULT_WIDTH)
    top = max((m.number or 0 for m in numbered), default=0)
    return str(top + 1).zfill(width)


def _template(name: str) -> Template:
    return Template(files("d1check").joinpath("templates", name).read_text(encoding="utf-8"))


def _display(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def create_migration(family: Family, name: str, root: Path) -> NewMigration:
    """Write `NNNN_<name>.sql` and `NNNN_rollback.sql`; ConfigError if either exists."""
    migrations = discover(family.migrations_dir, family.rollbacks_dir, family.migrations_pattern)
    version = next_version(migrations)
    stem = f"{version}_{slug(name)}"
    migration = family.migrations_dir / f"{stem}.sql"
    rollback = family.rollbacks_dir / f"{version}_rollback.sql"
    for path in (migration, rollback):
        if path.exists():
            raise ConfigError(f"{path} exists already; remove it or pick another name")
    values = {
        "name": stem,
        "version": version,
        "title": name.strip(),
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "migration_path": _display(migration, root),
        "rollback_path": _display(rollback, root),
    }
    family.migrations_dir.mkdir(parents=True, exist_ok=True)
    family.rollbacks_dir.mkdir(parents=True, exist_ok=True)
    migration.write_text(_template("migration.sql").substitute(values), encoding="utf-8")
    rollback.write_text(_template("rollback.sql").substitute(values), encoding="utf-8")
    return NewMigration(migration, rollback)
