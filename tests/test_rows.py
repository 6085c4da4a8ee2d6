"""Row fingerprints and the synthesized rows that every table gets before a migration runs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from d1check.discovery import discover
from d1check.engine import D1Database
from d1check.history import History
from d1check.rows import (
    ROWS_PER_TABLE,
    SEED_FIX,
    SYNTHETIC_INT_BASE,
    Coverage,
    ensure_rows,
    fingerprint,
    synthesize_rows,
    table_rows,
)
from d1check.schema import read_schema

EXAMPLES = Path(__file__).parent / "examples"

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


def test_a_junction_table_gets_a_row_per_pair() -> None:
    db, empty = filled(
        TEXT_KEYS + "CREATE TABLE likes (user_id TEXT NOT NULL REFERENCES users(id),\n"
        "    post_id TEXT NOT NULL REFERENCES posts(id), PRIMARY KEY (user_id, post_id))"
        " WITHOUT ROWID;"
    )
    assert empty == {}
    assert len(rows_of(db, "likes")) == ROWS_PER_TABLE


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
        "e164 TEXT NOT NULL CHECK (e164 LIKE '+%' AND length(e164) BETWEEN 8 AND 15)",
        "sku TEXT NOT NULL UNIQUE CHECK (sku GLOB '[A-Z][A-Z][A-Z]-[0-9][0-9][0-9][0-9]')",
        "iso TEXT NOT NULL UNIQUE CHECK (length(iso) = 2 AND iso = upper(iso))",
        "lo INTEGER NOT NULL, hi INTEGER NOT NULL, CHECK (hi - lo BETWEEN 10 AND 20)",
    ],
)
def test_check_constraints_are_satisfied(column: str) -> None:
    db, empty = filled(f"CREATE TABLE t (id INTEGER PRIMARY KEY, {column});")
    assert empty == {}
    assert len(rows_of(db, "t")) == ROWS_PER_TABLE


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


# --- the pass: rows before every migration -----------------------------------------------------


def project(tmp_path: Path, files: dict[str, str]) -> History:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return History(discover(tmp_path / "migrations", tmp_path / "rollbacks"))


USERS_POSTS = (
    "CREATE TABLE IF NOT EXISTS users (id TEXT PRIMARY KEY, email TEXT NOT NULL);\n"
    "CREATE TABLE IF NOT EXISTS posts (id TEXT PRIMARY KEY,\n"
    "    user_id TEXT NOT NULL REFERENCES users(id), body TEXT);\n"
)
REBUILD_POSTS = (
    "-- d1check: allow-destructive rebuild\n-- d1check: not-idempotent rebuild\n"
    "CREATE TABLE posts_new (id TEXT PRIMARY KEY NOT NULL,\n"
    "    user_id TEXT NOT NULL REFERENCES users(id), body TEXT, title TEXT);\n"
    "INSERT INTO posts_new (id, user_id, body) SELECT id, user_id, body FROM posts;\n"
    "DROP TABLE posts;\nALTER TABLE posts_new RENAME TO posts;\n"
)
REBUILD_BACK = (
    "CREATE TABLE posts_old (id TEXT PRIMARY KEY,\n"
    "    user_id TEXT NOT NULL REFERENCES users(id), body TEXT);\n"
    "{copy}DROP TABLE posts;\nALTER TABLE posts_old RENAME TO posts;\n"
)


@pytest.mark.parametrize(
    ("copy", "outcome"),
    [
        ("", "failed"),
        ("INSERT INTO posts_old SELECT id, user_id, body FROM posts;\n", "passed"),
    ],
    ids=["rows-lost", "rows-copied"],
)
def test_a_rollback_rebuilding_a_text_keyed_table_must_copy_its_rows(
    tmp_path: Path, copy: str, outcome: str
) -> None:
    history = project(
        tmp_path,
        {
            "migrations/0001_init.sql": USERS_POSTS,
            "rollbacks/0001_rollback.sql": "DROP TABLE posts;\nDROP TABLE users;\n",
            "migrations/0002_title.sql": REBUILD_POSTS,
            "rollbacks/0002_rollback.sql": REBUILD_BACK.format(copy=copy),
        },
    )
    result = history.run_all()["0002_title"]["rollback"]
    assert result.outcome == outcome, result.message
    if outcome == "failed":
        assert f"rows of posts are not restored: {ROWS_PER_TABLE} rows" in result.message


@pytest.mark.parametrize(
    "seed",
    [
        "INSERT INTO cars (id, slug) VALUES (1, 'a'), (2, 'b');\n",
        "INSERT INTO colours (id, name) VALUES ('red', 'Red'), ('blue', 'Blue');\n",
        "INSERT INTO sizes (code) VALUES ('s'), ('m');\n",
    ],
)
def test_a_seed_with_its_own_keys_applies_beside_the_synthesized_rows(
    tmp_path: Path, seed: str
) -> None:
    history = project(
        tmp_path,
        {
            "migrations/0001_init.sql": (
                "CREATE TABLE cars (id INTEGER PRIMARY KEY, slug TEXT NOT NULL UNIQUE);\n"
                "CREATE TABLE colours (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE);\n"
                "CREATE TABLE sizes (code TEXT NOT NULL UNIQUE);\n"
            ),
            "migrations/0002_seed.sql": "-- d1check: not-idempotent seed\n" + seed,
        },
    )
    result = history.run_all()["0002_seed"]["applies"]
    assert result.outcome == "passed", result.message


@pytest.mark.parametrize(
    ("index", "outcome"),
    [
        ("CREATE UNIQUE INDEX IF NOT EXISTS users_name ON users(name);", "failed"),
        ("CREATE UNIQUE INDEX IF NOT EXISTS users_email ON users(email);", "passed"),
    ],
)
def test_a_unique_index_fails_where_production_values_repeat(
    tmp_path: Path, index: str, outcome: str
) -> None:
    history = project(
        tmp_path,
        {
            "migrations/0001_init.sql": (
                "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL,\n"
                "    email TEXT NOT NULL UNIQUE);\n"
            ),
            "migrations/0002_index.sql": index + "\n",
        },
    )
    result = history.run_all()["0002_index"]["applies"]
    assert result.outcome == outcome, result.message
    if outcome == "failed":
        assert "UNIQUE constraint failed: users.name" in result.message


UNFILLABLE = (
    "CREATE TABLE IF NOT EXISTS quotas (id INTEGER PRIMARY KEY,\n"
    "    used INTEGER NOT NULL CHECK (used > 5 AND used < 3));\n"
    "CREATE TABLE IF NOT EXISTS plans (id INTEGER PRIMARY KEY, name TEXT);\n"
)
QUOTAS_REASON = "CHECK constraint failed: used > 5 AND used < 3"


def test_the_pass_records_every_table_that_stayed_empty(tmp_path: Path) -> None:
    history = project(
        tmp_path,
        {
            "migrations/0001_init.sql": UNFILLABLE,
            "migrations/0002_note.sql": "ALTER TABLE quotas ADD COLUMN note TEXT;\n",
            "rollbacks/0002_rollback.sql": "ALTER TABLE quotas DROP COLUMN note;\n",
            "migrations/0003_plans.sql": "ALTER TABLE plans ADD COLUMN price INTEGER;\n",
            "rollbacks/0003_rollback.sql": "ALTER TABLE plans DROP COLUMN price;\n",
            "migrations/0004_drop.sql": "-- d1check: allow-destructive unused\nDROP TABLE quotas;",
        },
    )
    results = history.run_all()
    assert results["0004_drop"]["rows"].warnings == ()
    assert history.empty_tables == [("quotas", "0002_note", QUOTAS_REASON)]
    coverage = results["0002_note"]["rows"].coverage
    assert coverage == Coverage(1, 2, (("quotas", QUOTAS_REASON),))
    for check in ("rows", "rollback"):
        result = results["0002_note"][check]
        assert result.outcome == "passed", result.message
        (warning,) = result.warnings
        assert f"{check}: the rows of quotas were not checked" in warning
        assert QUOTAS_REASON in warning
        assert SEED_FIX in warning
        assert results["0003_plans"][check].warnings == ()


def test_a_seed_file_fills_what_the_synthesizer_cannot(tmp_path: Path) -> None:
    seed = tmp_path / "seed.sql"
    seed.write_text("INSERT INTO quotas (id, used) VALUES (1, NULL);\n", encoding="utf-8")
    project(tmp_path, {"migrations/0001_init.sql": UNFILLABLE.replace("NOT NULL ", "")})
    (tmp_path / "migrations" / "0002_note.sql").write_text("ALTER TABLE quotas ADD note TEXT;\n")
    history = History(discover(tmp_path / "migrations", tmp_path / "rollbacks"), seed_files=[seed])
    results = history.run_all()
    assert history.empty_tables == []
    assert results["0002_note"]["rows"].coverage == Coverage(2, 2, ())


def test_a_resumed_pass_synthesizes_exactly_what_a_straight_pass_does(tmp_path: Path) -> None:
    files = {"migrations/0001_init.sql": USERS_POSTS}
    files |= {
        f"migrations/000{k}_t{k}.sql": f"CREATE TABLE t{k} (id TEXT PRIMARY KEY,\n"
        f"    post_id TEXT NOT NULL REFERENCES posts(id), n INTEGER CHECK (n > {k}));\n"
        for k in range(2, 6)
    }
    straight = project(tmp_path, files)
    straight.run_all()
    first = straight.state_bytes()
    half = History(straight.migrations)
    half.run_to(3)
    kept = half.state_bytes()
    assert first is not None and kept is not None
    resumed = History(straight.migrations)
    resumed.resume(3, *kept)
    resumed.run_rest()
    second = resumed.state_bytes()
    assert second is not None
    assert contents(first[0]) == contents(second[0])


def contents(image: bytes) -> dict[str, list[tuple[object, ...]]]:
    db = D1Database.from_bytes(image)
    names = [str(r["name"]) for r in db.query("SELECT name FROM sqlite_schema WHERE type='table'")]
    with db.internal() as conn:
        return {n: conn.execute(f'SELECT * FROM "{n}" ORDER BY 1').fetchall() for n in names}


# --- the plugin: the `d1check data` section ------------------------------------------------------

INNER = ("-p", "no:hypothesispytest")


def test_the_data_section_names_each_empty_table_with_its_reason(pytester: pytest.Pytester) -> None:
    shutil.copytree(EXAMPLES / "rows_coverage", pytester.path, dirs_exist_ok=True)
    for _ in range(2):  # the second run reads the results from the cache
        result = pytester.runpytest(*INNER)
        result.assert_outcomes(passed=11, failed=1, skipped=2)
        result.stdout.fnmatch_lines(
            [
                "*D1CheckWarning: *: rows: the rows of quotas were not checked*",
                "*D1CheckWarning: *: rollback: the rows of quotas were not checked*",
            ]
        )
        result.stdout.fnmatch_lines(
            [
                "*- d1check data -*",
                "family default: 2 of 3 tables held rows (synthesized where empty) before "
                "0002_add_post_title.sql, the last migration checked",
                "tables that stayed empty (1; their rows were not checked):",
                "  quotas: empty before 0002_add_post_title.sql: CHECK constraint failed: "
                "used > 5 AND used < 3",
                f"    fix: {SEED_FIX}",
            ]
        )
        result.stdout.fnmatch_lines(["*rows of posts are not restored: 4 rows*"])


def test_a_rebuild_copying_a_text_key_into_a_not_null_column_applies(tmp_path: Path) -> None:
    history = project(
        tmp_path,
        {
            "migrations/0001_init.sql": USERS_POSTS.split("\n", 1)[0] + "\n",
            "migrations/0002_users.sql": (
                "-- d1check: allow-destructive rebuild\n-- d1check: not-idempotent rebuild\n"
                "PRAGMA defer_foreign_keys = true;\n"
                "CREATE TABLE users_new (id TEXT PRIMARY KEY NOT NULL, email TEXT NOT NULL);\n"
                "INSERT INTO users_new (id, email) SELECT id, email FROM users;\n"
                "DROP TABLE users;\nALTER TABLE users_new RENAME TO users;\n"
            ),
        },
    )
    results = history.run_all()["0002_users"]
    assert results["applies"].outcome == "passed", results["applies"].message
    assert results["rows"].outcome == "passed", results["rows"].message


def test_every_table_of_a_realistic_shop_schema_gets_rows() -> None:
    """Prisma, Drizzle and hand-written shapes together: text keys, junction tables, CHECKs,
    triggers that audit or refuse, external-content FTS5 kept in sync by a trigger."""
    script = (EXAMPLES / "rows_shapes" / "migrations" / "0001_create_shop.sql").read_text()
    db, empty = filled(script)
    assert empty == {}
    schema = read_schema(db)
    for table in [*schema.tables, *schema.virtual_tables]:
        count = db.query(f'SELECT count(*) AS n FROM "{table}"')[0]["n"]
        assert count == ROWS_PER_TABLE or table == "audit_log", (table, count)
    with db.internal() as conn:
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        conn.execute("INSERT INTO posts_fts(posts_fts) VALUES ('integrity-check')")


def test_the_data_section_under_xdist(pytester: pytest.Pytester) -> None:
    shutil.copytree(EXAMPLES / "rows_coverage", pytester.path, dirs_exist_ok=True)
    result = pytester.runpytest_subprocess(*INNER, "-p", "no:cacheprovider", "-n", "2")
    result.assert_outcomes(passed=11, failed=1, skipped=2, warnings=2)
    result.stdout.fnmatch_lines(
        [
            "*- d1check data -*",
            "family default: 2 of 3 tables held rows *",
            "  quotas: empty before 0002_add_post_title.sql: CHECK constraint failed: *",
        ]
    )


def test_a_trigger_that_reads_a_defaulted_column_still_gets_rows() -> None:
    """An index of the rows written by a trigger that reads JSON from a column whose DEFAULT is
    JSON: the varied values are not JSON, the plain row (the DEFAULT) goes in."""
    db, empty = filled(
        "CREATE TABLE actors (id TEXT PRIMARY KEY, type TEXT NOT NULL, email TEXT,"
        " key_a BLOB, key_b BLOB, public_key TEXT,"
        " made_at DATETIME NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),"
        " properties TEXT NOT NULL DEFAULT (json_object()));\n"
        "CREATE TABLE search (name TEXT);\n"
        "CREATE TRIGGER actors_search AFTER INSERT ON actors BEGIN\n"
        "  INSERT INTO search (name) VALUES (json_extract(new.properties, '$.name'));\n"
        "END;\n"
    )
    assert "actors" not in empty
    assert rows_of(db, "actors")


STAGES = """
CREATE TABLE stages (
    id INTEGER PRIMARY KEY,
    code TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL CHECK (kind IN ('received', 'screening', 'interview', 'offer', 'hired',
        'rejected', 'withdrawn')),
    position INTEGER NOT NULL CHECK (position >= 1),
    is_first INTEGER NOT NULL DEFAULT 0 CHECK (is_first IN (0, 1)),
    is_final INTEGER NOT NULL DEFAULT 0 CHECK (is_final IN (0, 1)),
    repeatable INTEGER NOT NULL DEFAULT 0 CHECK (repeatable IN (0, 1)),
    max_attempts INTEGER CHECK (max_attempts IS NULL OR max_attempts >= 1),
    settings TEXT NOT NULL,
    CHECK (json_valid(settings)),
    CHECK ((repeatable = 0 AND (max_attempts IS NULL OR max_attempts = 1))
        OR (repeatable = 1 AND (max_attempts IS NULL OR max_attempts >= 2))),
    CHECK ((kind IN ('hired', 'rejected', 'withdrawn') AND is_final = 1)
        OR (kind NOT IN ('hired', 'rejected', 'withdrawn') AND is_final = 0)),
    CHECK ((kind = 'received' AND is_first = 1) OR (kind <> 'received' AND is_first = 0))
);
"""


def test_checks_that_tie_several_columns_together_are_met() -> None:
    db, empty = filled(STAGES)
    assert empty == {}
    assert len(rows_of(db, "stages")) == ROWS_PER_TABLE
