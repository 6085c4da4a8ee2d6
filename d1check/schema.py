"""The structural `Schema` model read from SQLite's catalog, and `diff_schemas` between two of them.

Structure comes from PRAGMAs (table_list, table_xinfo, foreign_key_list, index_list,
index_xinfo); SQL text is read only where the catalog has nothing better (CHECK constraints,
collations, generated-column expressions, index expressions and WHERE clauses, triggers, views,
virtual-table arguments), and then compared normalised.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

import apsw

from d1check.engine import D1Database
from d1check.statements import Token, normalize_sql, tokenize

IGNORED_PREFIXES = ("sqlite_", "_cf_", "_d1check_")
IGNORED_NAMES = frozenset({"d1_migrations", "_migrations", "_schema_audit"})
SHADOW_SUFFIXES = {
    "fts5": ("data", "idx", "content", "docsize", "config"),
    "rtree": ("node", "rowid", "parent"),
}


@dataclass(frozen=True)
class Column:
    """One column as PRAGMA table_xinfo sees it, plus what only the CREATE text says."""

    name: str
    type: str
    notnull: bool
    default: str | None
    pk: int  # position in the primary key, 0 when not part of it
    hidden: int  # 0 normal, 1 hidden (virtual tables), 2 generated VIRTUAL, 3 generated STORED
    collate: str | None = None
    generated: str | None = None  # normalised expression of a generated column

    def describe(self) -> str:
        """The column as a short definition, e.g. `TEXT NOT NULL DEFAULT 'x'`."""
        parts = [self.type or "(no type)"]
        if self.pk:
            parts.append("PRIMARY KEY")
        if self.notnull:
            parts.append("NOT NULL")
        if self.default is not None:
            parts.append(f"DEFAULT {self.default}")
        if self.collate:
            parts.append(f"COLLATE {self.collate}")
        if self.generated is not None:
            kind = "STORED" if self.hidden == 3 else "VIRTUAL"
            parts.append(f"AS ({self.generated}) {kind}")
        return " ".join(parts)


@dataclass(frozen=True)
class ForeignKey:
    """A foreign key: `columns` of this table reference `to` of `table`."""

    columns: tuple[str, ...]
    table: str
    to: tuple[str, ...]  # empty when the parent's primary key is meant
    on_update: str
    on_delete: str
    match: str

    def __str__(self) -> str:
        to = f"({', '.join(self.to)})" if self.to else ""
        text = f"({', '.join(self.columns)}) REFERENCES {self.table}{to}"
        if self.on_update != "NO ACTION":
            text += f" ON UPDATE {self.on_update}"
        if self.on_delete != "NO ACTION":
            text += f" ON DELETE {self.on_delete}"
        return text


@dataclass(frozen=True)
class Index:
    """An index created with CREATE INDEX (automatic indexes are table properties)."""

    name: str
    table: str
    columns: tuple[str, ...]  # column names (with DESC/COLLATE) or normalised expressions
    unique: bool
    where: str | None
    origin: str = "c"


@dataclass(frozen=True)
class Table:
    """An ordinary table."""

    name: str
    columns: tuple[Column, ...]
    foreign_keys: tuple[ForeignKey, ...]
    checks: tuple[str, ...]  # normalised CHECK expressions, sorted
    without_rowid: bool
    strict: bool
    unique: tuple[tuple[str, ...], ...] = ()  # UNIQUE constraints (automatic indexes), sorted
    autoincrement: bool = False

    def column(self, name: str) -> Column | None:
        """The column called `name` (case-insensitive), if any."""
        return next((c for c in self.columns if c.name.lower() == name.lower()), None)


@dataclass(frozen=True)
class Trigger:
    """A trigger, compared by its normalised SQL."""

    name: str
    table: str
    sql: str


@dataclass(frozen=True)
class View:
    """A view, compared by its normalised SQL."""

    name: str
    sql: str


@dataclass(frozen=True)
class VirtualTable:
    """A virtual table: its module and normalised arguments (shadow tables are not listed)."""

    name: str
    module: str
    args: tuple[str, ...]


@dataclass(frozen=True)
class Schema:
    """The structure of a database, keyed by object name."""

    tables: Mapping[str, Table] = field(default_factory=dict)
    indexes: Mapping[str, Index] = field(default_factory=dict)
    triggers: Mapping[str, Trigger] = field(default_factory=dict)
    views: Mapping[str, View] = field(default_factory=dict)
    virtual_tables: Mapping[str, VirtualTable] = field(default_factory=dict)

    def fingerprint(self) -> str:
        """A stable SHA-256 of the structure (equal schemas, equal fingerprints)."""
        cached: str | None = self.__dict__.get("_fingerprint")
        if cached is None:
            cached = self._compute_fingerprint()
            object.__setattr__(self, "_fingerprint", cached)
        return cached

    def _compute_fingerprint(self) -> str:
        digest = hashlib.sha256()
        for attr in ("tables", "indexes", "triggers", "views", "virtual_tables"):
            objects: Mapping[str, Any] = getattr(self, attr)
            total = sum(map(_object_digest, objects.values())) % _DIGEST_SPACE
            digest.update(attr.encode() + b"\0" + total.to_bytes(32, "big"))
        return digest.hexdigest()

    def is_empty(self) -> bool:
        """True when the schema holds no object."""
        return not (
            self.tables or self.indexes or self.triggers or self.views or self.virtual_tables
        )


_DIGEST_SPACE = 1 << 256


def _object_digest(obj: object) -> int:
    """The digest of one schema object as a number, kept on the (immutable) object once computed:
    a schema's fingerprint sums them, so the order of its objects does not matter."""
    cached: int | None = obj.__dict__.get("_d1check_digest")
    if cached is None:
        cached = int.from_bytes(hashlib.sha256(repr(obj).encode("utf-8")).digest(), "big")
        object.__setattr__(obj, "_d1check_digest", cached)
    return cached


