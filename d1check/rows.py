"""Rows in the tables: synthesizing at least one valid row per table, and fingerprints of rows."""

from __future__ import annotations

import hashlib
import itertools
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import cast

import apsw

from d1check.engine import D1Database
from d1check.schema import Schema, Table

_MAX_ATTEMPTS = 24


@dataclass(frozen=True)
class TableRows:
    """How many rows a table holds and a digest of their values over `columns`.

    Two fingerprints are equal when the tables hold the same rows, in any order and under any
    rowids. `exact`, when known, also covers each row's identity (its rowid; the primary key of a
    WITHOUT ROWID table is among its values): equal exact digests mean equal contents.
    """

    count: int
    digest: str
    columns: tuple[str, ...]
    exact: str = field(default="", compare=False)


RowFingerprint = Mapping[str, TableRows]
_ROWID_NAMES = ("_rowid_", "rowid", "oid")


def quote_ident(name: str) -> str:
    """A quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def table_rows(
    conn: apsw.Connection,
    table: str,
    columns: Sequence[str] | None = None,
    *,
    rowid: bool | None = None,
) -> TableRows:
    """Count and digest the rows of `table` over `columns` (all stored columns by default).

    With `rowid` (True for a rowid table, False for a WITHOUT ROWID one) and all columns, the
    result also carries the `exact` digest.
    """
    if columns is None:
        columns = [r[1] for r in conn.execute(f"PRAGMA table_info({quote_ident(table)})")]
    else:
        rowid = None
    cols = tuple(sorted(columns))
    if not cols:
        return TableRows(count_rows(conn, table), "", cols)
    select = ", ".join(quote_ident(c) for c in cols)
    alias = _rowid_alias(cols) if rowid else None
    if alias is None:
        rows = conn.execute(f"SELECT {select} FROM {quote_ident(table)}").fetchall()
        encoded = sorted(_encoded(row) for row in rows)
        digest = _digest(encoded)
        return TableRows(len(rows), digest, cols, digest if rowid is False else "")
    rows = conn.execute(
        f"SELECT {alias}, {select} FROM {quote_ident(table)} ORDER BY {alias}"
    ).fetchall()
    values = [_encoded(row[1:]) for row in rows]
    identified = [f"{row[0]}:{text}" for row, text in zip(rows, values, strict=True)]
    return TableRows(len(rows), _digest(sorted(values)), cols, _digest(identified))


def rows_over(
    columns: Sequence[str], rows: Sequence[Sequence[object]], over: Sequence[str]
) -> TableRows:
    """The fingerprint `table_rows` gives over the columns `over`, from `rows` read earlier with
    `columns`."""
    cols = tuple(sorted(over))
    positions = [list(columns).index(c) for c in cols]
    encoded = sorted(_encoded([row[i] for i in positions]) for row in rows)
    return TableRows(len(rows), _digest(encoded) if cols else "", cols)


def _rowid_alias(columns: Sequence[str]) -> str | None:
    """A name that means the rowid in a table with `columns` (None when each is a column)."""
    taken = {c.lower() for c in columns}
    return next((name for name in _ROWID_NAMES if name not in taken), None)


def _encoded(values: Iterable[object]) -> str:
    """One row's values as the text its fingerprint digests."""
    return repr(tuple(_typed(v) for v in values))


def _digest(lines: Sequence[str]) -> str:
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()[:16]


def fingerprint(db: D1Database, schema: Schema) -> dict[str, TableRows]:
    """Row fingerprints of every ordinary table of `schema`."""
    with db.internal() as conn:
        return {name: table_rows(conn, name) for name in schema.tables}


def _typed(value: object) -> object:
    if isinstance(value, float) and value.is_integer():
        return ("f", value)
    return value


def ensure_rows(
    db: D1Database, schema: Schema, *, only: Collection[str] | None = None
) -> list[str]:
    """Give every empty table (of `only`, when given) at least one row that satisfies its
    constraints.

    Tables are filled parents first, so foreign keys point at real rows. Returns the names of the
    tables for which no valid row could be made (their constraints defeat the synthesizer; a seed
    file can fill them instead).
    """
    wanted = None if only is None else set(only)
    failed: list[str] = []
    with db.internal() as conn:
        for table in _parents_first(schema):
            if wanted is not None and table.name not in wanted:
                continue
            if count_rows(conn, table.name) == 0 and not _insert_one(conn, table):
                failed.append(table.name)
    return failed


def count_rows(conn: apsw.Connection, table: str) -> int:
    """How many rows `table` holds."""
    row = conn.execute(f"SELECT count(*) FROM {quote_ident(table)}").fetchall()[0]
    return cast(int, row[0])


