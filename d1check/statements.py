"""SQLite's tokenizer and statement splitter (a port of `sqlite3_complete`), and SQL normalisation.

`split_statements` cuts a file exactly where SQLite's `sqlite3_complete` (src/complete.c) sees
the end of a statement, which is also where wrangler cuts: a `;` ends a statement except inside a
string, a quoted identifier, a comment, or the body of a `CREATE TRIGGER … BEGIN … END;`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import NamedTuple

__all__ = [
    "SQLITE_KEYWORDS",
    "Statement",
    "Token",
    "first_keywords",
    "has_unterminated_comment",
    "is_complete",
    "normalize_sql",
    "split_statements",
    "tokenize",
]


class Token(NamedTuple):
    """One token: `kind` is ws, comment, string, ident (quoted identifier), word, semi or other."""

    kind: str
    text: str
    offset: int
    terminated: bool = True  # False for a string, quoted identifier or /* comment left open at EOF


@dataclass(frozen=True)
class Statement:
    """One statement of a file, from its first token to its terminating `;` inclusive."""

    sql: str
    line: int
    offset: int
    terminated: bool
    lead: int = 0
    """UTF-8 bytes of the comments wrangler sends ahead of the statement: its splitter cuts from
    the end of the previous `;` (leading whitespace trimmed), so comments before a statement
    travel with it."""

    @property
    def sent_bytes(self) -> int:
        """The size of the statement as wrangler sends it: its comments before it, its text,
        without the `;` that ends it."""
        size = self.lead + len(self.sql.encode("utf-8"))
        return size - 1 if self.terminated else size


_KEYWORD_TEXT = """
ABORT ACTION ADD AFTER ALL ALTER ALWAYS ANALYZE AND AS ASC ATTACH AUTOINCREMENT BEFORE BEGIN
BETWEEN BY CASCADE CASE CAST CHECK COLLATE COLUMN COMMIT CONFLICT CONSTRAINT CREATE CROSS
CURRENT CURRENT_DATE CURRENT_TIME CURRENT_TIMESTAMP DATABASE DEFAULT DEFERRABLE DEFERRED
DELETE DESC DETACH DISTINCT DO DROP EACH ELSE END ESCAPE EXCEPT EXCLUDE EXCLUSIVE EXISTS
EXPLAIN FAIL FILTER FIRST FOLLOWING FOR FOREIGN FROM FULL GENERATED GLOB GROUP GROUPS HAVING
IF IGNORE IMMEDIATE IN INDEX INDEXED INITIALLY INNER INSERT INSTEAD INTERSECT INTO IS ISNULL
JOIN KEY LAST LEFT LIKE LIMIT MATCH MATERIALIZED NATURAL NO NOT NOTHING NOTNULL NULL NULLS OF
OFFSET ON OR ORDER OTHERS OUTER OVER PARTITION PLAN PRAGMA PRECEDING PRIMARY QUERY RAISE RANGE
RECURSIVE REFERENCES REGEXP REINDEX RELEASE RENAME REPLACE RESTRICT RETURNING RIGHT ROLLBACK
ROW ROWS SAVEPOINT SELECT SET TABLE TEMP TEMPORARY THEN TIES TO TRANSACTION TRIGGER UNBOUNDED
UNION UNIQUE UPDATE USING VACUUM VALUES VIEW VIRTUAL WHEN WHERE WINDOW WITH WITHOUT
"""
SQLITE_KEYWORDS = frozenset(_KEYWORD_TEXT.split())

_WS = frozenset(" \t\n\f\r")
# Runs of whitespace, and of identifier characters (`_is_id_char`): the common tokens.
_FAST = re.compile("[ \t\n\f\r]+|[A-Za-z0-9_$\u0080-\U0010ffff]+")
_OPERATORS = ("->>", "||", "<=", ">=", "==", "!=", "<>", "<<", ">>", "->")

# Token classes and states of sqlite3_complete.
_SEMI, _WSP, _OTHER, _EXPLAIN, _CREATE, _TEMP, _TRIGGER, _END = range(8)
_START = 1
_TRANS = (
    # SEMI WS OTHER EXPLAIN CREATE TEMP TRIGGER END
    (1, 0, 2, 3, 4, 2, 2, 2),  # 0 INVALID
    (1, 1, 2, 3, 4, 2, 2, 2),  # 1 START
    (1, 2, 2, 2, 2, 2, 2, 2),  # 2 NORMAL
    (1, 3, 3, 2, 4, 2, 2, 2),  # 3 EXPLAIN
    (1, 4, 2, 2, 2, 4, 5, 2),  # 4 CREATE
    (6, 5, 5, 5, 5, 5, 5, 5),  # 5 TRIGGER
    (6, 6, 5, 5, 5, 5, 5, 7),  # 6 SEMI
    (1, 7, 5, 5, 5, 5, 5, 5),  # 7 END
)
_WORD_CLASSES = {
    "CREATE": _CREATE,
    "TEMP": _TEMP,
    "TEMPORARY": _TEMP,
    "TRIGGER": _TRIGGER,
    "END": _END,
    "EXPLAIN": _EXPLAIN,
}


def _is_id_char(c: str) -> bool:
    return not c.isascii() or c.isalnum() or c in "_$"


def _scan_quoted(text: str, start: int, close: str, doubled: bool) -> tuple[int, bool]:
    """End of a quoted token opened at `start`, and whether its closing character was found."""
    j = start + 1
    while True:
        j = text.find(close, j)
        if j < 0:
            return len(text), False
        if doubled and text.startswith(close, j + 1):
            j += 2
            continue
        return j + 1, True


def _scan(text: str, i: int) -> tuple[str, int, bool]:
    """Kind, end offset and terminated flag of the token starting at `i`."""
    c = text[i]
    nxt = text[i + 1 : i + 2]
    if c == ";":
        return "semi", i + 1, True
    if c in _WS:
        j = i + 1
        while j < len(text) and text[j] in _WS:
            j += 1
        return "ws", j, True
    if c == "/" and nxt == "*":
        end = text.find("*/", i + 2)
        return ("comment", len(text), False) if end < 0 else ("comment", end + 2, True)
    if c == "-" and nxt == "-":
        end = text.find("\n", i)
        return "comment", len(text) if end < 0 else end, True
    if c == "[":
        end, ok = _scan_quoted(text, i, "]", doubled=False)
        return "ident", end, ok
    if c in "\"`'":
        end, ok = _scan_quoted(text, i, c, doubled=True)
        return ("string" if c == "'" else "ident"), end, ok
    if _is_id_char(c):
        j = i + 1
        while j < len(text) and _is_id_char(text[j]):
            j += 1
        if j == i + 1 and c in "xX" and nxt == "'":
            end, ok = _scan_quoted(text, j, "'", doubled=False)
            return "string", end, ok
        return "word", j, True
    for op in _OPERATORS:
        if text.startswith(op, i):
            return "other", i + len(op), True
    return "other", i + 1, True


def tokenize(text: str) -> Iterator[Token]:
    """Yield the tokens of `text`, covering it whole (concatenating their texts gives `text`)."""
    i, size, fast = 0, len(text), _FAST.match
    while i < size:
        found = fast(text, i)
        if found is not None:
            end = found.end()
            if text[i] in _WS:
                yield Token("ws", text[i:end], i, True)
                i = end
                continue
            if end - i > 1 or text[i] not in "xX" or not text.startswith("'", end):
                yield Token("word", text[i:end], i, True)
                i = end
                continue
        kind, end, terminated = _scan(text, i)
        yield Token(kind, text[i:end], i, terminated)
        i = end


def _token_class(token: Token) -> int:
    if token.kind == "semi":
        return _SEMI
    if token.kind in ("ws", "comment"):
        return _WSP
    if token.kind == "word" and token.text.isascii():
        return _WORD_CLASSES.get(token.text.upper(), _OTHER)
    return _OTHER


def _open_line_comment(token: Token, text: str) -> bool:
    return token.text.startswith("--") and token.offset + len(token.text) == len(text)


def is_complete(text: str) -> bool:
    """`sqlite3_complete(text)`: True when `text` ends with the `;` that ends a statement.

    As SQLite 3.54.1 does, a `--` comment running to the end of the text (no newline after it)
    makes the text incomplete.
    """
    state = 0
    text = text.split("\0", 1)[0]
    for token in tokenize(text):
        if not token.terminated or _open_line_comment(token, text):
            return False
        state = _TRANS[state][_token_class(token)]
    return state == _START


def split_statements(text: str) -> list[Statement]:
    """Cut `text` into statements exactly where SQLite does; empty and comment-only pieces drop."""
    if "TRIGGER" not in text.upper():
        return _split_without_triggers(text)
    return _split_by_tokens(text)


# What ends a run of ordinary characters: a statement end, a quote, a comment.
_SPECIAL = re.compile(r"[;'\"`\[]|--|/\*")
_WS_TEXT = " \t\n\f\r"
_CLOSING = {"'": "'", '"': '"', "`": "`", "[": "]"}


def _split_without_triggers(text: str) -> list[Statement]:
    """`split_statements` for a text without CREATE TRIGGER: every `;` outside strings,
    identifiers and comments ends a statement (scanned with `re` and `str.find`)."""
    statements: list[Statement] = []
    start = last = -1
    line, counted_to, i, size, cut = 1, 0, 0, len(text), 0
    while True:
        found = _SPECIAL.search(text, i)
        stop = size if found is None else found.start()
        plain = text[i:stop]
        stripped = plain.rstrip(_WS_TEXT)
        if stripped:
            if start < 0:
                start = i + len(plain) - len(plain.lstrip(_WS_TEXT))
            last = i + len(stripped)
        if found is None:
            break
        mark = found.group()
        if mark == "--":
            end = text.find("\n", stop)
            i = size if end < 0 else end
        elif mark == "/*":
            end = text.find("*/", stop + 2)
            i = size if end < 0 else end + 2
        elif mark == ";":
            if start >= 0:
                line += text.count("\n", counted_to, start)
                counted_to = start
                lead = _lead_bytes(text, cut, start)
                statements.append(Statement(text[start : stop + 1], line, start, True, lead))
                start = -1
            i = cut = stop + 1
        else:
            i, _ = _scan_quoted(text, stop, _CLOSING[mark], doubled=mark != "[")
            start = stop if start < 0 else start
            last = i
    if start >= 0:
        line += text.count("\n", counted_to, start)
        statements.append(
            Statement(text[start:last], line, start, False, _lead_bytes(text, cut, start))
        )
    return statements


def _lead_bytes(text: str, cut: int, start: int) -> int:
    """UTF-8 bytes of what wrangler sends before the statement at `start`: the text after the
    previous cut (`;`), leading whitespace trimmed."""
    if cut == start:
        return 0
    return len(text[cut:start].lstrip(_WS_TEXT).encode("utf-8"))


def _split_by_tokens(text: str) -> list[Statement]:
    statements: list[Statement] = []
    state = 0
    first: Token | None = None
    last: Token | None = None
    line, counted_to, cut = 1, 0, 0
    for token in tokenize(text):
        cls = _token_class(token)
        state = _TRANS[state][cls]
        if cls == _WSP:
            continue
        if first is None:
            if cls == _SEMI:
                cut = token.offset + 1
                continue
            first = token
            line += text.count("\n", counted_to, token.offset)
            counted_to = token.offset
        last = token
        if cls == _SEMI and state == _START:
            end = token.offset + 1
            lead = _lead_bytes(text, cut, first.offset)
            statements.append(Statement(text[first.offset : end], line, first.offset, True, lead))
            first, cut = None, end
    if first is not None and last is not None:
        end = last.offset + len(last.text)
        lead = _lead_bytes(text, cut, first.offset)
        statements.append(Statement(text[first.offset : end], line, first.offset, False, lead))
    return statements


def first_keywords(sql: str, n: int = 3) -> tuple[str, ...]:
    """The first `n` bare words of `sql`, upper-cased, skipping comments; stops at other tokens."""
    words: list[str] = []
    for token in tokenize(sql):
        if token.kind in ("ws", "comment"):
            continue
        if token.kind != "word" or len(words) == n:
            break
        words.append(token.text.upper())
    return tuple(words)


def _unquote(text: str) -> str:
    if text.startswith("["):
        return text[1:-1]
    quote = text[0]
    return text[1:-1].replace(quote * 2, quote)


def _is_plain_identifier(name: str) -> bool:
    return (
        name.isascii()
        and name != ""
        and not name[0].isdigit()
        and all(c.isalnum() or c == "_" for c in name)
        and name.upper() not in SQLITE_KEYWORDS
    )


def _normal_token(token: Token) -> str:
    if token.kind == "word" and token.text.isascii() and token.text.upper() in SQLITE_KEYWORDS:
        return token.text.upper()
    if token.kind == "ident" and token.terminated:
        name = _unquote(token.text)
        return name if _is_plain_identifier(name) else '"' + name.replace('"', '""') + '"'
    return token.text


def normalize_sql(sql: str) -> str:
    """`sql` as one comparable line: tokens joined by single spaces, comments and trailing `;`
    dropped, keywords upper-cased, quoted identifiers unquoted when plain (else double-quoted).

    Two texts that differ only in whitespace, comments, keyword case or the quoting of identifiers
    normalise to the same string; identifier case and literals are kept as written.
    """
    parts = [_normal_token(t) for t in tokenize(sql) if t.kind not in ("ws", "comment")]
    while parts and parts[-1] == ";":
        parts.pop()
    return " ".join(parts)


def has_unterminated_comment(text: str) -> bool:
    """True when a `/*` outside strings and identifiers is never closed before the end of `text`."""
    if "/*" not in text:
        return False
    return any(t.kind == "comment" and not t.terminated for t in tokenize(text))