# ---------------------------------------------------------------- SQL text helpers


def _tokens(sql: str) -> list[Token]:
    return [t for t in tokenize(sql) if t.kind not in ("ws", "comment")]


def _upper(token: Token) -> str:
    return token.text.upper() if token.kind == "word" else ""


def _close(tokens: Sequence[Token], start: int) -> int:
    """Index of the `)` matching the `(` at `start` (or the last token when unbalanced)."""
    depth = 0
    for i in range(start, len(tokens)):
        if tokens[i].text == "(":
            depth += 1
        elif tokens[i].text == ")":
            depth -= 1
            if depth == 0:
                return i
    return len(tokens) - 1


def _split_top(tokens: Sequence[Token]) -> list[list[Token]]:
    parts: list[list[Token]] = [[]]
    depth = 0
    for token in tokens:
        if token.text == "(":
            depth += 1
        elif token.text == ")":
            depth -= 1
        if token.text == "," and depth == 0:
            parts.append([])
        else:
            parts[-1].append(token)
    return [p for p in parts if p]


def _first_group(tokens: Sequence[Token]) -> tuple[list[Token], int]:
    """Tokens inside the first `( … )` and the index of its `)`."""
    start = next((i for i, t in enumerate(tokens) if t.text == "("), len(tokens))
    if start == len(tokens):
        return [], len(tokens)
    end = _close(tokens, start)
    return list(tokens[start + 1 : end]), end


def _norm(tokens: Sequence[Token]) -> str:
    return normalize_sql(" ".join(t.text for t in tokens))


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] in "\"'`[":
        inner = text[1:-1]
        return inner if text[0] == "[" else inner.replace(text[0] * 2, text[0])
    return text


def _groups_after(tokens: Sequence[Token], keyword: str) -> list[str]:
    """Normalised contents of every `( … )` directly after `keyword`."""
    found = []
    for i, token in enumerate(tokens[:-1]):
        if _upper(token) == keyword and tokens[i + 1].text == "(":
            found.append(_norm(tokens[i + 2 : _close(tokens, i + 1)]))
    return found


_TABLE_CONSTRAINTS = frozenset({"CONSTRAINT", "PRIMARY", "UNIQUE", "CHECK", "FOREIGN"})


@dataclass(frozen=True)
class _TableText:
    checks: tuple[str, ...]
    collations: Mapping[str, str]
    generated: Mapping[str, str]
    autoincrement: bool
    without_rowid: bool = False
    strict: bool = False


