"""Rows in the tables: synthesizing varied, valid rows in every empty table, and fingerprints of
rows."""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import apsw

from d1check.engine import D1Database
from d1check.schema import Column, ForeignKey, Schema, Table, VirtualTable

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


ROWS_PER_TABLE = 4
"""How many rows the synthesizer gives each empty table."""
SYNTHETIC_INT_BASE = 1_000_001
"""Synthesized integer keys start here, far above the ids hand-written seed data uses."""
SEED_FIX = "add a statement for it to a seed file: [tool.d1check] seed_files = [...]"
"""What to do about a table the synthesizer cannot fill."""

_ROW_BUDGET = 40
_PARENT_OF_ROW = ((0, 1, 0, 1), (0, 0, 1, 1))  # row i of a child references parent row
# _PARENT_OF_ROW[0][i] through its first foreign key (two parents have children, the others
# none), _PARENT_OF_ROW[1][i] through the others (the pairs of a junction table differ)


@dataclass(frozen=True)
class Coverage:
    """Which tables held rows before a migration ran: `filled` of `total` (virtual tables
    included), and every table left empty with the reason (the constraint that defeated the
    synthesizer, in SQLite's words)."""

    filled: int
    total: int
    empty: tuple[tuple[str, str], ...] = ()

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Coverage:
        """The coverage `dataclasses.asdict` gave, read back from JSON."""
        empty = tuple((str(t), str(r)) for t, r in data.get("empty", ()))
        return cls(int(data["filled"]), int(data["total"]), empty)


def coverage_of(schema: Schema, empty: Mapping[str, str]) -> Coverage:
    """The coverage of a database whose only empty tables are those of `empty`."""
    total = len(schema.tables) + len(schema.virtual_tables)
    return Coverage(total - len(empty), total, tuple(sorted(empty.items())))


def ensure_rows(
    db: D1Database, schema: Schema, *, only: Collection[str] | None = None
) -> list[str]:
    """Give every empty table (of `only`, when given) rows that satisfy its constraints; the
    names of the tables left empty (see `synthesize_rows` for why)."""
    return list(synthesize_rows(db, schema, only=only))


def synthesize_rows(
    db: D1Database, schema: Schema, *, only: Collection[str] | None = None
) -> dict[str, str]:
    """Give every empty table (of `only`, when given; virtual tables included) `ROWS_PER_TABLE`
    rows that satisfy its constraints, varied as production rows are.

    Parents are filled first and children reference their rows; tables in a foreign-key cycle
    are filled together with deferred foreign keys. Keys are never NULL and come from a range
    hand-written data does not use (integers from `SYNTHETIC_INT_BASE`, text as `d1c00000-…`
    UUIDs). Values depend only on table and column names, the schema and the rows already in
    the database, so the same history gives the same rows in any process. Returns, for each
    table left empty, the reason: the SQLite error of the last attempt (a seed file can fill it).
    """
    wanted = None if only is None else {name.lower() for name in only}
    with db.internal() as conn:
        filler = _Filler(conn, schema)
        todo = {
            table.name
            for table in schema.tables.values()
            if (wanted is None or table.name.lower() in wanted) and not _has_rows(conn, table.name)
        }
        for group in _groups_parents_first(schema) if todo else []:
            targets = [t for t in group if t.name in todo]
            if targets:
                filler.fill_group(group, targets)
        for virtual in schema.virtual_tables.values():
            if wanted is None or virtual.name.lower() in wanted:
                filler.fill_virtual(virtual)
    return filler.empty


def count_rows(conn: apsw.Connection, table: str) -> int:
    """How many rows `table` holds."""
    row = conn.execute(f"SELECT count(*) FROM {quote_ident(table)}").fetchall()[0]
    return cast(int, row[0])


def _has_rows(conn: apsw.Connection, table: str) -> bool:
    return bool(conn.execute(f"SELECT 1 FROM {quote_ident(table)} LIMIT 1").fetchall())


def _groups_parents_first(schema: Schema) -> list[list[Table]]:
    """The tables in groups that reference each other in a cycle (strongly connected components
    of the foreign-key graph), parents' groups before their children's."""
    tables = {name.lower(): table for name, table in schema.tables.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[Table]] = []

    def visit(name: str) -> None:
        index[name] = low[name] = len(index)
        stack.append(name)
        on_stack.add(name)
        for fk in tables[name].foreign_keys:
            parent = fk.table.lower()
            if parent not in tables:
                continue
            if parent not in index:
                visit(parent)
                low[name] = min(low[name], low[parent])
            elif parent in on_stack:
                low[name] = min(low[name], index[parent])
        if low[name] == index[name]:
            group: list[Table] = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(tables[member])
                if member == name:
                    break
            groups.append(sorted(group, key=lambda t: t.name))

    for name in sorted(tables):
        if name not in index:
            visit(name)
    return groups


