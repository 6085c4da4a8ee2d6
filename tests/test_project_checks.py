"""The project-level items: `migrations::sequence` and `migrations::checksums`."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from d1check.discovery import discover
from d1check.project import SUM_FILE, check_sequence, write_sums

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
    assert "0002_clear_tasks.sql: version 0002 is taken by 0002_add_task_status.sql" in message
    assert "rename it to 0003_clear_tasks.sql before it is applied anywhere" in message


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
    assert f"no {SUM_FILE} yet: every migration is new" in message
    assert "run `d1check baseline`" in message


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
    assert "0002_add_task_status.sql: changed since `d1check baseline`" in message
    assert "write a new migration" in message
    assert "0001_create_projects.sql" not in message


def test_checksums_fail_naming_a_shipped_migration_that_is_gone(
    pytester: pytest.Pytester, good: Path
) -> None:
    write_sums(discover(good / "migrations", good / "rollbacks"))
    rename(good, "0003_clear_tasks.sql", "0003_clear_all_tasks.sql")
    outcome, message = run_item(pytester, "checksums")
    assert outcome == "failed"
    assert "0003_clear_tasks.sql: recorded as shipped in d1check.sum but missing" in message


def test_checksums_let_a_rollback_be_mended(pytester: pytest.Pytester, good: Path) -> None:
    write_sums(discover(good / "migrations", good / "rollbacks"))
    (good / "rollbacks" / "0001_rollback.sql").write_text("DROP TABLE IF EXISTS projects;\n")
    assert run_item(pytester, "checksums")[0] == "passed"


def test_checksums_pass_with_a_new_migration_after_the_baseline(
    pytester: pytest.Pytester, good: Path
) -> None:
    write_sums(discover(good / "migrations", good / "rollbacks"))
    (good / "migrations" / "0004_add_index.sql").write_text(
        "CREATE INDEX IF NOT EXISTS idx_tasks_title ON tasks(title);\n"
    )
    outcome, _ = run_item(pytester, "checksums")
    assert outcome == "passed"


def sequence_of(tmp_path: Path, *names: str) -> tuple[str, str]:
    (tmp_path / "migrations").mkdir()
    for name in names:
        (tmp_path / "migrations" / name).write_text("SELECT 1;\n")
    result = check_sequence(discover(tmp_path / "migrations", tmp_path / "rollbacks"))
    return result.outcome, result.message


def test_sequence_sees_no_gaps_between_date_numbers(tmp_path: Path) -> None:
    outcome, message = sequence_of(
        tmp_path, "20251215_init.sql", "20251220_users.sql", "20260102050001_posts.sql"
    )
    assert outcome == "passed", message


def test_sequence_sees_no_gap_between_a_short_and_a_date_number(tmp_path: Path) -> None:
    outcome, message = sequence_of(tmp_path, "0001_init.sql", "20251220_users.sql")
    assert outcome == "passed", message


def test_sequence_gives_each_new_duplicate_its_own_number(tmp_path: Path) -> None:
    outcome, message = sequence_of(
        tmp_path, "0001_init.sql", "0002_a.sql", "0002_b.sql", "0002_c.sql"
    )
    assert outcome == "failed"
    assert "rename it to 0003_b.sql" in message
    assert "rename it to 0004_c.sql" in message
