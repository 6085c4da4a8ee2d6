"""D1Database: D1's refusals, limits, foreign keys, transactions and snapshots."""

from __future__ import annotations

import time
from pathlib import Path

import apsw
import pytest

from d1check.engine import (
    SQLITE_VERSION,
    TRANSACTION_MESSAGE,
    D1Database,
    d1_refusal,
    engine_description,
)
from d1check.errors import SQLError
from d1check.statements import Statement, split_statements


def refused(db: D1Database, sql: str) -> SQLError:
    with pytest.raises(SQLError) as info:
        db.run_script(sql, source="m.sql")
    return info.value


def passes(db: D1Database, sql: str) -> None:
    db.run_script(sql, source="m.sql")


@pytest.fixture
def db() -> D1Database:
    return D1Database()


@pytest.fixture
def family() -> D1Database:
    db = D1Database()
    db.run_script(
        """
        CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT);
        CREATE TABLE posts (id INTEGER PRIMARY KEY,
                            user_id INTEGER REFERENCES users(id) ON DELETE CASCADE);
        CREATE TABLE likes (user_id INTEGER REFERENCES users(id));
        INSERT INTO users VALUES (1, 'a@x'), (2, 'b@x');
        INSERT INTO posts VALUES (10, 1), (11, 2);
        INSERT INTO likes VALUES (1);
        """,
        source="seed.sql",
    )
    return db


def count(db: D1Database, table: str) -> int:
    value = db.execute(f"SELECT count(*) FROM {table}")[0][0]
    assert isinstance(value, int)
    return value


def test_version_and_description() -> None:
    assert apsw.sqlite_lib_version() == SQLITE_VERSION == "3.54.1"
    assert engine_description() == "SQLite 3.54.1 (apsw 3.54.1.0), D1 rules"


# --- foreign keys ---------------------------------------------------------------------------


def test_foreign_keys_always_on(family: D1Database) -> None:
    assert family.execute("PRAGMA foreign_keys") == [(1,)]
    error = refused(family, "INSERT INTO posts VALUES (12, 99);")
    assert error.message == (
        "FOREIGN KEY constraint failed: SQLITE_CONSTRAINT (extended: SQLITE_CONSTRAINT_FOREIGNKEY)"
    )
    assert error.hint


def test_pragma_foreign_keys_off_is_ignored_and_recorded(family: D1Database) -> None:
    family.run_script("-- rebuild\nPRAGMA foreign_keys = OFF;", source="0002.sql")
    family.execute("PRAGMA foreign_keys = OFF")
    assert family.execute("PRAGMA foreign_keys") == [(1,)]
    with pytest.raises(SQLError, match="FOREIGN KEY constraint failed"):
        family.execute("INSERT INTO posts VALUES (12, 99)")
    first, second = family.ignored_pragmas
    assert (first.sql_value, first.source, first.line) == ("OFF", "0002.sql", 2)
    assert str(first) == "0002.sql:2: PRAGMA foreign_keys = OFF is ignored on D1"
    assert second.source == "<sql>"
    assert family.copy().ignored_pragmas == ()


REBUILD_USERS = """
CREATE TABLE users_new (id INTEGER PRIMARY KEY, email TEXT NOT NULL DEFAULT '');
INSERT INTO users_new SELECT id, coalesce(email, '') FROM users;
DROP TABLE users;
ALTER TABLE users_new RENAME TO users;
"""


def test_rebuild_cascade_trap_deletes_child_rows(family: D1Database) -> None:
    family.run_script("DROP TABLE likes;\nPRAGMA foreign_keys = OFF;" + REBUILD_USERS, source="m")
    assert count(family, "users") == 2
    assert count(family, "posts") == 0


def test_rebuild_with_no_action_children_fails_even_deferred(family: D1Database) -> None:
    """workerd refuses both (measured by the fidelity suite); nothing of either stays."""
    family.run_script("DELETE FROM posts;", source="m")
    error = refused(family, REBUILD_USERS)
    assert "FOREIGN KEY constraint failed" in error.message
    assert count(family, "likes") == 1
    error = refused(family, "PRAGMA defer_foreign_keys = TRUE;" + REBUILD_USERS)
    assert "deferred" in error.message
    assert "child tables before their parents" in error.hint
    assert count(family, "likes") == 1


