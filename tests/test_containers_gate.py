"""The `--apply` gate on the real D1 engine in a container: apply, backup, Time Travel, refusals."""

from __future__ import annotations

import re
import secrets
import shutil
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from d1check.containers import (
    D1EngineContainer,
    EngineUnavailable,
    d1_engine,
    docker_client,
)
from d1check.errors import RemoteError
from d1check.remote import D1Client

__all__ = ["d1_engine"]  # the fixture

pytestmark = pytest.mark.engine_container

ROOT = Path(__file__).resolve().parents[1]
FILES = sorted(path.name for path in (ROOT / "migrations").glob("*.sql"))
BOOKMARK = re.compile(r"^pulse-staging .* applied +[0-9.]+s +(\S+)$", re.M)


@pytest.fixture(autouse=True)
def _docker() -> None:
    try:
        docker_client()
    except EngineUnavailable as error:
        pytest.skip(str(error))


@dataclass(frozen=True)
class Project:
    """The repository's example project in pytester's directory, staging on the engine."""

    pytester: pytest.Pytester
    engine: D1EngineContainer
    client: D1Client
    staging: str

    def run(self, *args: str) -> pytest.RunResult:
        """pytest on the project; the token never appears in what it prints."""
        result = self.pytester.runpytest("-p", "no:cacheprovider", "--api-budget=none", *args)
        output = "\n".join(result.outlines + result.errlines)
        assert self.engine.token not in output
        return result

    def rows(self, sql: str) -> list[list[object]]:
        return self.client.raw(self.staging, sql)[0].rows

    def tables(self) -> list[str]:
        rows = self.rows("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")
        return [str(row[0]) for row in rows if not str(row[0]).startswith(("sqlite_", "_cf_"))]

    def applied(self) -> list[str]:
        if "d1_migrations" not in self.tables():
            return []
        return [str(row[0]) for row in self.rows('SELECT name FROM "d1_migrations" ORDER BY id')]


def _wrangler_toml(account_id: str, production: str, staging: str) -> str:
    return textwrap.dedent(
        f"""\
        name = "pulse"
        main = "src/index.ts"
        compatibility_date = "2025-01-01"
        account_id = "{account_id}"

        [[d1_databases]]
        binding = "DB"
        database_name = "pulse-production"
        database_id = "{production}"
        migrations_dir = "migrations"

        [[env.staging.d1_databases]]
        binding = "DB"
        database_name = "pulse-staging"
        database_id = "{staging}"
        migrations_dir = "migrations"
        """
    )


@pytest.fixture
def client(d1_engine: D1EngineContainer) -> Iterator[D1Client]:
    with D1Client(d1_engine.account_id, d1_engine.token, api_base=d1_engine.api_base) as client:
        yield client


@pytest.fixture
def project(
    pytester: pytest.Pytester,
    d1_engine: D1EngineContainer,
    client: D1Client,
    monkeypatch: pytest.MonkeyPatch,
) -> Project:
    """A project whose staging database is a fresh database on the engine."""
    suffix = secrets.token_hex(4)
    production = client.create_database(f"pulse-production-{suffix}").uuid
    staging = client.create_database(f"pulse-staging-{suffix}").uuid
    shutil.copytree(ROOT / "migrations", pytester.path / "migrations")
    shutil.copytree(ROOT / "rollbacks", pytester.path / "rollbacks")
    pytester.makepyprojecttoml(
        '[tool.d1check]\nmigrations_dir = "migrations"\nrollbacks_dir = "rollbacks"\n'
    )
    (pytester.path / "wrangler.toml").write_text(
        _wrangler_toml(d1_engine.account_id, production, staging)
    )
    for name, value in d1_engine.client_env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    return Project(pytester, d1_engine, client, staging)


# --- the gate ---------------------------------------------------------------------------------


def test_every_migration_lands_once_on_the_real_engine(project: Project) -> None:
    first = project.run("--apply=staging", "--yes")
    assert first.ret == 0, "\n".join(first.outlines)
    assert project.applied() == FILES
    assert {"organizations", "d1_migrations"} <= set(project.tables())
    audit = project.rows('SELECT COUNT(*) FROM "_schema_audit"')[0][0]

    second = project.run("--apply=staging", "--yes")
    assert second.ret == 0, "\n".join(second.outlines)
    assert project.applied() == FILES
    assert project.rows('SELECT COUNT(*) FROM "_schema_audit"')[0][0] == audit


