"""Reading `wrangler d1 export` files and sqlite3 `.schema` output."""

from __future__ import annotations

from pathlib import Path

import pytest

from d1check.engine import D1Database
from d1check.errors import MigrationFileError, SQLError
from d1check.export import load_export, read_export
from d1check.schema import Schema, read_schema

TRACKING = (
    'CREATE TABLE IF NOT EXISTS "d1_migrations"(\n\t\tid         INTEGER PRIMARY KEY AUTOINCREMENT,'
    "\n\t\tname       TEXT UNIQUE,\n\t\tapplied_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP NOT NULL\n);"
)
MIGRATIONS = """
CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE);
CREATE TABLE posts (id INTEGER PRIMARY KEY AUTOINCREMENT,
                    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
                    title TEXT);
ALTER TABLE posts ADD COLUMN draft INTEGER NOT NULL DEFAULT 0;
CREATE INDEX posts_user ON posts (user_id);
CREATE TRIGGER posts_title AFTER INSERT ON posts BEGIN
  UPDATE posts SET title = coalesce(title, '') WHERE id = NEW.id;
END;
"""

NO_DATA = (
    "PRAGMA defer_foreign_keys=TRUE;\n"
    + TRACKING
    + """
CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE);
CREATE TABLE posts (id INTEGER PRIMARY KEY AUTOINCREMENT,
                    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
                    title TEXT
, draft INTEGER NOT NULL DEFAULT 0);
DELETE FROM sqlite_sequence;
CREATE INDEX posts_user ON posts (user_id);
CREATE TRIGGER posts_title AFTER INSERT ON posts BEGIN
  UPDATE posts SET title = coalesce(title, '') WHERE id = NEW.id;
END;"""
)

WITH_DATA = (
    "PRAGMA defer_foreign_keys=TRUE;\n"
    + TRACKING
    + """
INSERT INTO "d1_migrations" ("id","name","applied_at") VALUES(1,'0001_init.sql','2026-11-01 10:00');
INSERT INTO "d1_migrations" ("id","name","applied_at") VALUES(2,'0002_posts.sql','2026-11-02');
CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE);
INSERT INTO "users" ("id","email") VALUES(1,'a@example.com');
CREATE TABLE posts (id INTEGER PRIMARY KEY AUTOINCREMENT,
                    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
                    title TEXT
, draft INTEGER NOT NULL DEFAULT 0);
INSERT INTO "posts" ("id","user_id","title","draft") VALUES(1,1,'hello; world',0);
INSERT INTO "posts" ("id","user_id","title","draft") VALUES(2,7,'orphan',0);
DELETE FROM sqlite_sequence;
INSERT INTO "sqlite_sequence" VALUES('d1_migrations',2);
INSERT INTO "sqlite_sequence" VALUES('posts',2);
CREATE INDEX posts_user ON posts (user_id);
CREATE TRIGGER posts_title AFTER INSERT ON posts BEGIN
  UPDATE posts SET title = coalesce(title, '') WHERE id = NEW.id;
END;"""
)

DOT_SCHEMA = """CREATE TABLE d1_migrations(
\t\tid         INTEGER PRIMARY KEY AUTOINCREMENT,
\t\tname       TEXT UNIQUE,
\t\tapplied_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP NOT NULL
);
CREATE TABLE sqlite_sequence(name,seq);
CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE);
CREATE TABLE posts (id INTEGER PRIMARY KEY AUTOINCREMENT,
                    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
                    title TEXT
, draft INTEGER NOT NULL DEFAULT 0);
CREATE INDEX posts_user ON posts (user_id);
CREATE TRIGGER posts_title AFTER INSERT ON posts BEGIN
  UPDATE posts SET title = coalesce(title, '') WHERE id = NEW.id;
END;
"""


@pytest.fixture
def migrated() -> Schema:
    db = D1Database()
    db.run_script(TRACKING + MIGRATIONS, source="migrations")
    return read_schema(db)