@functools.lru_cache(maxsize=4096)
def _parse_table_sql(sql: str) -> _TableText:
    """What a CREATE TABLE text says beyond the PRAGMAs."""
    tokens = _tokens(sql)
    body, end = _first_group(tokens)
    options = [_upper(t) for t in tokens[end + 1 :]]
    checks: list[str] = []
    collations: dict[str, str] = {}
    generated: dict[str, str] = {}
    for part in _split_top(body):
        checks.extend(_groups_after(part, "CHECK"))
        if _upper(part[0]) in _TABLE_CONSTRAINTS:
            continue
        name = _unquote(part[0].text).lower()
        for i, token in enumerate(part[:-1]):
            if _upper(token) == "COLLATE":
                collations[name] = _unquote(part[i + 1].text).upper()
        expressions = _groups_after(part, "AS")
        if expressions:
            generated[name] = expressions[0]
    autoincrement = any(_upper(t) == "AUTOINCREMENT" for t in body)
    without_rowid = any(a == "WITHOUT" and b == "ROWID" for a, b in itertools.pairwise(options))
    return _TableText(
        tuple(sorted(checks)),
        collations,
        generated,
        autoincrement,
        without_rowid,
        "STRICT" in options,
    )


def _index_parts(sql: str) -> tuple[list[str], str | None]:
    """The normalised indexed terms and WHERE clause of a CREATE INDEX text."""
    tokens = _tokens(sql)
    on = next((i for i, t in enumerate(tokens) if _upper(t) == "ON"), 0)
    inner, end = _first_group(tokens[on:])
    terms = []
    for part in _split_top(inner):
        if part and _upper(part[-1]) == "ASC":
            part = part[:-1]
        terms.append(_norm(part))
    rest = tokens[on + end + 1 :]
    where = _norm(rest[1:]) if rest and _upper(rest[0]) == "WHERE" else None
    return terms, where


def _virtual_parts(sql: str) -> tuple[str, tuple[str, ...]]:
    tokens = _tokens(sql)
    using = next((i for i, t in enumerate(tokens) if _upper(t) == "USING"), None)
    if using is None or using + 1 >= len(tokens):
        return "", ()
    module = _unquote(tokens[using + 1].text).lower()
    inner, _ = _first_group(tokens[using + 1 :])
    return module, tuple(_norm(p) for p in _split_top(inner))


# ---------------------------------------------------------------- reading the catalog


def is_ignored(name: str, ignore: Iterable[str] = ()) -> bool:
    """True for names d1check never compares: SQLite's, D1's, trackers' and `ignore` patterns."""
    return _is_ignored(name, tuple(ignore))


@functools.lru_cache(maxsize=65_536)
def _is_ignored(name: str, ignore: tuple[str, ...]) -> bool:
    lower = name.lower()
    if lower.startswith(IGNORED_PREFIXES) or lower in IGNORED_NAMES:
        return True
    return any(fnmatchcase(lower, pattern.lower()) for pattern in ignore)


Catalog = tuple[tuple[Any, ...], ...]
"""The rows of `sqlite_schema` (type, name, tbl_name, sql): equal catalogs, equal schemas."""


def read_schema(db: D1Database | apsw.Connection, *, ignore: Iterable[str] = ()) -> Schema:
    """The structural schema of `db` (its `main` database), without ignored objects."""
    return read_schema_and_catalog(db, ignore=ignore)[0]


def read_schema_and_catalog(
    db: D1Database | apsw.Connection,
    *,
    ignore: Iterable[str] = (),
    base: tuple[Catalog, Schema] | None = None,
) -> tuple[Schema, Catalog]:
    """`read_schema`, and the catalog it was read from (every object, ignored ones too).

    `base`, a catalog read earlier from `db` (with the same `ignore`) and its schema, makes the
    read model only the objects that changed since.
    """
    if isinstance(db, D1Database):
        with db.internal() as conn:
            return _read(conn, tuple(ignore), base)
    return _read(db, tuple(ignore), base)


def same_catalog(first: Catalog, second: Catalog) -> bool:
    """Whether two catalogs define the same objects with the same SQL, up to whitespace, comments,
    keyword case and identifier quoting, and the order of the objects, except that triggers on
    each table keep their order (the order SQLite fires them in)."""
    if first == second:
        return True
    if len(first) != len(second):
        return False
    rows, others = set(first), set(second)
    if _normal_rows(rows - others) != _normal_rows(others - rows):
        return False
    return _trigger_order(first) == _trigger_order(second)