def test_deferred_violation_fails_at_the_end_and_leaves_nothing(family: D1Database) -> None:
    error = refused(
        family,
        "PRAGMA defer_foreign_keys = ON;\nCREATE TABLE extra (a);\nDELETE FROM users WHERE id = 1;",
    )
    assert "FOREIGN KEY constraint failed" in error.message
    assert "deferred" in error.message
    assert "likes" in error.hint
    assert error.source == "m.sql"
    assert count(family, "users") == 2
    assert family.execute("SELECT name FROM sqlite_schema WHERE name = 'extra'") == []


# --- trial: a run undone afterwards ----------------------------------------------------------


def tried(db: D1Database, sql: str) -> SQLError:
    with pytest.raises(SQLError) as info, db.trial():
        db.run(split_statements(sql), source="m.sql")
    return info.value


def test_trial_fails_as_run_fails_on_a_deferred_violation(family: D1Database) -> None:
    sql = (
        "PRAGMA defer_foreign_keys = ON;\nCREATE TABLE extra (a);\nDELETE FROM users WHERE id = 1;"
    )
    expected = refused(family.copy(), sql)
    error = tried(family, sql)
    assert (error.message, error.hint, error.source) == (
        expected.message,
        expected.hint,
        expected.source,
    )
    assert count(family, "users") == 2
    assert family.execute("SELECT name FROM sqlite_schema WHERE name = 'extra'") == []
    assert family.connection.getautocommit()


def test_trial_shows_the_run_then_undoes_it(family: D1Database) -> None:
    family.track_changes()
    sql = "CREATE TABLE extra (a);\nDELETE FROM likes;\nPRAGMA foreign_keys = OFF;"
    with family.trial():
        family.run(split_statements(sql), source="m.sql")
        assert count(family, "likes") == 0
        assert len(family.ignored_pragmas) == 1
    assert count(family, "likes") == 1
    assert family.execute("SELECT name FROM sqlite_schema WHERE name = 'extra'") == []
    assert family.ignored_pragmas == ()
    assert family.take_changes() == frozenset()
    error = tried(family, "INSERT INTO nope VALUES (1);")
    assert error.message == "no such table: nope: SQLITE_ERROR"


def test_runs_in_a_trial_are_transactions_of_their_own(family: D1Database) -> None:
    deferred = "PRAGMA defer_foreign_keys = ON;\nCREATE TABLE extra (a);\nDELETE FROM users;"
    defer = "PRAGMA defer_foreign_keys = ON;\nCREATE TABLE kept (a);"
    delete = "DELETE FROM users WHERE id = 1;"
    copy = family.copy()
    expected = [refused(copy, deferred), None, refused(copy, delete)]
    assert expected[2] is not None and "deferred" not in expected[2].message
    with family.trial():
        first = tried_in(family, deferred)
        family.run_script(defer, source="m.sql")
        third = tried_in(family, delete)
        assert family.execute("SELECT name FROM sqlite_schema WHERE name IN ('extra', 'kept')") == [
            ("kept",)
        ]
        assert count(family, "users") == 2
    for error, want in zip((first, third), (expected[0], expected[2]), strict=True):
        assert want is not None and (error.message, error.hint) == (want.message, want.hint)
    assert family.execute("SELECT name FROM sqlite_schema WHERE name = 'kept'") == []


def tried_in(db: D1Database, sql: str) -> SQLError:
    with pytest.raises(SQLError) as info:
        db.run(split_statements(sql), source="m.sql")
    return info.value


def test_trial_starts_from_a_fresh_copy_s_settings(db: D1Database) -> None:
    passes(db, "PRAGMA case_sensitive_like = ON;\nCREATE TABLE t (a);\nINSERT INTO t VALUES ('A');")
    probe = "CREATE TABLE seen AS SELECT count(*) AS n FROM t WHERE a LIKE 'a';"
    with db.trial():
        db.run(split_statements(probe), source="m.sql")
        assert db.execute("SELECT n FROM seen") == [(1,)]
    assert db.execute("SELECT count(*) FROM t WHERE a LIKE 'a'") == [(0,)]


