"""The `--apply` gate end to end: pytest on a project, a fleet of databases in the D1 emulator."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpcore  # noqa: F401  (imported once: pytester's in-process runs restore sys.modules)
import pytest

import d1check.gate
import d1check.plugin  # imported once, like httpcore
from d1check.remote import D1Client, RetryPolicy
from d1check.testing import COMMIT_THEN_DROP, ERROR, D1Emulator, Fault, Faults
from d1check.tracking import LOCK_DDL, LOCK_TABLE, TrackingStyle

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "tok-D1CHECK-never-print-7f3a9c"
NAMES = [
    "0001_create_organizations",
    "0002_create_security_controls",
    "0003_add_review_fields",
    "0004_create_audit_log",
    "0005_create_control_overview",
]
FILES = [n + ".sql" for n in NAMES]
PLUGINS_OFF = ("cacheprovider", "hypothesispytest", "benchmark", "anyio", "xdist")
QUIET = [f"-pno:{name}" for name in (*PLUGINS_OFF, "xdist.looponfail")]


@dataclass(frozen=True)
class Fleet:
    """The emulator and the databases of the project's client registry."""

    emu: D1Emulator
    staging: str
    client_a: str
    client_b: str
    client_c: str  # inactive

    def tables(self, db_id: str) -> list[str]:
        rows = self.emu.sql(db_id, "SELECT name FROM sqlite_schema WHERE type = 'table'")
        return sorted(str(r["name"]) for r in rows)

    def applied(self, db_id: str) -> list[str]:
        if "d1_migrations" not in self.tables(db_id):
            return []
        return [str(r["name"]) for r in self.emu.sql(db_id, _APPLIED)]

    def audit(self, db_id: str) -> list[dict[str, object]]:
        return self.emu.sql(db_id, 'SELECT * FROM "_schema_audit" ORDER BY id')


_APPLIED = 'SELECT name FROM "d1_migrations" ORDER BY id'


def _registry(fleet: Fleet) -> dict[str, object]:
    def client(cid: str, db: str, active: bool) -> dict[str, object]:
        return {
            "id": cid,
            "name": cid.title(),
            "database_name": f"pulse-{cid}",
            "database_id": db,
            "active": active,
        }

    return {
        "clients": [
            client("client-a", fleet.client_a, True),
            client("client-b", fleet.client_b, True),
            client("client-c", fleet.client_c, False),
        ],
        "staging": {"database_name": "pulse-staging", "database_id": fleet.staging},
    }


@pytest.fixture
def fleet(
    pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Fleet]:
    """The root example project in pytester's directory, its databases in a running emulator."""
    shutil.copytree(ROOT / "migrations", pytester.path / "migrations")
    shutil.copytree(ROOT / "rollbacks", pytester.path / "rollbacks")
    pytester.makepyprojecttoml(
        '[tool.d1check]\nmigrations_dir = "migrations"\nrollbacks_dir = "rollbacks"\n'
    )
    with D1Emulator(tmp_path / "emulator", token=TOKEN) as emu:
        ids = [emu.create_database(f"pulse-{n}") for n in ("staging", "a", "b", "c")]
        fleet = Fleet(emu, *ids)
        (pytester.path / "config").mkdir()
        (pytester.path / "config" / "clients.json").write_text(json.dumps(_registry(fleet)))
        monkeypatch.setenv("D1CHECK_API_BASE", emu.url)
        monkeypatch.setenv("CLOUDFLARE_API_TOKEN", emu.token)
        monkeypatch.setenv("CLOUDFLARE_ACCOUNT_ID", emu.account_id)
        monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
        yield fleet


def run(pytester: pytest.Pytester, *args: str, checks: bool = False) -> pytest.RunResult:
    """pytest on the project with the API budget off; the token must never be printed.

    Without `checks` only a passing `test_app.py` runs (the gate is the same, the run faster).
    """
    if not checks:
        pytester.makepyfile(test_app="def test_app():\n    pass\n")
    paths = () if checks else ("test_app.py",)
    result = pytester.runpytest(*QUIET, "--api-budget=none", *paths, *args)
    output = "\n".join(result.outlines + result.errlines)
    assert TOKEN not in output
    return result


def output(result: pytest.RunResult) -> str:
    return "\n".join(result.outlines)