def _normal_rows(rows: Iterable[tuple[Any, ...]]) -> list[tuple[str, str, str, str]]:
    return sorted((kind, name, table, _normalized(sql or "")) for kind, name, table, sql in rows)


def _trigger_order(catalog: Catalog) -> list[tuple[str, str]]:
    return sorted(
        ((row[2], row[1]) for row in catalog if row[0] == "trigger"), key=lambda pair: pair[0]
    )


def _rows(conn: apsw.Connection, sql: str, params: tuple[str, ...] = ()) -> list[tuple[Any, ...]]:
    return conn.execute(sql, params).fetchall()


def _read(
    conn: apsw.Connection, ignore: tuple[str, ...], base: tuple[Catalog, Schema] | None = None
) -> tuple[Schema, Catalog]:
    catalog = _rows(conn, "SELECT type, name, tbl_name, sql FROM main.sqlite_schema")
    frozen = tuple(catalog)
    key = (frozenset(catalog), ignore)
    found = _SCHEMAS.get(key)
    if found is None:
        found = _build_changed(conn, catalog, ignore, base or _LAST.get(ignore))
        if found is None:
            found = _build(conn, catalog, _rows(conn, "PRAGMA main.table_list"), ignore)
        if len(_SCHEMAS) >= _SCHEMAS_LIMIT:
            del _SCHEMAS[next(iter(_SCHEMAS))]
        _SCHEMAS[key] = found
    if len(_LAST) > _SCHEMAS_LIMIT:
        _LAST.clear()
    _LAST[ignore] = (frozen, found)
    return found, frozen


# A schema model is a function of the catalog's text (PRAGMA table_list derives from it too): the
# last few are kept, so that reading an unchanged (or restored) catalog again costs one query,
# and a changed catalog is modelled from the last one read, re-reading only the objects whose
# rows differ.
_SCHEMAS: dict[tuple[object, ...], Schema] = {}
_SCHEMAS_LIMIT = 8
_LAST: dict[tuple[str, ...], tuple[Catalog, Schema]] = {}


def _build_changed(
    conn: apsw.Connection,
    catalog: list[tuple[Any, ...]],
    ignore: tuple[str, ...],
    last: tuple[Catalog, Schema] | None,
) -> Schema | None:
    """The model of `catalog` from `last`, an earlier catalog and its model (None when a full
    build is needed)."""
    if last is None or last[1].virtual_tables:
        return None
    changed = set(catalog).symmetric_difference(last[0])
    if len(changed) > len(catalog) // 2 or any(_is_virtual(row) for row in changed):
        return None
    base = last[1]
    affected = {r[1] for r in changed if r[0] == "table"} | {
        r[2] for r in changed if r[0] == "index"
    }
    tables = {n: t for n, t in base.tables.items() if n not in affected}
    indexes = {n: i for n, i in base.indexes.items() if i.table not in affected}
    sql_of = {
        (row[0], row[1]): row[3] or ""
        for row in catalog
        if row[1] in affected or (row[0] == "index" and row[2] in affected)
    }
    index_sql = _index_sql_by_table([r for r in catalog if r[0] == "index" and r[2] in affected])
    for name in affected:
        if ("table", name) not in sql_of or is_ignored(name, ignore):
            continue
        text = _parse_table_sql(sql_of[("table", name)])
        tables[name], table_indexes = _table_model(
            conn, name, sql_of, index_sql.get(name, ()), text.without_rowid, text.strict
        )
        indexes.update({i.name: i for i in table_indexes if not is_ignored(i.name, ignore)})
    kinds = {r[0] for r in changed}
    return Schema(
        tables=dict(sorted(tables.items())),
        indexes=dict(sorted(indexes.items())),
        triggers=_triggers(catalog, ignore) if "trigger" in kinds else base.triggers,
        views=_views(catalog, ignore) if "view" in kinds else base.views,
        virtual_tables={},
    )


def _is_virtual(row: tuple[Any, ...]) -> bool:
    return row[0] == "table" and str(row[3] or "").upper().startswith("CREATE VIRTUAL")


