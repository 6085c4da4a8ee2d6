"""The structural schema model: what it reads, what it ignores, how it compares."""

from __future__ import annotations

import apsw
import pytest

from d1check import schema
from d1check.engine import D1Database
from d1check.schema import (
    Column,
    Difference,
    ForeignKey,
    Schema,
    diff_schemas,
    format_diff,
    read_schema,
)


def build(sql: str) -> D1Database:
    db = D1Database()
    db.run_script(sql, source="schema.sql")
    return db


def schema_of(sql: str) -> Schema:
    return read_schema(build(sql))


def diffs(before: str, after: str) -> list[str]:
    return [str(d) for d in diff_schemas(schema_of(before), schema_of(after))]


BASE = """
CREATE TABLE users (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    email TEXT NOT NULL COLLATE NOCASE UNIQUE,
    age INT CHECK (age >= 0),
    full_name TEXT GENERATED ALWAYS AS (email || '!') VIRTUAL,
    CONSTRAINT adult CHECK (age < 200)
);
CREATE TABLE posts (
    id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    title TEXT DEFAULT 'untitled',
    UNIQUE (user_id, title)
) STRICT;
CREATE TABLE kv (k TEXT PRIMARY KEY, v BLOB) WITHOUT ROWID;
CREATE INDEX posts_title ON posts (title DESC, lower(title)) WHERE title IS NOT NULL;
CREATE UNIQUE INDEX users_email ON users (email);
CREATE VIEW adults AS SELECT id, email FROM users WHERE age >= 18;
CREATE TRIGGER users_touch AFTER UPDATE ON users BEGIN
    UPDATE posts SET title = title WHERE user_id = NEW.id;
END;
CREATE VIRTUAL TABLE search USING fts5(title, body, tokenize = 'trigram');
CREATE VIRTUAL TABLE boxes USING rtree(id, x0, x1);
"""


def test_reads_every_kind_of_object() -> None:
    schema = schema_of(BASE)
    assert sorted(schema.tables) == ["kv", "posts", "users"]
    assert sorted(schema.indexes) == ["posts_title", "users_email"]
    assert list(schema.views) == ["adults"]
    assert list(schema.triggers) == ["users_touch"]
    assert sorted(schema.virtual_tables) == ["boxes", "search"]


def test_table_properties() -> None:
    schema = schema_of(BASE)
    users, posts, kv = schema.tables["users"], schema.tables["posts"], schema.tables["kv"]
    assert users.column("id") == Column("id", "INTEGER", False, None, 1, 0)
    assert users.column("email") == Column("email", "TEXT", True, None, 0, 0, collate="NOCASE")
    full_name = users.column("full_name")
    assert full_name is not None
    assert (full_name.hidden, full_name.generated) == (2, "email || '!'")
    assert users.checks == ("age < 200", "age >= 0")
    assert users.unique == (("email",),)
    assert users.autoincrement and not users.strict and not users.without_rowid
    assert posts.strict and not posts.autoincrement
    assert posts.unique == (("user_id", "title"),)
    assert posts.foreign_keys == (
        ForeignKey(("user_id",), "users", ("id",), "NO ACTION", "CASCADE", "NONE"),
    )
    title = posts.column("title")
    assert title is not None and title.default == "'untitled'"
    assert kv.without_rowid


def test_index_view_trigger_virtual_properties() -> None:
    schema = schema_of(BASE)
    index = schema.indexes["posts_title"]
    assert index.columns == ("title DESC", normalized("lower(title)"))
    assert (index.table, index.unique, index.where) == ("posts", False, "title IS NOT NULL")
    assert schema.indexes["users_email"].unique
    assert schema.views["adults"].sql.startswith("CREATE VIEW adults AS SELECT")
    assert schema.triggers["users_touch"].table == "users"
    search = schema.virtual_tables["search"]
    assert (search.module, search.args) == ("fts5", ("title", "body", "tokenize = 'trigram'"))
    assert schema.virtual_tables["boxes"].module == "rtree"


def normalized(sql: str) -> str:
    from d1check.statements import normalize_sql

    return normalize_sql(sql)


def test_shadow_and_automatic_objects_are_not_listed() -> None:
    schema = schema_of(BASE)
    names = set(schema.tables) | set(schema.indexes)
    for suffix in ("data", "idx", "content", "docsize", "config"):
        assert f"search_{suffix}" not in names
    for suffix in ("node", "rowid", "parent"):
        assert f"boxes_{suffix}" not in names
    assert not any(name.startswith("sqlite_") for name in names)