def test_a_failing_suite_applies_nothing(project: Project) -> None:
    project.pytester.makepyfile(test_app="def test_broken():\n    assert 1 == 2\n")
    result = project.run("--apply=staging", "--yes")
    assert result.ret == 1
    assert "nothing applied to staging" in "\n".join(result.outlines)
    assert project.tables() == []


def _later_files(project: Project, count: int) -> list[Path]:
    later = [project.pytester.path / "migrations" / name for name in FILES[count:]]
    numbers = [name.split("_")[0] for name in FILES[count:]]
    rollbacks = (project.pytester.path / "rollbacks").glob("*.sql")
    return later + [path for path in rollbacks if path.name.split("_")[0] in numbers]


def _apply_first(project: Project, count: int) -> None:
    """Applies the first `count` migrations only: later files and rollbacks are held back."""
    held = [(path, path.with_suffix(".held")) for path in _later_files(project, count)]
    for path, aside in held:
        path.rename(aside)
    first = project.run("--apply=staging", "--yes")
    assert first.ret == 0, "\n".join(first.outlines)
    for path, aside in held:
        aside.rename(path)
    assert project.applied() == FILES[:count]


def test_the_bookmark_printed_by_the_gate_restores_the_state_before(project: Project) -> None:
    _apply_first(project, 2)
    result = project.run("--apply=staging", "--yes")
    assert result.ret == 0, "\n".join(result.outlines)
    found = BOOKMARK.search("\n".join(result.outlines))
    assert found is not None, "\n".join(result.outlines)
    assert project.applied() == FILES

    restored = project.client.restore(project.staging, found.group(1))
    assert restored.message == "Database restored"
    assert restored.previous_bookmark not in ("", found.group(1))
    assert project.applied() == FILES[:2]
    assert "organizations" in project.tables()
    assert "audit_log" not in project.tables()

    project.client.restore(project.staging, restored.previous_bookmark)
    assert project.applied() == FILES


def test_backup_dir_holds_an_export_of_the_state_before(project: Project) -> None:
    _apply_first(project, 1)
    backups = project.pytester.path / "backups"
    result = project.run("--apply=staging", "--yes", f"--backup-dir={backups}")
    assert result.ret == 0, "\n".join(result.outlines)
    assert project.applied() == FILES
    (dump,) = backups.glob("*.sql")
    text = dump.read_text()
    assert text.startswith("PRAGMA defer_foreign_keys=TRUE;\n")
    assert "CREATE TABLE IF NOT EXISTS organizations" in text
    assert f"'{FILES[0]}'" in text
    assert f"'{FILES[1]}'" not in text


# --- export and Time Travel through the client ------------------------------------------------


@pytest.fixture
def database(client: D1Client) -> str:
    return client.create_database(f"tt-{secrets.token_hex(4)}").uuid


SCHEMA = """
CREATE TABLE parent (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT, data BLOB, ratio REAL,
    upper_name TEXT GENERATED ALWAYS AS (upper(name)) VIRTUAL);
CREATE TABLE child (id INTEGER PRIMARY KEY, parent_id INTEGER REFERENCES parent(id));
CREATE INDEX child_parent ON child(parent_id);
CREATE VIEW names AS SELECT name FROM parent;
CREATE TRIGGER adopt AFTER INSERT ON parent BEGIN INSERT INTO child(parent_id) VALUES (new.id); END;
INSERT INTO parent(name, data, ratio) VALUES ('o''brien', x'00ff', 0.1), ('far', NULL, 1e300);
"""
BIG_ROW = "INSERT INTO parent(name, data) VALUES ('big', randomblob(70000))"


def _state(client: D1Client, db: str) -> list[list[list[object]]]:
    reads = [
        "SELECT type, name, sql FROM sqlite_schema ORDER BY name",
        "SELECT id, name, hex(data), ratio, upper_name FROM parent ORDER BY id",
        "SELECT * FROM child ORDER BY id",
        "SELECT * FROM sqlite_sequence",
    ]
    return [client.raw(db, sql)[0].rows for sql in reads]


def test_restore_brings_back_schema_rows_and_sequence(client: D1Client, database: str) -> None:
    client.query(database, SCHEMA)
    client.query(database, BIG_ROW)
    before = _state(client, database)
    bookmark = client.bookmark(database)
    assert client.bookmark(database) == bookmark
    client.query(database, "INSERT INTO parent(name) VALUES ('new'); DROP VIEW names")
    client.query(database, "CREATE TABLE extra (a); DELETE FROM child WHERE id = 1")
    assert client.bookmark(database) != bookmark

    client.restore(database, bookmark)
    assert _state(client, database) == before


