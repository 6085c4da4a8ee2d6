"""Row fingerprints and the synthesized rows that every table gets before a migration runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from d1check.engine import D1Database
from d1check.rows import (
    ROWS_PER_TABLE,
    SYNTHETIC_INT_BASE,
    ensure_rows,
    fingerprint,
    synthesize_rows,
    table_rows,
)
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


# --- the synthesizer on shapes real D1 projects have ----------------------------------------


def filled(script: str, only: list[str] | None = None) -> tuple[D1Database, dict[str, str]]:
    """A database with `script` run and its empty tables synthesized; the tables left empty."""
    db = D1Database()
    db.run_script(script)
    return db, synthesize_rows(db, read_schema(db), only=only)


def rows_of(db: D1Database, table: str) -> list[dict[str, object]]:
    return db.query(f"SELECT * FROM {table}")


TEXT_KEYS = """
CREATE TABLE users (id TEXT PRIMARY KEY, email TEXT NOT NULL UNIQUE, name TEXT);
CREATE TABLE posts (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    body TEXT
);
CREATE TABLE comments (
    id TEXT PRIMARY KEY,
    post_id TEXT NOT NULL REFERENCES posts(id),
    user_id TEXT NOT NULL REFERENCES users(id)
);
"""


def test_text_keys_are_never_null_and_children_reference_real_parents() -> None:
    db, empty = filled(TEXT_KEYS)
    assert empty == {}
    for table in ("users", "posts", "comments"):
        keys = [row["id"] for row in rows_of(db, table)]
        assert len(keys) == ROWS_PER_TABLE >= 3
        assert all(isinstance(k, str) and k.startswith("d1c00000-") for k in keys)
        assert len(set(keys)) == len(keys)
    orphans = db.query(
        "SELECT count(*) AS n FROM posts WHERE user_id NOT IN (SELECT id FROM users)"
    )
    assert orphans == [{"n": 0}]


def test_a_child_row_per_parent_and_a_parent_without_children() -> None:
    db, _ = filled(TEXT_KEYS)
    children = db.query(
        "SELECT count(p.id) AS n FROM users u LEFT JOIN posts p ON p.user_id = u.id GROUP BY u.id"
    )
    counts = sorted(int(str(r["n"])) for r in children)
    assert counts[0] == 0
    assert counts[-1] >= 1


def test_integer_keys_come_from_the_synthetic_range() -> None:
    db, _ = filled("CREATE TABLE cars (id INTEGER PRIMARY KEY, slug TEXT);")
    ids = [row["id"] for row in rows_of(db, "cars")]
    assert ids == [SYNTHETIC_INT_BASE + i for i in range(ROWS_PER_TABLE)]


def test_rows_vary_as_production_rows_do() -> None:
    db, _ = filled(
        "CREATE TABLE notes (id INTEGER PRIMARY KEY, title TEXT NOT NULL, body TEXT, "
        "stars INTEGER NOT NULL, ref INTEGER);"
    )
    notes = rows_of(db, "notes")
    titles = [n["title"] for n in notes]
    assert None in [n["body"] for n in notes]  # NULL where the column allows it
    assert len(set(titles)) < len(titles)  # repeated values in a column that is not unique
    assert "" in titles  # an empty string
    odd = [t for t in titles if isinstance(t, str) and "'" in t and not t.isascii()]
    assert odd  # quotes and non-ASCII text
    assert max(int(str(n["stars"])) for n in notes) > 2**31  # a large integer


def test_composite_keys_and_without_rowid() -> None:
    db, empty = filled(
        TEXT_KEYS
        + "CREATE TABLE tags (post_id TEXT NOT NULL REFERENCES posts(id), tag TEXT NOT NULL, "
        "PRIMARY KEY (post_id, tag)) WITHOUT ROWID;"
        "CREATE TABLE pairs (a INTEGER, b TEXT, note TEXT, PRIMARY KEY (a, b));"
    )
    assert empty == {}
    for table in ("tags", "pairs"):
        rows = rows_of(db, table)
        assert len(rows) == ROWS_PER_TABLE
        assert all(v is not None for row in rows for k, v in row.items() if k != "note")


def test_a_self_reference_not_null_and_nullable() -> None:
    db, empty = filled(
        "CREATE TABLE folders (id TEXT PRIMARY KEY,"
        " parent_id TEXT NOT NULL REFERENCES folders(id));"
        "CREATE TABLE staff (id INTEGER PRIMARY KEY, boss_id INTEGER REFERENCES staff(id));"
    )
    assert empty == {}
    assert len(rows_of(db, "folders")) == ROWS_PER_TABLE
    bosses = [row["boss_id"] for row in rows_of(db, "staff")]
    assert len(bosses) == ROWS_PER_TABLE
    assert any(b is not None for b in bosses)
    with db.internal() as conn:
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []


def test_a_cycle_between_two_tables_with_not_null_references() -> None:
    db, empty = filled(
        "CREATE TABLE teams (id TEXT PRIMARY KEY, captain_id TEXT NOT NULL REFERENCES players(id));"
        "CREATE TABLE players (id TEXT PRIMARY KEY, team_id TEXT NOT NULL REFERENCES teams(id));"
    )
    assert empty == {}
    assert len(rows_of(db, "teams")) == len(rows_of(db, "players")) == ROWS_PER_TABLE
    with db.internal() as conn:
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []


@pytest.mark.parametrize(
    "column",
    [
        "age INTEGER NOT NULL CHECK (age BETWEEN 18 AND 130)",
        "score REAL NOT NULL CHECK (score >= 0.5 AND score < 2)",
        "code TEXT NOT NULL CHECK (length(code) = 6)",
        "name TEXT NOT NULL CHECK (length(name) BETWEEN 3 AND 40)",
        "status TEXT NOT NULL CHECK (status IN ('draft', 'live', 'gone'))",
        "url TEXT NOT NULL CHECK (url LIKE 'https://%')",
        "zip TEXT NOT NULL CHECK (zip GLOB '[0-9][0-9][0-9][0-9][0-9]')",
        "slug TEXT NOT NULL UNIQUE CHECK (slug NOT GLOB '*[^a-z0-9-]*')",
        "data TEXT NOT NULL CHECK (json_valid(data) AND json_type(data) = 'array')",
        "day TEXT NOT NULL CHECK (date(day) IS NOT NULL)",
        "kind INTEGER NOT NULL CHECK (typeof(kind) = 'integer' AND kind IN (3, 5))",
    ],
)
def test_check_constraints_are_satisfied(column: str) -> None:
    db, empty = filled(f"CREATE TABLE t (id INTEGER PRIMARY KEY, {column});")
    assert empty == {}
    assert len(rows_of(db, "t")) >= 3


def test_a_check_comparing_two_columns() -> None:
    db, empty = filled(
        "CREATE TABLE spans (id INTEGER PRIMARY KEY, starts_at TEXT NOT NULL, "
        "ends_at TEXT NOT NULL, lo INTEGER NOT NULL, hi INTEGER NOT NULL, "
        "CHECK (starts_at < ends_at), CONSTRAINT ordered CHECK (lo < hi));"
    )
    assert empty == {}
    assert len(rows_of(db, "spans")) == ROWS_PER_TABLE


def test_unique_and_partial_unique_indexes() -> None:
    db, empty = filled(
        "CREATE TABLE accounts (id INTEGER PRIMARY KEY, handle TEXT NOT NULL, "
        "org TEXT NOT NULL, team TEXT NOT NULL, active INTEGER NOT NULL, UNIQUE (org, team));"
        "CREATE UNIQUE INDEX accounts_handle ON accounts(lower(handle)) WHERE active = 1;"
    )
    assert empty == {}
    rows = rows_of(db, "accounts")
    assert len(rows) == ROWS_PER_TABLE
    assert len({r["org"] for r in rows}) < len(rows)  # the first column of a pair repeats


def test_generated_columns_strict_and_fts5() -> None:
    db, empty = filled(
        "CREATE TABLE items (id INTEGER PRIMARY KEY, price INTEGER NOT NULL, qty INTEGER, "
        "total INTEGER GENERATED ALWAYS AS (price * qty) STORED, "
        "label TEXT AS (upper(id)) VIRTUAL) STRICT;"
        "CREATE TABLE blobs (id INTEGER PRIMARY KEY, data BLOB NOT NULL, amount REAL NOT NULL, "
        "any_value ANY) STRICT;"
        "CREATE VIRTUAL TABLE search USING fts5(title, body);"
        "CREATE VIRTUAL TABLE bare USING fts5(title, content='');"
        "CREATE TABLE docs (id INTEGER PRIMARY KEY, title TEXT NOT NULL);"
        "CREATE VIRTUAL TABLE docs_fts USING fts5(title, content='docs', content_rowid='id');"
    )
    assert empty == {}
    for table in ("items", "blobs", "search", "docs"):
        assert len(rows_of(db, table)) == ROWS_PER_TABLE
    assert db.query("SELECT count(*) AS n FROM bare") == [{"n": ROWS_PER_TABLE}]
    indexed = db.query("SELECT count(*) AS n FROM docs_fts_docsize")
    assert indexed == [{"n": ROWS_PER_TABLE}]  # the external index was rebuilt from docs
    assert db.query("SELECT count(*) AS n FROM search_data") != [{"n": 0}]


def test_only_empty_tables_get_rows() -> None:
    db = D1Database()
    db.run_script("CREATE TABLE cars (id INTEGER PRIMARY KEY, slug TEXT);")
    db.run_script("INSERT INTO cars (id, slug) VALUES (1, 'a');")
    assert synthesize_rows(db, read_schema(db)) == {}
    assert rows_of(db, "cars") == [{"id": 1, "slug": "a"}]


def test_an_unfillable_table_is_reported_with_the_constraint_that_defeated_it() -> None:
    _, empty = filled(
        "CREATE TABLE odd (id INTEGER PRIMARY KEY, n INTEGER NOT NULL CHECK (n > 5 AND n < 3));"
        "CREATE TABLE child (id INTEGER PRIMARY KEY, odd_id INTEGER NOT NULL REFERENCES odd(id));"
    )
    assert empty["odd"] == "CHECK constraint failed: n > 5 AND n < 3"
    assert empty["child"].startswith("odd_id references odd, which has no rows")
    assert "CHECK constraint failed" in empty["child"]


def test_the_same_schema_gives_the_same_rows_in_another_process(tmp_path: Path) -> None:
    script = TEXT_KEYS + "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT CHECK (v LIKE 'a%'));"
    program = (
        "import sys\n"
        "from d1check.engine import D1Database\n"
        "from d1check.rows import fingerprint, synthesize_rows\n"
        "from d1check.schema import read_schema\n"
        "db = D1Database()\n"
        "db.run_script(sys.argv[1])\n"
        "schema = read_schema(db)\n"
        "synthesize_rows(db, schema)\n"
        "print(sorted((n, r.exact or r.digest) for n, r in fingerprint(db, schema).items()))\n"
    )
    outputs = {
        subprocess.run(
            [sys.executable, "-c", program, script],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
        ).stdout
        for seed in ("1", "2")
    }
    assert len(outputs) == 1
    db, _ = filled(script)
    assert (
        repr(sorted((n, r.exact or r.digest) for n, r in fingerprint(db, read_schema(db)).items()))
        == outputs.pop().strip()
    )