@dataclass(frozen=True)
class _Own:
    """A value copied from another column of the same row (a row referencing itself)."""

    column: str


_OMIT = object()


class _CycleFailed(Exception):
    pass


@dataclass(frozen=True)
class _Link:
    """A column that is part of a foreign key: its position in it, and the parent columns."""

    fk: ForeignKey
    position: int
    to: tuple[str, ...]
    order: int  # the foreign key's place among the table's


def _parent_row(link: _Link, i: int) -> int:
    """Which parent row (in key order) row `i` of the child references through `link`."""
    return _PARENT_OF_ROW[min(link.order, 1)][i % ROWS_PER_TABLE]


class _Filler:
    """One round of synthesis over a database: what was made, what could not be."""

    def __init__(self, conn: apsw.Connection, schema: Schema) -> None:
        self.conn = conn
        self.schema = schema
        self.tables = {name.lower(): table for name, table in schema.tables.items()}
        self.made: dict[str, list[dict[str, object]]] = {}
        self.empty: dict[str, str] = {}

    @functools.cached_property
    def referenced(self) -> dict[str, set[str]]:
        """Per table (lower case), the columns other tables' foreign keys reference."""
        return _referenced_columns(self.schema)

    def fill_group(self, group: list[Table], targets: list[Table]) -> None:
        """Fill the empty `targets` of one group (a cycle: in one transaction, foreign keys
        deferred to its end)."""
        cyclic = len(group) > 1
        if not cyclic:
            self._fill_table(targets[0], pending=set())
            return
        pending = {t.name.lower() for t in targets}
        try:
            with self.conn:
                self.conn.execute("PRAGMA defer_foreign_keys = ON")
                for table in targets:
                    self._fill_table(table, pending=pending)
                    pending.discard(table.name.lower())
                self._check_cycle(targets)
        except _CycleFailed as failure:
            for table in targets:
                self.made.pop(table.name.lower(), None)
                self.empty[table.name] = str(failure)

    def _check_cycle(self, targets: list[Table]) -> None:
        for table in targets:
            if table.name in self.empty:
                raise _CycleFailed(self.empty[table.name])
            found = self.conn.execute(f"PRAGMA foreign_key_check({quote_ident(table.name)})")
            violation = found.fetchall()
            if violation:
                raise _CycleFailed(
                    f"FOREIGN KEY constraint failed: {table.name} references {violation[0][2]} "
                    "in a cycle of foreign keys"
                )

    def _fill_table(self, table: Table, *, pending: set[str]) -> None:
        plan = _plan(table, self.schema, self.referenced.get(table.name.lower(), set()))
        parents = {id(link.fk): self._parent_rows(table, link) for link in plan.links.values()}
        missing = self._missing_parent(table, plan, parents, pending)
        if missing:
            self.empty[table.name] = missing
            return
        made: list[dict[str, object]] = []
        self.made[table.name.lower()] = made
        error = ""
        for i in range(ROWS_PER_TABLE):
            options = [self._options(plan, column, i, parents, pending) for column in plan.columns]
            row, error = _insert_row(self.conn, plan, options)
            if row is not None:
                made.append(row)
            elif not made:
                break
        if not made:
            self.empty[table.name] = error

    def _missing_parent(
        self,
        table: Table,
        plan: _Plan,
        parents: Mapping[int, list[tuple[object, ...]]],
        pending: set[str],
    ) -> str:
        for column in plan.columns:
            link = plan.links.get(column.name.lower())
            if link is None or column.name.lower() not in plan.required:
                continue
            parent = link.fk.table
            if parents[id(link.fk)] or parent.lower() in (*pending, table.name.lower()):
                continue
            owner = self.tables.get(parent.lower())
            why = self.empty.get(owner.name) if owner is not None else "no such table"
            return f"{column.name} references {parent}, which has no rows" + (
                f" ({parent}: {why})" if why else ""
            )
        return ""

    def _parent_rows(self, table: Table, link: _Link) -> list[tuple[object, ...]]:
        parent = link.fk.table
        if parent.lower() == table.name.lower() or not link.to:
            return []
        columns = ", ".join(quote_ident(c) for c in link.to)
        present = " AND ".join(f"{quote_ident(c)} IS NOT NULL" for c in link.to)
        try:
            return self.conn.execute(
                f"SELECT {columns} FROM {quote_ident(parent)} WHERE {present} "
                f"ORDER BY {columns} LIMIT {ROWS_PER_TABLE}"
            ).fetchall()
        except apsw.Error:
            return []

    def _options(
        self,
        plan: _Plan,
        column: Column,
        i: int,
        parents: Mapping[int, list[tuple[object, ...]]],
        pending: set[str],
    ) -> list[object]:
        link = plan.links.get(column.name.lower())
        if link is None:
            return _value_options(plan, column, i)
        nullable = column.name.lower() not in plan.required
        rows = parents[id(link.fk)]
        value = self._linked_value(plan, link, i, rows, pending)
        if value is _OMIT:
            return [None]
        others = [row[link.position] for row in rows] if len(link.fk.columns) == 1 else []
        return _unique_list([value, *others, *([None] if nullable else [])])

    def _linked_value(
        self,
        plan: _Plan,
        link: _Link,
        i: int,
        rows: list[tuple[object, ...]],
        pending: set[str],
    ) -> object:
        parent = link.fk.table.lower()
        target = link.to[link.position] if link.to else ""
        if parent == plan.table.name.lower():
            made = self.made.get(parent, [])
            if i == 0 or not made or not target:
                return _Own(target) if target else _OMIT
            return made[0].get(target.lower())
        if rows:
            return rows[_parent_row(link, i) % len(rows)][link.position]
        if parent in pending and parent in self.tables and target:
            owner = self.tables[parent]
            parent_plan = _plan(owner, self.schema, self.referenced.get(parent, set()))
            column = owner.column(target)
            if column is not None:
                return _value_options(parent_plan, column, _parent_row(link, i))[0]
        return _OMIT

    def fill_virtual(self, virtual: VirtualTable) -> None:
        """Rows in a virtual table itself (never its shadow tables)."""
        conn = self.conn
        content = _external_content(virtual)
        if content:
            self._fill_external(virtual, content)
            return
        try:
            if _has_rows(conn, virtual.name):
                return
        except apsw.Error as unreadable:
            self.empty[virtual.name] = str(unreadable)
            return
        columns = [
            r[1]
            for r in conn.execute(f"PRAGMA table_xinfo({quote_ident(virtual.name)})")
            if not r[6]
        ]
        error = ""
        for i in range(ROWS_PER_TABLE):
            values = _virtual_values(virtual, columns, i)
            error = _try_insert(conn, virtual.name, ["rowid", *columns], values) or ""
            if error and i == 0:
                break
        if error and not _has_rows(conn, virtual.name):
            self.empty[virtual.name] = error

    def _fill_external(self, virtual: VirtualTable, content: str) -> None:
        """An external-content FTS5 table holds its content table's rows: its index is rebuilt
        when the synthesizer just filled that table."""
        try:
            if not _has_rows(self.conn, content):
                self.empty[virtual.name] = f"its content table {content} has no rows"
                return
        except apsw.Error as unreadable:
            self.empty[virtual.name] = str(unreadable)
            return
        if not self.made.get(content.lower()):
            return
        name = quote_ident(virtual.name)
        try:
            with self.conn:
                self.conn.execute(f"INSERT INTO {name}({name}) VALUES ('rebuild')")
        except apsw.Error as error:
            self.empty[virtual.name] = str(error)