def test_export_is_a_dump_a_fresh_database_takes(
    client: D1Client, d1_engine: D1EngineContainer, database: str
) -> None:
    client.query(database, SCHEMA)
    token, base = d1_engine.token, d1_engine.api_base
    with D1Client(client.account_id, token, api_base=base, export_poll_interval=0.05) as fast:
        dump = fast.export(database, no_data=False)
        schema_only = fast.export(database, no_data=True)
    assert dump.startswith("PRAGMA defer_foreign_keys=TRUE;\nCREATE TABLE IF NOT EXISTS parent")
    row = """INSERT INTO "parent"("id","name","data","ratio") VALUES(1,'o''brien',X'00FF',0.1);"""
    assert row in dump
    assert "DELETE FROM sqlite_sequence;" in dump
    assert 'INSERT INTO "parent"' not in schema_only

    copy = client.create_database(f"copy-{secrets.token_hex(4)}").uuid
    client.query(copy, dump)
    assert _state(client, copy) == _state(client, database)


def test_restore_and_export_refuse_virtual_tables(client: D1Client, database: str) -> None:
    bookmark = client.bookmark(database)
    client.query(database, "CREATE VIRTUAL TABLE docs USING fts5(body)")
    with pytest.raises(RemoteError, match=r"cannot export databases with Virtual Tables \(fts5\)"):
        client.export(database)
    with pytest.raises(RemoteError, match="cannot restore databases with virtual tables"):
        client.restore(database, bookmark)


def test_an_unknown_bookmark_is_refused(client: D1Client, database: str) -> None:
    with pytest.raises(RemoteError, match=r"unknown bookmark 0000-nope .*code 7500"):
        client.restore(database, "0000-nope")


# --- D1's refusals through the client ---------------------------------------------------------

WIDE = ", ".join(f"c{i} INTEGER" for i in range(101))


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("ATTACH DATABASE 'other.db' AS other", "D1_ERROR: not authorized: SQLITE_AUTH"),
        ("CREATE TABLE _cf_x (a)", "D1_ERROR: not authorized: SQLITE_AUTH"),
        (
            "SELECT sqlite_version()",
            "D1_ERROR: not authorized to use function: sqlite_version at offset 7: SQLITE_ERROR",
        ),
        (f"CREATE TABLE wide ({WIDE})", "D1_ERROR: too many columns on wide: SQLITE_ERROR"),
        ("BEGIN TRANSACTION", "state.storage.transaction"),
    ],
    ids=["attach", "cf-table", "sqlite-version", "101-columns", "begin"],
)
def test_d1_refusals_reach_the_client(
    client: D1Client, d1_engine: D1EngineContainer, database: str, sql: str, expected: str
) -> None:
    with pytest.raises(RemoteError) as caught:
        client.query(database, sql)
    assert expected in str(caught.value)
    assert "HTTP 400, code 7500" in str(caught.value)
    assert d1_engine.token not in str(caught.value)


# --- lifecycle --------------------------------------------------------------------------------


def test_the_fixture_in_a_users_session_leaves_no_container(pytester: pytest.Pytester) -> None:
    pytester.makeconftest("from d1check.containers import d1_engine  # noqa: F401\n")
    pytester.makepyfile(
        test_user="""
        from d1check.remote import D1Client

        def test_uses_the_engine(d1_engine):
            print("CONTAINER", d1_engine.container_name)
            with D1Client(d1_engine.account_id, d1_engine.token, api_base=d1_engine.api_base) as c:
                db = c.create_database("app").uuid
                c.query(db, "CREATE TABLE t (a); INSERT INTO t VALUES (1)")
                assert c.raw(db, "SELECT a FROM t")[0].rows == [[1]]
        """
    )
    result = pytester.runpytest_subprocess("-s", "-p", "no:cacheprovider", "-p", "no:xdist")
    assert result.ret == 0, "\n".join(result.outlines + result.errlines)
    names = re.findall(r"CONTAINER (\S+)", "\n".join(result.outlines))
    assert len(names) == 1
    assert names[0] not in [c.name for c in docker_client().containers.list(all=True)]
