"""D1 answering fewer results than statements sent, over real HTTP (the emulator's
`short_results` fault): a clear error naming the request, never an IndexError or a silent
empty read; a short answer to a write is read back before anything is sent again."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from d1check.discovery import discover
from d1check.errors import RemoteError
from d1check.fleet import FleetOptions, Job, Rollout, lock_and_read, read_snapshot, rollout
from d1check.gate import Expected, RunContext
from d1check.journal import Journal
from d1check.live import applied_migrations, remote_schema
from d1check.remote import AmbiguousWrite, D1Client, RetryPolicy
from d1check.targets import Target
from d1check.testing import SHORT_RESULTS, D1Emulator, Fault, Faults
from d1check.tracking import WRANGLER_TRACKING_DDL, TrackingStyle

STYLE = TrackingStyle("d1_migrations")
MIGRATIONS = {
    "0001_users.sql": "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL);\n",
    "0002_name.sql": "ALTER TABLE users ADD COLUMN name TEXT;\n",
}


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[D1Emulator]:
    with D1Emulator(tmp_path / "emulator") as emu:
        yield emu


@pytest.fixture
def client(emulator: D1Emulator) -> Iterator[D1Client]:
    with emulator.client(
        retry=RetryPolicy(attempts=3, base=0.01, cap=0.02), timeout=httpx.Timeout(5.0)
    ) as c:
        yield c


def short(emulator: D1Emulator, missing: int = 1) -> None:
    """The next `/query` is applied and answered with its last `missing` results left out."""
    emulator.faults.push(Fault(SHORT_RESULTS, match="/query", missing=missing))


def test_the_emulator_leaves_out_the_last_results(emulator: D1Emulator, client: D1Client) -> None:
    db_id = emulator.create_database("db")
    short(emulator, missing=2)
    response = httpx.post(
        f"{emulator.url}/accounts/{emulator.account_id}/d1/database/{db_id}/query",
        json={"sql": "CREATE TABLE t (a); INSERT INTO t VALUES (1); SELECT a FROM t;"},
        headers={"Authorization": f"Bearer {emulator.token}"},
    )
    body = response.json()
    assert body["success"] is True
    assert len(body["result"]) == 1
    assert emulator.sql(db_id, "SELECT a FROM t") == [{"a": 1}]  # applied all the same


def test_a_short_answer_to_a_read_names_the_request_and_the_counts(
    emulator: D1Emulator, client: D1Client
) -> None:
    db_id = emulator.create_database("db")
    short(emulator)
    with pytest.raises(RemoteError) as info:
        client.batch(db_id, [("SELECT 1", None), ("SELECT 2", None)], purpose="reading twice")
    error = info.value
    assert not isinstance(error, AmbiguousWrite)
    assert f"reading twice (database {db_id})" in str(error)
    assert "D1 answered 1 result(s) for the 2 statement(s) sent" in str(error)
    assert "run it again" in str(error)


def test_a_short_answer_to_a_write_is_ambiguous(emulator: D1Emulator, client: D1Client) -> None:
    db_id = emulator.create_database("db")
    short(emulator)
    with pytest.raises(AmbiguousWrite) as info:
        client.query(db_id, "CREATE TABLE t (a);\nINSERT INTO t VALUES (1);", purpose="seeding")
    assert "seeding" in str(info.value) and "for the 2 statement(s) sent" in str(info.value)
    assert "read the tracking table before sending it again" in str(info.value)


def test_live_reads_refuse_an_empty_answer_instead_of_reading_nothing(
    emulator: D1Emulator, client: D1Client
) -> None:
    db_id = emulator.create_database("db")
    emulator.sql(db_id, WRANGLER_TRACKING_DDL.format(table="d1_migrations"))
    emulator.sql(db_id, "INSERT INTO d1_migrations (name) VALUES ('0001_users.sql')")
    assert applied_migrations(client, db_id, STYLE) == ["0001_users.sql"]
    short(emulator)
    with pytest.raises(RemoteError, match="reading the tracking table d1_migrations"):
        applied_migrations(client, db_id, STYLE)
    short(emulator)
    with pytest.raises(RemoteError, match=r"reading the schema .* 0 result"):
        remote_schema(client, db_id, ["d1_migrations"])


def test_fleet_reads_fail_clearly(emulator: D1Emulator, client: D1Client) -> None:
    db_id = emulator.create_database("db")
    short(emulator, missing=3)  # the first of up to 5 attempts; the second is answered whole
    snapshot = lock_and_read(client, db_id, STYLE, RunContext("run-1", "tester", None))
    assert snapshot.holder["run_id"] == "run-1"
    short(emulator)
    with pytest.raises(RemoteError) as info:
        read_snapshot(client, db_id, STYLE)
    message = str(info.value)
    assert "reading the tracking table, the checksums and the schema" in message
    assert "D1 answered 2 result(s) for the 3 statement(s) sent" in message


class Once(Faults):
    """A short answer to the first request whose body holds `text`, once."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text, self.fired = text, False

    def take(self, request_line: str, body: bytes = b"") -> Fault | None:
        if self.fired or self.text.encode() not in body:
            return None
        self.fired = True
        return Fault(SHORT_RESULTS)


def test_a_short_answer_to_an_apply_is_read_back_and_nothing_is_applied_twice(
    emulator: D1Emulator, client: D1Client, tmp_path: Path
) -> None:
    folder = tmp_path / "migrations"
    folder.mkdir()
    for name, text in MIGRATIONS.items():
        (folder / name).write_text(text, encoding="utf-8")
    migrations = discover(folder, tmp_path / "rollbacks")
    db_id = emulator.create_database("client-1")
    target = Target("client-1", "default", "production", "client-1", db_id, "d1_migrations", True)
    job = Job(target, db_id, migrations, Expected(migrations, "d1_migrations"))
    faults = Once("ALTER TABLE users ADD COLUMN name")  # the request that applies the migrations
    emulator.faults = faults
    journal = Journal.create(tmp_path / "runs", "run-1", "production", [])
    run = Rollout(lambda _t: client, RunContext("run-1", "tester", None), journal, FleetOptions())
    (outcome,) = rollout([job], run)
    assert faults.fired
    assert outcome.status == "applied", outcome.error
    applied = emulator.sql(db_id, "SELECT name FROM d1_migrations ORDER BY id")
    assert [r["name"] for r in applied] == list(MIGRATIONS)
    audit = emulator.sql(db_id, "SELECT migration_version FROM _schema_audit ORDER BY id")
    assert [r["migration_version"] for r in audit] == ["0001", "0002"]
