"""The one pass over a history: each migration checked once, in order, from the state before it."""

from __future__ import annotations

import shutil
from pathlib import Path

from d1check.checks import Policy
from d1check.discovery import discover
from d1check.engine import D1Database
from d1check.history import History, replay
from d1check.rows import ROWS_PER_TABLE

EXAMPLES = Path(__file__).parent / "examples"


def example(name: str) -> tuple[Path, Path]:
    return EXAMPLES / name / "migrations", EXAMPLES / name / "rollbacks"


def test_the_pass_checks_every_migration_once() -> None:
    migrations = discover(*example("good"))
    seen: list[str] = []
    history = History(migrations, progress=lambda i, n, m: seen.append(f"{i}/{n} {m.name}"))
    results = history.run_all()
    assert seen == ["1/3 0001_create_projects", "2/3 0002_add_task_status", "3/3 0003_clear_tasks"]
    assert list(results) == [m.name for m in migrations.migrations]
    assert not history.failed()
    assert len(set(history.fingerprints)) == 2  # 0003 changes rows, not the schema
    assert len(history.fingerprints) == 3
    history.run_all()
    assert len(seen) == 3


def test_results_of_a_later_migration_advance_the_pass_only_that_far() -> None:
    migrations = discover(*example("good"))
    seen: list[str] = []
    history = History(migrations, progress=lambda i, n, m: seen.append(m.name))
    assert history.results(migrations.migrations[1])["applies"].outcome == "passed"
    assert seen == ["0001_create_projects", "0002_add_task_status"]


def test_a_migration_that_fails_only_with_rows_does_not_stop_the_pass(tmp_path: Path) -> None:
    shutil.copytree(EXAMPLES / "applies_not_null", tmp_path, dirs_exist_ok=True)
    (tmp_path / "migrations" / "0003_create_shelves.sql").write_text(
        "CREATE TABLE IF NOT EXISTS shelves (id INTEGER PRIMARY KEY);\n"
        "ALTER TABLE books ADD COLUMN shelf_id INTEGER REFERENCES shelves(id);\n"
    )
    history = History(discover(tmp_path / "migrations", tmp_path / "rollbacks"))
    results = history.run_all()
    applies = results["0002_add_isbn"]["applies"]
    assert applies.failed
    assert "as a production database has; it applies on an empty database" in applies.message
    later = results["0003_create_shelves"]
    assert later["applies"].outcome == "passed"
    assert later["rows"].outcome == "passed"
    assert later["rollback"].failed  # no rollback file: judged, not skipped
    state = history.state_bytes()
    assert state is not None
    db = D1Database.from_bytes(state[0])
    assert db.execute("SELECT count(*) FROM books WHERE isbn IS NOT NULL") == [(ROWS_PER_TABLE,)]


def test_a_migration_that_fails_on_an_empty_database_fails_applies(tmp_path: Path) -> None:
    (tmp_path / "migrations").mkdir()
    (tmp_path / "migrations" / "0001_properties.sql").write_text(
        "CREATE TABLE properties (id INTEGER PRIMARY KEY, name TEXT);\n"
        "CREATE TABLE roles (id INTEGER PRIMARY KEY,"
        " property_id INTEGER NOT NULL REFERENCES properties(id), name TEXT);\n"
    )
    (tmp_path / "migrations" / "0002_roles.sql").write_text(
        "INSERT INTO roles (property_id, name) VALUES (1, 'owner');\n"
    )
    (tmp_path / "migrations" / "0003_drop_roles.sql").write_text(
        "BEGIN TRANSACTION;\nDROP TABLE roles;\nCOMMIT;\n"
    )
    (tmp_path / "migrations" / "0004_more.sql").write_text(
        "CREATE TABLE IF NOT EXISTS shelves (id INTEGER PRIMARY KEY);\n"
    )
    history = History(discover(tmp_path / "migrations", tmp_path / "rollbacks"))
    results = history.run_all()
    applies = results["0002_roles"]["applies"]
    assert applies.failed
    assert "FOREIGN KEY constraint failed" in applies.message
    assert "as every new database starts" in applies.message
    waiting = results["0003_drop_roles"]
    assert waiting["destructive"].failed  # judged from the file alone
    assert waiting["d1"].failed and "0003_drop_roles.sql:1: BEGIN" in waiting["d1"].message
    assert "need the schema wait for 0002_roles.sql" in waiting["d1"].message
    assert waiting["applies"].outcome == "skipped"
    assert "waits for 0002_roles.sql" in waiting["applies"].message
    clean = results["0004_more"]
    assert clean["d1"].outcome == "skipped" and clean["destructive"].outcome == "passed"
    assert history.state_bytes() is None


def test_policy_is_passed_to_the_checks() -> None:
    migrations = discover(*example("rollback"))
    history = History(migrations, Policy(require_rollbacks=False))
    result = history.results(migrations.find("0004"))["rollback"]
    assert result.outcome == "skipped"
    assert "require_rollbacks = false" in result.message


def test_replay_records_wranglers_tracking_rows() -> None:
    migrations = discover(*example("good"))
    db = replay(migrations.migrations)
    try:
        names = [r["name"] for r in db.query("SELECT name FROM d1_migrations ORDER BY id")]
        assert names == [m.file_name for m in migrations.migrations]
    finally:
        db.close()


def test_the_checks_leave_the_migrated_database_as_the_migration_left_it(tmp_path: Path) -> None:
    """The rollback and the second run happen on the migrated database and are undone."""
    (tmp_path / "migrations").mkdir()
    (tmp_path / "rollbacks").mkdir()
    (tmp_path / "migrations" / "0001_books.sql").write_text(
        "CREATE TABLE IF NOT EXISTS books (id INTEGER PRIMARY KEY, title TEXT);\n"
        "INSERT INTO books (title) SELECT 'a' WHERE NOT EXISTS (SELECT 1 FROM books);\n"
    )
    (tmp_path / "rollbacks" / "0001_rollback.sql").write_text(
        "PRAGMA case_sensitive_like = ON;\nDELETE FROM books;\nDROP TABLE books;\n"
    )
    migrations = discover(tmp_path / "migrations", tmp_path / "rollbacks")
    history = History(migrations)
    results = history.run_all()
    assert not history.failed(), results
    expected = replay(migrations.migrations)
    state = history.state_bytes()
    assert state is not None
    kept = D1Database.from_bytes(state[0])
    query = "SELECT type, name, sql FROM sqlite_schema ORDER BY name"
    assert kept.execute(query) == expected.execute(query)
    assert kept.execute("SELECT title FROM books") == expected.execute("SELECT title FROM books")
    assert history._state is not None
    assert history._state.db.execute("SELECT count(*) FROM books WHERE title LIKE 'A'") == [(1,)]