def test_ignored_names() -> None:
    db = build(
        """
        CREATE TABLE d1_migrations (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT UNIQUE);
        CREATE TABLE _migrations (id INTEGER PRIMARY KEY, name TEXT);
        CREATE TABLE _schema_audit (id INTEGER PRIMARY KEY, note TEXT);
        CREATE INDEX audit_note ON _schema_audit (note);
        CREATE TRIGGER audit_guard BEFORE DELETE ON _schema_audit BEGIN SELECT 1; END;
        CREATE TABLE app (a);
        CREATE TABLE scratch_one (a);
        """
    )
    with db.internal() as conn:
        conn.execute("CREATE TABLE _cf_KV (k, v); CREATE TABLE _d1check_lock (a)")
    schema = read_schema(db, ignore=["scratch_*"])
    assert list(schema.tables) == ["app"]
    assert schema.indexes == {} and schema.triggers == {}
    assert "scratch_one" in read_schema(db).tables


def test_reads_a_plain_connection() -> None:
    conn = apsw.Connection(":memory:")
    conn.execute("CREATE TABLE t (a INTEGER)")
    assert list(read_schema(conn).tables) == ["t"]


def test_add_then_drop_column_round_trip_is_equal() -> None:
    db = build(BASE)
    before = read_schema(db)
    db.run_script("ALTER TABLE posts ADD COLUMN draft INTEGER NOT NULL DEFAULT 0;", source="up")
    middle = read_schema(db)
    db.run_script("ALTER TABLE posts DROP COLUMN draft;", source="down")
    after = read_schema(db)
    assert [str(d) for d in diff_schemas(before, middle)] == [
        "table posts: column draft: added (INTEGER NOT NULL DEFAULT 0)"
    ]
    assert after == before
    assert after.fingerprint() == before.fingerprint()
    assert middle.fingerprint() != before.fingerprint()


def test_text_only_differences_are_equal() -> None:
    spaced = BASE.replace("WHERE age >= 18", "where   age>=18 /* grown-ups */").replace(
        "UPDATE posts SET", "update  posts\n  set"
    )
    quoted = spaced.replace("CHECK (age >= 0)", 'check ("age" >= 0)')
    assert schema_of(quoted) == schema_of(BASE)
    assert schema_of(quoted).fingerprint() == schema_of(BASE).fingerprint()


def test_fingerprint_is_stable() -> None:
    assert schema_of(BASE).fingerprint() == schema_of(BASE).fingerprint()
    assert len(schema_of(BASE).fingerprint()) == 64
    assert Schema().is_empty()
    assert schema_of("").fingerprint() == Schema().fingerprint()


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            ("age INT CHECK", "age REAL CHECK"),
            "table users: column age: type INT → REAL",
        ),
        (
            ("email TEXT NOT NULL", "email TEXT"),
            "table users: column email: notnull yes → no",
        ),
        (
            ("DEFAULT 'untitled'", "DEFAULT 'none'"),
            "table posts: column title: default 'untitled' → 'none'",
        ),
        (
            ("COLLATE NOCASE UNIQUE", "UNIQUE"),
            "table users: column email: collate NOCASE → (none)",
        ),
        (
            ("(email || '!')", "(upper(email))"),
            "table users: column full_name: generated email || '!' → upper ( email )",
        ),
        (
            ("k TEXT PRIMARY KEY, v BLOB", "k TEXT, v BLOB PRIMARY KEY"),
            "table kv: column k: pk 1 → 0",
        ),
        (
            ("ON DELETE CASCADE", "ON DELETE SET NULL"),
            "table posts: foreign key: removed (was (user_id) REFERENCES users(id) "
            "ON DELETE CASCADE)",
        ),
        (
            ("CHECK (age < 200)", "CHECK (age < 150)"),
            "table users: check: removed (was age < 200)",
        ),
        (
            ("UNIQUE (user_id, title)", "UNIQUE (title)"),
            "table posts: constraint: removed (was UNIQUE (user_id, title))",
        ),
        ((") WITHOUT ROWID;", ");"), "table kv: without_rowid yes → no"),
        ((") STRICT;", ");"), "table posts: strict yes → no"),
        (
            ("PRIMARY KEY AUTOINCREMENT", "PRIMARY KEY"),
            "table users: autoincrement yes → no",
        ),
        (
            ("title DESC, lower(title)", "title"),
            "index posts_title: columns [title DESC; lower ( title )] → [title]",
        ),
        (
            ("WHERE title IS NOT NULL", "WHERE title <> ''"),
            "index posts_title: where title IS NOT NULL → title <> ''",
        ),
        (
            ("CREATE UNIQUE INDEX users_email", "CREATE INDEX users_email"),
            "index users_email: unique yes → no",
        ),
        (
            ("age >= 18", "age >= 21"),
            "view adults: sql CREATE VIEW adults AS SELECT id , email FROM users WHERE age >= 18"
            " → CREATE VIEW adults AS SELECT id , email FROM users WHERE age >= 21",
        ),
        (
            ("AFTER UPDATE ON users", "AFTER INSERT ON users"),
            "trigger users_touch: sql",
        ),
        (
            ("tokenize = 'trigram'", "tokenize = 'porter'"),
            "virtual table search: args [title; body; tokenize = 'trigram'] → "
            "[title; body; tokenize = 'porter']",
        ),
        (
            ("CREATE TABLE kv (k TEXT PRIMARY KEY, v BLOB) WITHOUT ROWID;", ""),
            "table kv: removed",
        ),
        (
            ("CREATE VIEW adults", "CREATE VIEW grown"),
            "view adults: removed",
        ),
    ],
)
def test_each_difference_is_reported(change: tuple[str, str], expected: str) -> None:
    old, new = change
    assert old in BASE
    found = diffs(BASE, BASE.replace(old, new))
    assert any(line.startswith(expected) for line in found), found


