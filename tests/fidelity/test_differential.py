"""d1check's engine against the real one (wrangler 4.164 --local, workerd): same verdict, same
schema, same rows, for every case of the corpus. Differences on purpose: docs/fidelity.md."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import apsw
import pytest
from cases import (
    APPLIED,
    Case,
    Verdict,
    classify,
    directory_cases,
    length_cases,
    statement_cases,
)
from wrangler_driver import (
    Job,
    Outcome,
    Wrangler,
    new_project,
    recorded_migrations,
    wrangler_order_key,
)

from conftest import once, outcome_from_json, outcome_to_json
from d1check.checks import lint_d1
from d1check.discovery import Migration, discover, read_sql_file
from d1check.engine import D1Database
from d1check.errors import SQLError
from d1check.schema import diff_schemas, format_diff, read_schema
from d1check.statements import split_statements
from d1check.tracking import WRANGLER_TRACKING_DDL

pytestmark = pytest.mark.workerd

TRACKING = "d1_migrations"
LIMITS_DIR = Path(tempfile.gettempdir()) / "d1check-fidelity-limits"
DIRECTORIES = [*directory_cases(), *length_cases(LIMITS_DIR / "lengths")]
STATEMENTS = statement_cases(LIMITS_DIR)
ALL_CASES = {c.name: c for c in [*DIRECTORIES, *STATEMENTS]}
CLI_CASES = (
    "begin_transaction",
    "unterminated_comment",
    "last_statement_without_semicolon",
    "limit_sent_comment_100000",
    "limit_sent_comment_100001",
    "tracking_own_row",
)
_TRAPS = (
    ("has no `;`", "syntax"),
    ("is never closed", "unrecorded"),
    ("several transactions", "several_transactions"),
)


def migration_files(case: Case) -> list[Path]:
    """The case's files in wrangler's order."""
    if case.statement:
        return [case.migrations]
    return sorted(case.migrations.glob("*.sql"), key=lambda p: wrangler_order_key(p.name))


def job_for(case: Case) -> Job:
    """The batch driver's job for a case: statements run as `execute --file`, directories as
    `migrations apply`."""
    files = tuple((p.name, p.read_bytes().decode("utf-8")) for p in migration_files(case))
    return Job(case.name, "execute" if case.statement else "migrations", files)


@pytest.fixture(scope="session")
def workerd(wrangler: Wrangler, shared_dir: Path) -> dict[str, Outcome]:
    """Every case applied once on workerd (one process for the whole corpus)."""

    def compute() -> str:
        outcomes = wrangler.run_jobs([job_for(c) for c in ALL_CASES.values()], shared_dir / "state")
        return json.dumps({k: outcome_to_json(v) for k, v in outcomes.items()})

    return {
        k: outcome_from_json(v) for k, v in json.loads(once(shared_dir, "workerd", compute)).items()
    }


def workerd_verdict(case: Case, outcome: Outcome) -> Verdict:
    """workerd's verdict; a migration that applied but left no tracking row is `unrecorded`."""
    if outcome.failed is not None:
        return Verdict(outcome.failed, classify(outcome.error))
    if case.statement:
        return APPLIED
    recorded = recorded_migrations(outcome.database)
    missing = [p.name for p in migration_files(case) if p.name not in recorded]
    return Verdict(missing[0], "unrecorded") if missing else APPLIED


def wrangler_trap(migration: Migration, db: D1Database) -> str | None:
    """The class of a wrangler trap d1check's `d1` item reports for this file, if any."""
    for finding in lint_d1(migration.file, read_schema(db)):
        for marker, error in _TRAPS:
            if marker in finding:
                return error
    return None


def tracking_insert(file_name: str) -> str:
    """The row wrangler appends to each migration."""
    return (
        f"INSERT INTO \"{TRACKING}\" (name)\nvalues ('{file_name.replace(chr(39), chr(39) * 2)}');"
    )


def d1check_apply(case: Case) -> tuple[Verdict, D1Database]:
    """Apply a case with d1check's engine as d1check applies migrations."""
    db = D1Database()
    if case.statement:
        file = read_sql_file(case.migrations)
        try:
            db.run(file.statements, source=file.path.name)
        except SQLError as exc:
            return Verdict(file.path.name, classify(exc.message)), db
        return APPLIED, db
    with db.internal() as conn:
        conn.execute(WRANGLER_TRACKING_DDL.format(table=TRACKING))
    for migration in discover(case.migrations, case.migrations / "no-rollbacks").migrations:
        trap = wrangler_trap(migration, db)
        if trap is not None:
            return Verdict(migration.file_name, trap), db
        statements = [
            *migration.file.statements,
            *split_statements(tracking_insert(migration.file_name)),
        ]
        try:
            db.run(statements, source=migration.file_name)
        except SQLError as exc:
            return Verdict(migration.file_name, classify(exc.message)), db
    return APPLIED, db


def table_rows(conn: apsw.Connection, tables: list[str]) -> dict[str, list[tuple[object, ...]]]:
    """Every row of `tables`, sorted; `d1_migrations` by name only (its times differ)."""
    rows: dict[str, list[tuple[object, ...]]] = {}
    for table in tables:
        sql = f'SELECT name FROM "{table}"' if table == TRACKING else f'SELECT * FROM "{table}"'
        rows[table] = sorted((tuple(r) for r in conn.execute(sql)), key=repr)
    return rows


def user_tables(conn: apsw.Connection) -> list[str]:
    """Ordinary tables plus sqlite_sequence; FTS shadow tables are compared through their schema."""
    found = conn.execute(
        "SELECT name FROM sqlite_schema WHERE type = 'table' AND sql NOT LIKE 'CREATE VIRTUAL%' "
        "AND name NOT LIKE 'sqlite_%' OR name = 'sqlite_sequence' ORDER BY name"
    )
    return [str(r[0]) for r in found]


