"""The statement splitter cuts where SQLite's sqlite3_complete does; normalisation is structural."""

from __future__ import annotations

import random
import re

import apsw
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from d1check import statements
from d1check.statements import (
    SQLITE_KEYWORDS,
    _scan,
    first_keywords,
    has_unterminated_comment,
    is_complete,
    normalize_sql,
    split_statements,
    tokenize,
)

FRAGMENTS = [
    ";",
    " ",
    "\n",
    "\r\n",
    "\t",
    "\f",
    "\v",
    "--c;\n",
    "-- tail",
    "/*;*/",
    "/*",
    "*/",
    "'a;b'",
    "'",
    "''",
    '"q;"',
    '"',
    "[x;]",
    "[",
    "]",
    "`b;`",
    "`",
    "CREATE",
    "create",
    "TEMP",
    "temporary",
    "TRIGGER",
    "trigger",
    "END",
    "end",
    "EXPLAIN",
    "explain",
    "BEGIN",
    "SELECT",
    "x",
    "1",
    "é",
    "$",
    "_",
    "-",
    "/",
    "end3",
    "3end",
    "x'ab'",
    "->>",
    "\u212a",
    "\u0131",
    "t",
    "ON",
    "(",
    ")",
]
SQL_TEXT = st.lists(st.sampled_from(FRAGMENTS), max_size=16).map("".join)


def sqls(text: str) -> list[str]:
    return [s.sql for s in split_statements(text)]


# -- the port of sqlite3_complete, checked against SQLite itself --------------------------------


@settings(max_examples=1000, deadline=None)
@given(SQL_TEXT)
def test_is_complete_agrees_with_sqlite_on_every_prefix(text: str) -> None:
    for end in range(len(text) + 1):
        assert is_complete(text[:end]) == apsw.complete(text[:end]), repr(text[:end])


@settings(max_examples=1000, deadline=None)
@given(SQL_TEXT)
def test_split_cuts_exactly_where_sqlite_sees_complete_statements(text: str) -> None:
    statements = split_statements(text)
    covered = 0
    for stmt in statements:
        assert text[stmt.offset : stmt.offset + len(stmt.sql)] == stmt.sql
        assert stmt.line == text.count("\n", 0, stmt.offset) + 1
        gap = text[covered : stmt.offset]
        assert all(t.kind in ("ws", "comment", "semi") for t in tokenize(gap)), repr(gap)
        if stmt.terminated:
            assert apsw.complete(stmt.sql) and stmt.sql.endswith(";")
            assert apsw.complete(text[: stmt.offset + len(stmt.sql)])
            inner = [i for i, c in enumerate(stmt.sql[:-1]) if c == ";"]
            assert not any(apsw.complete(stmt.sql[: i + 1]) for i in inner)
        else:
            assert stmt is statements[-1]
            assert not apsw.complete(stmt.sql)
        covered = stmt.offset + len(stmt.sql)
    rest = text[covered:]
    assert all(t.kind in ("ws", "comment", "semi") for t in tokenize(rest)), repr(rest)


@settings(max_examples=1000, deadline=None)
@given(SQL_TEXT.map(lambda text: re.sub("(?i)trigger", "tr", text)))
@example("[a]];b;")
@example("'a'';b';c;")
@example("x'ab';--;\n/*;*/ y; -")
def test_the_quick_split_without_triggers_equals_the_token_split(text: str) -> None:
    assert statements._split_without_triggers(text) == statements._split_by_tokens(text)


@settings(max_examples=500, deadline=None)
@given(SQL_TEXT)
def test_tokens_cover_the_text(text: str) -> None:
    assert "".join(t.text for t in tokenize(text)) == text


def test_keywords_are_sqlites() -> None:
    assert set(apsw.keywords) == SQLITE_KEYWORDS


# -- the cases that matter, by name --------------------------------------------------------------


