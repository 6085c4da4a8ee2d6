"""`d1check pull`: a remote database's schema as a file (for the production-schema check), and
its data as an export.

The schema is read from `sqlite_schema` through the query API (export refuses FTS5 tables and is
slow); the tracking table's rows go with it so the production check can name what is pending.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from d1check.errors import RemoteError
from d1check.remote import D1Client
from d1check.targets import Target
from d1check.tracking import quote

SCHEMA_QUERY = (
    "SELECT type, name, tbl_name, sql FROM sqlite_schema "
    "WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '\\_cf\\_%' ESCAPE '\\' "
    "AND name NOT LIKE '\\_d1check\\_%' ESCAPE '\\' "
    "ORDER BY rowid"
)
_ORDER = {"table": 0, "index": 1, "view": 2, "trigger": 3}


def file_stem(name: str) -> str:
    """A target name usable as a file name."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def literal(value: object) -> str:
    """A SQL literal for a value read through the API."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, int | float):
        return repr(value)
    return quote(str(value))


def _shadow(row: dict[str, object], virtual: list[str]) -> bool:
    name = str(row["name"])
    return row["type"] == "table" and any(name.startswith(v + "_") for v in virtual)


def create_statements(rows: list[dict[str, object]]) -> list[str]:
    """The CREATE statements of `sqlite_schema` rows, tables first, shadow tables left out."""
    virtual = [str(r["name"]) for r in rows if str(r["sql"]).upper().startswith("CREATE VIRTUAL")]
    ordered = sorted(rows, key=lambda r: _ORDER.get(str(r["type"]), 9))
    return [str(r["sql"]) + ";" for r in ordered if not _shadow(r, virtual)]


def tracking_inserts(client: D1Client, db_id: str, table: str) -> list[str]:
    """INSERT statements for the rows of the tracking table (none when it does not exist)."""
    try:
        results = client.query(db_id, f'SELECT * FROM "{table}" ORDER BY id', write=False)
    except RemoteError as error:
        if "no such table" in str(error):
            return []
        raise
    rows = results[0].results if results else []
    lines = []
    for row in rows:
        columns = ", ".join(f'"{c}"' for c in row)
        values = ", ".join(literal(v) for v in row.values())
        lines.append(f'INSERT INTO "{table}" ({columns}) VALUES ({values});')
    return lines


def schema_sql(client: D1Client, target: Target) -> str:
    """The schema of a remote database as SQL, with its tracking rows."""
    db_id = target.database_id or client.database_id(target.database_name)
    results = client.query(db_id, SCHEMA_QUERY, write=False)
    rows = results[0].results if results else []
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    lines = [
        f"-- Schema of {target.database_name} ({target.name}), read by `d1check pull` at {stamp}",
        "PRAGMA defer_foreign_keys=TRUE;",
        *create_statements(rows),
        *tracking_inserts(client, db_id, target.tracking_table),
    ]
    return "\n".join(lines) + "\n"


def pull_schema(client: D1Client, target: Target, path: Path) -> Path:
    """Write the schema of `target` to `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(schema_sql(client, target), encoding="utf-8")
    return path


def pull_data(client: D1Client, target: Target, path: Path) -> Path:
    """Export the whole database (schema and rows) to `path`."""
    db_id = target.database_id or client.database_id(target.database_name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(client.export(db_id, no_data=False), encoding="utf-8")
    return path
