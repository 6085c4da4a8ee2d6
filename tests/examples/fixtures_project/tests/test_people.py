"""A team's own tests of its migrations, written with the d1check fixtures."""

from d1check.engine import D1Database
from d1check.fixtures import Migrator


def tables(db: D1Database) -> set[str]:
    rows = db.query("SELECT name FROM sqlite_schema WHERE type = 'table'")
    return {str(r["name"]) for r in rows}


def test_latest_version_has_the_tables(d1_db: D1Database) -> None:
    assert "people" in tables(d1_db)
    columns = {r["name"] for r in d1_db.query("SELECT name FROM pragma_table_info('people')")}
    assert columns == {"id", "name", "email"}


def test_backfill_migrates_existing_rows(d1_migrator: Migrator) -> None:
    db = d1_migrator.to("0002")
    assert d1_migrator.version == "0002"
    db.execute("INSERT INTO people (name) VALUES ('Ada'), ('Grace')")
    d1_migrator.up()
    assert d1_migrator.version == "0003"
    rows = db.query("SELECT name, email FROM people ORDER BY name")
    assert rows == [
        {"name": "Ada", "email": "ada@example.com"},
        {"name": "Grace", "email": "grace@example.com"},
    ]


def test_down_runs_the_rollback(d1_migrator: Migrator) -> None:
    d1_migrator.latest()
    db = d1_migrator.down()
    assert d1_migrator.version == "0002"
    db = d1_migrator.down()
    assert d1_migrator.version == "0001"
    columns = {r["name"] for r in db.query("SELECT name FROM pragma_table_info('people')")}
    assert columns == {"id", "name"}
    names = [r["name"] for r in db.query("SELECT name FROM d1_migrations ORDER BY id")]
    assert names == ["0001_create_people.sql"]


def test_writes_a_row(d1_db: D1Database) -> None:
    d1_db.execute("INSERT INTO people (name, email) VALUES ('Linus', 'l@example.com')")
    assert d1_db.query("SELECT count(*) AS n FROM people") == [{"n": 1}]


def test_sees_no_row_of_another_test(d1_db: D1Database) -> None:
    assert d1_db.query("SELECT count(*) AS n FROM people") == [{"n": 0}]