def test_plain_statements_with_lines_and_offsets() -> None:
    text = "CREATE TABLE a (x);\n\nINSERT INTO a VALUES (1);\n"
    statements = split_statements(text)
    assert [(s.sql, s.line, s.offset, s.terminated) for s in statements] == [
        ("CREATE TABLE a (x);", 1, 0, True),
        ("INSERT INTO a VALUES (1);", 3, 21, True),
    ]


def test_trigger_body_stays_whole() -> None:
    text = (
        "CREATE TRIGGER t AFTER INSERT ON a BEGIN\n"
        "  UPDATE a SET x = 1;\n  DELETE FROM b;\nEND;\nSELECT 1;"
    )
    assert sqls(text) == [text[: text.index("END;") + 4], "SELECT 1;"]


@pytest.mark.parametrize(
    "head", ["create temp trigger", "CREATE TEMPORARY TRIGGER", "EXPLAIN CREATE TRIGGER"]
)
def test_trigger_variants_and_lowercase_end(head: str) -> None:
    text = f"{head} t before delete on a begin select 1; select 2; end; select 3;"
    assert len(split_statements(text)) == 2


def test_column_named_begin_or_end_does_not_confuse_the_splitter() -> None:
    text = "CREATE TABLE t (begin TEXT, end TEXT);\nSELECT end FROM t;"
    assert sqls(text) == ["CREATE TABLE t (begin TEXT, end TEXT);", "SELECT end FROM t;"]


def test_create_trigger_is_only_a_trigger_right_after_create() -> None:
    text = "CREATE TABLE trigger_log (x); SELECT 1;"
    assert len(split_statements(text)) == 2
    assert len(split_statements("CREATE TABLE trigger (x); SELECT 1;")) == 2


@pytest.mark.parametrize(
    "literal", ["'a;b'", '"a;b"', "[a;b]", "`a;b`", "'it''s;'", "'-- not a comment;'", "'/*;'"]
)
def test_semicolons_inside_strings_and_quoted_identifiers(literal: str) -> None:
    text = f"SELECT {literal};\nSELECT 2;"
    assert sqls(text) == [f"SELECT {literal};", "SELECT 2;"]


def test_semicolons_inside_comments() -> None:
    text = "SELECT 1 -- not here;\n, 2 /* nor; here */;\nSELECT 3;"
    assert sqls(text) == ["SELECT 1 -- not here;\n, 2 /* nor; here */;", "SELECT 3;"]


def test_crlf_lines() -> None:
    text = "SELECT 1;\r\n\r\nSELECT 2;\r\n"
    assert [(s.sql, s.line) for s in split_statements(text)] == [
        ("SELECT 1;", 1),
        ("SELECT 2;", 3),
    ]


@pytest.mark.parametrize("text", ["", "\n\n", "-- only a comment\n", "/* c */", ";;\n;", "-- x"])
def test_blank_and_comment_only_files_have_no_statements(text: str) -> None:
    assert split_statements(text) == []


def test_line_of_first_token_skips_leading_comments() -> None:
    text = "-- header\n\n/* more */\nSELECT 1;"
    assert split_statements(text)[0].line == 4


def test_last_statement_without_semicolon_is_unterminated() -> None:
    statements = split_statements("SELECT 1;\nSELECT 2 -- trailing\n")
    assert statements[-1].sql == "SELECT 2"
    assert not statements[-1].terminated


def test_unfinished_trigger_is_one_unterminated_statement() -> None:
    statements = split_statements("CREATE TRIGGER t AFTER INSERT ON a BEGIN SELECT 1; ")
    assert len(statements) == 1 and not statements[0].terminated


def test_unterminated_string_runs_to_the_end() -> None:
    statements = split_statements("SELECT 'abc; SELECT 2;")
    assert [s.terminated for s in statements] == [False]


def test_sqlite_treats_a_trailing_line_comment_as_incomplete() -> None:
    assert not is_complete("SELECT 1; -- done")
    assert is_complete("SELECT 1; -- done\n")
    assert not apsw.complete("SELECT 1; -- done")


def test_vertical_tab_is_not_whitespace_to_sqlite3_complete() -> None:
    assert not is_complete("SELECT 1;\v") and not apsw.complete("SELECT 1;\v")


