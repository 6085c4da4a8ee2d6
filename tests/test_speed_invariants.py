"""The pass does work proportional to what a migration touches, and still catches what it must.

Row fingerprints are carried forward for tables no statement touched; these tests prove the
tracking sees every way rows change (truncation, triggers, cascades, WITHOUT ROWID, rebuilds),
that the checks built on it fail where they should, and that a step reads only touched tables.
"""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Any

import pytest

from d1check import checks, rows
from d1check.checks import run_tracked, state_of
from d1check.discovery import discover
from d1check.engine import D1Database
from d1check.history import History
from d1check.schema import diff_schemas, read_schema
from d1check.sqlfacts import touched_tables
from d1check.statements import split_statements

BASE = """
CREATE TABLE parent (id INTEGER PRIMARY KEY, name TEXT);
CREATE TABLE child (id INTEGER PRIMARY KEY, parent_id INTEGER REFERENCES parent(id)
    ON DELETE CASCADE);
CREATE TABLE log (id INTEGER PRIMARY KEY, note TEXT);
CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT) WITHOUT ROWID;
CREATE TABLE other (id INTEGER PRIMARY KEY, v TEXT);
INSERT INTO parent VALUES (1, 'a'), (2, 'b');
INSERT INTO child VALUES (1, 1), (2, 2);
INSERT INTO log VALUES (1, 'x'), (2, 'y');
INSERT INTO kv VALUES ('a', '1');
INSERT INTO other VALUES (1, 'o');
"""


def base_db() -> D1Database:
    db = D1Database()
    db.run_script(BASE)
    return db


def changes_of(sql: str, setup: str = "") -> set[str]:
    """Tables whose rows `sql` may change, as the pass sees them."""
    db = base_db()
    if setup:
        db.run_script(setup)
    ran = run_tracked(db, split_statements(sql), "<test>")
    return set(ran.changed)


@pytest.mark.parametrize(
    ("sql", "setup", "expected"),
    [
        ("DELETE FROM log;", "", {"log"}),
        ("UPDATE kv SET v = '2';", "", {"kv"}),
        ("DELETE FROM parent WHERE id = 1;", "", {"parent", "child"}),
        (
            "INSERT INTO other VALUES (2, 'p');",
            "CREATE TRIGGER t AFTER INSERT ON other BEGIN DELETE FROM log; END;",
            {"other", "log"},
        ),
        ("INSERT OR REPLACE INTO kv VALUES ('a', '3');", "", {"kv"}),
        ("ALTER TABLE log RENAME TO journal;", "", {"log", "journal"}),
        ("DROP TABLE other;", "", {"other"}),
        ("CREATE TABLE IF NOT EXISTS other (id INTEGER PRIMARY KEY, v TEXT);", "", set()),
    ],
)
def test_every_way_rows_change_is_seen(sql: str, setup: str, expected: set[str]) -> None:
    assert changes_of(sql, setup) == expected


def test_touched_tables_reads_names_from_the_text() -> None:
    statements = split_statements(
        "DELETE FROM Log; ALTER TABLE a RENAME TO b; INSERT INTO main.c VALUES (1); SELECT 1;"
    )
    assert touched_tables(statements) == {"log", "a", "b", "c"}


def test_untouched_tables_keep_their_fingerprints_and_touched_ones_are_read() -> None:
    db = base_db()
    before = state_of(db)
    ran = run_tracked(db, split_statements("UPDATE log SET note = 'z' WHERE id = 1;"), "<t>")
    after = checks.state_after(db, (), before, ran)
    assert after.schema is before.schema
    assert after.rows["other"] is before.rows["other"]
    assert after.rows["log"] != before.rows["log"]
    assert after.rows == state_of(db).rows


def test_a_schema_change_refreshes_the_fingerprint_of_that_table() -> None:
    db = base_db()
    before = state_of(db)
    ran = run_tracked(
        db, split_statements("ALTER TABLE other ADD COLUMN w TEXT DEFAULT 'd';"), "<t>"
    )
    after = checks.state_after(db, (), before, ran)
    assert ran.restructured
    assert after.rows["other"].columns == ("id", "v", "w")
    assert after.rows == state_of(db).rows