def _external_content(virtual: VirtualTable) -> str:
    """The content table of an external-content FTS5 table ("" for other tables)."""
    if virtual.module.lower() != "fts5":
        return ""
    for arg in virtual.args:
        key, _, value = arg.partition("=")
        if key.strip().lower() == "content":
            return value.strip().strip("'\"")
    return ""


_FTS_TEXTS = (
    "sample text for search",
    'it\'s "quoted" «naïve» café 日本語 ✓',
    "sample text for search",
    "",
)


def _virtual_values(virtual: VirtualTable, columns: list[str], i: int) -> list[object]:
    rowid = SYNTHETIC_INT_BASE + i
    if virtual.module.lower() == "fts5":
        return [rowid, *(_FTS_TEXTS[i] for _ in columns)]
    return [rowid, *(k % 2 for k in range(len(columns)))]


def _referenced_columns(schema: Schema) -> dict[str, set[str]]:
    """Per table (lower case), the columns (lower case) a foreign key of some table references."""
    found: dict[str, set[str]] = {}
    for table in schema.tables.values():
        for fk in table.foreign_keys:
            parent = schema.tables.get(fk.table) or _table_named(schema, fk.table)
            to = fk.to or (_primary_key(parent) if parent is not None else ())
            found.setdefault(fk.table.lower(), set()).update(c.lower() for c in to)
    return found


