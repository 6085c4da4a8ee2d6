"""Row fingerprints and the synthesized rows that every table gets before a migration runs."""

from __future__ import annotations

from d1check.engine import D1Database
from d1check.rows import ROWS_PER_TABLE, ensure_rows, table_rows
from d1check.schema import read_schema

SCHEMA = """
CREATE TABLE teams (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE TABLE members (
    id INTEGER PRIMARY KEY,
    team_id INTEGER NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    role TEXT NOT NULL CHECK (role IN ('lead', 'member')),
    age INTEGER CHECK (age > 17),
    score INTEGER NOT NULL CHECK (score > 100)
);
"""


def test_fingerprint_ignores_row_order_but_not_values() -> None:
    a, b, c = D1Database(), D1Database(), D1Database()
    for db in (a, b, c):
        db.run_script("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT);")
    a.run_script("INSERT INTO t VALUES (1, 'x'); INSERT INTO t VALUES (2, 'y');")
    b.run_script("INSERT INTO t VALUES (2, 'y'); INSERT INTO t VALUES (1, 'x');")
    c.run_script("INSERT INTO t VALUES (1, 'x'); INSERT INTO t VALUES (2, 'z');")
    with a.internal() as ca, b.internal() as cb, c.internal() as cc:
        first, same, other = table_rows(ca, "t"), table_rows(cb, "t"), table_rows(cc, "t")
    assert first == same
    assert first.count == other.count == 2
    assert first.digest != other.digest
    assert first.columns == ("id", "v")


def test_fingerprint_over_chosen_columns() -> None:
    db = D1Database()
    db.run_script("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT, w TEXT);")
    db.run_script("INSERT INTO t VALUES (1, 'x', 'a');")
    with db.internal() as conn:
        before = table_rows(conn, "t", ["id", "v"])
        conn.execute("UPDATE t SET w = 'b'")
        assert table_rows(conn, "t", ["v", "id"]) == before
        assert table_rows(conn, "t") != table_rows(conn, "t", ["id", "v"])


def test_ensure_rows_fills_parents_first_within_the_constraints() -> None:
    db = D1Database()
    db.run_script(SCHEMA)
    assert ensure_rows(db, read_schema(db)) == []
    rows = db.query(
        "SELECT m.role, m.age, m.score, t.name FROM members m JOIN teams t ON t.id = m.team_id"
    )
    assert len(rows) == ROWS_PER_TABLE
    for row in rows:
        assert row["role"] in ("lead", "member")
        assert row["age"] is None or int(str(row["age"])) > 17
        assert int(str(row["score"])) > 100


def test_ensure_rows_leaves_tables_with_rows_alone() -> None:
    db = D1Database()
    db.run_script(SCHEMA)
    db.run_script("INSERT INTO teams (id, name) VALUES (7, 'core');")
    ensure_rows(db, read_schema(db))
    assert db.query("SELECT id, name FROM teams") == [{"id": 7, "name": "core"}]
    assert {r["team_id"] for r in db.query("SELECT team_id FROM members")} == {7}