def test_reading_an_unchanged_catalog_gives_the_same_model() -> None:
    db = base_db()
    first, second = read_schema(db), read_schema(db)
    assert first is second
    assert diff_schemas(first, second) == []
    assert first.fingerprint() == second.fingerprint()
    db.run_script("CREATE INDEX log_note ON log(note);")
    third = read_schema(db)
    assert [str(d) for d in diff_schemas(first, third)] == ["index log_note: added"]
    assert third.tables["log"] is first.tables["log"] or third.tables["log"] == first.tables["log"]


def project(tmp_path: Path, files: dict[str, str]) -> History:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return History(discover(tmp_path / "migrations", tmp_path / "rollbacks"))


SCHEMA_0001 = (
    "CREATE TABLE IF NOT EXISTS a (id INTEGER PRIMARY KEY, name TEXT);\n"
    "CREATE TABLE IF NOT EXISTS b (id INTEGER PRIMARY KEY, name TEXT);\n"
    "CREATE TABLE IF NOT EXISTS kv (k TEXT PRIMARY KEY, v TEXT) WITHOUT ROWID;\n"
)


@pytest.mark.parametrize(
    ("migration", "rollback", "message"),
    [
        (
            "CREATE TRIGGER IF NOT EXISTS wipe AFTER INSERT ON a BEGIN DELETE FROM b; END;\n",
            "INSERT INTO a (name) VALUES ('z');\nDROP TRIGGER IF EXISTS wipe;\n"
            "DELETE FROM a WHERE name = 'z';\n",
            "rows of b are not restored: 4 rows at the previous version, 0 after the rollback",
        ),
        (
            "CREATE INDEX IF NOT EXISTS kv_v ON kv(v);\n",
            "DROP INDEX IF EXISTS kv_v;\nUPDATE kv SET v = 'changed';\n",
            "rows of kv are not restored: 4 rows at the previous version, 4 after the rollback "
            "(values differ)",
        ),
        (
            "CREATE INDEX IF NOT EXISTS b_name ON b(name);\n",
            "DROP INDEX IF EXISTS b_name;\nDROP TABLE IF EXISTS b;\n"
            "CREATE TABLE IF NOT EXISTS b (id INTEGER PRIMARY KEY, name TEXT);\n",
            "rows of b are not restored",
        ),
    ],
)
def test_rollback_still_catches_rows_it_does_not_restore(
    tmp_path: Path, migration: str, rollback: str, message: str
) -> None:
    history = project(
        tmp_path,
        {
            "migrations/0001_init.sql": SCHEMA_0001,
            "rollbacks/0001_rollback.sql": "DROP TABLE a;\nDROP TABLE b;\nDROP TABLE kv;\n",
            "migrations/0002_change.sql": migration,
            "rollbacks/0002_rollback.sql": rollback,
        },
    )
    results = history.run_all()
    assert not any(r.failed for r in results["0001_init"].values())
    result = results["0002_change"]["rollback"]
    assert result.failed
    assert message in result.message


def test_idempotent_still_catches_rows_changed_through_a_trigger(tmp_path: Path) -> None:
    history = project(
        tmp_path,
        {
            "migrations/0001_init.sql": SCHEMA_0001,
            "rollbacks/0001_rollback.sql": "DROP TABLE a;\nDROP TABLE b;\nDROP TABLE kv;\n",
            "migrations/0002_touch.sql": (
                "UPDATE a SET name = name;\n"
                "CREATE TRIGGER IF NOT EXISTS wipe AFTER UPDATE ON a BEGIN DELETE FROM b; END;\n"
            ),
            "rollbacks/0002_rollback.sql": "DROP TRIGGER IF EXISTS wipe;\n",
        },
    )
    result = history.results(history.migrations.find("0002"))["idempotent"]
    assert result.failed
    assert "rows of b" in result.message


def many_tables(tmp_path: Path, count: int) -> History:
    files = {
        f"migrations/{i:04d}_t{i}.sql": (
            f"CREATE TABLE IF NOT EXISTS t{i} (id INTEGER PRIMARY KEY, v TEXT);\n"
        )
        for i in range(1, count + 1)
    }
    files |= {f"rollbacks/{i:04d}_rollback.sql": f"DROP TABLE t{i};\n" for i in range(1, count + 1)}
    return project(tmp_path, files)