# --- a failing session applies nothing ------------------------------------------------------


def test_failing_test_applies_nothing(pytester: pytest.Pytester, fleet: Fleet) -> None:
    pytester.makepyfile(test_broken="def test_broken():\n    assert 1 == 2\n")
    result = run(pytester, "--apply=staging", "--yes", checks=True)
    assert result.ret == 1
    assert result.parseoutcomes()["failed"] == 1
    assert "the session did not pass (1 failed): nothing applied to staging" in output(result)
    assert fleet.tables(fleet.staging) == []


def test_bad_migration_applies_nothing(pytester: pytest.Pytester, fleet: Fleet) -> None:
    (pytester.path / "migrations" / "0006_broken.sql").write_text("CREATE TABLE oops (;\n")
    result = run(pytester, "--apply=staging", "--yes", checks=True)
    assert result.ret == 1
    assert "nothing applied to staging" in output(result)
    assert fleet.tables(fleet.staging) == []


# --- staging: apply, record as wrangler does, audit, up to date ------------------------------


def test_staging_applies_all_and_records_like_wrangler(
    pytester: pytest.Pytester, fleet: Fleet
) -> None:
    result = run(pytester, "--apply=staging", "--yes", checks=True)
    assert result.ret == 0, output(result)
    assert result.parseoutcomes()["passed"] > 25
    result.stdout.fnmatch_lines(["*pulse-staging*applied*" + ", ".join(NAMES) + "*"])
    assert fleet.applied(fleet.staging) == FILES
    audit = fleet.audit(fleet.staging)
    assert [r["migration_name"] for r in audit] == NAMES
    sums = {p.stem: _sha256(p) for p in (pytester.path / "migrations").glob("*.sql")}
    for row in audit:
        assert row["checksum"] == sums[str(row["migration_name"])]
        assert row["environment"] == "staging"
        assert row["action"] == "apply"
        assert str(row["bookmark"])
        assert "git_commit" in row
    assert fleet.tables(fleet.client_a) == []

    again = run(pytester, "--apply=staging", "--yes")
    assert again.ret == 0
    again.stdout.fnmatch_lines(["*pulse-staging*0005_create_control_overview*up-to-date*"])
    assert len(fleet.audit(fleet.staging)) == 5


def _sha256(path: Path) -> str:
    from d1check.discovery import read_sql_file

    return read_sql_file(path).sha256


# --- production: the staged workflow, inactive clients ---------------------------------------


def test_production_waits_for_staging(pytester: pytest.Pytester, fleet: Fleet) -> None:
    early = run(pytester, "--apply=production", "--yes")
    assert early.ret == 1
    assert "not applied to staging yet: " + ", ".join(NAMES) in output(early)
    assert fleet.tables(fleet.client_a) == fleet.tables(fleet.client_b) == []

    assert run(pytester, "--apply=staging", "--yes").ret == 0
    result = run(pytester, "--apply=production", "--yes")
    assert result.ret == 0, output(result)
    assert "skipped client-c: client 'client-c' is inactive" in output(result)
    assert fleet.applied(fleet.client_a) == fleet.applied(fleet.client_b) == FILES
    assert fleet.tables(fleet.client_c) == []
    assert {r["environment"] for r in fleet.audit(fleet.client_a)} == {"production"}


