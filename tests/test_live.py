"""Reading a remote database's state: schema rebuilt from `sqlite_schema` rows, applied names."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import apsw
import pytest

from d1check.engine import D1Database
from d1check.errors import RemoteError
from d1check.live import applied_migrations, live_state, recorded_checksums, schema_from_rows
from d1check.remote import D1Client
from d1check.schema import Schema, diff_schemas, read_schema
from d1check.statements import split_statements
from d1check.testing import D1Emulator
from d1check.tracking import AUDIT_DDL, LOCK_DDL, TrackingStyle, audit_insert_sql

CATALOG = "SELECT type, name, tbl_name, sql FROM sqlite_schema WHERE sql IS NOT NULL ORDER BY rowid"

BLOG = """
CREATE TABLE authors (id INTEGER PRIMARY KEY AUTOINCREMENT, email TEXT NOT NULL UNIQUE);
CREATE TABLE posts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    author_id INTEGER NOT NULL REFERENCES authors(id) ON DELETE CASCADE,
    title TEXT NOT NULL,
    body TEXT,
    published INTEGER NOT NULL DEFAULT 0 CHECK (published IN (0, 1))
);
CREATE INDEX idx_posts_author ON posts(author_id) WHERE published = 1;
CREATE VIRTUAL TABLE posts_fts USING fts5(title, body, content='posts', content_rowid='id');
CREATE TRIGGER posts_ai AFTER INSERT ON posts BEGIN
    INSERT INTO posts_fts(rowid, title, body) VALUES (new.id, new.title, new.body);
END;
CREATE VIEW recent AS SELECT id, title FROM posts ORDER BY id DESC LIMIT 10;
CREATE VIEW front_page AS SELECT * FROM recent;
DROP VIEW recent;
CREATE VIEW recent AS SELECT id, title, author_id FROM posts ORDER BY id DESC LIMIT 10;
"""


def catalog_rows(db: D1Database) -> list[dict[str, object]]:
    """`sqlite_schema` rows as the query API returns them (the FTS shadow tables included)."""
    with db.internal() as conn:
        rows = conn.execute(CATALOG).fetchall()
    return [dict(zip(("type", "name", "tbl_name", "sql"), row, strict=True)) for row in rows]


def database(sql: str) -> D1Database:
    db = D1Database()
    with db.internal() as conn:
        conn.execute(sql)
    return db


def test_schema_from_rows_equals_the_schema_read_directly() -> None:
    db = database(BLOG)
    rows = catalog_rows(db)
    assert {"posts_fts_data", "posts_fts_config"} <= {r["name"] for r in rows}
    assert "sqlite_sequence" in {r["name"] for r in rows}
    rebuilt = schema_from_rows(rows, [])
    assert diff_schemas(read_schema(db), rebuilt) == []
    assert rebuilt.fingerprint() == read_schema(db).fingerprint()
    assert sorted(rebuilt.tables) == ["authors", "posts"]
    assert list(rebuilt.virtual_tables) == ["posts_fts"]
    assert rebuilt.virtual_tables["posts_fts"].module.lower() == "fts5"
    assert sorted(rebuilt.views) == ["front_page", "recent"]
    assert list(rebuilt.triggers) == ["posts_ai"]
    assert rebuilt.indexes["idx_posts_author"].where


def test_schema_from_rows_sees_a_hand_change() -> None:
    before = schema_from_rows(catalog_rows(database(BLOG)), [])
    changed = database(BLOG + "ALTER TABLE authors ADD COLUMN nickname TEXT;")
    diffs = diff_schemas(before, schema_from_rows(catalog_rows(changed), []))
    assert [str(d) for d in diffs] == [str(d) for d in diffs if "nickname" in str(d)]
    assert len(diffs) == 1


def test_schema_from_rows_leaves_out_tracking_and_bookkeeping_tables() -> None:
    style = TrackingStyle("d1_migrations")
    db = database(f"{style.create_sql()};\n{AUDIT_DDL};\n{LOCK_DDL};\nCREATE TABLE t (x);")
    schema = schema_from_rows(catalog_rows(db), [style.table])
    assert list(schema.tables) == ["t"]


def test_schema_from_rows_of_nothing_is_empty() -> None:
    assert schema_from_rows([], []) == Schema({}, {}, {}, {}, {})


# --- over the API ----------------------------------------------------------------------------


@pytest.fixture
def emu(tmp_path: Path) -> Iterator[D1Emulator]:
    with D1Emulator(tmp_path / "emu") as emulator:
        yield emulator


@pytest.fixture
def client(emu: D1Emulator) -> Iterator[D1Client]:
    with emu.client() as c:
        yield c


def test_a_fresh_database_has_nothing_applied(emu: D1Emulator, client: D1Client) -> None:
    db_id = emu.create_database("fresh")
    style = TrackingStyle("d1_migrations")
    assert applied_migrations(client, db_id, style) == []
    assert recorded_checksums(client, db_id) == {}
    state = live_state(client, db_id, style)
    assert (state.applied, state.checksums, state.schema) == ((), {}, Schema({}, {}, {}, {}, {}))


@pytest.mark.parametrize(
    ("table", "names"),
    [
        ("d1_migrations", ["0001_init.sql", "0002_posts.sql"]),
        ("_migrations", ["0001_init", "0002_posts"]),
    ],
)
def test_live_state_reads_applied_checksums_and_schema(
    emu: D1Emulator, client: D1Client, table: str, names: list[str]
) -> None:
    db_id = emu.create_database("blog")
    style = TrackingStyle(table)
    for sql in (style.create_sql(), AUDIT_DDL):
        emu.sql(db_id, sql)
    with contextlib.closing(apsw.Connection(str(emu.database_path(db_id)))) as conn:
        conn.execute("CREATE TABLE _cf_KV (key TEXT PRIMARY KEY, value BLOB) WITHOUT ROWID")
    for number, name in enumerate(names, 1):
        emu.sql(db_id, style.insert_sql(name, f"000{number}", f"sum{number}").rstrip(";"))
    audit = audit_insert_sql(
        version="0001",
        name="0001_init",
        checksum="sum1",
        applied_by="ci",
        environment="staging",
        target="blog",
        git_commit=None,
        bookmark="b1",
    )
    emu.sql(db_id, audit.rstrip(";"))
    for statement in split_statements(BLOG):
        emu.sql(db_id, statement.sql)

    state = live_state(client, db_id, style)
    assert state.applied == tuple(names)
    assert state.checksums == {"0001_init": "sum1"}
    assert diff_schemas(read_schema(database(BLOG)), state.schema) == []
    assert "_cf_KV" not in state.schema.tables


def test_other_errors_are_not_taken_for_a_missing_table(emu: D1Emulator) -> None:
    db_id = emu.create_database("x")
    wrong = D1Client(emu.account_id, "a-wrong-token", api_base=emu.url)
    with wrong, pytest.raises(RemoteError, match="Authentication error"):
        applied_migrations(wrong, db_id, TrackingStyle("d1_migrations"))