def write(tmp_path: Path, text: str, name: str = "export.sql") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_wrangler_export_without_data(tmp_path: Path, migrated: Schema) -> None:
    export = read_export(write(tmp_path, NO_DATA))
    assert export.schema == migrated
    assert export.applied is None
    assert export.path == tmp_path / "export.sql"


def test_wrangler_export_with_data_lists_applied_migrations(
    tmp_path: Path, migrated: Schema
) -> None:
    assert not WITH_DATA.endswith("\n")
    export = read_export(write(tmp_path, WITH_DATA))
    assert export.schema == migrated
    assert export.schema.fingerprint() == migrated.fingerprint()
    assert export.applied == ("0001_init.sql", "0002_posts.sql")


def test_sqlite_schema_output(tmp_path: Path, migrated: Schema) -> None:
    export = read_export(write(tmp_path, DOT_SCHEMA))
    assert export.schema == migrated
    assert export.applied is None


def test_schema_output_with_fts5_shadow_tables(tmp_path: Path) -> None:
    text = (
        "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);\n"
        "CREATE VIRTUAL TABLE notes_fts USING fts5(body, content='notes');\n"
        "CREATE TABLE IF NOT EXISTS 'notes_fts_data'(id INTEGER PRIMARY KEY, block BLOB);\n"
        "CREATE TABLE IF NOT EXISTS 'notes_fts_idx'(segid, term, pgno, PRIMARY KEY(segid, term))"
        " WITHOUT ROWID;\n"
        "CREATE TABLE IF NOT EXISTS 'notes_fts_docsize'(id INTEGER PRIMARY KEY, sz BLOB);\n"
        "CREATE TABLE IF NOT EXISTS 'notes_fts_config'(k PRIMARY KEY, v) WITHOUT ROWID;\n"
    )
    schema = read_export(write(tmp_path, text)).schema
    assert list(schema.tables) == ["notes"]
    assert list(schema.virtual_tables) == ["notes_fts"]


def test_custom_tracking_table(tmp_path: Path) -> None:
    text = (
        "CREATE TABLE _migrations (id INTEGER PRIMARY KEY, name TEXT);\n"
        "INSERT INTO _migrations VALUES (1, '0001_a.sql');\n"
        'CREATE TABLE "app_migrations" (id INTEGER PRIMARY KEY, name TEXT);\n'
        "INSERT INTO \"app_migrations\" VALUES (1, '0001_b.sql');\n"
        "CREATE TABLE t (a);\n"
    )
    path = write(tmp_path, text)
    assert read_export(path).applied == ("0001_a.sql",)
    custom = read_export(path, tracking_table="app_migrations")
    assert custom.applied == ("0001_b.sql",)
    assert list(custom.schema.tables) == ["t"]


def test_load_export_keeps_rows(tmp_path: Path) -> None:
    db = load_export(write(tmp_path, WITH_DATA))
    assert db.execute("SELECT id, title FROM posts ORDER BY id") == [
        (1, "hello; world"),
        (2, "orphan"),
    ]
    assert db.execute("PRAGMA foreign_keys") == [(1,)]
    schema_only = load_export(write(tmp_path, WITH_DATA), data=False)
    assert schema_only.execute("SELECT count(*) FROM posts") == [(0,)]


def test_broken_schema_statement_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "CREATE TABLE a (x);\n\nCREATE INDEX i ON missing (x);\n")
    with pytest.raises(SQLError) as info:
        read_export(path)
    assert (info.value.source, info.value.line) == (str(path), 3)
    assert info.value.message == "no such table: main.missing: SQLITE_ERROR"


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(MigrationFileError, match="cannot read"):
        read_export(tmp_path / "missing.sql")
    bad = tmp_path / "bad.sql"
    bad.write_bytes(b"CREATE TABLE t (a);\n-- \xff\n")
    with pytest.raises(MigrationFileError, match="byte 23"):
        read_export(bad)


def test_byte_order_mark_and_transaction_wrapper(tmp_path: Path, migrated: Schema) -> None:
    text = "\ufeffPRAGMA foreign_keys=OFF;\nBEGIN TRANSACTION;\n" + DOT_SCHEMA + "COMMIT;\n"
    assert read_export(write(tmp_path, text)).schema == migrated
