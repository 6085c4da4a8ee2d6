"""The one pass over a history: each migration checked once, in order, from the state before it."""

from __future__ import annotations

import shutil
from pathlib import Path

from d1check.checks import Policy
from d1check.discovery import discover
from d1check.history import History, replay

EXAMPLES = Path(__file__).parent / "examples"


def example(name: str) -> tuple[Path, Path]:
    return EXAMPLES / name / "migrations", EXAMPLES / name / "rollbacks"


def test_the_pass_checks_every_migration_once() -> None:
    migrations = discover(*example("good"))
    seen: list[str] = []
    history = History(migrations, progress=lambda i, n, m: seen.append(f"{i}/{n} {m.name}"))
    results = history.run_all()
    assert seen == ["1/3 0001_create_projects", "2/3 0002_add_task_status", "3/3 0003_clear_tasks"]
    assert list(results) == [m.name for m in migrations.migrations]
    assert not history.failed()
    assert len(set(history.fingerprints)) == 2  # 0003 changes rows, not the schema
    assert len(history.fingerprints) == 3
    history.run_all()
    assert len(seen) == 3


def test_results_of_a_later_migration_advance_the_pass_only_that_far() -> None:
    migrations = discover(*example("good"))
    seen: list[str] = []
    history = History(migrations, progress=lambda i, n, m: seen.append(m.name))
    assert history.results(migrations.migrations[1])["applies"].outcome == "passed"
    assert seen == ["0001_create_projects", "0002_add_task_status"]


def test_a_migration_that_does_not_apply_blocks_the_later_ones(tmp_path: Path) -> None:
    shutil.copytree(EXAMPLES / "applies_not_null", tmp_path, dirs_exist_ok=True)
    (tmp_path / "migrations" / "0003_create_shelves.sql").write_text(
        "CREATE TABLE IF NOT EXISTS shelves (id INTEGER PRIMARY KEY);\n"
    )
    history = History(discover(tmp_path / "migrations", tmp_path / "rollbacks"))
    results = history.run_all()
    assert results["0002_add_isbn"]["applies"].failed
    blocked = results["0003_create_shelves"]
    assert {r.outcome for r in blocked.values()} == {"skipped"}
    assert blocked["applies"].message == "0002_add_isbn.sql does not apply; fix it first"


def test_policy_is_passed_to_the_checks() -> None:
    migrations = discover(*example("rollback"))
    history = History(migrations, Policy(require_rollbacks=False))
    result = history.results(migrations.find("0004"))["rollback"]
    assert result.outcome == "skipped"
    assert "require_rollbacks = false" in result.message


def test_replay_records_wranglers_tracking_rows() -> None:
    migrations = discover(*example("good"))
    db = replay(migrations.migrations)
    try:
        names = [r["name"] for r in db.query("SELECT name FROM d1_migrations ORDER BY id")]
        assert names == [m.file_name for m in migrations.migrations]
    finally:
        db.close()