def _build(
    conn: apsw.Connection,
    catalog: list[tuple[Any, ...]],
    listed: list[tuple[Any, ...]],
    ignore: tuple[str, ...],
) -> Schema:
    sql_of = {(row[0], row[1]): row[3] or "" for row in catalog}
    kinds = {row[1]: (row[2], bool(row[4]), bool(row[5])) for row in listed if row[0] == "main"}
    virtual = {
        name: VirtualTable(name, *_virtual_parts(sql_of.get(("table", name), "")))
        for name, (kind, _, _) in kinds.items()
        if kind == "virtual" and not is_ignored(name, ignore)
    }
    shadows = {
        f"{v.name}_{suffix}".lower()
        for v in virtual.values()
        for suffix in SHADOW_SUFFIXES.get(v.module, ())
    }
    tables: dict[str, Table] = {}
    indexes: dict[str, Index] = {}
    index_sql = _index_sql_by_table(catalog)
    for name, (kind, without_rowid, strict) in sorted(kinds.items()):
        if kind != "table" or is_ignored(name, ignore) or name.lower() in shadows:
            continue
        tables[name], table_indexes = _table_model(
            conn, name, sql_of, index_sql.get(name, ()), without_rowid, strict
        )
        indexes.update({i.name: i for i in table_indexes if not is_ignored(i.name, ignore)})
    return Schema(
        tables=tables,
        indexes=dict(sorted(indexes.items())),
        triggers=_triggers(catalog, ignore),
        views=_views(catalog, ignore),
        virtual_tables=dict(sorted(virtual.items())),
    )


def _table_model(
    conn: apsw.Connection,
    name: str,
    sql_of: Mapping[tuple[str, str], str],
    index_sql: tuple[tuple[str, str], ...],
    without_rowid: bool,
    strict: bool,
) -> tuple[Table, tuple[Index, ...]]:
    key = (name, sql_of.get(("table", name), ""), index_sql, without_rowid, strict)
    if key not in _TABLE_MODELS:
        if len(_TABLE_MODELS) > _TABLE_MODELS_LIMIT:
            _TABLE_MODELS.clear()
        _TABLE_MODELS[key] = _read_table(conn, name, sql_of, without_rowid, strict)
    return _TABLE_MODELS[key]


def _triggers(catalog: list[tuple[Any, ...]], ignore: tuple[str, ...]) -> dict[str, Trigger]:
    triggers = {
        row[1]: _trigger(row[1], row[2], row[3] or "")
        for row in catalog
        if row[0] == "trigger" and not is_ignored(row[1], ignore)
        if not is_ignored(row[2], ignore)
    }
    return dict(sorted(triggers.items()))


def _views(catalog: list[tuple[Any, ...]], ignore: tuple[str, ...]) -> dict[str, View]:
    views = {
        row[1]: _view(row[1], row[3] or "")
        for row in catalog
        if row[0] == "view" and not is_ignored(row[1], ignore)
    }
    return dict(sorted(views.items()))


# A table's model is a function of its stored SQL and its indexes' SQL: models are kept by that
# key, so reading the schema after each of N migrations does not re-parse every table N times.
_TableKey = tuple[str, str, tuple[tuple[str, str], ...], bool, bool]
_TABLE_MODELS: dict[_TableKey, tuple[Table, tuple[Index, ...]]] = {}
_TABLE_MODELS_LIMIT = 50_000
_normalized = functools.lru_cache(maxsize=65_536)(normalize_sql)


@functools.lru_cache(maxsize=65_536)
def _trigger(name: str, table: str, sql: str) -> Trigger:
    return Trigger(name, table, _normalized(sql))


@functools.lru_cache(maxsize=65_536)
def _view(name: str, sql: str) -> View:
    return View(name, _normalized(sql))


def _index_sql_by_table(catalog: list[tuple[Any, ...]]) -> dict[str, tuple[tuple[str, str], ...]]:
    found: dict[str, list[tuple[str, str]]] = {}
    for kind, name, table, sql in catalog:
        if kind == "index":
            found.setdefault(table, []).append((name, sql or ""))
    return {table: tuple(sorted(items)) for table, items in found.items()}


