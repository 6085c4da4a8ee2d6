"""What a remote database holds, read through the query API: its applied migrations and schema.

The schema is read from `sqlite_schema` (not with export: export refuses FTS5 tables and is slow),
rebuilt in a scratch database and modelled by the schema module like any other.
"""

from __future__ import annotations

from dataclasses import dataclass

from d1check.engine import D1Database
from d1check.errors import RemoteError
from d1check.remote import D1Client
from d1check.schema import Schema, read_schema
from d1check.tracking import AUDIT_TABLE, TrackingStyle

SCHEMA_SQL = (
    "SELECT type, name, tbl_name, sql FROM sqlite_schema "
    "WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '\\_cf\\_%' ESCAPE '\\' "
    "ORDER BY rowid"
)
_ORDER = {"table": 0, "index": 1, "view": 2, "trigger": 3}


@dataclass(frozen=True)
class LiveState:
    """A remote database's applied migrations, recorded checksums and schema."""

    applied: tuple[str, ...]
    checksums: dict[str, str]
    schema: Schema


def _missing_table(error: RemoteError) -> bool:
    return "no such table" in str(error)


def applied_migrations(client: D1Client, db_id: str, style: TrackingStyle) -> list[str]:
    """Names in the tracking table, in order applied (empty if there is no tracking table)."""
    try:
        results = client.query(
            db_id,
            style.select_applied_sql(),
            write=False,
            purpose=f"reading the tracking table {style.table}",
        )
    except RemoteError as error:
        if _missing_table(error):
            return []
        raise
    return [str(row["name"]) for row in results[0].results] if results else []


def recorded_checksums(client: D1Client, db_id: str) -> dict[str, str]:
    """Checksums d1check recorded in `_schema_audit`, by migration name."""
    sql = (
        f"SELECT migration_name, checksum FROM \"{AUDIT_TABLE}\" WHERE action = 'apply' ORDER BY id"
    )
    try:
        results = client.query(db_id, sql, write=False, purpose=f"reading {AUDIT_TABLE}")
    except RemoteError as error:
        if _missing_table(error):
            return {}
        raise
    rows = results[0].results if results else []
    return {str(r["migration_name"]): str(r["checksum"]) for r in rows}


def remote_schema(client: D1Client, db_id: str, ignore: list[str]) -> Schema:
    """The structural schema of a remote database."""
    results = client.query(db_id, SCHEMA_SQL, write=False, purpose="reading the schema")
    rows = results[0].results if results else []
    return schema_from_rows(rows, ignore)


def schema_from_rows(rows: list[dict[str, object]], ignore: list[str]) -> Schema:
    """Rebuild `sqlite_schema` rows in a scratch database and model them.

    SQLite's own objects (`sqlite_sequence`) and FTS shadow tables are created by the statements
    that need them, so their rows are skipped.
    """
    rows = [r for r in rows if r["sql"] and not str(r["name"]).lower().startswith("sqlite_")]
    scratch = D1Database()
    try:
        with scratch.internal() as conn:
            virtual = [r for r in rows if str(r["sql"]).upper().startswith("CREATE VIRTUAL")]
            for row in virtual:
                conn.execute(str(row["sql"]))
            existing = {str(r[0]) for r in conn.execute("SELECT name FROM sqlite_schema")}
            ordered = sorted(rows, key=lambda r: _ORDER.get(str(r["type"]), 9))
            for row in ordered:
                if row in virtual or str(row["name"]) in existing:
                    continue
                conn.execute(str(row["sql"]))
        return read_schema(scratch, ignore=ignore)
    finally:
        scratch.close()


def live_state(client: D1Client, db_id: str, style: TrackingStyle) -> LiveState:
    """Applied migrations, recorded checksums and schema of a remote database."""
    return LiveState(
        tuple(applied_migrations(client, db_id, style)),
        recorded_checksums(client, db_id),
        remote_schema(client, db_id, [style.table]),
    )