def test_production_needs_yes_without_a_terminal(
    pytester: pytest.Pytester, fleet: Fleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_terminal(path: Any, *args: Any, **kwargs: Any) -> Any:
        if str(path) == "/dev/tty":
            raise OSError(6, "No such device or address", "/dev/tty")
        return open(path, *args, **kwargs)

    monkeypatch.setattr(d1check.gate, "open", no_terminal, raising=False)
    assert run(pytester, "--apply=staging", "--yes").ret == 0
    result = run(pytester, "--apply=production")
    assert result.ret == 1
    assert "refusing to apply to production without a terminal: pass --yes" in output(result)
    assert fleet.tables(fleet.client_a) == fleet.tables(fleet.client_b) == []


# --- drift -----------------------------------------------------------------------------------


def test_edited_applied_migration_is_refused(pytester: pytest.Pytester, fleet: Fleet) -> None:
    assert run(pytester, "--apply=staging", "--yes").ret == 0
    edited = pytester.path / "migrations" / FILES[1]
    edited.write_text(edited.read_text() + "\n-- edited after it was applied\n")
    result = run(pytester, "--apply=staging", "--yes")
    assert result.ret == 1
    text = output(result)
    assert "applied migrations changed since they were applied (checksums differ)" in text
    assert FILES[1] in text
    assert len(fleet.audit(fleet.staging)) == 5


def test_hand_changed_schema_is_refused_with_the_diff(
    pytester: pytest.Pytester, fleet: Fleet
) -> None:
    assert run(pytester, "--apply=staging", "--yes").ret == 0
    fleet.emu.sql(fleet.staging, "ALTER TABLE users ADD COLUMN nickname TEXT")
    result = run(pytester, "--apply=staging", "--yes")
    assert result.ret == 1
    text = output(result)
    assert "the live schema is not the schema of 0005_create_control_overview" in text
    assert "table users: column nickname: added" in text
    assert fleet.applied(fleet.staging) == FILES


@pytest.mark.parametrize(
    ("recorded", "message"),
    [
        ([FILES[0], "0002_renamed_locally.sql"], "applied migrations that are not in"),
        ([FILES[0], FILES[2]], "0003_add_review_fields.sql applied, but the earlier"),
    ],
    ids=["unknown-name", "gap"],
)
def test_applied_migrations_not_a_prefix_are_refused(
    pytester: pytest.Pytester, fleet: Fleet, recorded: list[str], message: str
) -> None:
    style = TrackingStyle("d1_migrations")
    fleet.emu.sql(fleet.staging, style.create_sql())
    for name in recorded:
        fleet.emu.sql(fleet.staging, style.insert_sql(name, name[:4], ""))
    result = run(pytester, "--apply=staging", "--yes")
    assert result.ret == 1
    assert message in output(result)
    assert fleet.applied(fleet.staging) == recorded
    assert "_schema_audit" not in fleet.tables(fleet.staging)


# --- dry run ---------------------------------------------------------------------------------


def test_dry_run_prints_the_plan_and_changes_nothing(
    pytester: pytest.Pytester, fleet: Fleet
) -> None:
    result = run(pytester, "--apply=staging", "--dry-run")
    assert result.ret == 0
    text = output(result)
    for name in NAMES:
        assert f"would apply {name}:" in text
    assert "CREATE TABLE IF NOT EXISTS organizations (" in text
    assert "ALTER TABLE security_controls ADD COLUMN last_reviewed_at TEXT;" in text
    assert fleet.tables(fleet.staging) == []


# --- interrupted runs ------------------------------------------------------------------------


# The apply request of a database carries the audit rows; the reads do not.
APPLY_REQUEST = "migration_version, migration_name, checksum, applied_by"


def test_dropped_answer_after_commit_is_detected(pytester: pytest.Pytester, fleet: Fleet) -> None:
    fleet.emu.faults.push(Fault(COMMIT_THEN_DROP, fleet.staging, body=APPLY_REQUEST))
    result = run(pytester, "--apply=staging", "--yes")
    assert not fleet.emu.faults.queue
    assert result.ret == 0, output(result)
    assert fleet.applied(fleet.staging) == FILES
    assert [r["migration_name"] for r in fleet.audit(fleet.staging)] == NAMES


@pytest.fixture
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Clients retry reads without real backoff delays."""
    original = D1Client.from_env.__func__  # type: ignore[attr-defined]

    def from_env(cls: type[D1Client], /, account_id: str | None = None, **kwargs: Any) -> D1Client:
        kwargs.setdefault("retry", RetryPolicy(base=0.001, cap=0.01))
        return original(cls, account_id, **kwargs)  # type: ignore[no-any-return]

    monkeypatch.setattr(D1Client, "from_env", classmethod(from_env))


@pytest.mark.usefixtures("fast_retries")
def test_hard_failure_stops_at_a_recorded_version_and_a_rerun_finishes(
    pytester: pytest.Pytester, fleet: Fleet
) -> None:
    # every request that carries the third migration fails before it runs
    third = "ADD COLUMN last_reviewed_at"
    fleet.emu.faults.push(*[Fault(ERROR, fleet.staging, body=third) for _ in range(30)])
    failed = run(pytester, "--apply=staging", "--yes")
    assert failed.ret == 1
    text = output(failed)
    assert f"pulse-staging failed at {NAMES[2]}:" in text
    assert "restore with: d1check restore pulse-staging --bookmark " in text
    assert fleet.applied(fleet.staging) == FILES[:2]
    assert [r["migration_name"] for r in fleet.audit(fleet.staging)] == NAMES[:2]
    columns = fleet.emu.sql(
        fleet.staging, "SELECT name FROM pragma_table_info('security_controls')"
    )
    assert "last_reviewed_at" not in {c["name"] for c in columns}

    fleet.emu.faults = Faults()
    rerun = run(pytester, "--apply=staging", "--yes")
    assert rerun.ret == 0, output(rerun)
    assert f"applied {', '.join(NAMES[2:])}" in output(rerun)
    assert fleet.applied(fleet.staging) == FILES
    assert [r["migration_name"] for r in fleet.audit(fleet.staging)] == NAMES


def test_a_500_before_commit_is_resent_once(pytester: pytest.Pytester, fleet: Fleet) -> None:
    fleet.emu.faults.push(Fault(ERROR, fleet.staging, body=APPLY_REQUEST))
    result = run(pytester, "--apply=staging", "--yes")
    assert not fleet.emu.faults.queue
    assert result.ret == 0, output(result)
    assert [r["migration_name"] for r in fleet.audit(fleet.staging)] == NAMES


# --- the deploy lock -------------------------------------------------------------------------


def _hold_lock(fleet: Fleet, owner: str, expires_in: float) -> None:
    now = time.time()
    fleet.emu.sql(fleet.staging, LOCK_DDL)
    fleet.emu.sql(
        fleet.staging,
        f'INSERT INTO "{LOCK_TABLE}" (id, owner, run_id, acquired_at, heartbeat_at, expires_at) '
        "VALUES (1, ?, 'run-elsewhere', ?, ?, ?)",
        [owner, now - 60, now - 60, now + expires_in],
    )


def test_a_held_lock_refuses_naming_its_holder(pytester: pytest.Pytester, fleet: Fleet) -> None:
    _hold_lock(fleet, "deploy-bot@ci-4711", expires_in=600)
    result = run(pytester, "--apply=staging", "--yes")
    assert result.ret == 1
    assert "is locked by run run-elsewhere (deploy-bot@ci-4711, since " in output(result)
    assert "d1check unlock pulse-staging" in output(result)
    assert fleet.applied(fleet.staging) == []
    holder = fleet.emu.sql(fleet.staging, f'SELECT owner FROM "{LOCK_TABLE}"')
    assert holder == [{"owner": "deploy-bot@ci-4711"}]


def test_an_expired_lock_is_taken_over(pytester: pytest.Pytester, fleet: Fleet) -> None:
    _hold_lock(fleet, "killed-run", expires_in=-1)
    result = run(pytester, "--apply=staging", "--yes")
    assert result.ret == 0, output(result)
    assert fleet.applied(fleet.staging) == FILES
    assert fleet.emu.sql(fleet.staging, f'SELECT * FROM "{LOCK_TABLE}"') == []


# --- secrets, report, step summary -----------------------------------------------------------


def test_a_rejected_token_is_not_printed(
    pytester: pytest.Pytester, fleet: Fleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong = "tok-WRONG-d1check-never-print-2b8e"
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", wrong)
    report = pytester.path / "report.json"
    result = run(pytester, "--apply=staging", "--yes", f"--d1check-report={report}")
    assert result.ret == 1
    text = output(result)
    assert "Authentication error" in text
    assert wrong not in text
    if report.exists():
        assert wrong not in report.read_text() and TOKEN not in report.read_text()
    assert fleet.tables(fleet.staging) == []


def test_a_token_with_a_newline_around_it_applies(
    pytester: pytest.Pytester, fleet: Fleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", f" {TOKEN}\n")
    result = run(pytester, "--apply=staging", "--yes", "--log-level=DEBUG", "-o", "log_cli=false")
    assert result.ret == 0, output(result)
    assert fleet.applied(fleet.staging) == FILES


@pytest.mark.parametrize("bad", [f"{TOKEN[:6]}\n{TOKEN[6:]}", f"{TOKEN}\u00e9"])
def test_a_token_that_cannot_be_sent_is_a_usage_error_without_showing_it(
    pytester: pytest.Pytester, fleet: Fleet, monkeypatch: pytest.MonkeyPatch, bad: str
) -> None:
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", bad)
    result = run(pytester, "--apply=staging", "--yes")
    assert result.ret == 4
    text = "\n".join(result.outlines + result.errlines)
    assert "CLOUDFLARE_API_TOKEN holds a" in text and TOKEN[6:] not in text
    assert fleet.tables(fleet.staging) == []


def test_report_json_and_step_summary(
    pytester: pytest.Pytester, fleet: Fleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    summary = pytester.path / "step-summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    report = pytester.path / "report.json"
    result = run(pytester, "--apply=staging", "--yes", f"--d1check-report={report}")
    assert result.ret == 0
    text = report.read_text()
    assert TOKEN not in text
    [entry] = json.loads(text)
    assert entry["target"] == "pulse-staging"
    assert entry["status"] == "applied"
    assert entry["applied"] == NAMES
    assert (entry["from_version"], entry["to_version"]) == ("(empty)", NAMES[-1])
    assert entry["bookmark"]
    markdown = summary.read_text()
    assert "| target | from → to | status | time | bookmark |" in markdown
    assert f"| pulse-staging | (empty) → {NAMES[-1]} | applied |" in markdown


# --- the gate applies exactly what it checked, whatever pytest selected ---------------------

EXAMPLES = Path(__file__).parent / "examples"
LOCAL_DB = Path(".d1check/local.sqlite")
DROP_TASKS = "migrations/0004_drop_tasks.sql"
UNDECLARED = f"  {DROP_TASKS}::destructive: destructive steps without a declared reason:"
WITH_CACHE = ("-p", "no:hypothesispytest", "-p", "no:benchmark")
SELECTIONS = {
    "k": ("-k", "sequence"),
    "m": ("-m", "not d1check"),
    "path": ("tests",),
    "deselect": ("--deselect", f"{DROP_TASKS}::destructive"),
    "lf": ("--lf",),
    "x": ("-x", "tests"),
    "xdist": ("-n", "2", "tests"),
}
BEYOND = {"k": 25, "m": 26, "path": 26, "deselect": 1, "lf": 26, "x": 26, "xdist": 26}


def drop_tasks(declared: bool) -> str:
    """A fourth migration of the `good` example whose `::destructive` check fails unless the
    drop is declared."""
    reason = "-- d1check: allow-destructive the tasks moved to the archive service\n"
    return (
        reason if declared else ""
    ) + "-- d1check: irreversible the archive keeps the tasks\nDROP TABLE IF EXISTS tasks;\n"


def local_project(
    pytester: pytest.Pytester, *, declared: bool, failed_before: bool = False
) -> Path:
    """The `good` example with a passing `tests/test_app.py` and `0004_drop_tasks.sql`; with
    `failed_before`, an earlier run (before the migration existed) recorded `test_app` as the
    last failure, for `--lf`."""
    shutil.copytree(EXAMPLES / "good", pytester.path, dirs_exist_ok=True)
    app = pytester.path / "tests" / "test_app.py"
    app.parent.mkdir()
    if failed_before:
        app.write_text("def test_app():\n    assert False\n")
        assert pytester.runpytest(*WITH_CACHE).ret == pytest.ExitCode.TESTS_FAILED
    app.write_text("def test_app():\n    pass\n")
    (pytester.path / DROP_TASKS).write_text(drop_tasks(declared))
    return pytester.path


def local_names(project: Path) -> list[str]:
    from d1check.engine import D1Database

    db = D1Database(project / LOCAL_DB)
    try:
        with db.internal() as conn:
            return [str(r[0]) for r in conn.execute("SELECT name FROM d1_migrations ORDER BY id")]
    finally:
        db.close()


@pytest.mark.parametrize("selection", SELECTIONS, ids=SELECTIONS)
def test_a_failing_check_outside_the_selection_blocks_the_apply(
    pytester: pytest.Pytester, selection: str
) -> None:
    project = local_project(pytester, declared=False, failed_before=selection == "lf")
    result = pytester.runpytest(*WITH_CACHE, *SELECTIONS[selection], "--apply=local")
    assert result.ret == pytest.ExitCode.TESTS_FAILED, output(result)
    result.stdout.fnmatch_lines(
        [
            "d1check: 1 check(s) that --apply=local needs failed: nothing applied to local",
            UNDECLARED,
            "fix: run `pytest` on the whole project *",
        ],
        consecutive=True,
    )
    result.stdout.no_fnmatch_line("*FAILED*")
    assert not (project / LOCAL_DB).exists()


@pytest.mark.parametrize("selection", SELECTIONS, ids=SELECTIONS)
def test_a_clean_project_applies_under_the_same_selection(
    pytester: pytest.Pytester, selection: str
) -> None:
    project = local_project(pytester, declared=True, failed_before=selection == "lf")
    result = pytester.runpytest(*WITH_CACHE, *SELECTIONS[selection], "--apply=local")
    assert result.ret == pytest.ExitCode.OK, output(result)
    beyond = BEYOND[selection]
    result.stdout.fnmatch_lines(
        [
            f"d1check: checked {beyond} items beyond the selection (-k/-m/paths): all passed",
            "d1check: local default (*): applied 4 migration(s): *",
        ],
        consecutive=True,
    )
    assert local_names(project) == [
        "0001_create_projects.sql",
        "0002_add_task_status.sql",
        "0003_clear_tasks.sql",
        "0004_drop_tasks.sql",
    ]


def test_the_whole_session_checks_nothing_beyond_it(pytester: pytest.Pytester) -> None:
    project = local_project(pytester, declared=True)
    result = pytester.runpytest(*WITH_CACHE, "--apply=local")
    assert result.ret == pytest.ExitCode.OK, output(result)
    assert "beyond the selection" not in output(result)
    assert len(local_names(project)) == 4


@pytest.mark.parametrize("declared", [False, True], ids=["undeclared", "declared"])
def test_a_selection_of_no_tests_leaves_the_gate_to_its_own_checks(
    pytester: pytest.Pytester, declared: bool
) -> None:
    project = local_project(pytester, declared=declared)
    shutil.rmtree(project / "tests")
    result = pytester.runpytest(*WITH_CACHE, "-m", "not d1check", "--apply=local")
    if declared:
        assert result.ret == pytest.ExitCode.OK, output(result)
        result.stdout.fnmatch_lines(["d1check: checked 26 items beyond the selection *"])
        assert len(local_names(project)) == 4
    else:
        assert result.ret == pytest.ExitCode.TESTS_FAILED, output(result)
        result.stdout.fnmatch_lines([UNDECLARED])
        assert not (project / LOCAL_DB).exists()


@pytest.mark.parametrize("declared", [False, True], ids=["undeclared", "declared"])
def test_for_local_the_gate_checks_the_pending_migrations(
    pytester: pytest.Pytester, declared: bool
) -> None:
    project = local_project(pytester, declared=declared)
    migration = project / DROP_TASKS
    text = migration.read_text()
    migration.unlink()
    assert pytester.runpytest(*WITH_CACHE, "--apply=local").ret == pytest.ExitCode.OK
    before = (project / LOCAL_DB).read_bytes()
    migration.write_text(text)
    result = pytester.runpytest(*WITH_CACHE, "-k", "sequence", "--apply=local")
    if declared:
        assert result.ret == pytest.ExitCode.OK, output(result)
        result.stdout.fnmatch_lines(["d1check: checked 7 items beyond the selection *"])
        assert local_names(project)[-1] == "0004_drop_tasks.sql"
    else:
        assert result.ret == pytest.ExitCode.TESTS_FAILED, output(result)
        result.stdout.fnmatch_lines([UNDECLARED])
        assert (project / LOCAL_DB).read_bytes() == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--collect-only",), "*--apply=local with --collect-only: no test runs*drop --apply"),
        (("--setup-plan",), "*--apply=local with --setup-plan: no test runs*"),
        (("--setup-only",), "*--apply=local with --setup-only: no test runs*"),
    ],
    ids=["collect-only", "setup-plan", "setup-only"],
)
def test_apply_with_an_option_that_runs_no_test_is_a_usage_error(
    pytester: pytest.Pytester, args: tuple[str, ...], message: str
) -> None:
    project = local_project(pytester, declared=True)
    result = pytester.runpytest(*WITH_CACHE, *args, "--apply=local")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])
    assert not (project / LOCAL_DB).exists()


@pytest.mark.parametrize("value", ["", "  "], ids=["empty", "blank"])
def test_an_empty_apply_target_is_a_usage_error(pytester: pytest.Pytester, value: str) -> None:
    project = local_project(pytester, declared=True)
    result = pytester.runpytest(*WITH_CACHE, f"--apply={value}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*--apply needs a target, one of: local, staging, production (leave --apply out*"]
    )
    assert not (project / LOCAL_DB).exists()


# --- remote targets: the same gate against the emulator -------------------------------------


def test_a_failing_check_outside_the_selection_blocks_staging(
    pytester: pytest.Pytester, fleet: Fleet
) -> None:
    (pytester.path / "migrations" / "0006_drop_users.sql").write_text(
        "DROP TABLE IF EXISTS users;\n"
    )
    result = run(pytester, "--apply=staging", "--yes")
    assert result.ret == 1, output(result)
    result.stdout.fnmatch_lines(
        [
            "d1check: * check(s) that --apply=staging needs failed: nothing applied to staging",
            "*",
            "  migrations/0006_drop_users.sql::destructive: destructive steps without a declared *",
        ]
    )
    assert fleet.tables(fleet.staging) == []

    (pytester.path / "migrations" / "0006_drop_users.sql").unlink()
    result = run(pytester, "--apply=staging", "--yes")
    assert result.ret == 0, output(result)
    assert "d1check: checked 32 items beyond the selection (-k/-m/paths): all passed" in output(
        result
    )
    assert fleet.applied(fleet.staging) == FILES


def test_a_drifted_production_export_blocks_production_only(
    pytester: pytest.Pytester, fleet: Fleet
) -> None:
    from d1check.discovery import discover
    from d1check.history import replay
    from d1check.testing import dump_sql

    migrations = discover(pytester.path / "migrations", pytester.path / "rollbacks")
    db = replay(migrations.migrations)
    db.run_script("ALTER TABLE users ADD COLUMN phone TEXT;", source="hand-change")
    with db.internal() as conn:
        export = dump_sql(conn, no_data=True)
    db.close()
    (pytester.path / "schema").mkdir()
    (pytester.path / "schema" / "production.sql").write_text(export)
    pytester.makepyprojecttoml(
        '[tool.d1check]\nmigrations_dir = "migrations"\nrollbacks_dir = "rollbacks"\n'
        'production_schema = "schema/production.sql"\n'
    )

    staging = run(pytester, "--apply=staging", "--yes")
    assert staging.ret == 0, output(staging)
    assert fleet.applied(fleet.staging) == FILES
    result = run(pytester, "--apply=production", "--yes")
    assert result.ret == 1, output(result)
    result.stdout.fnmatch_lines(
        [
            "d1check: 1 check(s) that --apply=production needs failed: nothing applied to "
            "production",
            "  schema/production.sql::production: the production schema matches no version *",
        ],
        consecutive=True,
    )
    assert fleet.tables(fleet.client_a) == fleet.tables(fleet.client_b) == []


@pytest.mark.parametrize("variable", ["CLOUDFLARE_API_TOKEN", "CLOUDFLARE_ACCOUNT_ID"])
@pytest.mark.parametrize("mode", ["--yes", "--dry-run"])
def test_missing_credentials_are_a_usage_error_before_any_test_runs(
    pytester: pytest.Pytester,
    fleet: Fleet,
    monkeypatch: pytest.MonkeyPatch,
    variable: str,
    mode: str,
) -> None:
    monkeypatch.delenv(variable)
    pytester.makepyfile(
        test_app="from pathlib import Path\n\ndef test_app():\n    Path('ran').touch()\n"
    )
    result = pytester.runpytest(*QUIET, "--api-budget=none", "test_app.py", "--apply=staging", mode)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [f"ERROR: d1check: --apply=staging: {variable} is not set: export *"]
    )
    assert not (pytester.path / "ran").exists()
    assert fleet.tables(fleet.staging) == []
    local = pytester.runpytest(*QUIET, "test_app.py", "--apply=local")
    assert local.ret == pytest.ExitCode.OK, output(local)
    assert (pytester.path / "ran").exists()