def assert_same_state(case: Case, outcome: Outcome, db: D1Database) -> None:
    """Structurally equal schemas and equal rows."""
    __tracebackhide__ = True
    assert outcome.database is not None, f"{case.name}: workerd left no database file"
    real = apsw.Connection(str(outcome.database))
    try:
        diffs = diff_schemas(read_schema(real), read_schema(db))
        assert not diffs, f"{case.name}: schema differs (workerd → d1check):\n{format_diff(diffs)}"
        tables = user_tables(real)
        assert tables == user_tables(db.connection), f"{case.name}: tables differ"
        assert table_rows(real, tables) == table_rows(db.connection, tables), (
            f"{case.name}: rows differ between workerd and d1check"
        )
    finally:
        real.close()


def check_case(case: Case, outcome: Outcome) -> None:
    """The differential assertion for one case."""
    __tracebackhide__ = True
    real = workerd_verdict(case, outcome)
    assert real == case.expect, (
        f"{case.name}: workerd answered '{real}' ({outcome.error}), the corpus expects "
        f"'{case.expect}': update the case and docs/fidelity.md"
    )
    mine, db = d1check_apply(case)
    try:
        want = case.expected_for_d1check()
        why = (
            f" (intended difference '{case.difference}', docs/fidelity.md)"
            if case.difference
            else ""
        )
        assert mine == want, f"{case.name}: d1check answered '{mine}', workerd '{real}'{why}"
        if not case.difference:
            assert_same_state(case, outcome, db)
    finally:
        db.close()


@pytest.mark.parametrize("case", DIRECTORIES, ids=lambda c: c.name)
def test_migration_directory(case: Case, workerd: dict[str, Outcome]) -> None:
    """Each corpus directory: same verdict, schema and rows as `wrangler d1 migrations apply`."""
    check_case(case, workerd[case.name])


@pytest.mark.parametrize("case", STATEMENTS, ids=lambda c: c.name)
def test_statement(case: Case, workerd: dict[str, Outcome]) -> None:
    """Each single-statement file: same verdict, schema and rows as `wrangler d1 execute --file`."""
    check_case(case, workerd[case.name])


@pytest.mark.parametrize("name", CLI_CASES)
def test_wrangler_cli_agrees_with_driver(
    name: str, wrangler: Wrangler, workerd: dict[str, Outcome], tmp_path: Path
) -> None:
    """The batch driver reproduces the real `wrangler d1 migrations apply --local` command."""
    case = ALL_CASES[name]
    cli = wrangler.apply_migrations(case.migrations, tmp_path / "project")
    assert workerd_verdict(case, cli) == workerd_verdict(case, workerd[name]), cli.error
    assert cli.database is not None and workerd[name].database is not None
    with apsw.Connection(str(cli.database)) as a, apsw.Connection(str(workerd[name].database)) as b:
        assert not diff_schemas(read_schema(a), read_schema(b))


def test_wrangler_cli_execute_agrees_with_driver(
    wrangler: Wrangler, workerd: dict[str, Outcome], tmp_path: Path
) -> None:
    """The batch driver reproduces `wrangler d1 execute --local --file` (a table one column
    over D1's limit)."""
    case = ALL_CASES["limit_columns_101"]
    cli = wrangler.execute_file(case.migrations, tmp_path / "project")
    assert workerd_verdict(case, cli) == workerd_verdict(case, workerd[case.name]), cli.error


def test_wrangler_sees_nothing_pending_after_d1check(wrangler: Wrangler, tmp_path: Path) -> None:
    """Interop: after d1check applies to wrangler's local database file, wrangler has nothing
    pending and its tracking rows are the ones it writes itself."""
    local = pytest.importorskip("d1check.local", reason="d1check.local not available")
    config_mod = pytest.importorskip("d1check.config", reason="d1check.config not available")
    if not hasattr(local, "apply_local"):
        pytest.skip("d1check.local not available")
    project = tmp_path / "project"
    new_project(project)
    shutil.copytree(ALL_CASES["triggers_semicolons"].migrations, project / "migrations")
    results = local.apply_local(config_mod.load_config(project))
    assert results, "apply_local applied nothing"
    listed = wrangler.list_migrations(project)
    assert "No migrations to apply" in listed, listed


def test_d1check_sees_what_wrangler_applied(wrangler: Wrangler, tmp_path: Path) -> None:
    """Interop the other way: after `wrangler d1 migrations apply --local`, `d1check status`
    reads wrangler's own local file and shows the same versions, nothing pending."""
    from click.testing import CliRunner

    from d1check.cli import cli
    from d1check.config import load_config
    from d1check.local import plan_local

    project = tmp_path / "project"
    examples = Path(__file__).resolve().parents[2]
    outcome = wrangler.apply_migrations(examples / "migrations", project)
    assert outcome.error is None or outcome.error == "", outcome.error
    (project / ".wrangler").mkdir()
    shutil.move(project / "state", project / ".wrangler" / "state")
    config = load_config(project)
    plan = plan_local(config, config.default_family)
    names = sorted(p.name for p in (examples / "migrations").glob("*.sql"))
    assert list(plan.applied) == names
    assert plan.pending == ()
    result = CliRunner().invoke(cli, ["status", "--root", str(project)])
    assert result.exit_code == 0, result.output
    row = next(line for line in result.output.splitlines() if "local:default" in line)
    assert "0005_create_control_overview" in row
    assert " 0 " in row and "none" in row
