"""Reading `wrangler d1 export` files and sqlite3 `.schema` output into a `Schema`.

The file is run in a scratch database with the D1 authorizer off and foreign keys off: exports
do not always re-import cleanly, and only their structure (and the tracking table's rows) matter.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import apsw

from d1check.engine import D1Database, d1_error_message
from d1check.errors import MigrationFileError, SQLError
from d1check.schema import Schema, read_schema
from d1check.statements import Statement, Token, split_statements, tokenize

TRACKING_TABLES = ("d1_migrations", "_migrations")
_CREATE_WORDS = frozenset(
    {"TEMP", "TEMPORARY", "UNIQUE", "VIRTUAL", "TABLE", "INDEX", "VIEW", "TRIGGER"}
)
_SKIPPED_FIRST_WORDS = frozenset({"BEGIN", "COMMIT", "END", "ROLLBACK", "SAVEPOINT", "RELEASE"})


@dataclass(frozen=True)
class Export:
    """An export file read: its schema and, when it lists them, the migrations it had applied."""

    path: Path
    schema: Schema
    applied: tuple[str, ...] | None  # names as stored in the tracking table ("0001_init.sql")


def _words(sql: str, n: int) -> list[Token]:
    found: list[Token] = []
    for token in tokenize(sql):
        if token.kind in ("ws", "comment"):
            continue
        found.append(token)
        if len(found) == n:
            break
    return found


def _name(token: Token) -> str:
    text = token.text
    if len(text) >= 2 and text[0] in "\"'`[":
        return text[1:-1]
    return text


def _upper(token: Token) -> str:
    return token.text.upper() if token.kind == "word" else ""


def _created_name(tokens: Sequence[Token]) -> str | None:
    """The object name of `CREATE … [IF NOT EXISTS] name`."""
    rest = [t for t in tokens[1:] if _upper(t) not in _CREATE_WORDS]
    while rest and _upper(rest[0]) in ("IF", "NOT", "EXISTS"):
        rest = rest[1:]
    return _name(rest[0]) if rest else None


def _target(tokens: Sequence[Token]) -> str | None:
    """The table of `INSERT [OR x] INTO t`, `REPLACE INTO t`, `DELETE FROM t`, `UPDATE t`."""
    for i, token in enumerate(tokens[:-1]):
        if _upper(token) in ("INTO", "FROM") or (i == 0 and _upper(token) == "UPDATE"):
            return _name(tokens[i + 1])
    return None


def _plan(statement: Statement, data: bool, keep: frozenset[str]) -> str:
    """How to treat one statement: "run", "try" (errors ignored) or "skip"."""
    tokens = _words(statement.sql, 8)
    if not tokens:
        return "skip"
    first = _upper(tokens[0])
    if first in _SKIPPED_FIRST_WORDS:
        return "skip"
    if first == "PRAGMA":
        return "try"
    if first == "CREATE":
        name = (_created_name(tokens) or "").lower()
        return "skip" if name.startswith("sqlite_") else "run"
    if first in ("INSERT", "REPLACE", "DELETE", "UPDATE"):
        table = (_target(tokens) or "").lower()
        if table.startswith("sqlite_"):
            return "try"
        return "try" if data or table in keep else "skip"
    return "run"


def _read_text(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise MigrationFileError(path, f"cannot read the export: {exc.strerror}") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise MigrationFileError(
            path, f"not UTF-8 (byte {exc.start}): re-export the database with wrangler d1 export"
        ) from None


def load_export(
    path: Path, *, data: bool = True, tracking_tables: Iterable[str] = TRACKING_TABLES
) -> D1Database:
    """A scratch in-memory database built from an export file.

    Statements that create SQLite's own tables are skipped; PRAGMAs and data statements that fail
    are ignored; a failing CREATE raises `SQLError` with the file and line. With `data=False` only
    the rows of the tracking tables are loaded.
    """
    text = _read_text(path)
    keep = frozenset(t.lower() for t in tracking_tables)
    db = D1Database()
    try:
        with db.internal() as conn:
            conn.execute("PRAGMA foreign_keys = OFF")
            try:
                conn.execute("BEGIN")
                for statement in split_statements(text):
                    _apply(conn, statement, _plan(statement, data, keep), path)
                conn.execute("COMMIT")
            finally:
                if not conn.getautocommit():
                    conn.execute("ROLLBACK")
                conn.execute("PRAGMA foreign_keys = ON")
    except BaseException:
        db.close()
        raise
    return db


def _apply(conn: apsw.Connection, statement: Statement, plan: str, path: Path) -> None:
    if plan == "skip":
        return
    conn.execute("SAVEPOINT export_statement")
    try:
        for _row in conn.execute(statement.sql):
            pass
    except apsw.Error as exc:
        conn.execute("ROLLBACK TO export_statement")
        conn.execute("RELEASE export_statement")
        if plan == "try":
            return
        raise SQLError(
            d1_error_message(exc, statement.sql),
            source=str(path),
            line=statement.line,
            statement=statement.sql,
            hint="the export does not re-create its schema; export it again, or fix this statement",
        ) from None
    conn.execute("RELEASE export_statement")


def _applied(db: D1Database, tracking_tables: Sequence[str]) -> tuple[str, ...] | None:
    with db.internal() as conn:
        present = {
            str(row[0]).lower(): str(row[0])
            for row in conn.execute("SELECT name FROM sqlite_schema WHERE type = 'table'")
        }
        for table in tracking_tables:
            name = present.get(table.lower())
            if name is None:
                continue
            quoted = '"' + name.replace('"', '""') + '"'
            rows = conn.execute(f"SELECT name FROM {quoted} ORDER BY rowid").fetchall()
            if rows:
                return tuple(str(row[0]) for row in rows)
    return None


def read_export(
    path: Path,
    *,
    tracking_table: str = "d1_migrations",
    ignore: Iterable[str] = (),
) -> Export:
    """Read a `wrangler d1 export` file (with or without data) or sqlite3 `.schema` output.

    `applied` lists the tracking table's names (`tracking_table`, else `d1_migrations`, else
    `_migrations`) when the export holds its rows, else None.
    """
    path = Path(path)
    tracking = tuple(dict.fromkeys((tracking_table, *TRACKING_TABLES)))
    db = load_export(path, data=False, tracking_tables=tracking)
    try:
        schema = read_schema(db, ignore=(*ignore, tracking_table))
        return Export(path=path, schema=schema, applied=_applied(db, tracking))
    finally:
        db.close()
