"""Rewriting the local databases: `d1check reset` and loading pulled data (`pull --data`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from d1check.config import Config, Family
from d1check.discovery import read_sql_file
from d1check.engine import D1Database
from d1check.export import TRACKING_TABLES, load_export
from d1check.local import LocalResult, apply_local, local_database_path

SIDE_FILES = ("-wal", "-shm", "-journal")


@dataclass(frozen=True)
class ResetResult:
    """What `reset` did: the migrations applied per family and the seed files run."""

    applied: tuple[LocalResult, ...]
    seeded: tuple[Path, ...]
    seed_database: Path | None


def database_files(path: Path) -> list[Path]:
    """A SQLite file and its -wal/-shm/-journal companions."""
    return [path, *(path.with_name(path.name + suffix) for suffix in SIDE_FILES)]


def remove_database(path: Path) -> None:
    """Delete a local database file and its companions (missing ones are fine)."""
    for file in database_files(path):
        file.unlink(missing_ok=True)


def reset_local(config: Config, *, git_commit: str | None = None) -> ResetResult:
    """Every local database rebuilt: deleted, fully migrated with tracking rows, then seeded.

    Seed files (`seed_files`) run on the first family's local database, each in one transaction.
    """
    seeds = config.seed_paths()
    for family in config.families.values():
        remove_database(local_database_path(config, family))
    applied = tuple(apply_local(config, git_commit=git_commit))
    if not seeds:
        return ResetResult(applied, (), None)
    path = local_database_path(config, config.default_family)
    db = D1Database(path)
    try:
        for seed in seeds:
            db.run(read_sql_file(seed).statements, source=str(seed))
    finally:
        db.close()
    return ResetResult(applied, tuple(seeds), path)


def load_into_local(config: Config, family: Family, dump: Path) -> Path:
    """Replace the family's local database with the contents of an export (schema and rows)."""
    tracking = tuple(dict.fromkeys((family.tracking_table, *TRACKING_TABLES)))
    db = load_export(dump, data=True, tracking_tables=tracking)
    try:
        image = db.to_bytes()
    finally:
        db.close()
    path = local_database_path(config, family)
    remove_database(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(image)
    return path
