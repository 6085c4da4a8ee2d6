"""The project-level items: `migrations::sequence` and `migrations::checksums`."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from d1check.discovery import discover
from d1check.project import SUM_FILE, write_sums

EXAMPLES = Path(__file__).parent / "examples"
INNER = ("-p", "no:cacheprovider", "-p", "no:hypothesispytest")


@pytest.fixture
def good(pytester: pytest.Pytester) -> Path:
    """The `good` example project, copied into pytester's directory."""
    shutil.copytree(EXAMPLES / "good", pytester.path, dirs_exist_ok=True)
    return pytester.path


def run_item(pytester: pytest.Pytester, check: str) -> tuple[str, str]:
    """Run the project; the outcome of `migrations::<check>` and its failure or skip text."""
    result = pytester.runpytest(*INNER)
    reports = result.reprec.getreports("pytest_runtest_logreport")  # type: ignore[attr-defined]
    found = [r for r in reports if r.when == "call" and r.nodeid == f"migrations::{check}"]
    assert len(found) == 1, [r.nodeid for r in reports]
    return found[0].outcome, str(found[0].longreprtext)


def rename(project: Path, old: str, new: str) -> None:
    (project / "migrations" / old).rename(project / "migrations" / new)


def test_sequence_passes_on_a_clean_history(pytester: pytest.Pytester, good: Path) -> None:
    assert run_item(pytester, "sequence")[0] == "passed"


def test_sequence_passes_on_a_history_starting_at_0000(
    pytester: pytest.Pytester, good: Path
) -> None:
    rename(good, "0001_create_projects.sql", "0000_create_projects.sql")
    rename(good, "0002_add_task_status.sql", "0001_add_task_status.sql")
    rename(good, "0003_clear_tasks.sql", "0002_clear_tasks.sql")
    shutil.rmtree(good / "rollbacks")
    assert run_item(pytester, "sequence")[0] == "passed"


def test_sequence_fails_on_a_gap(pytester: pytest.Pytester, good: Path) -> None:
    rename(good, "0003_clear_tasks.sql", "0005_clear_tasks.sql")
    outcome, message = run_item(pytester, "sequence")
    assert outcome == "failed"
    assert "gap: no migration numbered 3" in message
    assert "(between 0002_add_task_status.sql and 0005_clear_tasks.sql)" in message


def test_sequence_fails_on_a_duplicate_version(pytester: pytest.Pytester, good: Path) -> None:
    rename(good, "0003_clear_tasks.sql", "0002_clear_tasks.sql")
    outcome, message = run_item(pytester, "sequence")
    assert outcome == "failed"
    assert "duplicate version 0002: 0002_add_task_status.sql and 0002_clear_tasks.sql" in message


def test_sequence_fails_on_a_bad_name(pytester: pytest.Pytester, good: Path) -> None:
    rename(good, "0003_clear_tasks.sql", "clear_tasks.sql")
    outcome, message = run_item(pytester, "sequence")
    assert outcome == "failed"
    assert "clear_tasks.sql: not named NNNN_descriptive_name.sql" in message
    assert "e.g. 0003_" in message


def test_sequence_fails_on_an_orphan_rollback(pytester: pytest.Pytester, good: Path) -> None:
    (good / "rollbacks" / "0009_rollback.sql").write_text("DROP TABLE IF EXISTS x;\n")
    outcome, message = run_item(pytester, "sequence")
    assert outcome == "failed"
    assert "0009_rollback.sql: a rollback without a migration of the same number" in message


def test_checksums_skip_without_a_sum_file(pytester: pytest.Pytester, good: Path) -> None:
    outcome, message = run_item(pytester, "checksums")
    assert outcome == "skipped"
    assert f"no {SUM_FILE} yet; run `d1check hash`" in message


def test_checksums_pass_with_a_written_sum_file(pytester: pytest.Pytester, good: Path) -> None:
    written = write_sums(discover(good / "migrations", good / "rollbacks"))
    assert written == good / "migrations" / SUM_FILE
    assert run_item(pytester, "checksums")[0] == "passed"


def test_checksums_fail_naming_an_edited_migration(pytester: pytest.Pytester, good: Path) -> None:
    write_sums(discover(good / "migrations", good / "rollbacks"))
    edited = good / "migrations" / "0002_add_task_status.sql"
    edited.write_text(edited.read_text() + "-- an afterthought\n")
    outcome, message = run_item(pytester, "checksums")
    assert outcome == "failed"
    assert "0002_add_task_status.sql: changed since `d1check hash`" in message
    assert "0001_create_projects.sql" not in message


def test_checksums_fail_naming_an_edited_rollback(pytester: pytest.Pytester, good: Path) -> None:
    write_sums(discover(good / "migrations", good / "rollbacks"))
    (good / "rollbacks" / "0001_rollback.sql").write_text("DROP TABLE IF EXISTS projects;\n")
    outcome, message = run_item(pytester, "checksums")
    assert outcome == "failed"
    assert "rollbacks/0001_rollback.sql: changed since `d1check hash`" in message


def test_checksums_fail_on_a_new_migration_not_hashed(
    pytester: pytest.Pytester, good: Path
) -> None:
    write_sums(discover(good / "migrations", good / "rollbacks"))
    (good / "migrations" / "0004_add_index.sql").write_text(
        "CREATE INDEX IF NOT EXISTS idx_tasks_title ON tasks(title);\n"
    )
    outcome, message = run_item(pytester, "checksums")
    assert outcome == "failed"
    assert "0004_add_index.sql: new, not in d1check.sum yet" in message
