"""The synthetic history generator: every migration applies on rows, every rollback restores."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import apsw
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import synth

Structure = dict[tuple[str, str], object]


def connect() -> apsw.Connection:
    """An in-memory database with foreign keys enforced, as on D1."""
    conn = apsw.Connection(":memory:")
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


def apply(conn: apsw.Connection, sql: str) -> None:
    """Run a file's SQL in one transaction; nothing stays on failure."""
    conn.execute("BEGIN")
    try:
        conn.execute(sql)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def pragma(conn: apsw.Connection, name: str, arg: str) -> list[tuple[object, ...]]:
    return list(conn.execute(f'PRAGMA {name}("{arg}")'))


def objects(conn: apsw.Connection) -> list[tuple[str, str, str]]:
    sql = "SELECT type, name, tbl_name FROM sqlite_schema WHERE name NOT LIKE 'sqlite_%'"
    return [(str(t), str(n), str(tb)) for t, n, tb in conn.execute(sql)]


def structure(conn: apsw.Connection) -> Structure:
    """The catalog's structure: columns, indexes and foreign keys per table; views; triggers."""
    out: Structure = {}
    for kind, name, table in objects(conn):
        if kind in ("table", "view"):
            out[(kind, name)] = pragma(conn, "table_xinfo", name)
        if kind == "table":
            indexes = sorted(pragma(conn, "index_list", name), key=lambda r: str(r[1]))
            out[("indexes", name)] = [
                (r[1:], pragma(conn, "index_xinfo", str(r[1]))) for r in indexes
            ]
            out[("fks", name)] = pragma(conn, "foreign_key_list", name)
        if kind == "trigger":
            out[(kind, name)] = table
    return out


def row_counts(conn: apsw.Connection) -> dict[str, int]:
    tables = [n for k, n, _ in objects(conn) if k == "table"]
    return {t: int(next(iter(conn.execute(f'SELECT count(*) FROM "{t}"')))[0]) for t in tables}


def fill_rows(conn: apsw.Connection, per_table: int = 3) -> None:
    """Give every table rows, child keys pointing at existing parents."""
    for table in [n for k, n, _ in objects(conn) if k == "table"]:
        fks = pragma(conn, "foreign_key_list", table)
        cols = [str(fk[3]) for fk in fks]
        values = [f'(SELECT max(id) FROM "{fk[2]}")' for fk in fks]
        for _ in range(per_table):
            if cols:
                sql = f'INSERT INTO "{table}" ({", ".join(cols)}) VALUES ({", ".join(values)})'
            else:
                sql = f'INSERT INTO "{table}" DEFAULT VALUES'
            conn.execute(sql)


@pytest.fixture(scope="module")
def history() -> list[synth.GeneratedMigration]:
    return synth.generate(60, seed=0)


def test_history_is_deterministic() -> None:
    assert synth.generate(40, seed=3) == synth.generate(40, seed=3)
    assert synth.generate(40, seed=3) != synth.generate(40, seed=4)


def test_history_covers_every_kind_of_change() -> None:
    text = "\n".join(m.sql for m in synth.generate(300, seed=0))
    for needle in (
        "REFERENCES", "ADD COLUMN", "DROP COLUMN", "CREATE INDEX", "CREATE VIEW",
        "CREATE TRIGGER", "INSERT INTO", "UPDATE", "__new RENAME TO", "RENAME COLUMN",
    ):  # fmt: skip
        assert needle in text, needle


def test_every_migration_applies_on_rows_and_every_rollback_restores(
    history: list[synth.GeneratedMigration],
) -> None:
    conn = connect()
    for m in history:
        fill_rows(conn)
        before, counts = structure(conn), row_counts(conn)
        apply(conn, m.sql)
        assert list(conn.execute("PRAGMA foreign_key_check")) == [], m.name
        after, counts_after = structure(conn), row_counts(conn)
        assert after != before or "UPDATE" in m.sql or "INSERT" in m.sql, m.name
        apply(conn, m.rollback_sql)
        assert structure(conn) == before, f"{m.name}: rollback does not restore the schema"
        assert row_counts(conn) == counts, f"{m.name}: rollback loses or keeps rows"
        apply(conn, m.sql)
        assert structure(conn) == after, f"{m.name}: re-apply after rollback differs"
        if "not-idempotent" not in m.sql:
            apply(conn, m.sql)
            assert (structure(conn), row_counts(conn)) == (after, counts_after), m.name


def test_full_rollback_chain_returns_to_empty(history: list[synth.GeneratedMigration]) -> None:
    conn = connect()
    for m in history:
        apply(conn, m.sql)
    fill_rows(conn)
    for m in reversed(history):
        apply(conn, m.rollback_sql)
    assert structure(conn) == {}


DESTRUCTIVE = re.compile(r"^\s*(DROP|ALTER TABLE \S+ (DROP|RENAME))", re.MULTILINE)


def test_destructive_and_non_idempotent_steps_carry_directives(
    history: list[synth.GeneratedMigration],
) -> None:
    for m in history:
        for sql in (m.sql, m.rollback_sql):
            assert bool(DESTRUCTIVE.search(sql)) == ("-- d1check: allow-destructive " in sql), sql
        if "ADD COLUMN" in m.sql or "DROP COLUMN" in m.sql:
            assert "-- d1check: not-idempotent " in m.sql, m.name


def test_cli_writes_project(tmp_path: Path) -> None:
    script = Path(synth.__file__)
    subprocess.run([sys.executable, str(script), "12", str(tmp_path)], check=True)
    assert len(list((tmp_path / "migrations").glob("*.sql"))) == 12
    assert sorted(p.name for p in (tmp_path / "rollbacks").iterdir())[0] == "0001_rollback.sql"
    assert "[tool.d1check]" in (tmp_path / "pyproject.toml").read_text()