def _parents_first(schema: Schema) -> list[Table]:
    ordered: list[Table] = []
    seen: set[str] = set()

    def visit(table: Table, stack: frozenset[str]) -> None:
        if table.name in seen or table.name in stack:
            return
        for fk in table.foreign_keys:
            parent = schema.tables.get(fk.table)
            if parent is not None and parent.name != table.name:
                visit(parent, stack | {table.name})
        seen.add(table.name)
        ordered.append(table)

    for table in schema.tables.values():
        visit(table, frozenset())
    return ordered


def _insert_one(conn: apsw.Connection, table: Table) -> bool:
    columns = [c for c in table.columns if not c.hidden]
    choices = [_candidates(conn, table, c.name) for c in columns]
    for attempt, values in enumerate(itertools.product(*choices)):
        if attempt >= _MAX_ATTEMPTS:
            break
        if _try_insert(conn, table.name, [c.name for c in columns], list(values)):
            return True
    return False


_OMIT = object()


def _candidates(conn: apsw.Connection, table: Table, column: str) -> list[object]:
    col = next(c for c in table.columns if c.name == column)
    parent = _parent_value(conn, table, column)
    if parent is not _OMIT:
        return [parent]
    literals = _check_literals(table, column)
    typed = _typed_values(col.type)
    if col.pk and "INT" in col.type.upper() and sum(c.pk > 0 for c in table.columns) == 1:
        return [_OMIT]
    preferred: list[object] = []
    if col.default is not None:
        preferred.append(_OMIT)
    elif not col.notnull and not literals:
        preferred.append(None)
    fallback: list[object] = [None] if not col.notnull and literals else []
    return [*preferred, *literals, *fallback, *typed][:6] or [_OMIT]


def _parent_value(conn: apsw.Connection, table: Table, column: str) -> object:
    for fk in table.foreign_keys:
        if column not in fk.columns:
            continue
        target = fk.to[fk.columns.index(column)] if fk.to else None
        ref = quote_ident(target) if target else "rowid"
        if fk.table == table.name:
            return None
        try:
            rows = conn.execute(f"SELECT {ref} FROM {quote_ident(fk.table)} LIMIT 1").fetchall()
        except apsw.Error:
            return None
        return rows[0][0] if rows else None
    return _OMIT


_LITERAL = re.compile(r"'((?:[^']|'')*)'|(-?\d+(?:\.\d+)?)")


def _check_literals(table: Table, column: str) -> list[object]:
    values: list[object] = []
    for check in table.checks:
        if column.lower() not in check.lower():
            continue
        for text, number in _LITERAL.findall(check):
            found = [text.replace("''", "'")] if not number else _around(number)
            values += [v for v in found if v not in values]
    return values


def _around(text: str) -> list[object]:
    """A number from a CHECK and its successor (`age > 17` needs 18)."""
    if "." in text:
        return [float(text), float(text) + 1]
    return [int(text), int(text) + 1]


def _typed_values(declared: str) -> list[object]:
    upper = declared.upper()
    if "INT" in upper:
        return [1, 2, 0]
    if any(word in upper for word in ("CHAR", "CLOB", "TEXT")):
        return ["sample", "2025-01-01T00:00:00Z", "a@example.com"]
    if "BLOB" in upper:
        return [b"\x00"]
    if any(word in upper for word in ("REAL", "FLOA", "DOUB")):
        return [1.5, 0.0]
    if any(word in upper for word in ("DATE", "TIME")):
        return ["2025-01-01T00:00:00Z"]
    if "BOOL" in upper:
        return [1, 0]
    return ["sample", 1]


def _try_insert(
    conn: apsw.Connection, table: str, columns: list[str], values: list[object]
) -> bool:
    pairs = [(c, v) for c, v in zip(columns, values, strict=True) if v is not _OMIT]
    names = ", ".join(quote_ident(c) for c, _ in pairs)
    marks = ", ".join("?" for _ in pairs)
    sql = (
        f"INSERT INTO {quote_ident(table)} ({names}) VALUES ({marks})"
        if pairs
        else f"INSERT INTO {quote_ident(table)} DEFAULT VALUES"
    )
    try:
        with conn:
            conn.execute(sql, [v for _, v in pairs])
    except apsw.Error:
        return False
    return True


def changed_tables(before: RowFingerprint, after: RowFingerprint) -> list[str]:
    """Tables whose rows differ between two fingerprints (present in both)."""
    return [name for name in before if name in after and before[name] != after[name]]


def lost_rows(before: RowFingerprint, after: Mapping[str, int]) -> dict[str, tuple[int, int]]:
    """Tables that hold fewer rows afterwards: name → (before, after)."""
    return {
        name: (rows.count, after[name])
        for name, rows in before.items()
        if name in after and after[name] < rows.count
    }


def counts(db: D1Database, tables: Iterable[str]) -> dict[str, int]:
    """Row counts of the named tables."""
    with db.internal() as conn:
        return {t: count_rows(conn, t) for t in tables}
