"""Fleet rollout against the emulator: few requests, canary, failures, faults, locks, resume."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from d1check.config import load_config
from d1check.discovery import discover
from d1check.errors import ConfigError
from d1check.fleet import (
    FleetOptions,
    Job,
    PlainProgress,
    Rollout,
    drift_report_for,
    fleet_budget,
    fleet_drift_report,
    make_progress,
    restore_plan,
    resumed_jobs,
    rollout,
    state_of,
)
from d1check.gate import Expected, Outcome, RunContext, apply_remote
from d1check.journal import MIGRATED, Journal, read_journal
from d1check.project import write_sums
from d1check.remote import D1Client, RetryPolicy
from d1check.session import GateOptions
from d1check.targets import Target
from d1check.testing import (
    COMMIT_THEN_DROP,
    COMMIT_THEN_ERROR,
    DROP,
    ERROR,
    GARBLED,
    RATE_LIMIT,
    SHORT_ANSWER,
    TIMEOUT,
    D1Emulator,
    Fault,
    Faults,
)
from d1check.tracking import AUDIT_DDL, WRANGLER_TRACKING_DDL

MIGRATIONS = {
    "0001_users.sql": "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL);\n",
    "0002_name.sql": "ALTER TABLE users ADD COLUMN name TEXT;\n",
    "0003_unique_email.sql": "CREATE UNIQUE INDEX users_email ON users(email);\n",
}
VERSIONS = ["0001", "0002", "0003"]


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[D1Emulator]:
    with D1Emulator(tmp_path / "emulator") as emu:
        yield emu


@pytest.fixture
def migrations_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "project" / "migrations"
    folder.mkdir(parents=True)
    for name, text in MIGRATIONS.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def fast_client(emulator: D1Emulator, transport: httpx.BaseTransport | None = None) -> D1Client:
    return emulator.client(
        retry=RetryPolicy(attempts=10, base=0.01, cap=0.05),
        timeout=httpx.Timeout(1.0),
        budget=fleet_budget(None),
        transport=transport,
    )


def make_jobs(
    emulator: D1Emulator, migrations_dir: Path, count: int, seeded: int = 0, prefix: str = "client"
) -> list[Job]:
    """`count` client databases; each at 0001 with `seeded` rows when `seeded` is set."""
    migrations = discover(migrations_dir, migrations_dir.parent / "rollbacks")
    expected = Expected(migrations, "d1_migrations")
    jobs = []
    for i in range(count):
        db_id = emulator.create_database(f"{prefix}-{i:03d}")
        if seeded:
            seed(emulator, db_id, seeded)
        target = Target(
            f"{prefix}-{i:03d}", "default", "production", f"{prefix}-{i:03d}", db_id,
            "d1_migrations", remote=True,
        )  # fmt: skip
        jobs.append(Job(target, db_id, migrations, expected))
    return jobs


def seed(emulator: D1Emulator, db_id: str, rows: int) -> None:
    emulator.sql(db_id, WRANGLER_TRACKING_DDL.format(table="d1_migrations"))
    emulator.sql(db_id, MIGRATIONS["0001_users.sql"])
    emulator.sql(db_id, "INSERT INTO d1_migrations (name) VALUES ('0001_users.sql')")
    for n in range(rows):
        emulator.sql(db_id, "INSERT INTO users (email) VALUES (?)", [f"u{n}@example.com"])


def make_run(client: D1Client, tmp_path: Path, run_id: str = "run-1", **options: object) -> Rollout:
    fleet = FleetOptions(**options)  # type: ignore[arg-type]
    journal = Journal.create(tmp_path / "runs", run_id, "production", [])
    return Rollout(lambda _t: client, RunContext(run_id, "tester", None), journal, fleet)


def audit_versions(emulator: D1Emulator, db_id: str) -> list[str]:
    tables = emulator.sql(db_id, "SELECT name FROM sqlite_schema WHERE name = '_schema_audit'")
    if not tables:
        return []
    rows = emulator.sql(db_id, "SELECT migration_version FROM _schema_audit ORDER BY id")
    return [str(r["migration_version"]) for r in rows]


def at_target(emulator: D1Emulator, db_id: str) -> bool:
    names = emulator.sql(db_id, "SELECT name FROM d1_migrations ORDER BY id")
    return [r["name"] for r in names] == list(MIGRATIONS)


# --- requests --------------------------------------------------------------------------------


def test_each_new_client_costs_five_requests_and_ends_at_the_target(
    emulator: D1Emulator, migrations_dir: Path, tmp_path: Path
) -> None:
    jobs = make_jobs(emulator, migrations_dir, 6)
    with fast_client(emulator) as client:
        outcomes = rollout(jobs, make_run(client, tmp_path, concurrency=4))
    assert [o.status for o in outcomes] == ["applied"] * 6
    for job, outcome in zip(jobs, outcomes, strict=True):
        # read-only plan (2 on a new database), lock + re-read, apply; and the bookmark
        assert emulator.count(f"{job.db_id}/query") == 4
        assert emulator.count(f"{job.db_id}/time_travel/bookmark") == 1
        assert at_target(emulator, job.db_id)
        assert audit_versions(emulator, job.db_id) == VERSIONS
        assert outcome.from_version == "(empty)" and outcome.to_version == "0003_unique_email"
        assert outcome.bookmark
        assert not emulator.sql(job.db_id, "SELECT * FROM _d1check_lock")


def test_a_second_run_finds_every_client_up_to_date_without_writing(
    emulator: D1Emulator, migrations_dir: Path, tmp_path: Path
) -> None:
    jobs = make_jobs(emulator, migrations_dir, 3)
    with fast_client(emulator) as client:
        rollout(jobs, make_run(client, tmp_path))
        again = rollout(jobs, make_run(client, tmp_path, run_id="run-2"))
    assert [o.status for o in again] == ["up-to-date"] * 3
    assert all(audit_versions(emulator, j.db_id) == VERSIONS for j in jobs)


def test_migrations_too_big_for_one_request_are_sent_apart(
    emulator: D1Emulator, migrations_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("d1check.fleet.MAX_REQUEST_BYTES", 2_500)
    jobs = make_jobs(emulator, migrations_dir, 1)
    with fast_client(emulator) as client:
        [outcome] = rollout(jobs, make_run(client, tmp_path))
    assert outcome.status == "applied"
    assert emulator.count(f"{jobs[0].db_id}/query") == 2 + 1 + 3
    assert audit_versions(emulator, jobs[0].db_id) == VERSIONS


# --- canary and failures -----------------------------------------------------------------


def duplicate_emails(emulator: D1Emulator, job: Job) -> None:
    emulator.sql(job.db_id, "INSERT INTO users (email) VALUES ('same@x'), ('same@x')")


def test_a_failing_canary_stops_the_rest_and_names_migration_error_and_bookmark(
    emulator: D1Emulator, migrations_dir: Path, tmp_path: Path
) -> None:
    jobs = make_jobs(emulator, migrations_dir, 4, seeded=2)
    duplicate_emails(emulator, jobs[0])
    with fast_client(emulator) as client:
        outcomes = rollout(jobs, make_run(client, tmp_path, canary=1))
    canary = outcomes[0]
    assert canary.status == "failed" and canary.failed_at == "0003_unique_email"
    assert "UNIQUE constraint failed" in canary.error
    assert canary.applied == ["0002_name"] and canary.to_version == "0002_name"
    assert [o.status for o in outcomes[1:]] == ["skipped"] * 3
    assert all("the canary failed" in o.error for o in outcomes[1:])
    assert all(audit_versions(emulator, j.db_id) == [] for j in jobs[1:])
    assert restore_plan(outcomes)[1] == (
        f"  d1check restore {canary.target} --bookmark {canary.bookmark}"
    )
    assert "rate-limits Time Travel restores" in restore_plan(outcomes)[0]


def test_a_passing_canary_lets_the_rest_start(
    emulator: D1Emulator, migrations_dir: Path, tmp_path: Path
) -> None:
    jobs = make_jobs(emulator, migrations_dir, 3, seeded=2)
    duplicate_emails(emulator, jobs[2])
    with fast_client(emulator) as client:
        outcomes = rollout(jobs, make_run(client, tmp_path, canary=1))
    assert [state_of(o) for o in outcomes] == ["migrated", "migrated", "failed"]


def test_max_failures_stops_starting_new_clients(
    emulator: D1Emulator, migrations_dir: Path, tmp_path: Path
) -> None:
    jobs = make_jobs(emulator, migrations_dir, 5, seeded=1)
    for job in jobs[:3]:
        duplicate_emails(emulator, job)
    with fast_client(emulator) as client:
        run = make_run(client, tmp_path, canary=0, concurrency=1, max_failures=2)
        outcomes = rollout(jobs, run)
    assert [o.status for o in outcomes] == ["failed", "failed", "skipped", "skipped", "skipped"]
    assert "--max-failures 2" in outcomes[2].error
    assert emulator.count(f"{jobs[4].db_id}/query") == 0
    states = read_journal(run.journal.path)
    assert [states.state(j.target.name).state for j in jobs[2:]] == ["skipped"] * 3


def test_a_drifted_client_is_refused_and_reported_the_rest_continue(
    emulator: D1Emulator, migrations_dir: Path, tmp_path: Path
) -> None:
    jobs = make_jobs(emulator, migrations_dir, 4, seeded=1)
    emulator.sql(jobs[1].db_id, "ALTER TABLE users ADD COLUMN phone TEXT")
    with fast_client(emulator) as client:
        outcomes = rollout(jobs, make_run(client, tmp_path, canary=1))
        report = fleet_drift_report(jobs, lambda _t: client)
    assert [o.status for o in outcomes] == ["applied", "refused", "applied", "applied"]
    assert "column phone" in outcomes[1].error and "0001_users" in outcomes[1].error
    assert audit_versions(emulator, jobs[1].db_id) == []
    tables = emulator.sql(jobs[1].db_id, "SELECT name FROM sqlite_schema WHERE type = 'table'")
    assert "_d1check_lock" not in {t["name"] for t in tables}  # a refused client is not touched
    assert [(g.version, g.count, bool(g.differences)) for g in report.groups] == [
        ("0003_unique_email", 3, False),
        ("0001_users", 1, True),
    ]
    assert "column phone" in report.groups[1].differences[0]
    assert any("differs from the expected schema" in line for line in report.lines())


# --- reliability -----------------------------------------------------------------------------


def test_ten_percent_faults_still_take_every_client_to_the_target_exactly_once(
    emulator: D1Emulator, migrations_dir: Path, tmp_path: Path
) -> None:
    jobs = make_jobs(emulator, migrations_dir, 16, seeded=3)
    faults = emulator.faults
    faults.random_kinds = (RATE_LIMIT, ERROR, DROP, TIMEOUT, COMMIT_THEN_ERROR, COMMIT_THEN_DROP)
    faults.probability = 0.10
    faults._rng.seed(7)
    for kind in (COMMIT_THEN_DROP, COMMIT_THEN_ERROR):
        faults.push(Fault(kind, match="/query"))
    started = time.monotonic()
    with fast_client(emulator) as client:
        outcomes = rollout(jobs, make_run(client, tmp_path, concurrency=8, max_failures=100))
    faults.clear()
    assert time.monotonic() - started < 60
    assert [o.status for o in outcomes] == ["applied"] * 16, [o.error for o in outcomes]
    for job in jobs:
        assert at_target(emulator, job.db_id)
        assert audit_versions(emulator, job.db_id) == ["0002", "0003"]
        assert emulator.sql(job.db_id, "SELECT count(*) AS n FROM users")[0]["n"] == 3
    assert sum(emulator.requests.values()) > 16 * 3


class Recording(httpx.BaseTransport):
    """Records when each request was sent and answered."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.log: list[tuple[float, float, int]] = []
        self.lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        sent = time.monotonic()
        response = self.inner.handle_request(request)
        response.read()
        with self.lock:
            self.log.append((sent, time.monotonic(), response.status_code))
        return response


