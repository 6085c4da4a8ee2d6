"""The remote `d1check` commands (status, pull, diff, unlock) against the emulator: secrets,
the API budget and the deploy lock."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from d1check.cli import cli
from d1check.journal import read_journal
from d1check.testing import D1Emulator, RateLimit
from d1check.tracking import LOCK_DDL, LOCK_TABLE

REPO = Path(__file__).resolve().parents[1]
TOKEN = "tok-cli-D1CHECK-never-print-51c7e0"
PYPROJECT = '[tool.d1check]\nmigrations_dir = "migrations"\nrollbacks_dir = "rollbacks"\n'
WRANGLER = """\
name = "app"
account_id = "{account}"

[[d1_databases]]
binding = "DB"
database_name = "app-prod"
database_id = "{prod}"

[env.staging]
[[env.staging.d1_databases]]
binding = "DB"
database_name = "app-staging"
database_id = "{staging}"
"""


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[D1Emulator]:
    with D1Emulator(tmp_path / "emulator", token=TOKEN) as running:
        yield running


@pytest.fixture
def project(tmp_path: Path, emulator: D1Emulator, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The example migrations, a wrangler config whose databases live in the emulator, and
    credentials for it."""
    root = tmp_path / "project"
    root.mkdir()
    shutil.copytree(REPO / "migrations", root / "migrations")
    shutil.copytree(REPO / "rollbacks", root / "rollbacks")
    (root / "pyproject.toml").write_text(PYPROJECT, encoding="utf-8")
    prod, staging = emulator.create_database("app-prod"), emulator.create_database("app-staging")
    text = WRANGLER.format(account=emulator.account_id, prod=prod, staging=staging)
    (root / "wrangler.toml").write_text(text, encoding="utf-8")
    monkeypatch.setenv("D1CHECK_API_BASE", emulator.url)
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", TOKEN)
    monkeypatch.setenv("CLOUDFLARE_ACCOUNT_ID", emulator.account_id)
    return root


def run(command: str, root: Path, *args: str, stdin: str | None = None) -> Result:
    result = CliRunner().invoke(cli, [command, "--root", str(root), *args], input=stdin)
    assert "Traceback" not in result.output, result.output
    assert TOKEN not in result.output
    return result


# --- the token ------------------------------------------------------------------------------

BAD_TOKENS = [f"{TOKEN[:7]}\n{TOKEN[7:]}", f"{TOKEN}\u00e9", f"{TOKEN[:4]}\x7f{TOKEN[4:]}"]


@pytest.mark.parametrize("bad", BAD_TOKENS)
@pytest.mark.parametrize("command", [("status",), ("pull", "staging"), ("diff", "staging", "0005")])
def test_a_token_that_cannot_be_sent_is_a_usage_error_without_showing_it(
    project: Path, monkeypatch: pytest.MonkeyPatch, bad: str, command: tuple[str, ...]
) -> None:
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", bad)
    result = run(command[0], project, *command[1:])
    assert result.exit_code == 2, result.output
    assert "CLOUDFLARE_API_TOKEN holds a" in result.output
    assert TOKEN[7:] not in result.output and "UnicodeEncodeError" not in result.output


@pytest.mark.parametrize("command", [("status",), ("pull", "staging")])
def test_a_token_with_whitespace_around_it_works(
    project: Path, monkeypatch: pytest.MonkeyPatch, command: tuple[str, ...]
) -> None:
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", f"{TOKEN}\n")
    result = run(command[0], project, *command[1:])
    assert result.exit_code == 0, result.output
    assert "error" not in result.output.lower()


# --- the API budget -------------------------------------------------------------------------