# --- run: one transaction, file and line ---------------------------------------------------


def test_run_is_atomic_and_names_file_and_line(db: D1Database) -> None:
    text = "CREATE TABLE a (x);\nINSERT INTO a VALUES (1);\n\n  INSERT INTO nope VALUES (1);\n"
    with pytest.raises(SQLError) as info:
        db.run(split_statements(text), source="migrations/0001_init.sql")
    error = info.value
    assert (error.source, error.line) == ("migrations/0001_init.sql", 4)
    assert error.message == "no such table: nope: SQLITE_ERROR"
    assert error.statement == "INSERT INTO nope VALUES (1);"
    assert str(error).startswith("migrations/0001_init.sql:4: no such table: nope")
    assert db.execute("SELECT name FROM sqlite_schema") == []
    assert db.connection.getautocommit()


def test_syntax_error_in_d1_words(db: D1Database) -> None:
    error = refused(db, "SELECT 1;\nSELEC 2;")
    assert error.message == 'near "SELEC": syntax error at offset 0: SQLITE_ERROR'
    assert error.line == 2


def test_run_commits_on_success(db: D1Database) -> None:
    passes(db, "CREATE TABLE a (x);\nINSERT INTO a VALUES (1);")
    assert count(db, "a") == 1
    assert db.query("SELECT x FROM a") == [{"x": 1}]
    assert db.query("SELECT x FROM a WHERE x = ?", (2,)) == []


# --- statements refused before SQLite -------------------------------------------------------


@pytest.mark.parametrize(
    "sql",
    [
        "BEGIN;",
        "BEGIN TRANSACTION;",
        "begin immediate transaction;",
        "BEGIN EXCLUSIVE;",
        "COMMIT;",
        "END TRANSACTION;",
        "ROLLBACK;",
        "SAVEPOINT sp;",
        "RELEASE sp;",
        "/* tx */ COMMIT TRANSACTION;",
    ],
)
def test_transaction_statements_refused(db: D1Database, sql: str) -> None:
    error = refused(db, "CREATE TABLE a (x);\n" + sql)
    assert error.message == TRANSACTION_MESSAGE
    assert error.line == 2
    assert "defer_foreign_keys" in error.hint
    assert db.execute("SELECT name FROM sqlite_schema") == []
    with pytest.raises(SQLError):
        db.execute(sql)


def test_vacuum_refused(db: D1Database) -> None:
    error = refused(db, "VACUUM;")
    assert error.message == "cannot VACUUM from within a transaction: SQLITE_ERROR"


def test_d1_refusal_passes_ordinary_statements() -> None:
    trigger = "CREATE TRIGGER t AFTER INSERT ON a BEGIN SELECT 1; END;"
    assert d1_refusal(Statement(trigger, 1, 0, True)) is None
    assert d1_refusal(Statement("SELECT 1;", 1, 0, True)) is None
    assert d1_refusal(Statement("BEGIN;", 1, 0, True)) == TRANSACTION_MESSAGE


# --- authorizer -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "function",
    [
        "sqlite_version()",
        "sqlite_source_id()",
        "sqlite_compileoption_used('FTS5')",
        "sqlite_compileoption_get(0)",
        "if(1, 2, 3)",
        "unistr('a')",
        "json_pretty('[]')",
        "json_error_position('[')",
        "load_extension('x')",
        "SQLITE_VERSION()",
    ],
)
def test_refused_functions(db: D1Database, function: str) -> None:
    error = refused(db, f"SELECT {function};")
    name = function.split("(")[0]
    assert error.message == f"not authorized to use function: {name} at offset 7: SQLITE_ERROR"
    assert "does not allow" in error.hint


def test_functions_missing_from_d1(db: D1Database) -> None:
    error = refused(db, "SELECT median(1);")
    assert error.message == "no such function: median at offset 7: SQLITE_ERROR"


def test_allowed_functions(db: D1Database) -> None:
    row = db.execute("SELECT iif(1, 2, 3), unixepoch('2020-01-01'), concat('a', 'b'), 1 ->> '$'")
    assert row == [(2, 1577836800, "ab", 1)]