def test_a_step_fingerprints_only_the_tables_it_touches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    history = many_tables(tmp_path, 40)
    calls: list[str] = []
    real = rows.table_rows

    def counting(
        conn: object, table: str, columns: object = None, *, rowid: bool | None = None
    ) -> rows.TableRows:
        calls.append(table)
        return real(conn, table, columns, rowid=rowid)  # type: ignore[arg-type]

    monkeypatch.setattr(checks, "table_rows", counting)
    per_step = []
    for migration in history.migrations.migrations:
        calls.clear()
        history.results(migration)
        per_step.append(len(calls))
    assert not history.failed()
    assert max(per_step[5:]) <= 4, per_step


def test_ensure_rows_looks_only_at_the_tables_it_is_given() -> None:
    db = D1Database()
    db.run_script(
        "CREATE TABLE a (id INTEGER PRIMARY KEY); CREATE TABLE b (id INTEGER PRIMARY KEY);"
    )
    assert rows.ensure_rows(db, read_schema(db), only=["a"]) == []
    assert db.execute("SELECT (SELECT count(*) FROM a), (SELECT count(*) FROM b)") == [
        (rows.ROWS_PER_TABLE, 0)
    ]


def test_the_pass_keeps_no_database_per_version(tmp_path: Path) -> None:
    history = many_tables(tmp_path, 30)
    gc.collect()
    existing = {id(o) for o in gc.get_objects() if isinstance(o, D1Database)}
    history.run_all()
    gc.collect()
    kept = [o for o in gc.get_objects() if isinstance(o, D1Database) and id(o) not in existing]
    assert len(kept) <= 2


def test_tracked_fingerprints_match_a_full_reread() -> None:
    db = base_db()
    before = state_of(db, ["d1_migrations"])
    migrations = split_statements("DELETE FROM parent WHERE id = 2; UPDATE kv SET v = 'n';")
    after = db.copy()
    after.run(migrations, source="<t>")
    reread = state_of(after, ["d1_migrations"])
    work = db.copy()
    tracked = checks.state_after(
        work, ["d1_migrations"], before, run_tracked(work, migrations, "<t>")
    )
    assert tracked.rows == reread.rows


def runs_of(monkeypatch: pytest.MonkeyPatch, path_part: str) -> list[str]:
    """Every `D1Database.run` of a file whose path contains `path_part`, from now on."""
    seen: list[str] = []
    real = D1Database.run

    def counting(self: D1Database, statements: object, *, source: str) -> None:
        if path_part in source:
            seen.append(source)
        real(self, statements, source=source)  # type: ignore[arg-type]

    monkeypatch.setattr(D1Database, "run", counting)
    return seen


PARENTS = (
    "CREATE TABLE IF NOT EXISTS kinds (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT UNIQUE);\n"
    "CREATE TABLE IF NOT EXISTS rules (id INTEGER PRIMARY KEY,\n"
    "    kind_id INTEGER NOT NULL REFERENCES kinds(id));\n"
)


