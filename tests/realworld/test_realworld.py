"""Differential test: on histories shaped like real D1 projects, d1check and workerd agree on
which migration (if any) fails to build the database from empty.

workerd's verdict is computed here, at test time. Histories with plain migrations directories go
through wrangler's own splitter and tracking SQL into workerd's D1, all in one engine process
(tests/fidelity/d1_driver.cjs); a history with a `migrations_pattern` goes through `wrangler d1
migrations apply --local` itself (benchmarks/realworld.py), since wrangler decides which files
the pattern picks. d1check's verdict is the first failing `::applies` item of a plain pytest run
in a copy of the history.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from wrangler_driver import Job, Wrangler, wrangler_order_key

from d1check.cli import cli

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import realworld

HERE = Path(__file__).parent
INNER = ("-p", "no:cacheprovider", "-p", "no:hypothesispytest")
DISAGREEMENTS: dict[str, str] = {}
"""Histories where d1check and workerd disagree on the first migration that does not build, with
why (each an expected failure until d1check is fixed): none today."""

FACT_CHECKS = ("applies", "d1", "rows")
FALSE_ALARMS: dict[str, str] = {}
"""Histories workerd builds where a d1check fact item still fails, with why: none today."""

UNBUILDABLE = {
    "missing_parent:DB": ("0002_default_project.sql", "FOREIGN KEY constraint failed"),
    "missing_parent_lookup:DB": ("0002_default_key.sql", "NOT NULL constraint failed"),
    "migrations_pattern:DB": ("20250315120000_post_slug/migration.sql", "no such column"),
    "monorepo_app:DB": ("0002_ticket_priority.sql", "no such table: ticket"),
}


def _databases() -> list[realworld.Database]:
    folders = sorted(p for p in HERE.iterdir() if p.is_dir() and p.name != "__pycache__")
    return [db for folder in folders for db in realworld.databases_of(folder)]


DATABASES = _databases()


def _job(db: realworld.Database) -> Job:
    paths = sorted(db.migrations_dir.glob("*.sql"), key=lambda p: wrangler_order_key(p.name))
    files = tuple((p.name, p.read_text()) for p in paths)
    return Job(db.key.replace(":", "_").replace("-", "_"), "migrations", files)


@pytest.fixture(scope="module")
def workerd(
    realworld_wrangler: Wrangler, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, tuple[str | None, str]]:
    """(failing migration or None, error) for every database, as workerd applies it."""
    flat = {db.key: _job(db) for db in DATABASES if not db.pattern}
    outcomes = realworld_wrangler.run_jobs(list(flat.values()), tmp_path_factory.mktemp("d1"))
    verdicts = {key: (outcomes[job.id].failed, outcomes[job.id].error) for key, job in flat.items()}
    for db in (db for db in DATABASES if db.pattern):
        scratch = tmp_path_factory.mktemp("cli")
        verdict = realworld.workerd_verdict(db, realworld_wrangler.executable, scratch)
        verdicts[db.key] = (verdict.failed, verdict.error)
    return verdicts


def _failing_items(
    pytester: pytest.Pytester, db: realworld.Database, *, baseline: bool = False
) -> list[tuple[str, str]]:
    """(path under the migrations directory, check) of every failing item, in run order (after
    `d1check baseline`, with `baseline`)."""
    pytester.copy_example(str(db.root))
    if baseline:
        said = CliRunner().invoke(cli, ["baseline", "--root", str(pytester.path)])
        assert said.exit_code == 0, said.output
    reports = pytester.inline_run(*INNER).getreports("pytest_runtest_logreport")
    prefix = db.migrations_dir.relative_to(db.root.resolve()).as_posix() + "/"
    failing = []
    for report in reports:
        path, _, check = report.nodeid.rpartition("::")
        if report.failed and path.startswith(prefix):
            failing.append((path[len(prefix) :], check))
    return failing


def d1check_failure(
    pytester: pytest.Pytester, db: realworld.Database, *, baseline: bool = False
) -> str | None:
    """The migration whose `::applies` item fails first, named under its migrations directory."""
    failing = _failing_items(pytester, db, baseline=baseline)
    return next((p for p, check in failing if check == "applies"), None)


def _params(databases: list[realworld.Database], disagreements: dict[str, str]) -> list[object]:
    params = []
    for db in databases:
        reason = disagreements.get(db.key)
        marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
        params.append(pytest.param(db, id=db.key, marks=marks))
    return params


@pytest.mark.workerd
def test_workerd_builds_every_history_but_the_unbuildable_ones(
    workerd: dict[str, tuple[str | None, str]],
) -> None:
    failures = {key: verdict for key, verdict in workerd.items() if verdict[0] is not None}
    assert failures.keys() == UNBUILDABLE.keys(), failures
    for key, (name, error) in UNBUILDABLE.items():
        assert failures[key][0] == name and error in failures[key][1], failures[key]
    assert len(workerd) == len(DATABASES) >= 10


@pytest.mark.workerd
@pytest.mark.parametrize("db", _params(DATABASES, DISAGREEMENTS))
def test_d1check_fails_where_workerd_fails(
    db: realworld.Database,
    workerd: dict[str, tuple[str | None, str]],
    pytester: pytest.Pytester,
) -> None:
    failed, error = workerd[db.key]
    assert d1check_failure(pytester, db) == failed, f"workerd: {failed or 'builds'} {error}"


@pytest.mark.workerd
@pytest.mark.parametrize(
    "db", _params([db for db in DATABASES if db.key not in UNBUILDABLE], FALSE_ALARMS)
)
def test_d1check_states_no_false_fact_where_workerd_builds(
    db: realworld.Database,
    workerd: dict[str, tuple[str | None, str]],
    pytester: pytest.Pytester,
) -> None:
    assert workerd[db.key][0] is None
    facts = [item for item in _failing_items(pytester, db) if item[1] in FACT_CHECKS]
    assert facts == []


@pytest.mark.workerd
@pytest.mark.parametrize("db", _params(DATABASES, DISAGREEMENTS))
def test_after_a_baseline_d1check_fails_exactly_where_workerd_fails(
    db: realworld.Database,
    workerd: dict[str, tuple[str | None, str]],
    pytester: pytest.Pytester,
) -> None:
    """Adopting d1check on the history as it is: every history workerd builds is green, every
    other one fails at workerd's migration."""
    failed, error = workerd[db.key]
    failing = _failing_items(pytester, db, baseline=True)
    if failed is None:
        assert failing == []
    else:
        first = next((p for p, check in failing if check == "applies"), None)
        assert first == failed, f"workerd: {failed} {error}; d1check: {failing}"