@pytest.mark.parametrize("sql", ["ATTACH DATABASE ':memory:' AS other;", "DETACH other;"])
def test_attach_and_detach_refused(db: D1Database, sql: str) -> None:
    error = refused(db, sql)
    assert error.message.startswith("not authorized")
    assert "ATTACH" in error.hint


@pytest.mark.parametrize(
    "sql",
    [
        "CREATE TABLE _cf_x (a);",
        'CREATE TABLE "_CF_X" (a);',
        "CREATE TABLE [_Cf_kv] (a);",
        "CREATE TABLE `_cf_y` (a);",
        "CREATE INDEX _cf_i ON t (a);",
        "CREATE VIEW _cf_v AS SELECT 1;",
        "CREATE TRIGGER _cf_t AFTER INSERT ON t BEGIN SELECT 1; END;",
        "ALTER TABLE t RENAME TO _cf_t;",
        'ALTER TABLE t RENAME TO "_CF_T";',
        "CREATE VIRTUAL TABLE _cf_f USING fts5(a);",
    ],
)
def test_internal_names_refused(db: D1Database, sql: str) -> None:
    passes(db, "CREATE TABLE t (a);")
    error = refused(db, sql)
    assert error.message == "not authorized: SQLITE_AUTH"
    assert "_cf_" in error.hint


@pytest.mark.parametrize(
    "sql",
    [
        "PRAGMA table_info(_cf_KV);",
        "PRAGMA table_xinfo('_cf_x');",
        'PRAGMA main.index_list("_CF_kv");',
        "PRAGMA index_info(_cf_idx);",
        "PRAGMA index_xinfo(_cf_idx);",
        "PRAGMA foreign_key_list(_cf_KV);",
        "PRAGMA foreign_key_check(_cf_KV);",
        "PRAGMA quick_check(_cf_KV);",
        "SELECT name FROM pragma_table_info('_cf_KV');",
    ],
)
def test_pragmas_on_internal_tables_refused(db: D1Database, sql: str) -> None:
    error = refused(db, sql)
    assert error.message == "not authorized: SQLITE_AUTH"
    assert "internal _cf_ objects" in error.hint


def test_pragmas_on_other_tables_and_table_list_allowed(db: D1Database) -> None:
    passes(db, "CREATE TABLE t (a);\nPRAGMA table_info(t);\nPRAGMA table_info(cf_x);")
    passes(db, "PRAGMA table_list(_cf_KV);")


def test_internal_prefix_allowed_for_columns(db: D1Database) -> None:
    passes(db, "CREATE TABLE t (_cf_x TEXT);\nALTER TABLE t RENAME COLUMN _cf_x TO _cf_y;")
    passes(db, "ALTER TABLE t RENAME TO cf_t;")


@pytest.mark.parametrize(
    "sql",
    [
        "CREATE TEMP TABLE x (a);",
        "CREATE TEMPORARY VIEW v AS SELECT 1;",
        "CREATE TEMP TRIGGER tr AFTER INSERT ON t BEGIN SELECT 1; END;",
        "CREATE TABLE temp.x (a);",
        "CREATE VIEW temp.v AS SELECT 1;",
    ],
)
def test_temp_objects_refused(db: D1Database, sql: str) -> None:
    passes(db, "CREATE TABLE t (a);")
    error = refused(db, sql)
    assert error.message == "not authorized: SQLITE_AUTH"
    assert "TEMP" in error.hint


@pytest.mark.parametrize(
    "sql",
    [
        "PRAGMA table_list;",
        "PRAGMA table_info(t);",
        "PRAGMA table_xinfo(t);",
        "PRAGMA index_list(t);",
        "PRAGMA index_info(i);",
        "PRAGMA index_xinfo(i);",
        "PRAGMA foreign_key_list(t);",
        "PRAGMA foreign_key_check;",
        "PRAGMA quick_check;",
        "PRAGMA optimize;",
        "PRAGMA optimize(0x10002);",
        "PRAGMA data_version;",
        "PRAGMA foreign_keys;",
        "PRAGMA defer_foreign_keys = ON;",
        "PRAGMA legacy_alter_table = 1;",
        "PRAGMA recursive_triggers = false;",
        "PRAGMA case_sensitive_like = yes;",
        "PRAGMA ignore_check_constraints = off;",
        "PRAGMA reverse_unordered_selects = 0;",
        "PRAGMA page_size;",
        "SELECT * FROM pragma_table_info('t');",
    ],
)
def test_allowed_pragmas(db: D1Database, sql: str) -> None:
    passes(db, "CREATE TABLE t (a);\nCREATE INDEX i ON t (a);\n" + sql)