def _table_named(schema: Schema, name: str) -> Table | None:
    return next((t for n, t in schema.tables.items() if n.lower() == name.lower()), None)


def _primary_key(table: Table) -> tuple[str, ...]:
    return tuple(c.name for c in sorted(table.columns, key=lambda c: c.pk) if c.pk)


@dataclass(frozen=True)
class _Plan:
    """What the synthesizer needs to know of a table."""

    table: Table
    columns: tuple[Column, ...]  # the columns an INSERT may name (not generated, not hidden)
    distinct: frozenset[str]  # lower-case names that need a different value in each row
    required: frozenset[str]  # lower-case names that are never NULL
    links: Mapping[str, _Link]
    unique_indexes: Mapping[str, tuple[str, ...]]  # lower-case index name: columns it reads


def _plan(table: Table, schema: Schema, referenced: set[str]) -> _Plan:
    columns = tuple(c for c in table.columns if not c.hidden)
    keys = {c.name.lower() for c in table.columns if c.pk}
    distinct = set(keys) | referenced
    unique_indexes = {
        index.name.lower(): tuple(_index_columns(index.columns, columns))
        for index in schema.indexes.values()
        if index.unique and index.table.lower() == table.name.lower()
    }
    unique_sets = [tuple(c.lower() for c in u) for u in table.unique]
    unique_sets += list(unique_indexes.values())
    for unique in sorted(unique_sets, key=len):
        if unique and not distinct.intersection(unique):
            distinct.add(unique[-1])
    required = keys | referenced | {c.name.lower() for c in columns if c.notnull}
    parent_tables = {t.name.lower(): t for t in schema.tables.values()}
    links: dict[str, _Link] = {}
    for order, fk in enumerate(table.foreign_keys):
        parent = parent_tables.get(fk.table.lower())
        to = fk.to or (_primary_key(parent) if parent is not None else ())
        to = tuple(to) if len(to) == len(fk.columns) else ()
        for position, name in enumerate(fk.columns):
            links.setdefault(name.lower(), _Link(fk, position, to, order))
    return _Plan(table, columns, frozenset(distinct), frozenset(required), links, unique_indexes)


def _index_columns(terms: Sequence[str], columns: Sequence[Column]) -> list[str]:
    """The table's columns an index's terms (names or expressions) read, in order."""
    found: list[str] = []
    for term in terms:
        for column in columns:
            if _mentions(term, column.name) and column.name.lower() not in found:
                found.append(column.name.lower())
    return found


def _mentions(text: str, name: str) -> bool:
    pattern = r"(?<![\w$])" + re.escape(name) + r"(?![\w$])"
    return re.search(pattern, text, re.IGNORECASE) is not None


# --- values -------------------------------------------------------------------------------


def _kind(declared: str) -> str:
    upper = declared.upper()
    if "INT" in upper:
        return "int"
    if any(word in upper for word in ("CHAR", "CLOB", "TEXT")):
        return "text"
    if "BLOB" in upper:
        return "blob"
    if any(word in upper for word in ("REAL", "FLOA", "DOUB")):
        return "real"
    if not upper or upper == "ANY":
        return "any"
    if "BOOL" in upper:
        return "bool"
    if "DATE" in upper or "TIME" in upper:
        return "date"
    return "num"


_BASE: dict[str, tuple[object, ...]] = {
    "int": (1, 2, 0),
    "bool": (1, 0),
    "real": (1.5, 0.0),
    "num": (1, 1.5, "sample text"),
    "text": ("sample text", "2025-01-01T00:00:00Z", "a@example.com"),
    "any": ("sample text", 1),
    "blob": (b"\x01\x02",),
    "date": ("2025-01-01T00:00:00Z", "2025-01-01", 1735689600),
}
_EMPTY: dict[str, object] = {
    "int": 0,
    "bool": 0,
    "real": 0.0,
    "num": 0,
    "text": "",
    "any": "",
    "blob": b"",
    "date": "1970-01-01T00:00:00Z",
}
_ODD: dict[str, object] = {
    "int": 9_007_199_254_740_991,
    "bool": 1,
    "real": 12345.678,
    "num": 9_007_199_254_740_991,
    "text": 'it\'s "quoted" «naïve» café 日本語 ✓',
    "any": 'it\'s "quoted" «naïve» café 日本語 ✓',
    "blob": bytes(range(16)),
    "date": "2038-01-19T03:14:07Z",
}