# -- tokens, keywords, normalisation -----------------------------------------------------------


def test_token_kinds() -> None:
    kinds = [(t.kind, t.text) for t in tokenize("SELECT \"a\"||'b' -- c\n;")]
    assert kinds == [
        ("word", "SELECT"),
        ("ws", " "),
        ("ident", '"a"'),
        ("other", "||"),
        ("string", "'b'"),
        ("ws", " "),
        ("comment", "-- c"),
        ("ws", "\n"),
        ("semi", ";"),
    ]


def test_blob_literal_is_one_string_token() -> None:
    assert [t.kind for t in tokenize("X'00ff'")] == ["string"]


def test_first_keywords_skip_comments_and_stop_at_other_tokens() -> None:
    assert first_keywords("/* c */ -- d\n create table if not exists") == ("CREATE", "TABLE", "IF")
    assert first_keywords("PRAGMA foreign_keys = OFF;", 5) == ("PRAGMA", "FOREIGN_KEYS")
    assert first_keywords("begin transaction;", 1) == ("BEGIN",)
    assert first_keywords("-- nothing") == ()


def test_normalize_ignores_whitespace_comments_keyword_case_and_plain_quoting() -> None:
    a = 'CREATE VIEW "v" AS\n  SELECT [id], `name` -- who\n  FROM users WHERE x>=1;'
    b = "create view v as select id, name from users /* c */ where x >= 1"
    assert (
        normalize_sql(a)
        == normalize_sql(b)
        == ("CREATE VIEW v AS SELECT id , name FROM users WHERE x >= 1")
    )


def test_normalize_keeps_what_matters() -> None:
    assert normalize_sql("SELECT 'A'") != normalize_sql("SELECT 'a'")
    assert normalize_sql("SELECT Users") != normalize_sql("SELECT users")
    assert normalize_sql('SELECT "order"') == normalize_sql("SELECT [order]") == 'SELECT "order"'
    assert normalize_sql('SELECT "a b"') == normalize_sql("SELECT `a b`") == 'SELECT "a b"'
    assert normalize_sql('SELECT "a""b"') == 'SELECT "a""b"'
    assert normalize_sql("SELECT x <= 1") != normalize_sql("SELECT x < 1")


def test_normalize_trigger_text_from_a_file_matches_the_catalog_text() -> None:
    in_file = "CREATE TRIGGER t AFTER INSERT ON a\nBEGIN\n  UPDATE a SET n = n + 1;\nEND;"
    con = apsw.Connection(":memory:")
    con.execute("CREATE TABLE a (n)")
    con.execute(in_file)
    stored = con.execute("SELECT sql FROM sqlite_schema WHERE type = 'trigger'").fetchall()[0][0]
    assert normalize_sql(stored) == normalize_sql(in_file.lower().replace("\n", " "))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("SELECT 1; /* open", True),
        ("SELECT 1; /* closed */", False),
        ("SELECT '/*';", False),
        ("SELECT 1; -- /*", False),
        ("/*/", True),
    ],
)
def test_has_unterminated_comment(text: str, expected: bool) -> None:
    assert has_unterminated_comment(text) is expected


def _scanned(text: str) -> list[tuple[str, str, int, bool]]:
    out, i = [], 0
    while i < len(text):
        kind, end, terminated = _scan(text, i)
        out.append((kind, text[i:end], i, terminated))
        i = end
    return out


def test_tokenize_fast_path_matches_the_scanner() -> None:
    rnd = random.Random(7)
    alphabet = "xX'\"`[];-/*\n \t\r\fab_$0é€\ud800\x00\x7f\x80.,()<>=!|\U0001f600"
    texts = ["x'00' X'0' xx'' ax'1' é$x_9 [a]b", "-- c\nCREATE TABLE t (a);"]
    texts += ["".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 14))) for _ in range(5000)]
    for text in texts:
        assert [tuple(t) for t in tokenize(text)] == _scanned(text), repr(text)
