"""What a statement does, read from its tokens: drops, renames, deletes, pragmas, transactions."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass

from d1check.statements import Statement, first_keywords, tokenize

TRANSACTION_WORDS = frozenset({"BEGIN", "COMMIT", "END", "ROLLBACK", "SAVEPOINT", "RELEASE"})


@dataclass(frozen=True)
class Word:
    """A significant token: `value` is upper-cased for bare words and unquoted for identifiers."""

    kind: str
    value: str
    raw: str


@dataclass(frozen=True)
class Effect:
    """One thing a statement does to the schema or the rows, as far as its text says."""

    action: str  # drop-table, drop-column, rename-table, rename-column, delete, pragma-fk, ...
    table: str
    detail: str = ""


def words(sql: str) -> list[Word]:
    """The significant tokens of `sql`, comments and whitespace left out."""
    return list(_words(sql))


@functools.lru_cache(maxsize=256)
def _words(sql: str) -> tuple[Word, ...]:
    out: list[Word] = []
    for token in tokenize(sql):
        if token.kind in ("ws", "comment"):
            continue
        if token.kind == "word":
            out.append(Word("word", token.text.upper(), token.text))
        elif token.kind == "ident":
            out.append(Word("ident", _unquote(token.text), token.text))
        elif token.kind == "string":
            out.append(Word("string", token.text[1:-1].replace("''", "'"), token.text))
        else:
            out.append(Word(token.kind, token.text, token.text))
    return tuple(out)


def _unquote(text: str) -> str:
    if len(text) < 2:
        return text
    if text.startswith("["):
        return text[1:-1]
    return text[1:-1].replace(text[0] * 2, text[0])


def _ident(w: Word) -> str:
    return w.raw if w.kind == "word" else w.value


def _name(ws: list[Word], i: int) -> tuple[str, int]:
    """A possibly schema-qualified name starting at ws[i]: (name, index after it)."""
    if i >= len(ws):
        return "", i
    name = _ident(ws[i])
    i += 1
    if i + 1 < len(ws) and ws[i].value == ".":
        name = _ident(ws[i + 1])
        i += 2
    return name, i


def _skip_if_exists(ws: list[Word], i: int) -> int:
    if i + 1 < len(ws) and ws[i].value == "IF" and ws[i + 1].value == "EXISTS":
        return i + 2
    return i


def effects(statement: Statement | str) -> list[Effect]:
    """What the statement does, for the checks that reason about drops, renames and deletes."""
    sql = statement.sql if isinstance(statement, Statement) else statement
    return list(_effects(sql))


def touched_tables(statements: Iterable[Statement | str]) -> frozenset[str]:
    """Lower-case names of the tables the statements' text drops, renames, alters or writes."""
    names: set[str] = set()
    for statement in statements:
        for effect in effects(statement):
            if effect.action in _TOUCHING:
                names.add(effect.table.lower())
                if effect.action == "rename-table":
                    names.add(effect.detail.lower())
    return frozenset(names)


_TOUCHING = frozenset(
    {
        "drop-table",
        "drop-column",
        "rename-table",
        "rename-column",
        "add-column",
        "delete",
        "insert",
        "insert-or-replace",
    }
)


_EFFECT_HEADS = frozenset({"DROP", "ALTER", "DELETE", "WITH", "PRAGMA", "INSERT", "REPLACE"})


@functools.lru_cache(maxsize=16_384)
def _effects(sql: str) -> tuple[Effect, ...]:
    head_words = first_keywords(sql, 1)
    if not head_words or not (head_words[0] in _EFFECT_HEADS or head_words[0] in TRANSACTION_WORDS):
        return ()
    ws = list(_words(sql))
    head = [w.value for w in ws[:3]]
    if not head:
        return ()
    if head[0] == "DROP" and len(head) > 1:
        return tuple(_drop(ws))
    if head[:2] == ["ALTER", "TABLE"]:
        return tuple(_alter(ws))
    if head[0] == "DELETE" or (head[0] == "WITH" and "DELETE" in (w.value for w in ws)):
        return tuple(_delete(ws))
    if head[0] == "PRAGMA":
        return tuple(_pragma(ws))
    if head[0] in TRANSACTION_WORDS:
        return (Effect("transaction", "", head[0]),)
    if head[0] == "INSERT" or head[0] == "REPLACE":
        return tuple(_insert(ws))
    return ()