def _value_options(plan: _Plan, column: Column, i: int) -> list[object]:
    """The values to try, best first, for `column` in the table's row number `i`."""
    kind = "any" if plan.table.strict and column.type.upper() == "ANY" else _kind(column.type)
    name = column.name.lower()
    required = name in plan.required
    checks = [c for c in plan.table.checks if _mentions(c, column.name)]
    token = _token(plan.table.name, column.name, i)
    if name in plan.distinct:
        values = _distinct_values(column.name, kind, i, token, checks)
        return _unique_list(values)
    base = [*_check_values(checks, column.name, kind, i, distinct=False)]
    base += [*_hinted(column.name, kind), *_default_value(column.default), *_BASE[kind]]
    first: list[object] = []
    if i == 1:
        first = [_EMPTY[kind]] if required else [None]
    elif i == 3:
        first = [_ODD[kind], *base[1:2]]
    tail: list[object] = [*_distinct_values(column.name, kind, i, token, [])[:1]]
    if not required:
        tail.append(None)
    if column.default is not None:
        tail.append(_OMIT)
    return _unique_list([*first, *base, *tail])


def _distinct_values(
    column: str, kind: str, i: int, token: str, checks: Sequence[str]
) -> list[object]:
    number = SYNTHETIC_INT_BASE + i
    from_checks = _check_values(checks, column, kind, i, distinct=True)
    uuid = f"d1c00000-{token[0:4]}-4{token[4:7]}-8{token[7:10]}-{token[10:22]}"
    if kind in ("int", "num", "bool"):
        return [number, *from_checks, uuid]
    if kind == "real":
        return [number + 0.5, *from_checks]
    if kind == "blob":
        return [b"d1c" + bytes.fromhex(token[:16]), *from_checks]
    hinted = _hinted_distinct(column, token, i)
    text = [*hinted, uuid, *from_checks, f"{column}-{i + 1}-{token[:6]}"]
    return [*text, number] if kind in ("any", "date") else text


def _token(table: str, column: str, i: int) -> str:
    return hashlib.sha256(f"{table}\0{column}\0{i}".encode()).hexdigest()


_DATE_WORDS = ("date", "time", "_at", "_on", "day", "expires", "since", "until")
_JSON_WORDS = ("json", "meta", "data", "settings", "payload", "config", "options", "attrs", "tags")
_URL_WORDS = ("url", "uri", "link", "website", "href", "avatar", "image")


def _hinted(column: str, kind: str) -> list[object]:
    """Values that a column's name suggests (`email`, `…_at`, `…_json`)."""
    name = column.lower()
    if kind in ("int", "num", "bool"):
        if name.startswith(("is_", "has_", "can_")) or kind == "bool":
            return [1, 0]
        if any(word in name for word in _DATE_WORDS):
            return [1735689600]
        return []
    if kind not in ("text", "any", "date"):
        return []
    if "email" in name:
        return ["ada@example.com"]
    if any(word in name for word in _URL_WORDS):
        return ["https://example.com/a"]
    if any(word in name for word in _JSON_WORDS):
        return ["{}", "[]"]
    if kind == "date" or any(word in name for word in _DATE_WORDS):
        return ["2025-01-01T00:00:00Z", "2025-01-01 00:00:00", "2025-01-01"]
    return []


def _hinted_distinct(column: str, token: str, i: int) -> list[object]:
    name = column.lower()
    if "email" in name:
        return [f"user.{i + 1}.{token[:6]}@example.com"]
    if any(word in name for word in _URL_WORDS):
        return [f"https://example.com/{token[:6]}/{i + 1}"]
    if any(word in name for word in _DATE_WORDS):
        return [f"2025-01-0{i + 1}T00:00:00Z"]
    return []