def test_a_429_pauses_the_whole_fleet_and_fails_no_client(
    emulator: D1Emulator, migrations_dir: Path, tmp_path: Path
) -> None:
    jobs = make_jobs(emulator, migrations_dir, 8)
    emulator.faults.latency = 0.02
    emulator.faults.push(Fault(RATE_LIMIT, match="/time_travel/bookmark", retry_after=0.6))
    transport = Recording()
    with fast_client(emulator, transport) as client:
        outcomes = rollout(jobs, make_run(client, tmp_path, canary=0, concurrency=4))
    assert [o.status for o in outcomes] == ["applied"] * 8
    [answered] = [done for _, done, status in transport.log if status == 429]
    quiet = [sent for sent, _, _ in transport.log if answered + 0.05 < sent < answered + 0.55]
    assert quiet == []


def test_two_rollouts_at_once_one_proceeds_per_client(
    emulator: D1Emulator, migrations_dir: Path, tmp_path: Path
) -> None:
    jobs = make_jobs(emulator, migrations_dir, 6, seeded=1)
    emulator.faults.latency = 0.02
    results: dict[str, list[Outcome]] = {}
    with fast_client(emulator) as client:

        def go(run_id: str) -> None:
            results[run_id] = rollout(jobs, make_run(client, tmp_path, run_id, canary=0))

        threads = [threading.Thread(target=go, args=(r,)) for r in ("run-a", "run-b")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    for i, job in enumerate(jobs):
        statuses = sorted(results[r][i].status for r in ("run-a", "run-b"))
        assert statuses.count("applied") == 1, statuses
        assert statuses[1] in ("skipped", "up-to-date")
        assert audit_versions(emulator, job.db_id) == ["0002", "0003"]
    held = [o for r in results.values() for o in r if o.status == "skipped"]
    assert all("is locked by run run-" in o.error and "(tester, since " in o.error for o in held)


def test_a_lock_left_by_a_killed_run_is_taken_over_only_after_it_expires(
    emulator: D1Emulator, migrations_dir: Path, tmp_path: Path
) -> None:
    jobs = make_jobs(emulator, migrations_dir, 2, seeded=1)
    from d1check.tracking import LOCK_DDL

    emulator.sql(jobs[0].db_id, LOCK_DDL)
    now = time.time()
    emulator.sql(
        jobs[0].db_id,
        "INSERT INTO _d1check_lock VALUES (1, 'ci-bot', 'killed-run', ?, ?, ?)",
        [now - 10, now - 10, now + 290],
    )
    with fast_client(emulator) as client:
        first = rollout(jobs, make_run(client, tmp_path, canary=0))
        assert [o.status for o in first] == ["skipped", "applied"]
        assert "locked by run killed-run (ci-bot, since " in first[0].error
        assert audit_versions(emulator, jobs[0].db_id) == []
        emulator.sql(jobs[0].db_id, "UPDATE _d1check_lock SET expires_at = ?", [now - 1])
        second = rollout(jobs, make_run(client, tmp_path, "run-2", canary=0))
    assert [o.status for o in second] == ["applied", "up-to-date"]
    assert audit_versions(emulator, jobs[0].db_id) == ["0002", "0003"]


def test_with_lock_wait_a_run_waits_for_the_holder_instead_of_skipping(
    emulator: D1Emulator, migrations_dir: Path, tmp_path: Path
) -> None:
    jobs = make_jobs(emulator, migrations_dir, 1, seeded=1)
    from d1check.tracking import LOCK_DDL

    emulator.sql(jobs[0].db_id, LOCK_DDL)
    now = time.time()
    emulator.sql(
        jobs[0].db_id,
        "INSERT INTO _d1check_lock VALUES (1, 'other', 'other-run', ?, ?, ?)",
        [now, now, now + 0.5],
    )
    with fast_client(emulator) as client:
        [outcome] = rollout(jobs, make_run(client, tmp_path, lock_wait=5.0))
    assert outcome.status == "applied"
    assert time.time() - now >= 0.5


# --- resume --------------------------------------------------------------------------------

CRASHING_RUN = """
import json, os, signal, sys
from pathlib import Path
import d1check.fleet as fleet
from d1check.discovery import discover
from d1check.gate import Expected, RunContext
from d1check.journal import Journal
from d1check.remote import D1Client
from d1check.targets import Target

args = json.loads(sys.argv[1])
migrations = discover(Path(args["migrations"]), Path(args["migrations"]).parent / "rollbacks")
expected = Expected(migrations, "d1_migrations")
jobs = [
    fleet.Job(Target(n, "default", "production", n, i, "d1_migrations", True), i, migrations,
              expected)
    for n, i in args["clients"]
]
real_verify = fleet._verify

def verify_then_die(job, plan, live):
    if job.target.name == args["die_after"]:
        os.kill(os.getpid(), signal.SIGKILL)
    real_verify(job, plan, live)

fleet._verify = verify_then_die
client = D1Client(args["account"], args["token"], api_base=args["url"])
names = [n for n, _ in args["clients"]]
journal = Journal.create(Path(args["runs"]), "crashed", "production", names)
options = fleet.FleetOptions(concurrency=1, canary=0)
fleet.rollout(jobs, fleet.Rollout(lambda t: client, RunContext("crashed", "ci", None), journal,
                                  options))
"""


def test_resume_after_kill_9_finishes_without_applying_anything_twice(
    emulator: D1Emulator, migrations_dir: Path, tmp_path: Path
) -> None:
    jobs = make_jobs(emulator, migrations_dir, 3, seeded=1)
    runs = tmp_path / "runs"
    args = {
        "migrations": str(migrations_dir),
        "clients": [[j.target.name, j.db_id] for j in jobs],
        "die_after": jobs[1].target.name,
        "runs": str(runs),
        "url": emulator.url,
        "account": emulator.account_id,
        "token": emulator.token,
    }
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    done = subprocess.run(
        [sys.executable, "-c", CRASHING_RUN, json.dumps(args)], env=env, timeout=60, check=False
    )
    assert done.returncode == -9
    record = read_journal(runs / "crashed.jsonl")
    assert record.state(jobs[0].target.name).state == MIGRATED
    assert record.in_flight() == [jobs[1].target.name]
    bookmark = record.state(jobs[1].target.name).bookmark
    assert bookmark

    todo, finished = resumed_jobs(jobs, record)
    assert [j.target.name for j in todo] == [jobs[1].target.name, jobs[2].target.name]
    assert todo[0].bookmark == bookmark and [o.status for o in finished] == ["applied"]
    with fast_client(emulator) as client, Journal.resume(runs, "crashed") as journal:
        run = Rollout(lambda _t: client, RunContext("crashed", "ci", None), journal, FleetOptions())
        outcomes = rollout(todo, run)
    assert [o.status for o in outcomes] == ["up-to-date", "applied"]
    for job in jobs:
        assert audit_versions(emulator, job.db_id) == ["0002", "0003"]
    assert read_journal(runs / "crashed.jsonl").finished() == [j.target.name for j in jobs]


# --- through the gate ----------------------------------------------------------------------


def project(tmp_path: Path, migrations_dir: Path, jobs: list[Job]) -> Path:
    """A project for `pytest --apply` over `jobs`; its migrations are recorded as shipped (the
    unique index of 0003 fails on rows with repeated emails, as it may in production)."""
    root = migrations_dir.parent
    write_sums(discover(migrations_dir, root / "rollbacks"))
    (root / "pyproject.toml").write_text(
        '[project]\nname = "x"\n\n[tool.d1check]\nmigrations_dir = "migrations"\n'
        "require_rollbacks = false\ncheck_idempotency = false\n",
        "utf-8",
    )
    clients = [
        {"id": j.target.name, "name": j.target.name, "database_name": j.target.name,
         "database_id": j.db_id, "active": True}
        for j in jobs
    ]  # fmt: skip
    (root / "config").mkdir()
    (root / "config" / "clients.json").write_text(json.dumps({"clients": clients}), "utf-8")
    return root


@pytest.fixture
def account(emulator: D1Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("D1CHECK_API_BASE", emulator.url)
    monkeypatch.setenv("CLOUDFLARE_ACCOUNT_ID", emulator.account_id)
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", emulator.token)


@pytest.mark.usefixtures("account")
def test_apply_remote_with_fleet_options_rolls_out_journals_and_reports(
    emulator: D1Emulator, migrations_dir: Path, tmp_path: Path
) -> None:
    jobs = make_jobs(emulator, migrations_dir, 4, seeded=1)
    duplicate_emails(emulator, jobs[3])
    root = project(tmp_path, migrations_dir, jobs)
    lines: list[str] = []
    options = GateOptions(yes=True, report=tmp_path / "report.json")
    fleet = FleetOptions(progress="plain")
    ok = apply_remote(
        load_config(root), target="production", options=options, write=lines.append, fleet=fleet
    )
    text = "\n".join(lines)
    assert not ok
    assert "fits in one window" in text
    assert "[4/4]" in text
    assert "d1check: fleet: 3 migrated, 0 unchanged, 1 failed" in text
    assert f"d1check restore {jobs[3].target.name} --bookmark " in text
    [journal] = (root / ".d1check" / "runs").glob("*.jsonl")
    assert len(read_journal(journal).finished()) == 4
    report = json.loads((tmp_path / "report.json").read_text("utf-8"))
    assert [r["status"] for r in report] == ["applied", "applied", "applied", "failed"]
    assert report[3]["failed_at"] == "0003_unique_email"


@pytest.mark.usefixtures("account")
def test_dry_run_reads_once_per_client_and_writes_nothing(
    emulator: D1Emulator, migrations_dir: Path, tmp_path: Path
) -> None:
    jobs = make_jobs(emulator, migrations_dir, 3, seeded=1)
    root = project(tmp_path, migrations_dir, jobs)
    lines: list[str] = []
    ok = apply_remote(
        load_config(root),
        target="production",
        options=GateOptions(dry_run=True),
        write=lines.append,
        fleet=FleetOptions(),
    )
    assert ok
    assert sum("would apply 0002_name, 0003_unique_email" in line for line in lines) == 3
    for job in jobs:
        tables = emulator.sql(job.db_id, "SELECT name FROM sqlite_schema WHERE type = 'table'")
        assert {t["name"] for t in tables} == {"d1_migrations", "sqlite_sequence", "users"}
    assert not (root / ".d1check").exists()


@pytest.mark.usefixtures("account")
def test_resume_of_a_run_for_another_target_is_refused(
    emulator: D1Emulator, migrations_dir: Path, tmp_path: Path
) -> None:
    jobs = make_jobs(emulator, migrations_dir, 1)
    root = project(tmp_path, migrations_dir, jobs)
    Journal.create(root / ".d1check" / "runs", "old", "staging", []).close()
    lines: list[str] = []
    fleet = FleetOptions(resume="old")
    ok = apply_remote(
        load_config(root), target="production", options=GateOptions(yes=True),
        write=lines.append, fleet=fleet,
    )  # fmt: skip
    assert not ok
    assert any("resume it with --apply=staging" in line for line in lines)


@pytest.mark.usefixtures("account")
def test_drift_report_for_a_configured_target(
    emulator: D1Emulator, migrations_dir: Path, tmp_path: Path
) -> None:
    jobs = make_jobs(emulator, migrations_dir, 3, seeded=1)
    emulator.sql(jobs[2].db_id, "CREATE TABLE scratch (x)")
    root = project(tmp_path, migrations_dir, jobs)
    report = drift_report_for(load_config(root), "production")
    assert [(g.count, len(g.differences)) for g in report.groups] == [(2, 0), (1, 1)]
    assert "scratch" in report.groups[1].differences[0]
    assert report.groups[1].targets == (jobs[2].target.name,)
    assert not report.errors


# --- options and progress ------------------------------------------------------------------


def test_bad_fleet_options_say_which_and_the_default() -> None:
    with pytest.raises(ConfigError, match=r"--concurrency 0.*default 8"):
        FleetOptions(concurrency=0)
    with pytest.raises(ConfigError, match="--max-failures 0"):
        FleetOptions(max_failures=0)


def test_progress_is_plain_lines_without_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    lines: list[str] = []
    monkeypatch.setattr(sys.stdout, "isatty", lambda: False)
    progress = make_progress("auto", lines.append)
    assert isinstance(progress, PlainProgress)
    progress.start(2)
    progress.advance(Outcome("a", "production", "a", "applied", to_version="0003_x"))
    progress.advance(Outcome("b", "production", "b", "failed", failed_at="0002_y"))
    assert lines == ["d1check: [1/2] a: applied 0003_x", "d1check: [2/2] b: failed 0002_y"]


def test_one_schema_is_rebuilt_once_for_every_client_that_shares_it() -> None:
    from d1check import fleet

    def rows(sql: str) -> list[dict[str, object]]:
        return [{"type": "table", "name": "t", "tbl_name": "t", "sql": sql}]

    first = fleet._schema(rows("CREATE TABLE t(a)"), "d1_migrations")
    assert fleet._schema(rows("CREATE TABLE t(a)"), "d1_migrations") is first
    other = fleet._schema(rows("CREATE TABLE t(a, b)"), "d1_migrations")
    assert [c.name for c in other.tables["t"].columns] == ["a", "b"]
    assert [c.name for c in first.tables["t"].columns] == ["a"]


# --- the API limit ---------------------------------------------------------------------------


def test_a_budget_equal_to_the_limit_has_no_request_refused_five_runs_in_a_row(
    emulator: D1Emulator, migrations_dir: Path, tmp_path: Path
) -> None:
    from d1check.remote import parse_budget
    from d1check.testing import RateLimit

    emulator.faults.latency = 0.03  # the server counts a request some time after it was sent
    for attempt in range(5):
        limit = emulator.rate_limit = RateLimit(20, 1.0)
        jobs = make_jobs(emulator, migrations_dir, 8, prefix=f"run{attempt}")
        client = emulator.client(budget=parse_budget("20/1"), retry=RetryPolicy(attempts=1))
        with client:
            outcomes = rollout(jobs, make_run(client, tmp_path, f"run-{attempt}", concurrency=8))
        assert [o.status for o in outcomes] == ["applied"] * 8, outcomes
        assert limit.refused == 0 and limit.admitted >= 40


# --- answers cut short or garbled ------------------------------------------------------------

APPLY_REQUEST = "migration_version, migration_name, checksum, applied_by"


@pytest.mark.parametrize("kind", [*GARBLED, SHORT_ANSWER, COMMIT_THEN_DROP])
def test_an_unreadable_answer_to_the_apply_is_read_back_not_resent(
    emulator: D1Emulator, migrations_dir: Path, tmp_path: Path, kind: str
) -> None:
    jobs = make_jobs(emulator, migrations_dir, 1)
    emulator.faults.push(Fault(kind, jobs[0].db_id, body=APPLY_REQUEST))
    with fast_client(emulator) as client:
        outcomes = rollout(jobs, make_run(client, tmp_path))
    assert not emulator.faults.queue
    assert [o.status for o in outcomes] == ["applied"], outcomes[0].error
    assert at_target(emulator, jobs[0].db_id)
    assert audit_versions(emulator, jobs[0].db_id) == VERSIONS  # sent once
    assert emulator.sql(jobs[0].db_id, "SELECT * FROM _d1check_lock") == []


def test_a_short_answer_to_a_read_is_a_clear_error(
    emulator: D1Emulator, migrations_dir: Path, tmp_path: Path
) -> None:
    jobs = make_jobs(emulator, migrations_dir, 1)
    seed(emulator, jobs[0].db_id, 1)
    emulator.sql(jobs[0].db_id, AUDIT_DDL)
    emulator.faults.push(*[Fault(SHORT_ANSWER, f"{jobs[0].db_id}/query") for _ in range(20)])
    with fast_client(emulator) as client:
        outcomes = rollout(jobs, make_run(client, tmp_path))
    assert outcomes[0].status == "failed"
    assert (
        f"reading the tracking table, the checksums and the schema (database {jobs[0].db_id})"
        in (outcomes[0].error)
    )
    assert "D1 answered 2 result(s) for the 3 statement(s) sent" in outcomes[0].error
    assert "IndexError" not in outcomes[0].error


# --- the lock is a lease ---------------------------------------------------------------------


def test_the_lock_is_a_lease_of_about_a_minute(
    emulator: D1Emulator, migrations_dir: Path, tmp_path: Path
) -> None:
    from d1check.fleet import lock_and_read
    from d1check.tracking import TrackingStyle

    jobs = make_jobs(emulator, migrations_dir, 1)
    with fast_client(emulator) as client:
        before = time.time()
        snapshot = lock_and_read(
            client, jobs[0].db_id, TrackingStyle("d1_migrations"), RunContext("r1", "me", None)
        )
    until = float(str(snapshot.holder["expires_at"]))
    assert before + 55 <= until <= time.time() + 65


def test_a_live_run_renews_its_lease_and_gives_it_back(
    emulator: D1Emulator, migrations_dir: Path
) -> None:
    from d1check.fleet import lock_and_read
    from d1check.lease import Leases
    from d1check.tracking import TrackingStyle

    job = make_jobs(emulator, migrations_dir, 1)[0]
    with fast_client(emulator) as client:
        lock_and_read(
            client, job.db_id, TrackingStyle("d1_migrations"), RunContext("r1", "me", None)
        )
        first = emulator.sql(job.db_id, "SELECT heartbeat_at, expires_at FROM _d1check_lock")[0]
        leases = Leases("r1", lambda _t: client, every=0.05)
        leases.hold(job.target, job.db_id)
        time.sleep(0.3)
        renewed = emulator.sql(job.db_id, "SELECT heartbeat_at, expires_at FROM _d1check_lock")[0]
        assert float(str(renewed["expires_at"])) > float(str(first["expires_at"]))
        assert leases.release_all() == []
    assert emulator.sql(job.db_id, "SELECT * FROM _d1check_lock") == []


def test_a_run_never_leaves_its_lock_behind_when_giving_it_back_fails_once(
    emulator: D1Emulator, migrations_dir: Path, tmp_path: Path
) -> None:
    jobs = make_jobs(emulator, migrations_dir, 1, seeded=2)
    emulator.sql(jobs[0].db_id, "UPDATE users SET email = 'same@example.com'")  # 0003 will fail
    alone = "WHERE run_id = 'run-1';\""  # the give-back sent on its own, not in a migration
    emulator.faults.push(Fault(ERROR, jobs[0].db_id, body=alone))
    with fast_client(emulator) as client:
        outcomes = rollout(jobs, make_run(client, tmp_path))
    assert outcomes[0].status == "failed" and "UNIQUE" in outcomes[0].error
    assert not emulator.faults.queue  # the first give-back failed ...
    assert emulator.sql(jobs[0].db_id, "SELECT * FROM _d1check_lock") == []  # ... not the last


# --- interrupts ------------------------------------------------------------------------------


def test_an_interrupt_starts_no_new_database_and_gives_every_lock_back(
    emulator: D1Emulator, migrations_dir: Path, tmp_path: Path
) -> None:
    from d1check.interrupts import Interrupts

    jobs = make_jobs(emulator, migrations_dir, 8, seeded=1)
    interrupts = Interrupts()
    emulator.faults.latency = 0.02
    with fast_client(emulator) as client:
        run = replace(make_run(client, tmp_path, concurrency=2, canary=1), interrupts=interrupts)
        timer = threading.Timer(0.4, interrupts.interrupt, ["SIGINT"])
        timer.start()
        outcomes = rollout(jobs, run)
        timer.join()
    statuses = [o.status for o in outcomes]
    assert "applied" in statuses and "skipped" in statuses, statuses
    assert set(statuses) <= {"applied", "skipped"}
    assert all(
        o.error == "not started: interrupted (SIGINT)" for o in outcomes if o.status == "skipped"
    )
    for job, outcome in zip(jobs, outcomes, strict=True):
        assert emulator.sql(job.db_id, "SELECT * FROM d1_migrations") != []
        assert at_target(emulator, job.db_id) == (outcome.status == "applied")
        locks = emulator.sql(
            job.db_id, "SELECT name FROM sqlite_schema WHERE name = '_d1check_lock'"
        )
        if locks:
            assert emulator.sql(job.db_id, "SELECT * FROM _d1check_lock") == []
    record = read_journal(run.journal.path)
    todo, done = resumed_jobs(jobs, record)
    assert len(todo) == statuses.count("skipped") and len(done) == statuses.count("applied")


INTERRUPTED_GATE = """
import os, signal, sys, threading
import pytest
import d1check.fleet as fleet

real = fleet.migrate_client

def migrate_then_interrupt(job, run):
    outcome = real(job, run)
    if job.target.name == "client-000":
        os.kill(os.getpid(), signal.SIGINT)
    return outcome

fleet.migrate_client = migrate_then_interrupt
sys.exit(pytest.main(sys.argv[1:]))
"""


@pytest.mark.usefixtures("account")
def test_pytest_apply_interrupted_exits_2_with_how_to_resume_and_resume_finishes(
    emulator: D1Emulator, migrations_dir: Path, tmp_path: Path
) -> None:
    jobs = make_jobs(emulator, migrations_dir, 4, seeded=1)
    root = project(tmp_path, migrations_dir, jobs)
    (root / "test_app.py").write_text("def test_app():\n    pass\n", "utf-8")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    args = ["-p", "no:cacheprovider", "test_app.py", "--apply=production", "--yes",
            "--api-budget=none", "--concurrency=1", "--canary=0"]  # fmt: skip
    first = subprocess.run(
        [sys.executable, "-c", INTERRUPTED_GATE, *args],
        cwd=root, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    text = first.stdout + first.stderr
    assert first.returncode == 2, text
    done = int(text.split("d1check: interrupted: ", 1)[1].split()[0])
    assert 1 <= done < 4 and f"{4 - done} not started" in text, text
    assert "resume with: pytest --apply=production --resume " in text
    run_id = text.split("--resume ", 1)[1].split()[0]
    assert [at_target(emulator, j.db_id) for j in jobs] == [i < done for i in range(4)]
    for job in jobs[:done]:
        assert emulator.sql(job.db_id, "SELECT * FROM _d1check_lock") == []
    again = subprocess.run(
        [sys.executable, "-m", "pytest", *args, f"--resume={run_id}"],
        cwd=root, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert again.returncode == 0, again.stdout + again.stderr
    assert all(at_target(emulator, j.db_id) for j in jobs)
    assert all(audit_versions(emulator, j.db_id) == ["0002", "0003"] for j in jobs)


@pytest.mark.usefixtures("account")
@pytest.mark.parametrize(
    ("code", "statuses", "exit_code", "says"),
    [
        (1, ["applied", "applied", "failed"], 1, "applied to 2 of 3 database(s), the rest failed"),
        (1, ["failed", "skipped"], 1, "nothing applied"),
        (1, None, 1, "nothing applied"),
        (2, ["applied", "skipped"], 130, "interrupted; applied to 1 of 2 database(s)"),
        (0, ["applied"], 0, ""),
    ],
)
def test_d1check_apply_says_nothing_applied_only_when_nothing_was(
    emulator: D1Emulator,
    migrations_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    code: int,
    statuses: list[str] | None,
    exit_code: int,
    says: str,
) -> None:
    from click.testing import CliRunner

    import d1check.cli as cli_module

    def pytest_run(args: list[str], cwd: Path) -> int:
        report = Path(next(a for a in args if a.startswith("--d1check-report=")).split("=", 1)[1])
        if statuses is not None:
            report.write_text(json.dumps([{"status": s} for s in statuses]), "utf-8")
        return code

    monkeypatch.setattr(cli_module, "run_streamed", pytest_run)
    root = project(tmp_path, migrations_dir, make_jobs(emulator, migrations_dir, 1))
    result = CliRunner().invoke(
        cli_module.cli, ["apply", "production", "--root", str(root), "--yes"]
    )
    assert result.exit_code == exit_code, result.output
    assert says in result.output
    if statuses and "applied" in statuses:
        assert "nothing applied" not in result.output


class TakeOverDuringApply(Faults):
    """The apply request fails before it runs, and meanwhile another run holds the lock."""

    def __init__(self, emulator: D1Emulator, db_id: str, kind: str | None) -> None:
        super().__init__()
        self.emulator, self.db_id, self.kind, self.fired = emulator, db_id, kind, 0

    def take(self, request_line: str, body: bytes = b"") -> Fault | None:
        if self.fired or APPLY_REQUEST.encode() not in body:
            return None
        self.fired += 1
        self.emulator.sql(
            self.db_id,
            "UPDATE _d1check_lock SET run_id = 'run-other', owner = 'someone', "
            "expires_at = expires_at + 600",
        )
        return Fault(self.kind) if self.kind else None


@pytest.mark.parametrize("kind", [ERROR, None])
def test_a_migration_lands_only_under_its_runs_lock(
    emulator: D1Emulator, migrations_dir: Path, tmp_path: Path, kind: str | None
) -> None:
    jobs = make_jobs(emulator, migrations_dir, 1, seeded=1)
    faults = emulator.faults = TakeOverDuringApply(emulator, jobs[0].db_id, kind)
    with fast_client(emulator) as client:
        outcomes = rollout(jobs, make_run(client, tmp_path))
    assert faults.fired == 1
    assert outcomes[0].status == "failed"
    assert "is locked by run run-other (someone, since " in outcomes[0].error
    assert audit_versions(emulator, jobs[0].db_id) == []  # nothing re-sent under another's lock
    holder = emulator.sql(jobs[0].db_id, "SELECT run_id FROM _d1check_lock")
    assert holder == [{"run_id": "run-other"}]  # and that run's lock is left alone


@pytest.mark.parametrize(
    ("holder_expires_in", "status", "says"),
    [
        (None, "refused", "someone changed it by hand?"),
        (300, "skipped", "while run run-busy (busy-bot, since "),
        (-10, "skipped", "expired "),  # a lock just let go: still that run's work
        (-3600, "refused", "someone changed it by hand?"),
    ],
)
def test_changed_by_hand_only_when_no_run_holds_or_just_let_go_of_the_lock(
    emulator: D1Emulator,
    migrations_dir: Path,
    tmp_path: Path,
    holder_expires_in: float | None,
    status: str,
    says: str,
) -> None:
    from d1check.tracking import LOCK_DDL

    jobs = make_jobs(emulator, migrations_dir, 1, seeded=1)
    emulator.sql(jobs[0].db_id, "ALTER TABLE users ADD COLUMN nickname TEXT")
    if holder_expires_in is not None:
        now = time.time()
        emulator.sql(jobs[0].db_id, LOCK_DDL)
        emulator.sql(
            jobs[0].db_id,
            "INSERT INTO _d1check_lock VALUES (1, 'busy-bot', 'run-busy', ?, ?, ?)",
            [now - 5, now - 5, now + holder_expires_in],
        )
    with fast_client(emulator) as client:
        [outcome] = rollout(jobs, make_run(client, tmp_path))
    assert outcome.status == status, outcome.error
    assert says in outcome.error
    if status == "skipped":
        assert "by hand" not in outcome.error


KILLED_GATE = """
import os, signal, sys
import pytest
import d1check.fleet as fleet

def die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)

fleet._apply = die  # killed holding the lock, before the apply request
sys.exit(pytest.main(sys.argv[1:]))
"""


@pytest.mark.usefixtures("account")
def test_a_single_database_run_killed_with_9_is_resumed_from_its_journal(
    emulator: D1Emulator, migrations_dir: Path, tmp_path: Path
) -> None:
    jobs = make_jobs(emulator, migrations_dir, 1, seeded=1)
    root = project(tmp_path, migrations_dir, jobs)
    (root / "test_app.py").write_text("def test_app():\n    pass\n", "utf-8")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    args = ["-p", "no:cacheprovider", "test_app.py", "--apply=production", "--yes",
            "--api-budget=none"]  # fmt: skip
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_GATE, *args],
        cwd=root, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert killed.returncode == -9, killed.stdout + killed.stderr
    [journal] = (root / ".d1check" / "runs").glob("*.jsonl")
    run_id = journal.stem
    assert read_journal(journal).in_flight() == [jobs[0].target.name]
    bookmark = read_journal(journal).state(jobs[0].target.name).bookmark
    assert bookmark  # taken before anything was changed
    held = emulator.sql(jobs[0].db_id, "SELECT run_id FROM _d1check_lock")
    assert held == [{"run_id": run_id}]  # its lease runs out by itself; --resume takes it now
    resumed = subprocess.run(
        [sys.executable, "-m", "pytest", *args, f"--resume={run_id}"],
        cwd=root, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert at_target(emulator, jobs[0].db_id)
    assert audit_versions(emulator, jobs[0].db_id) == ["0002", "0003"]
    assert emulator.sql(jobs[0].db_id, "SELECT * FROM _d1check_lock") == []
    assert read_journal(journal).finished() == [jobs[0].target.name]
    rows = emulator.sql(jobs[0].db_id, "SELECT bookmark FROM _schema_audit")
    assert {r["bookmark"] for r in rows} == {bookmark}  # the restore point of the first try
