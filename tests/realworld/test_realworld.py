"""Differential test: on histories shaped like real D1 projects, d1check and workerd agree on
which migration (if any) fails to build the database from empty.

workerd's verdict is computed here, at test time: every history's files, in wrangler's order, go
through wrangler's own splitter and tracking SQL into workerd's D1 (tests/fidelity/d1_driver.cjs,
one process for all). d1check's verdict is the first failing `::applies` item of a plain pytest
run in a copy of the history.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from wrangler_driver import Job, Outcome, Wrangler, wrangler_order_key

from d1check.config import WRANGLER_FILES, load_wrangler_config

HERE = Path(__file__).parent
INNER = ("-p", "no:cacheprovider", "-p", "no:hypothesispytest")
DISAGREEMENTS = {
    "missing_parent_lookup:DB": (
        "d1check applies each migration to a database with rows in every table, where the "
        "lookup finds a parent; on the empty database workerd builds, it finds none (NOT NULL "
        "constraint failed), and d1check does not yet apply on an empty database"
    ),
}


@dataclass(frozen=True)
class Case:
    """One database of one history: its migrations directory, relative to the history."""

    history: str
    binding: str
    migrations: Path

    @property
    def key(self) -> str:
        """`history:binding`."""
        return f"{self.history}:{self.binding}"

    def files(self) -> list[Path]:
        """The `.sql` files, in wrangler's order."""
        paths = (HERE / self.history / self.migrations).glob("*.sql")
        return sorted(paths, key=lambda p: wrangler_order_key(p.name))


def _config(history: Path) -> Path:
    for folder in (history, *sorted(p for p in history.iterdir() if p.is_dir())):
        for name in WRANGLER_FILES:
            if (folder / name).is_file():
                return folder / name
    raise FileNotFoundError(f"{history}: no wrangler config")


def _cases() -> list[Case]:
    cases = []
    for history in sorted(p for p in HERE.iterdir() if p.is_dir() and p.name != "__pycache__"):
        config = _config(history)
        for db in load_wrangler_config(config).databases:
            directory = (config.parent / (db.migrations_dir or "migrations")).resolve()
            cases.append(Case(history.name, db.binding, directory.relative_to(history)))
    return cases


CASES = _cases()


def _job(case: Case) -> Job:
    files = tuple((p.name, p.read_text()) for p in case.files())
    return Job(case.key.replace(":", "_").replace("-", "_"), "migrations", files)


@pytest.fixture(scope="module")
def workerd(realworld_wrangler: Wrangler, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """workerd's outcome for every case, from one engine process."""
    jobs = {case.key: _job(case) for case in CASES}
    outcomes = realworld_wrangler.run_jobs(list(jobs.values()), tmp_path_factory.mktemp("d1"))
    return {key: outcomes[job.id] for key, job in jobs.items()}


def d1check_failure(pytester: pytest.Pytester, case: Case) -> str | None:
    """The migration file whose `::applies` item fails first, in the case's directory."""
    pytester.copy_example(str(HERE / case.history))
    reports = pytester.inline_run(*INNER).getreports("pytest_runtest_logreport")
    prefix = case.migrations.as_posix() + "/"
    for report in reports:
        path, _, check = report.nodeid.rpartition("::")
        if check == "applies" and report.failed and path.startswith(prefix):
            if "/" not in path[len(prefix) :]:
                return Path(path).name
    return None


def _params() -> list[object]:
    params = []
    for case in CASES:
        reason = DISAGREEMENTS.get(case.key)
        marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
        params.append(pytest.param(case, id=case.key, marks=marks))
    return params


UNBUILDABLE = {
    "missing_parent:DB": ("0002_default_project.sql", "FOREIGN KEY constraint failed"),
    "missing_parent_lookup:DB": ("0002_default_key.sql", "NOT NULL constraint failed"),
}


@pytest.mark.workerd
def test_workerd_builds_every_history_but_the_unbuildable_ones(workerd: dict[str, Outcome]) -> None:
    failures = {k: (o.failed, o.error) for k, o in workerd.items() if not o.ok}
    assert failures.keys() == UNBUILDABLE.keys(), failures
    for key, (name, error) in UNBUILDABLE.items():
        assert failures[key][0] == name and error in failures[key][1], failures[key]
    assert len(workerd) >= 9


@pytest.mark.workerd
@pytest.mark.parametrize("case", _params())
def test_d1check_fails_where_workerd_fails(
    case: Case, workerd: dict[str, Outcome], pytester: pytest.Pytester
) -> None:
    outcome = workerd[case.key]
    assert d1check_failure(pytester, case) == outcome.failed, (
        f"workerd: {outcome.failed or 'builds'} {outcome.error}".strip()
    )