def _default_value(default: str | None) -> list[object]:
    """The value of a constant DEFAULT (a number or a string literal); none otherwise."""
    if default is None:
        return []
    text = default.strip().strip("()").strip()
    if re.fullmatch(r"-?\d+", text):
        return [int(text)]
    if re.fullmatch(r"-?\d+\.\d*", text):
        return [float(text)]
    if len(text) >= 2 and text[0] == text[-1] == "'":
        return [text[1:-1].replace("''", "'")]
    return []


_STRING = re.compile(r"'((?:[^']|'')*)'")
_NUMBER = re.compile(r"(?<![\w.'])(-?\d+(?:\.\d+)?)(?![\w.'])")
_PATTERN = re.compile(r"(NOT\s+)?(LIKE|GLOB)\s*'((?:[^']|'')*)'", re.IGNORECASE)


def _check_values(
    checks: Sequence[str], column: str, kind: str, i: int, *, distinct: bool
) -> list[object]:
    """Values that a column's CHECK constraints suggest: their literals (rotated by row, so that
    rows differ), strings matching LIKE/GLOB patterns and lengths, JSON and dates."""
    values: list[object] = []
    row = i if distinct else None
    for check in checks:
        sizes = _length_sizes(check, column)
        patterns = _pattern_values(check, row, sizes)
        values += patterns if patterns else [_sized(column, row, size) for size in sizes]
        lower = check.lower()
        if "json" in lower:
            values += ["{}", "[]", '{"a": 1}']
        if any(word in lower for word in ("date", "time", "julianday")):
            values += ["2025-01-01T00:00:00Z", "2025-01-01 00:00:00", "2025-01-01"]
        strings = [s.replace("''", "'") for s in _STRING.findall(_without_patterns(check))]
        numbers = _numbers(check)
        if distinct:
            strings = strings[i % len(strings) :] + strings[: i % len(strings)] if strings else []
            numbers = [n + i for n in numbers]
        if kind == "text":
            values += [*strings, *(str(n) for n in numbers)]
        elif kind in ("any", "date"):
            values += [*strings, *numbers]
        else:
            values += [*numbers, *strings]
        if "upper" in lower:
            values = [v.upper() if isinstance(v, str) else v for v in values]
    return values


def _without_patterns(check: str) -> str:
    return _PATTERN.sub(" ", check)


def _numbers(check: str) -> list[int | float]:
    found: list[int | float] = []
    for text in _NUMBER.findall(_STRING.sub(" ", check)):
        if "." in text:
            found += [float(text), float(text) + 1, float(text) - 1]
        else:
            found += [int(text), int(text) + 1, int(text) - 1]
    return found


def _pattern_values(check: str, i: int | None, sizes: Sequence[int]) -> list[object]:
    """Strings that match the check's LIKE and GLOB patterns (of the lengths it asks for, where
    a wildcard allows); a different one for each row `i` (None: the same for every row)."""
    values: list[object] = []
    for negated, operator, pattern in _PATTERN.findall(check):
        if negated:
            continue
        pattern = pattern.replace("''", "'")
        fill = "x" if i is None else f"x{i}"
        if operator.upper() == "LIKE":
            one = "x" if i is None else str(i % 10)
            example = pattern.replace("%", "\0").replace("_", one)
        else:
            example = _glob_example(pattern, i).replace("*", "\0")
        values.append(example.replace("\0", fill))
        values += [_padded(example, size, fill) for size in sizes if "\0" in example]
    return values