def _read_table(
    conn: apsw.Connection,
    name: str,
    sql_of: Mapping[tuple[str, str], str],
    without_rowid: bool,
    strict: bool,
) -> tuple[Table, tuple[Index, ...]]:
    text = _parse_table_sql(sql_of.get(("table", name), ""))
    table_indexes, unique = _read_indexes(conn, name, sql_of)
    table = Table(
        name=name,
        columns=_read_columns(conn, name, text),
        foreign_keys=_read_foreign_keys(conn, name),
        checks=text.checks,
        without_rowid=without_rowid,
        strict=strict,
        unique=unique,
        autoincrement=text.autoincrement,
    )
    return table, tuple(table_indexes)


def _read_columns(conn: apsw.Connection, table: str, text: _TableText) -> tuple[Column, ...]:
    rows = _rows(conn, "SELECT * FROM pragma_table_xinfo(?)", (table,))
    columns = []
    for _cid, name, type_, notnull, default, pk, hidden in rows:
        columns.append(
            Column(
                name=name,
                type=" ".join(str(type_).split()).upper(),
                notnull=bool(notnull),
                default=normalize_sql(default) if default is not None else None,
                pk=int(pk),
                hidden=int(hidden),
                collate=text.collations.get(name.lower()),
                generated=text.generated.get(name.lower()) if hidden in (2, 3) else None,
            )
        )
    return tuple(columns)


def _read_foreign_keys(conn: apsw.Connection, table: str) -> tuple[ForeignKey, ...]:
    rows = _rows(conn, "SELECT * FROM pragma_foreign_key_list(?)", (table,))
    grouped: dict[int, list[tuple[Any, ...]]] = {}
    for row in rows:
        grouped.setdefault(row[0], []).append(row)
    keys = []
    for members in grouped.values():
        members.sort(key=lambda r: r[1])
        first = members[0]
        keys.append(
            ForeignKey(
                columns=tuple(r[3] for r in members),
                table=first[2],
                to=tuple(r[4] for r in members if r[4] is not None),
                on_update=first[5],
                on_delete=first[6],
                match=first[7],
            )
        )
    return tuple(sorted(keys, key=str))


def _read_indexes(
    conn: apsw.Connection, table: str, sql_of: Mapping[tuple[str, str], str]
) -> tuple[list[Index], tuple[tuple[str, ...], ...]]:
    indexes: list[Index] = []
    unique: list[tuple[str, ...]] = []
    for _seq, name, is_unique, origin, _partial in _rows(
        conn, "SELECT * FROM pragma_index_list(?)", (table,)
    ):
        keys = [r for r in _rows(conn, "SELECT * FROM pragma_index_xinfo(?)", (name,)) if r[5]]
        if origin == "u":
            unique.append(tuple(str(r[2]) for r in keys))
        if origin != "c":
            continue
        terms, where = _index_parts(sql_of.get(("index", name), ""))
        columns = tuple(_index_term(r, terms) for r in keys)
        indexes.append(Index(name, table, columns, bool(is_unique), where, origin))
    return indexes, tuple(sorted(unique))


def _index_term(row: tuple[Any, ...], terms: Sequence[str]) -> str:
    seqno, cid, name, desc, coll = row[:5]
    if cid == -2:
        return terms[seqno] if seqno < len(terms) else "<expression>"
    term = str(name) if cid >= 0 else "rowid"
    if coll and str(coll).upper() != "BINARY":
        term += f" COLLATE {str(coll).upper()}"
    return term + (" DESC" if desc else "")


# ---------------------------------------------------------------- differences


@dataclass(frozen=True)
class Difference:
    """One structural difference: `str()` reads "table users: column email: type TEXT → VARCHAR"."""

    kind: str
    name: str
    property: str
    before: object
    after: object

    def __str__(self) -> str:
        head = f"{self.kind} {self.name}" + (f": {self.property}" if self.property else "")
        if self.before is None:
            return f"{head}: added" + (f" ({_show(self.after)})" if self.property else "")
        if self.after is None:
            return f"{head}: removed" + (f" (was {_show(self.before)})" if self.property else "")
        return f"{head} {_show(self.before)} → {_show(self.after)}"


def _show(value: object) -> str:
    if value == "":
        return "(none)"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, tuple):
        return "[" + "; ".join(_show(v) for v in value) + "]" if value else "[]"
    return str(value)