def _drop(ws: list[Word]) -> list[Effect]:
    kind = ws[1].value
    if kind not in ("TABLE", "VIEW", "INDEX", "TRIGGER"):
        return []
    name, _ = _name(ws, _skip_if_exists(ws, 2))
    return [Effect(f"drop-{kind.lower()}", name)]


def _alter(ws: list[Word]) -> list[Effect]:
    table, i = _name(ws, 2)
    rest = [w.value for w in ws[i:]]
    if rest[:2] == ["RENAME", "TO"] and len(ws) > i + 2:
        return [Effect("rename-table", table, _ident(ws[i + 2]))]
    if rest[:1] == ["RENAME"]:
        j = i + (2 if rest[1:2] == ["COLUMN"] else 1)
        old = _ident(ws[j]) if j < len(ws) else ""
        new = _ident(ws[j + 2]) if j + 2 < len(ws) else ""
        return [Effect("rename-column", table, f"{old}→{new}")]
    if rest[:1] == ["DROP"]:
        j = i + (2 if rest[1:2] == ["COLUMN"] else 1)
        return [Effect("drop-column", table, _ident(ws[j]) if j < len(ws) else "")]
    if rest[:1] == ["ADD"]:
        j = i + (2 if rest[1:2] == ["COLUMN"] else 1)
        return [Effect("add-column", table, _ident(ws[j]) if j < len(ws) else "")]
    return []


def _delete(ws: list[Word]) -> list[Effect]:
    values = [w.value for w in ws]
    i = values.index("DELETE")
    if i + 1 < len(ws) and values[i + 1] == "FROM":
        name, _ = _name(ws, i + 2)
        return [Effect("delete", name)]
    return []


def _insert(ws: list[Word]) -> list[Effect]:
    values = [w.value for w in ws]
    if "INTO" not in values:
        return []
    name, _ = _name(ws, values.index("INTO") + 1)
    replace = "REPLACE" in values[: values.index("INTO")]
    return [Effect("insert-or-replace" if replace else "insert", name)]


def _pragma(ws: list[Word]) -> list[Effect]:
    name, i = _name(ws, 1)
    assigns = i < len(ws) and ws[i].value in ("=", "(")
    value = ws[i + 1].value if assigns and i + 1 < len(ws) else ""
    return [Effect("pragma", name.lower(), value if assigns else "")]


_CREATED_KINDS = frozenset({"TABLE", "INDEX", "VIEW", "TRIGGER"})


@dataclass(frozen=True)
class Created:
    """What a CREATE statement creates: its kind (TABLE, INDEX, VIEW, TRIGGER), its name, and
    whether it is guarded with IF NOT EXISTS."""

    kind: str
    name: str
    if_not_exists: bool


def created(statement: Statement | str) -> Created | None:
    """The object a `CREATE [TEMP] [UNIQUE | VIRTUAL] TABLE|INDEX|VIEW|TRIGGER` statement
    creates; None for any other statement."""
    sql = statement.sql if isinstance(statement, Statement) else statement
    if first_keywords(sql, 1) != ("CREATE",):
        return None
    ws = list(_words(sql))
    i = 1
    if i < len(ws) and ws[i].value in ("TEMP", "TEMPORARY"):
        i += 1
    if i < len(ws) and ws[i].value in ("UNIQUE", "VIRTUAL"):
        i += 1
    if i >= len(ws) or ws[i].value not in _CREATED_KINDS:
        return None
    kind = ws[i].value
    guarded = [w.value for w in ws[i + 1 : i + 4]] == ["IF", "NOT", "EXISTS"]
    name, _ = _name(ws, i + (4 if guarded else 1))
    return Created(kind, name, guarded)


def drops_if_exists(statement: Statement | str) -> bool:
    """Whether a `DROP TABLE|INDEX|VIEW|TRIGGER` statement is guarded with IF EXISTS."""
    sql = statement.sql if isinstance(statement, Statement) else statement
    ws = list(_words(sql))
    return [w.value for w in ws[2:4]] == ["IF", "EXISTS"]


def guards_conflicts(statement: Statement | str) -> bool:
    """Whether an INSERT skips or replaces rows whose key is already there (`OR IGNORE`,
    `OR REPLACE`, `REPLACE INTO`, `ON CONFLICT`)."""
    sql = statement.sql if isinstance(statement, Statement) else statement
    values = [w.value for w in _words(sql)]
    head = values[: values.index("INTO")] if "INTO" in values else values
    if "IGNORE" in head or "REPLACE" in head:
        return True
    return any(values[i : i + 2] == ["ON", "CONFLICT"] for i in range(len(values) - 1))