def _padded(example: str, size: int, fill: str) -> str:
    """`example` with its wildcards (NUL) filled so that it is `size` characters long."""
    fixed = len(example.replace("\0", ""))
    room = max(size - fixed, 0)
    text = (fill * (room // max(len(fill), 1) + 1))[:room]
    return example.replace("\0", text, 1).replace("\0", "")


def _glob_example(pattern: str, i: int | None) -> str:
    """A string matching the GLOB `pattern` (`*` kept, for the caller to fill)."""
    out: list[str] = []
    k = 0
    while k < len(pattern):
        char = pattern[k]
        if char == "?":
            out.append("x" if i is None else str(i % 10))
        elif char == "[":
            end = pattern.find("]", k + 2)
            if end < 0:
                out.append(char)
            else:
                out.append(_class_example(pattern[k + 1 : end], i or 0))
                k = end
        else:
            out.append(char)
        k += 1
    return "".join(out)


def _class_example(members: str, i: int) -> str:
    """A character in the GLOB class `[members]` (the `i`-th, so rows differ)."""
    if members.startswith("^"):
        excluded = _class_members(members[1:])
        return next(c for c in "x0-_aZ." if c not in excluded)
    chosen = _class_members(members)
    return chosen[i % len(chosen)] if chosen else "x"


def _class_members(members: str) -> str:
    out: list[str] = []
    k = 0
    while k < len(members):
        if k + 2 < len(members) and members[k + 1] == "-":
            out += [chr(c) for c in range(ord(members[k]), ord(members[k + 2]) + 1)]
            k += 3
        else:
            out.append(members[k])
            k += 1
    return "".join(out)


_LENGTH = re.compile(
    r"length\s*\(\s*(?P<col>[\w\"$`\[\]]+)\s*\)\s*(?:(?P<op>>=|<=|!=|<>|==|=|>|<)\s*(?P<n>\d+)"
    r"|BETWEEN\s+(?P<lo>\d+)\s+AND\s+(?P<hi>\d+))",
    re.IGNORECASE,
)


def _length_sizes(check: str, column: str) -> list[int]:
    """The lengths of `column` that the check's `length(column) …` comparisons allow."""
    sizes: list[int] = []
    for match in _LENGTH.finditer(check):
        if match["col"].strip('"`[]').lower() != column.lower():
            continue
        if match["lo"] is not None:
            sizes.append(int(match["lo"]))
        else:
            n, op = int(match["n"]), match["op"]
            sizes.append({">": n + 1, "<": max(n - 1, 0)}.get(op, n))
    return sizes


def _sized(column: str, i: int | None, size: int) -> str:
    """A string of `size` characters (different for each row `i`)."""
    seed = "x" if i is None else hashlib.sha256(f"{column}{i}".encode()).hexdigest()
    return (seed * (size // len(seed) + 1))[:size]


def _unique_list(values: Sequence[object]) -> list[object]:
    seen: set[tuple[str, object]] = set()
    out: list[object] = []
    for value in values:
        key = (type(value).__name__, value if not isinstance(value, _Own) else value.column)
        if value is _OMIT:
            key = ("omit", None)
        if key not in seen:
            seen.add(key)
            out.append(value)
    return out


# --- inserting ----------------------------------------------------------------------------


def _insert_row(
    conn: apsw.Connection, plan: _Plan, options: list[list[object]]
) -> tuple[dict[str, object] | None, str]:
    """Insert one row, trying the options of each column (best first) where SQLite's error
    points; the row inserted (by lower-case column name), or None and the last error."""
    names = [c.name for c in plan.columns]
    chosen = [0] * len(options)
    error = ""
    for _ in range(_ROW_BUDGET):
        values = _resolved(names, [opts[k] for opts, k in zip(options, chosen, strict=True)])
        failure = _try_insert(conn, plan.table.name, names, values)
        if failure is None:
            return {n.lower(): v for n, v in zip(names, values, strict=True)}, ""
        error = failure
        if failure.startswith("CHECK constraint failed") and _repair(conn, plan, options, chosen):
            continue
        blamed = _blamed(failure, plan)
        if failure.startswith("CHECK constraint failed"):
            blamed = _failing_checks(conn, plan, values) or blamed
        if not _advance(chosen, options, blamed):
            break
    plain = _resolved(names, _plain_row(plan, options))
    if _try_insert(conn, plan.table.name, names, plain) is None:
        return {n.lower(): v for n, v in zip(names, plain, strict=True)}, ""
    return None, error


def _plain_row(plan: _Plan, options: list[list[object]]) -> list[object]:
    """The plainest row, tried when no combination of varied values went in (a trigger or an
    expression that reads the row, such as `json_extract(new.properties, …)`, may want exactly
    the column's DEFAULT): each column's DEFAULT, else NULL where allowed, else its first
    option (keys keep their distinct values)."""
    row: list[object] = []
    for column, opts in zip(plan.columns, options, strict=True):
        name = column.name.lower()
        if name in plan.distinct or name in plan.links:
            row.append(opts[0])
        elif column.default is not None:
            row.append(_OMIT)
        elif name not in plan.required:
            row.append(None)
        else:
            row.append(opts[0])
    return row


def _resolved(names: list[str], values: list[object]) -> list[object]:
    by_name = {n.lower(): v for n, v in zip(names, values, strict=True)}
    return [by_name.get(v.column.lower()) if isinstance(v, _Own) else v for v in values]


def _advance(chosen: list[int], options: list[list[object]], blamed: list[int]) -> bool:
    """Move to the next combination of the blamed columns' options (an odometer); False when
    every combination was tried."""
    for k in blamed:
        if chosen[k] + 1 < len(options[k]):
            chosen[k] += 1
            return True
        chosen[k] = 0
    return False


def _blamed(error: str, plan: _Plan) -> list[int]:
    """The columns (positions) SQLite's error points at; every column when it names none."""
    names = [c.name.lower() for c in plan.columns]
    detail = error.partition(":")[2] if ":" in error else error
    index = re.search(r"index '([^']+)'", detail)
    if index:
        detail = " ".join(plan.unique_indexes.get(index[1].lower(), ()))
    blamed = [k for k, name in enumerate(names) if _mentions(detail, name)]
    if not blamed and "CHECK" in error:
        blamed = [
            k for k, name in enumerate(names) if any(_mentions(c, name) for c in plan.table.checks)
        ]
    if not blamed and "FOREIGN KEY" in error:
        blamed = [k for k, name in enumerate(names) if name in plan.links]
    return blamed or list(range(len(names)))


def _repair(
    conn: apsw.Connection, plan: _Plan, options: list[list[object]], chosen: list[int]
) -> bool:
    """Make the first CHECK that the chosen values fail hold by changing one of its columns to
    another of its options, so that fewer CHECKs fail than before (CHECKs that tie several
    columns together: `stage_type IN (…) AND is_terminal = 1`); True when such a change was
    made. Cheaper and surer than the odometer where many columns and CHECKs meet."""
    names = [c.name for c in plan.columns]

    def row(picks: list[int]) -> list[object]:
        return _resolved(names, [opts[k] for opts, k in zip(options, picks, strict=True)])

    failing = _unmet_checks(conn, plan, row(chosen))
    if not failing:
        return False
    for k, name in enumerate(names):
        if not _mentions(failing[0], name):
            continue
        for j in range(len(options[k])):
            trial = [*chosen[:k], j, *chosen[k + 1 :]]
            if j != chosen[k] and len(_unmet_checks(conn, plan, row(trial))) < len(failing):
                chosen[k] = j
                return True
    nulled = list(chosen)  # all of its nullable columns NULL at once (`a IS NULL AND b IS NULL`)
    for k, name in enumerate(names):
        if _mentions(failing[0], name) and None in options[k]:
            nulled[k] = options[k].index(None)
    if nulled != chosen and len(_unmet_checks(conn, plan, row(nulled))) < len(failing):
        chosen[:] = nulled
        return True
    return False


def _check_verdicts(
    conn: apsw.Connection, plan: _Plan, values: list[object]
) -> list[tuple[str, bool | None]]:
    """Each CHECK constraint of the table with whether `values` meet it, as SQLite evaluates it
    (a NULL result meets it); None when it cannot be evaluated on them (malformed JSON …)."""
    names = [c.name for c in plan.columns]
    row = ", ".join(f"? AS {quote_ident(name)}" for name in names)
    bound = [None if v is _OMIT else v for v in values]
    verdicts: list[tuple[str, bool | None]] = []
    for check in plan.table.checks:
        try:
            found = conn.execute(f"SELECT ({check}) FROM (SELECT {row})", bound).fetchall()
        except apsw.Error:
            verdicts.append((check, None))
            continue
        verdicts.append((check, not found or found[0][0] is None or bool(found[0][0])))
    return verdicts


def _unmet_checks(conn: apsw.Connection, plan: _Plan, values: list[object]) -> list[str]:
    """The CHECK constraints of the table that `values` fail (or cannot be evaluated on)."""
    return [check for check, met in _check_verdicts(conn, plan, values) if not met]


def _failing_checks(conn: apsw.Connection, plan: _Plan, values: list[object]) -> list[int]:
    """The columns (positions) read by the CHECK constraints that `values` fail, as SQLite
    evaluates them."""
    names = [c.name for c in plan.columns]
    blamed: list[int] = []
    for check, met in _check_verdicts(conn, plan, values):
        if met is False:
            blamed += [k for k, n in enumerate(names) if _mentions(check, n) and k not in blamed]
    return blamed


def _try_insert(
    conn: apsw.Connection, table: str, columns: list[str], values: list[object]
) -> str | None:
    """Insert one row in a savepoint; None when it went in, else SQLite's error."""
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
    except apsw.Error as error:
        return str(error)
    return None


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