def _column_diffs(name: str, before: Table, after: Table) -> list[Difference]:
    diffs = []
    for col in before.columns:
        new = after.column(col.name)
        if new is None:
            diffs.append(Difference("table", name, f"column {col.name}", col.describe(), None))
            continue
        for prop in ("type", "notnull", "default", "pk", "hidden", "collate", "generated"):
            old_value, new_value = getattr(col, prop), getattr(new, prop)
            if old_value != new_value:
                label = f"column {col.name}: {prop}"
                if old_value is None or new_value is None:
                    old_value, new_value = old_value or "(none)", new_value or "(none)"
                diffs.append(Difference("table", name, label, old_value, new_value))
    for col in after.columns:
        if before.column(col.name) is None:
            diffs.append(Difference("table", name, f"column {col.name}", None, col.describe()))
    common_before = [c.name.lower() for c in before.columns if after.column(c.name)]
    common_after = [c.name.lower() for c in after.columns if before.column(c.name)]
    if common_before != common_after:
        diffs.append(
            Difference("table", name, "column order", tuple(common_before), tuple(common_after))
        )
    return diffs


def _set_diffs(
    kind: str, name: str, prop: str, before: Iterable[Any], after: Iterable[Any]
) -> list[Difference]:
    old, new = {str(x): x for x in before}, {str(x): x for x in after}
    removed = [Difference(kind, name, prop, text, None) for text in old if text not in new]
    added = [Difference(kind, name, prop, None, text) for text in new if text not in old]
    return removed + added


def _table_diffs(name: str, before: Table, after: Table) -> list[Difference]:
    diffs = _column_diffs(name, before, after)
    diffs += _set_diffs("table", name, "foreign key", before.foreign_keys, after.foreign_keys)
    diffs += _set_diffs("table", name, "check", before.checks, after.checks)
    before_unique = [f"UNIQUE ({', '.join(u)})" for u in before.unique]
    after_unique = [f"UNIQUE ({', '.join(u)})" for u in after.unique]
    diffs += _set_diffs("table", name, "constraint", before_unique, after_unique)
    for prop in ("without_rowid", "strict", "autoincrement"):
        if getattr(before, prop) != getattr(after, prop):
            diffs.append(
                Difference("table", name, prop, getattr(before, prop), getattr(after, prop))
            )
    return diffs


def _object_diffs(kind: str, name: str, before: Any, after: Any) -> list[Difference]:
    diffs = []
    for prop in before.__dataclass_fields__:
        if prop == "name":
            continue
        old_value, new_value = getattr(before, prop), getattr(after, prop)
        if old_value != new_value:
            if old_value is None or new_value is None:
                old_value, new_value = old_value or "(none)", new_value or "(none)"
            diffs.append(Difference(kind, name, prop, old_value, new_value))
    return diffs


_KINDS = (
    ("table", "tables"),
    ("virtual table", "virtual_tables"),
    ("view", "views"),
    ("index", "indexes"),
    ("trigger", "triggers"),
)


def diff_schemas(before: Schema, after: Schema) -> list[Difference]:
    """Every structural difference from `before` to `after`, objects in name order."""
    diffs: list[Difference] = []
    if before is after:
        return diffs
    for kind, attr in _KINDS:
        old: Mapping[str, Any] = getattr(before, attr)
        new: Mapping[str, Any] = getattr(after, attr)
        for name in sorted(changed_names(old, new)):
            if name not in new:
                diffs.append(Difference(kind, name, "", kind, None))
            elif name not in old:
                diffs.append(Difference(kind, name, "", None, kind))
            elif kind == "table":
                diffs += _table_diffs(name, old[name], new[name])
            else:
                diffs += _object_diffs(kind, name, old[name], new[name])
    return diffs


def changed_names(before: Mapping[str, Any], after: Mapping[str, Any]) -> set[str]:
    """Names whose object was added, removed or differs between two mappings of one kind."""
    names = {n for n, obj in before.items() if (new := after.get(n)) is not obj and new != obj}
    return names | (after.keys() - before.keys())


def format_diff(diffs: Sequence[Difference], *, limit: int = 40) -> str:
    """A compact block for people, one difference a line (at most `limit` lines)."""
    if not diffs:
        return "  (no structural differences)"
    lines = [f"  {d}" for d in diffs[:limit]]
    if len(diffs) > limit:
        lines.append(f"  … and {len(diffs) - limit} more")
    return "\n".join(lines)