def test_added_objects_and_columns() -> None:
    found = diffs(
        "CREATE TABLE t (a);",
        "CREATE TABLE t (a, b TEXT NOT NULL DEFAULT '');\nCREATE INDEX t_b ON t (b);\n"
        "CREATE VIRTUAL TABLE f USING fts5(x);",
    )
    assert found == [
        "table t: column b: added (TEXT NOT NULL DEFAULT '')",
        "virtual table f: added",
        "index t_b: added",
    ]


def test_column_rename_and_order() -> None:
    found = diffs("CREATE TABLE t (a, b);", "CREATE TABLE t (b, a);")
    assert found == ["table t: column order [a; b] → [b; a]"]
    renamed = diffs("CREATE TABLE t (a TEXT);", "CREATE TABLE t (c TEXT);")
    assert renamed == ["table t: column a: removed (was TEXT)", "table t: column c: added (TEXT)"]


def test_difference_text() -> None:
    diff = Difference("table", "users", "column email: type", "TEXT", "VARCHAR")
    assert str(diff) == "table users: column email: type TEXT → VARCHAR"


def test_format_diff() -> None:
    assert format_diff([]) == "  (no structural differences)"
    many = [Difference("table", f"t{i}", "", None, "table") for i in range(5)]
    assert format_diff(many, limit=3).splitlines() == [
        "  table t0: added",
        "  table t1: added",
        "  table t2: added",
        "  … and 2 more",
    ]


@pytest.mark.parametrize(
    "table",
    [
        "CREATE TABLE t (k TEXT PRIMARY KEY, v TEXT) WITHOUT ROWID",
        "CREATE TABLE t (k TEXT PRIMARY KEY, v TEXT) without /* options */ rowid",
        "CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT) STRICT",
        "CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT) STRICT, WITHOUT ROWID",
        "CREATE TABLE t (k INTEGER PRIMARY KEY, strict TEXT, [without] INT, rowid_x INT)",
        "CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT CHECK (v <> 'WITHOUT ROWID'))",
        'CREATE TABLE "t" ("k" INTEGER PRIMARY KEY, "v" TEXT DEFAULT (\'strict\'))',
    ],
)
def test_a_schema_modelled_from_a_change_equals_one_read_whole(
    table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = build("".join(f"CREATE TABLE other{i} (id INTEGER PRIMARY KEY);" for i in range(5)))
    read_schema(db)  # the model the next read starts from (changes are read from it)
    db.run_script(f"{table};\nCREATE INDEX t_v ON t (k);")
    changed = read_schema(db)
    monkeypatch.setattr(schema, "_LAST", {})
    monkeypatch.setattr(schema, "_SCHEMAS", {})
    whole = read_schema(db)
    with db.internal() as conn:
        listed = conn.execute("SELECT wr, strict FROM pragma_table_list('t')").fetchall()[0]
    assert changed == whole
    assert (changed.tables["t"].without_rowid, changed.tables["t"].strict) == tuple(
        map(bool, listed)
    )