def test_an_exact_rollback_is_not_followed_by_a_second_apply(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    history = project(
        tmp_path,
        {
            "migrations/0001_base.sql": SCHEMA_0001,
            "migrations/0002_add_note.sql": "-- d1check: not-idempotent ADD COLUMN\n"
            "ALTER TABLE a ADD COLUMN note TEXT;\n",
            "rollbacks/0002_rollback.sql": "ALTER TABLE a DROP COLUMN note;\n",
        },
    )
    runs = runs_of(monkeypatch, "0002_add_note")
    assert history.results(history.migrations.find("0002"))["rollback"].outcome == "passed"
    # the apply on the database built from empty, and the one with rows; the rollback restored
    # the previous version exactly, so no second apply
    assert len(runs) == 2


@pytest.mark.parametrize(
    ("migration", "rollback"),
    [
        # the rollback restores the values under new rowids
        (
            "-- d1check: not-idempotent appends\nUPDATE notes SET body = body || '!';\n",
            "CREATE TABLE notes_old AS SELECT rowid AS r, body FROM notes;\nDELETE FROM notes;\n"
            "INSERT INTO notes (rowid, body)\n"
            "    SELECT r + 10, substr(body, 1, length(body) - 1) FROM notes_old;\n"
            "DROP TABLE notes_old;\n",
        ),
        # the rollback leaves a text difference the structural model does not see
        ("-- d1check: not-idempotent ADD COLUMN\nALTER TABLE a ADD COLUMN note TEXT;\n", None),
    ],
)
def test_a_rollback_not_proven_exact_is_followed_by_a_second_apply(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, migration: str, rollback: str | None
) -> None:
    rebuild = (
        "-- d1check: allow-destructive rollback rebuild\n"
        "PRAGMA defer_foreign_keys = true;\n"
        "CREATE TABLE a_new (id INTEGER PRIMARY KEY ASC, name TEXT);\n"
        "INSERT INTO a_new SELECT id, name FROM a;\nDROP TABLE a;\n"
        "ALTER TABLE a_new RENAME TO a;\n"
    )
    history = project(
        tmp_path,
        {
            "migrations/0001_base.sql": SCHEMA_0001
            + "CREATE TABLE IF NOT EXISTS notes (body TEXT);\n",
            "migrations/0002_change.sql": migration,
            "rollbacks/0002_rollback.sql": rollback or rebuild,
        },
    )
    runs = runs_of(monkeypatch, "0002_change")
    result = history.results(history.migrations.find("0002"))["rollback"]
    assert result.outcome == "passed", result.message
    assert len(runs) == 3  # from empty, with rows, and again after the rollback


FEE_ID = rows.SYNTHETIC_INT_BASE + rows.ROWS_PER_TABLE  # the id after the synthesized kinds
FEE_RULE_ROLLBACK = (
    f"DELETE FROM rules WHERE kind_id = {FEE_ID};\nDELETE FROM kinds WHERE name = 'fee';\n"
)


def fee_rule_rollback_result(tmp_path: Path, rollback: str) -> checks.CheckResult:
    """The rollback check of a migration that seeds a kind and a rule pointing at its id (the
    next after the synthesized kinds)."""
    history = project(
        tmp_path,
        {
            "migrations/0001_kinds.sql": PARENTS,
            "migrations/0002_fee_rule.sql": "-- d1check: not-idempotent seeds\n"
            "INSERT INTO kinds (name) VALUES ('fee');\n"
            f"INSERT INTO rules (kind_id) VALUES ({FEE_ID});\n",
            "rollbacks/0002_rollback.sql": rollback,
        },
    )
    return history.results(history.migrations.find("0002"))["rollback"]


def test_the_second_apply_catches_a_hard_coded_id_after_an_autoincrement_rollback(
    tmp_path: Path,
) -> None:
    result = fee_rule_rollback_result(tmp_path, FEE_RULE_ROLLBACK)
    assert result.failed
    assert "after the rollback, the migration no longer applies" in result.message
    assert "FOREIGN KEY constraint failed" in result.message


def test_a_rollback_that_resets_the_autoincrement_counter_passes(tmp_path: Path) -> None:
    result = fee_rule_rollback_result(
        tmp_path,
        FEE_RULE_ROLLBACK
        + "UPDATE sqlite_sequence SET seq = (SELECT max(id) FROM kinds) WHERE name = 'kinds';\n",
    )
    assert result.outcome == "passed", result.message


DROP_NAME = "-- d1check: allow-destructive names are retired\nALTER TABLE b DROP COLUMN name;\n"
REBUILD_B = (
    "-- d1check: allow-destructive names are retired\n"
    "CREATE TABLE b_new (id INTEGER PRIMARY KEY);\nINSERT INTO b_new SELECT id FROM b;\n"
    "DROP TABLE b;\nALTER TABLE b_new RENAME TO b;\n"
)


@pytest.mark.parametrize("migration", [DROP_NAME, REBUILD_B], ids=["drop-column", "rebuild"])
@pytest.mark.parametrize(
    ("rollback", "outcome"),
    [
        ("ALTER TABLE b ADD COLUMN name TEXT;\n", "passed"),
        ("ALTER TABLE b ADD COLUMN name TEXT;\nUPDATE b SET id = id + 100;\n", "failed"),
    ],
    ids=["restores-kept-columns", "changes-kept-columns"],
)
def test_a_destructive_rollback_is_compared_over_the_columns_it_keeps(
    tmp_path: Path, migration: str, rollback: str, outcome: str
) -> None:
    history = project(
        tmp_path,
        {
            "migrations/0001_init.sql": SCHEMA_0001,
            "migrations/0002_retire_names.sql": "-- d1check: not-idempotent DROP COLUMN\n"
            + migration,
            "rollbacks/0002_rollback.sql": rollback,
        },
    )
    result = history.results(history.migrations.find("0002"))["rollback"]
    assert result.outcome == outcome, result.message
    if outcome == "failed":
        assert "rows of b are not restored: 4 rows at the previous version, 4 after the " in (
            result.message
        )
        assert "(values differ)" in result.message


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY);", True),
        ("create index if not exists i on t(id);", True),
        ("CREATE UNIQUE INDEX IF NOT EXISTS i ON t(id);", True),
        ("CREATE VIEW IF NOT EXISTS v AS SELECT 1;", True),
        ("CREATE TEMP TABLE IF NOT EXISTS t (id);", True),
        ("CREATE VIRTUAL TABLE IF NOT EXISTS f USING fts5(body);", True),
        ("-- a note\nCREATE TRIGGER IF NOT EXISTS tr AFTER INSERT ON t BEGIN SELECT 1; END;", True),
        ("CREATE TABLE t (id INTEGER PRIMARY KEY);", False),
        ("CREATE INDEX i ON t(id);", False),
        ('CREATE TABLE "IF" (id);', False),
        ("CREATE UNIQUE TABLE IF NOT EXISTS t (id);", False),
        ("DROP TABLE IF EXISTS t;", False),
        ("INSERT INTO t SELECT 1 WHERE NOT EXISTS (SELECT 1 FROM t);", False),
    ],
)
def test_statements_that_only_create_what_is_missing(sql: str, expected: bool) -> None:
    (statement,) = split_statements(sql)
    assert checks.creates_only_if_missing(statement) is expected