@pytest.fixture
def fleet_project(tmp_path: Path, emulator: D1Emulator, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The example migrations, staging and four client databases in the emulator."""
    root = tmp_path / "fleet"
    root.mkdir()
    shutil.copytree(REPO / "migrations", root / "migrations")
    (root / "pyproject.toml").write_text(
        '[tool.d1check]\nmigrations_dir = "migrations"\n', encoding="utf-8"
    )
    clients = [
        {"id": f"c{i}", "database_name": f"c{i}", "database_id": emulator.create_database(f"c{i}")}
        for i in range(4)
    ]
    staging = {"database_name": "stage", "database_id": emulator.create_database("stage")}
    (root / "config").mkdir()
    (root / "config" / "clients.json").write_text(
        json.dumps({"clients": clients, "staging": staging}), encoding="utf-8"
    )
    monkeypatch.setenv("D1CHECK_API_BASE", emulator.url)
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", TOKEN)
    monkeypatch.setenv("CLOUDFLARE_ACCOUNT_ID", emulator.account_id)
    return root


def test_status_under_a_budget_equal_to_the_limit_has_no_request_refused(
    fleet_project: Path, emulator: D1Emulator
) -> None:
    emulator.faults.latency = 0.01
    for _ in range(5):
        limit = emulator.rate_limit = RateLimit(10, 0.3)
        result = run("status", fleet_project, "--fleet", "production", "--api-budget", "10/0.3")
        assert result.exit_code == 0, result.output
        assert "fleet production: 4 database(s)" in result.output
        assert limit.refused == 0 and limit.admitted > 10, result.output


def test_status_without_a_budget_trips_the_limit(fleet_project: Path, emulator: D1Emulator) -> None:
    limit = emulator.rate_limit = RateLimit(10, 0.5)
    run("status", fleet_project, "--fleet", "production", "--api-budget", "none")
    assert limit.refused > 0


# --- the deploy lock ------------------------------------------------------------------------


def _lock(emulator: D1Emulator, db_id: str, run_id: str, owner: str, expires_in: float) -> None:
    now = time.time()
    emulator.sql(db_id, LOCK_DDL)
    emulator.sql(
        db_id,
        f'INSERT INTO "{LOCK_TABLE}" (id, owner, run_id, acquired_at, heartbeat_at, expires_at) '
        "VALUES (1, ?, ?, ?, ?, ?)",
        [owner, run_id, now - 30, now - 30, now + expires_in],
    )


def _staging(emulator: D1Emulator) -> str:
    return emulator.client().database_id("app-staging")


def test_unlock_shows_the_lock_and_clears_it_with_yes(project: Path, emulator: D1Emulator) -> None:
    db = _staging(emulator)
    _lock(emulator, db, "run-gone-42", "ci@runner-7", expires_in=40)
    asked = run("unlock", project, "staging")
    assert asked.exit_code == 2, asked.output
    assert "locked by run run-gone-42 (ci@runner-7, since " in asked.output
    assert "pass --yes" in asked.output
    assert emulator.sql(db, f'SELECT run_id FROM "{LOCK_TABLE}"') == [{"run_id": "run-gone-42"}]
    done = run("unlock", project, "staging", "--yes")
    assert done.exit_code == 0, done.output
    assert "the lock of run run-gone-42 cleared" in done.output
    assert emulator.sql(db, f'SELECT * FROM "{LOCK_TABLE}"') == []
    again = run("unlock", project, "staging", "--yes")
    assert again.exit_code == 0 and "staging: not locked" in again.output


def test_status_shows_held_locks(project: Path, emulator: D1Emulator) -> None:
    assert "deploy locks: none held" in run("status", project).output
    _lock(emulator, _staging(emulator), "run-live-1", "deployer", expires_in=50)
    result = run("status", project)
    assert result.exit_code == 0, result.output
    assert "deploy locks: 1 held" in result.output
    assert "staging: locked by run run-live-1 (deployer, since " in result.output


def _apply_staging(project: Path) -> None:
    from d1check.config import load_config
    from d1check.gate import apply_remote
    from d1check.session import GateOptions

    lines: list[str] = []
    options = GateOptions(yes=True, api_budget="none")
    assert apply_remote(load_config(project), target="staging", options=options, write=lines.append)


@pytest.mark.parametrize(
    "command", [("rollback", "0005", "staging", "--yes"), ("restore", "staging", "--yes")]
)
def test_rollback_and_restore_wait_for_no_one_else_holding_the_lock(
    project: Path, emulator: D1Emulator, command: tuple[str, ...]
) -> None:
    _apply_staging(project)
    db = _staging(emulator)
    bookmark = emulator.client().bookmark(db)
    args = [*command, "--bookmark", bookmark] if command[0] == "restore" else list(command)
    _lock(emulator, db, "run-busy-9", "deployer", expires_in=50)
    refused = run(args[0], project, *args[1:])
    assert refused.exit_code == 1, refused.output
    assert "staging is locked by run run-busy-9 (deployer, since " in refused.output
    assert emulator.sql(db, f'SELECT run_id FROM "{LOCK_TABLE}"') == [{"run_id": "run-busy-9"}]
    emulator.sql(db, f'DELETE FROM "{LOCK_TABLE}"')
    done = run(args[0], project, *args[1:])
    assert done.exit_code == 0, done.output
    assert emulator.sql(db, f'SELECT * FROM "{LOCK_TABLE}"') == []
    records = [read_journal(j) for j in sorted((project / ".d1check" / "runs").glob("*.jsonl"))]
    mine = [r for r in records if r.target.startswith(command[0] + " ")]
    states = {r.state(r.clients[0]).state: r.state(r.clients[0]) for r in mine}
    assert sorted(states) == ["failed", "migrated"], records
    assert "locked by run run-busy-9" in states["failed"].error


# --- interrupts -----------------------------------------------------------------------------


def test_d1check_apply_sigterm_ends_the_run_cleanly_and_exits_130(
    project: Path, emulator: D1Emulator
) -> None:
    import os
    import signal
    import subprocess
    import sys

    emulator.faults.latency = 0.2
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-c", "from d1check.cli import main; main()"]
    args = ["apply", "staging", "--root", str(project), "--yes", "--api-budget", "none"]
    process = subprocess.Popen(
        [*command, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    deadline = time.monotonic() + 60
    while emulator.count("/time_travel/bookmark") == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 130, output
    assert "d1check: interrupted: 1 database(s) done, 0 not started" in output
    assert "d1check: interrupted; applied to 1 of 1 database(s)" in output
    db = _staging(emulator)
    assert emulator.sql(db, f'SELECT * FROM "{LOCK_TABLE}"') == []
    assert len(emulator.sql(db, "SELECT * FROM d1_migrations")) == 5


def test_status_does_not_count_an_unreadable_lock_as_held(
    emulator: D1Emulator, project: Path
) -> None:
    wrangler = project / "wrangler.toml"
    wrangler.write_text(wrangler.read_text().replace(_staging(emulator), "no-such-database"))
    output = run("status", project).output
    assert "deploy locks: none held, 1 unreadable" in output
    assert "  app-staging: lock unreadable: " in output
