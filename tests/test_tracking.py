"""The SQL d1check writes: wrangler's tracking table, the seed-style `_migrations`, audit, lock."""

from __future__ import annotations

import re

import apsw
import pytest

from d1check.engine import D1Database
from d1check.statements import split_statements
from d1check.tracking import (
    AUDIT_DDL,
    AUDIT_TABLE,
    LOCK_DDL,
    TrackingStyle,
    audit_insert_sql,
    quote,
    records_itself,
    tracking_name,
)

WRANGLER_STORED = (
    'CREATE TABLE "d1_migrations"(\n'
    "\t\tid         INTEGER PRIMARY KEY AUTOINCREMENT,\n"
    "\t\tname       TEXT UNIQUE,\n"
    "\t\tapplied_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP NOT NULL\n"
    ")"
)


def run(db: D1Database, sql: str) -> list[tuple[object, ...]]:
    with db.internal() as conn:
        return list(conn.execute(sql))


@pytest.fixture
def db() -> D1Database:
    return D1Database()


def test_wrangler_table_is_stored_byte_for_byte_as_wrangler_stores_it(db: D1Database) -> None:
    style = TrackingStyle("d1_migrations")
    assert not style.seed_style
    assert style.create_sql().startswith('CREATE TABLE IF NOT EXISTS "d1_migrations"(')
    run(db, style.create_sql())
    run(db, style.create_sql())
    stored = run(db, "SELECT sql FROM sqlite_schema WHERE name = 'd1_migrations'")
    assert stored == [(WRANGLER_STORED,)]
    assert run(db, "SELECT name FROM sqlite_schema WHERE name = 'sqlite_sequence'")


def test_a_custom_wrangler_table_name_keeps_wrangler_style(db: D1Database) -> None:
    style = TrackingStyle("schema_migrations")
    assert not style.seed_style
    run(db, style.create_sql())
    stored = run(db, "SELECT sql FROM sqlite_schema WHERE name = 'schema_migrations'")
    assert stored == [(WRANGLER_STORED.replace("d1_migrations", "schema_migrations"),)]


@pytest.mark.parametrize(
    ("table", "seed", "names"),
    [
        ("d1_migrations", False, ["0001_init.sql", "0002_it's.sql", "0010_later.sql"]),
        ("_migrations", True, ["0001_init", "0002_it's", "0010_later"]),
        ("_MIGRATIONS", True, ["0001_init", "0002_it's", "0010_later"]),
    ],
)
def test_insert_select_delete_round_trip(
    db: D1Database, table: str, seed: bool, names: list[str]
) -> None:
    style = TrackingStyle(table)
    assert style.seed_style is seed
    run(db, style.create_sql())
    for name in names:
        run(db, style.insert_sql(name, name[:4], "sha-" + name))
    assert [r[0] for r in run(db, style.select_applied_sql())] == names
    run(db, style.delete_sql(names[1], names[1][:4]))
    assert [r[0] for r in run(db, style.select_applied_sql())] == [names[0], names[2]]
    with pytest.raises(apsw.ConstraintError):
        run(db, style.insert_sql(names[0], names[0][:4], "again"))


def test_seed_style_records_version_short_name_and_checksum(db: D1Database) -> None:
    style = TrackingStyle("_migrations")
    run(db, style.create_sql())
    run(db, style.insert_sql("0003_add_review_fields", "0003", "abc123"))
    rows = run(db, 'SELECT version, name, checksum, applied_at FROM "_migrations"')
    assert rows[0][:3] == ("0003", "add_review_fields", "abc123")
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", str(rows[0][3]))


def test_wrangler_style_records_the_file_name_and_a_timestamp(db: D1Database) -> None:
    style = TrackingStyle("d1_migrations")
    run(db, style.create_sql())
    run(db, style.insert_sql("0001_init.sql", "0001", "ignored"))
    assert run(db, 'SELECT id, name FROM "d1_migrations"') == [(1, "0001_init.sql")]
    assert run(db, 'SELECT applied_at IS NOT NULL FROM "d1_migrations"') == [(1,)]


def test_tracking_name_is_what_each_style_records() -> None:
    wrangler, seed = TrackingStyle("d1_migrations"), TrackingStyle("_migrations")
    assert tracking_name("0001_init", "0001_init.sql", wrangler) == "0001_init.sql"
    assert tracking_name("0001_init", "0001_init.sql", seed) == "0001_init"


def test_audit_row_holds_everything_and_quotes_safely(db: D1Database) -> None:
    run(db, AUDIT_DDL)
    run(db, AUDIT_DDL)
    sql = audit_insert_sql(
        version="0002",
        name="0002_o'brien",
        checksum="f" * 64,
        applied_by="ci'; DROP TABLE x; --",
        environment="production",
        target="client-a",
        git_commit=None,
        bookmark="00000004-abc",
    )
    run(db, sql)
    with db.internal() as conn:
        cursor = conn.execute(f'SELECT * FROM "{AUDIT_TABLE}"')
        columns = [d[0] for d in cursor.getdescription()]
        row = dict(zip(columns, next(cursor), strict=True))
    assert row["migration_version"] == "0002"
    assert row["migration_name"] == "0002_o'brien"
    assert row["checksum"] == "f" * 64
    assert row["applied_by"] == "ci'; DROP TABLE x; --"
    assert (row["environment"], row["target"]) == ("production", "client-a")
    assert row["git_commit"] is None
    assert row["bookmark"] == "00000004-abc"
    assert row["duration_ms"] is None
    assert row["action"] == "apply"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", str(row["applied_at"]))


def test_the_lock_table_holds_one_row(db: D1Database) -> None:
    run(db, LOCK_DDL)
    insert = "INSERT INTO _d1check_lock VALUES ({}, 'me', 'run', 1.0, 1.0, 2.0)"
    run(db, insert.format(1))
    with pytest.raises(apsw.ConstraintError):
        run(db, insert.format(2))
    with pytest.raises(apsw.ConstraintError):
        run(db, insert.format(1))


def test_quote() -> None:
    assert quote(None) == "NULL"
    assert quote("it's") == "'it''s'"
    assert quote("") == "''"


@pytest.mark.parametrize(
    ("sql", "table", "expected"),
    [
        ("INSERT INTO _migrations (version, name) VALUES ('0001', 'init');", "_migrations", True),
        ("INSERT INTO \"_Migrations\" (version, name) VALUES ('1', 'a');", "_migrations", True),
        ("CREATE TABLE t (x);\nINSERT INTO t VALUES (1);", "_migrations", False),
        ("SELECT * FROM _migrations;", "_migrations", False),
        ("INSERT INTO d1_migrations (name) VALUES ('0001_a.sql');", "_migrations", False),
    ],
)
def test_records_itself(sql: str, table: str, expected: bool) -> None:
    assert records_itself(tuple(split_statements(sql)), table) is expected