IDEMPOTENT_BASE = {
    "migrations/0001_init.sql": SCHEMA_0001,
    "rollbacks/0001_rollback.sql": "DROP TABLE a;\nDROP TABLE b;\nDROP TABLE kv;\n",
    "rollbacks/0002_rollback.sql": "DROP INDEX IF EXISTS a_name;\nDROP TABLE IF EXISTS c;\n",
}


def _idempotent_result(
    tmp_path: Path, migration: str, monkeypatch: pytest.MonkeyPatch
) -> tuple[checks.CheckResult, int]:
    """The idempotency result of `migration` and how many times the check ran it again (the
    second run is one `trial()`)."""
    history = project(tmp_path, IDEMPOTENT_BASE | {"migrations/0002_step.sql": migration})
    history.run_to(1)
    again = 0
    check, trial = checks.CHECKS["idempotent"], D1Database.trial

    def counting_trial(db: D1Database) -> Any:
        nonlocal again
        again += 1
        return trial(db)

    def counted(applied: checks.Applied) -> checks.CheckResult:
        monkeypatch.setattr(D1Database, "trial", counting_trial)
        try:
            return check(applied)
        finally:
            monkeypatch.setattr(D1Database, "trial", trial)

    monkeypatch.setitem(checks.CHECKS, "idempotent", counted)
    return history.results(history.migrations.find("0002"))["idempotent"], again


def test_a_file_that_only_creates_what_is_missing_passes_without_a_second_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result, again = _idempotent_result(
        tmp_path,
        "CREATE INDEX IF NOT EXISTS a_name ON a(name);\n"
        "CREATE TABLE IF NOT EXISTS c (id INTEGER PRIMARY KEY);\n",
        monkeypatch,
    )
    assert result.outcome == "passed"
    assert again == 0


@pytest.mark.parametrize(
    ("migration", "message"),
    [
        (
            "CREATE TABLE IF NOT EXISTS c (id INTEGER PRIMARY KEY);\n"
            "INSERT INTO c (id) SELECT coalesce(max(id), 0) + 1 FROM c;\n",
            "rows of c: 1 after the first run, 2 after the second",
        ),
        ("CREATE TABLE c (id INTEGER PRIMARY KEY);\n", "already exists"),
    ],
)
def test_a_file_that_does_more_than_create_what_is_missing_is_run_again_and_caught(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, migration: str, message: str
) -> None:
    result, again = _idempotent_result(tmp_path, migration, monkeypatch)
    assert again == 1
    assert result.failed
    assert message in result.message