@pytest.mark.parametrize(
    "sql",
    [
        "PRAGMA journal_mode;",
        "PRAGMA journal_mode = DELETE;",
        "PRAGMA user_version;",
        "PRAGMA user_version = 3;",
        "PRAGMA integrity_check;",
        "PRAGMA compile_options;",
        "PRAGMA function_list;",
        "PRAGMA no_such_pragma;",
        "PRAGMA recursive_triggers = maybe;",
        "PRAGMA defer_foreign_keys = 2;",
    ],
)
def test_refused_pragmas(db: D1Database, sql: str) -> None:
    error = refused(db, sql)
    assert error.message == "not authorized: SQLITE_AUTH"
    assert "PRAGMA" in error.hint


def test_ignore_check_constraints_takes_effect(db: D1Database) -> None:
    passes(db, "CREATE TABLE t (a CHECK (a > 0));")
    refused(db, "INSERT INTO t VALUES (-1);")
    passes(db, "PRAGMA ignore_check_constraints = ON;\nINSERT INTO t VALUES (-1);")


@pytest.mark.parametrize(
    "sql",
    [
        "CREATE VIRTUAL TABLE f USING fts5(body);",
        "CREATE VIRTUAL TABLE f USING fts5(body, tokenize='trigram');",
        "CREATE VIRTUAL TABLE r USING rtree(id, x0, x1);",
        "CREATE VIRTUAL TABLE f USING fts5(body);\nCREATE VIRTUAL TABLE v USING fts5vocab(f, row);",
    ],
)
def test_allowed_virtual_tables(db: D1Database, sql: str) -> None:
    passes(db, sql)


@pytest.mark.parametrize("module", ["fts3", "fts4", "geopoly"])
def test_refused_virtual_tables(db: D1Database, module: str) -> None:
    error = refused(db, f"CREATE VIRTUAL TABLE f USING {module}(body);")
    assert error.message == "not authorized: SQLITE_AUTH"
    assert module in error.hint


# --- limits: pass at the limit, fail one past -----------------------------------------------


def _statement(size: int) -> str:
    """A SELECT of `size` bytes, its `;` included."""
    head, tail = "SELECT '", "';"
    return head + "x" * (size - len(head) - len(tail)) + tail


# Measured with `wrangler d1 migrations apply --local` (workerd 1.20261117.1): the largest
# statement that applies, in bytes with its `;`, after what comes before it in the file.
@pytest.mark.parametrize(
    ("before", "largest"),
    [
        ("", 100_001),
        ("SELECT 1;\n\n\n", 100_001),
        ("-- load\n", 99_993),
        ("SELECT 1;\n-- load\n", 99_993),
        ("-- load\r\n", 99_992),
        ("/* load */ ", 99_990),
    ],
)
def test_statement_length_limit_counts_what_wrangler_sends(
    db: D1Database, before: str, largest: int
) -> None:
    passes(db, before + _statement(largest) + "\n")
    error = refused(db, before + _statement(largest + 1) + "\n")
    assert error.message == "statement too long: SQLITE_TOOBIG"
    assert error.line == before.count("\n") + 1
    assert "wrangler sends the statement as 100,001 bytes (without its `;`" in error.hint


def test_statement_length_hint_names_the_comments_before_it(db: D1Database) -> None:
    error = refused(db, "-- load\n" + _statement(99_994))
    assert "with the 8 bytes of comments before it" in error.hint
    assert "move the comments above the previous statement" in error.hint


def test_statement_length_counts_utf8_bytes(db: D1Database) -> None:
    passes(db, "SELECT '" + "é" * 49_995 + "';")  # 99,999 bytes sent
    error = refused(db, "SELECT '" + "é" * 49_996 + "';")  # 100,001 bytes sent
    assert "100,001 bytes" in error.hint


def test_query_refuses_sql_over_the_statement_limit(db: D1Database) -> None:
    assert db.execute(_statement(100_000)[:-1]) != []
    with pytest.raises(SQLError) as info:
        db.execute(_statement(100_001))
    assert info.value.message == "statement too long: SQLITE_TOOBIG"


def test_string_length_limit(db: D1Database) -> None:
    assert db.execute("SELECT length(zeroblob(2000000))") == [(2_000_000,)]
    with pytest.raises(SQLError) as info:
        db.execute("SELECT length(zeroblob(2000001))")
    assert info.value.message == "string or blob too big: SQLITE_TOOBIG"
    assert "2,000,000" in info.value.hint


def _columns(n: int) -> str:
    return ", ".join(f"c{i} INTEGER" for i in range(n))


def test_column_limit(db: D1Database) -> None:
    passes(db, f"CREATE TABLE ok ({_columns(100)});")
    error = refused(db, f"CREATE TABLE wide ({_columns(101)});")
    assert error.message == "too many columns on wide: SQLITE_ERROR"
    assert "100 columns" in error.hint
    assert "too many columns" in refused(db, "ALTER TABLE ok ADD COLUMN c100 INTEGER;").message


def test_variable_limit(db: D1Database) -> None:
    assert len(db.execute("SELECT " + ", ".join("?" * 100), [1] * 100)[0]) == 100
    with pytest.raises(SQLError, match="too many SQL variables") as info:
        db.execute("SELECT " + ", ".join("?" * 101), [1] * 101)
    assert "100 bound parameters" in info.value.hint


def test_function_argument_limit(db: D1Database) -> None:
    assert db.execute("SELECT max(" + ", ".join("1" * 32) + ")") == [(1,)]
    error = refused(db, "SELECT max(" + ", ".join("1" * 33) + ");")
    assert error.message == "too many arguments on function max at offset 7: SQLITE_ERROR"
    assert "32" in error.hint and "127" in error.hint


def test_like_pattern_limit(db: D1Database) -> None:
    assert db.execute(f"SELECT 'a' LIKE '{'%' * 50}'") == [(1,)]
    error = refused(db, f"SELECT 'a' LIKE '{'%' * 51}';")
    assert error.message == "LIKE or GLOB pattern too complex: SQLITE_ERROR"


def test_expression_depth_limit(db: D1Database) -> None:
    assert db.execute("SELECT " + " + ".join(["1"] * 100)) == [(100,)]
    error = refused(db, "SELECT " + " + ".join(["1"] * 101) + ";")
    assert error.message.startswith("Expression tree is too large (maximum depth 100)")


def test_compound_select_limit(db: D1Database) -> None:
    passes(db, "CREATE TABLE t (a);\nINSERT INTO t SELECT 1" + " UNION ALL SELECT 1" * 4 + ";")
    error = refused(db, "INSERT INTO t SELECT 1" + " UNION ALL SELECT 1" * 5 + ";")
    assert error.message == "too many terms in compound SELECT: SQLITE_ERROR"
    passes(db, "INSERT INTO t VALUES " + ", ".join("(1)" for _ in range(9000)) + ";")


def _trigger_chain(n: int) -> str:
    tables = "".join(f"CREATE TABLE t{i} (a);\n" for i in range(n + 1))
    triggers = "".join(
        f"CREATE TRIGGER tr{i} AFTER INSERT ON t{i} BEGIN INSERT INTO t{i + 1} VALUES (1); END;\n"
        for i in range(n)
    )
    return tables + triggers


def test_trigger_depth_limit(db: D1Database) -> None:
    passes(db, _trigger_chain(11))
    passes(db, "INSERT INTO t1 VALUES (1);")
    assert count(db, "t11") == 1
    error = refused(db, "INSERT INTO t0 VALUES (1);")
    assert error.message == "triggers nested too deep: SQLITE_ERROR"
    assert "10 deep" in error.hint
    assert count(db, "t1") == 1


# --- internal access, snapshots, files ------------------------------------------------------


def test_internal_bypasses_the_authorizer_then_restores_it(db: D1Database) -> None:
    with db.internal() as conn:
        conn.execute("BEGIN; CREATE TABLE _d1check_lock (a); COMMIT;")
        assert conn.execute("PRAGMA user_version").fetchall() == [(0,)]
        assert conn.execute("SELECT coalesce(" + ", ".join("?" * 200) + ")", [1] * 200).get == 1
    refused(db, "SELECT sqlite_version();")
    refused(db, "SELECT " + ", ".join("1" for _ in range(33)).join(["max(", ")"]) + ";")
    assert db.execute("PRAGMA foreign_keys") == [(1,)]


def test_copy_is_independent(family: D1Database) -> None:
    clone = family.copy()
    clone.run_script("DELETE FROM likes;\nDELETE FROM posts;\nDELETE FROM users;", source="m")
    assert count(family, "users") == 2
    assert count(clone, "users") == 0
    assert clone.execute("PRAGMA foreign_keys") == [(1,)]
    refused(clone, "SELECT sqlite_version();")
    again = D1Database.from_bytes(family.to_bytes())
    assert count(again, "posts") == 2


def test_copy_is_fast(db: D1Database) -> None:
    passes(db, "CREATE TABLE t (a INTEGER PRIMARY KEY, b TEXT);")
    with db.internal() as conn:
        conn.execute(
            "WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r WHERE i < 100000) "
            "INSERT INTO t SELECT i, hex(randomblob(16)) FROM r"
        )
    started = time.perf_counter()
    for _ in range(10):
        db.copy().close()
    assert (time.perf_counter() - started) / 10 < 0.1


def test_empty_database_round_trip(db: D1Database) -> None:
    assert count(D1Database.from_bytes(db.to_bytes()), "sqlite_schema") == 0
    assert count(D1Database.from_bytes(b""), "sqlite_schema") == 0


def test_file_backed_wal_database(tmp_path: Path) -> None:
    path = tmp_path / "local.sqlite"
    writer = apsw.Connection(str(path))
    writer.execute("PRAGMA journal_mode = WAL").fetchall()
    writer.execute("CREATE TABLE t (a); INSERT INTO t VALUES (1), (2);")
    assert (tmp_path / "local.sqlite-wal").exists()
    db = D1Database(path)
    assert count(db, "t") == 2
    refused(db, "PRAGMA journal_mode;")
    clone = db.copy()
    assert count(clone, "t") == 2
    passes(clone, "INSERT INTO t VALUES (3);")
    assert count(db, "t") == 2
    db.close()
    writer.close()


def test_file_backed_database_persists(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    with D1Database(path) as db:
        passes(db, "CREATE TABLE t (a);\nINSERT INTO t VALUES (1);")
    with D1Database(path) as db:
        assert count(db, "t") == 1


def test_failed_migration_leaves_a_wal_file_database_unchanged(tmp_path: Path) -> None:
    with D1Database(tmp_path / "wal.sqlite") as db:
        with db.internal() as conn:
            conn.execute("PRAGMA journal_mode = WAL").fetchall()
        passes(db, "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT);")
        passes(db, "CREATE TABLE likes (user_id REFERENCES users(id));")
        passes(db, "INSERT INTO users VALUES (1, 'a');\nINSERT INTO likes VALUES (1);")
        refused(db, "PRAGMA defer_foreign_keys = ON;" + REBUILD_USERS)
    with D1Database(tmp_path / "wal.sqlite") as db:
        assert count(db, "likes") == 1
        assert "NOT NULL" not in str(
            db.execute("SELECT sql FROM sqlite_schema WHERE name = 'users'")
        )


def test_query_refuses_a_rename_to_an_internal_name(db: D1Database) -> None:
    db.execute("CREATE TABLE t (a)")
    with pytest.raises(SQLError) as info:
        db.query("ALTER TABLE t RENAME TO _cf_t")
    assert info.value.message == "not authorized: SQLITE_AUTH"
    assert "reserved for D1" in info.value.hint
    assert db.execute("SELECT name FROM sqlite_schema WHERE name = 't'") == [("t",)]
