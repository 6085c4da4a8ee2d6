"""Adopting d1check on an existing history: `d1check baseline`, shipped migrations held to facts,
new ones to the whole policy."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from d1check.cli import cli
from d1check.config import load_config
from d1check.discovery import discover
from d1check.project import check_checksums

EXAMPLES = Path(__file__).parent / "examples"
INNER = ("-p", "no:cacheprovider", "-p", "no:hypothesispytest")


@pytest.fixture
def history(pytester: pytest.Pytester) -> Path:
    """A history written before d1check: no rollbacks, a duplicate number from merged branches,
    a drop, an ADD COLUMN, and a default that fails on a table with rows."""
    shutil.copytree(EXAMPLES / "existing_history", pytester.path, dirs_exist_ok=True)
    return pytester.path


def outcomes(pytester: pytest.Pytester) -> dict[str, tuple[str, str]]:
    """Every d1check item's outcome and failure or skip text, by node id."""
    result = pytester.runpytest(*INNER)
    reports = result.reprec.getreports("pytest_runtest_logreport")  # type: ignore[attr-defined]
    return {r.nodeid: (r.outcome, str(r.longreprtext)) for r in reports if r.when == "call"}


def baseline(root: Path, *args: str) -> str:
    result = CliRunner().invoke(cli, ["baseline", "--root", str(root), *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_without_a_baseline_policy_failures_say_how_to_adopt(
    pytester: pytest.Pytester, history: Path
) -> None:
    found = outcomes(pytester)
    outcome, text = found["migrations/0003_drop_posts.sql::rollback"]
    assert outcome == "failed"
    assert "`d1check baseline` records the migrations already applied as shipped" in text
    outcome, text = found["migrations/0003_drop_posts.sql::destructive"]
    assert outcome == "failed" and "d1check baseline" in text
    outcome, text = found["migrations/0004_add_created_at.sql::applies"]
    assert outcome == "failed"
    assert "non-constant default" in text and "it applies on an empty database" in text


def test_after_the_baseline_shipped_history_is_green(
    pytester: pytest.Pytester, history: Path
) -> None:
    said = baseline(history)
    assert "5 shipped migration(s), 0 new" in said
    found = outcomes(pytester)
    failed = {node: text for node, (outcome, text) in found.items() if outcome == "failed"}
    assert failed == {}
    outcome, text = found["migrations/0004_add_created_at.sql::applies"]
    assert outcome == "passed"
    outcome, text = found["migrations/0003_drop_posts.sql::rollback"]
    assert outcome == "skipped" and "shipped" in text
    assert found["migrations::sequence"][0] == "passed"
    assert found["migrations::checksums"][0] == "passed"


def test_a_shipped_migration_that_does_not_build_from_empty_still_fails(
    pytester: pytest.Pytester, history: Path
) -> None:
    (history / "migrations" / "0005_seed_tag_owner.sql").write_text(
        "CREATE TABLE tag_owners (tag_id INTEGER NOT NULL REFERENCES tags(id));\n"
        "INSERT INTO tag_owners (tag_id) VALUES (7);\n"
    )
    baseline(history)
    found = outcomes(pytester)
    outcome, text = found["migrations/0005_seed_tag_owner.sql::applies"]
    assert outcome == "failed"
    assert "FOREIGN KEY constraint failed" in text and "as every new database starts" in text


def test_new_migrations_after_the_baseline_get_the_whole_policy(
    pytester: pytest.Pytester, history: Path
) -> None:
    baseline(history)
    (history / "migrations" / "0005_drop_tags.sql").write_text("DROP TABLE tags;\n")
    found = outcomes(pytester)
    outcome, text = found["migrations/0005_drop_tags.sql::destructive"]
    assert outcome == "failed" and "d1check baseline" not in text
    outcome, text = found["migrations/0005_drop_tags.sql::rollback"]
    assert outcome == "failed" and "no rollback file" in text
    assert found["migrations/0005_drop_tags.sql::idempotent"][0] == "failed"


def test_a_new_migration_with_a_rows_only_failure_fails(
    pytester: pytest.Pytester, history: Path
) -> None:
    baseline(history, "0003")
    found = outcomes(pytester)
    assert found["migrations/0003_drop_posts.sql::destructive"][0] == "skipped"
    outcome, text = found["migrations/0004_add_created_at.sql::applies"]
    assert outcome == "failed" and "non-constant default" in text


def test_sequence_accepts_shipped_duplicates_and_numbers_a_new_one(
    pytester: pytest.Pytester, history: Path
) -> None:
    baseline(history)
    (history / "migrations" / "0004_add_bio.sql").write_text(
        "ALTER TABLE users ADD COLUMN bio TEXT;\n"
    )
    outcome, text = outcomes(pytester)["migrations::sequence"]
    assert outcome == "failed"
    assert "0004_add_bio.sql: version 0004 is taken by 0004_add_created_at.sql" in text
    assert "rename it to 0005_add_bio.sql" in text
    assert "0002" not in text  # the shipped duplicate is accepted


def test_baseline_up_to_a_version_leaves_the_rest_new(history: Path) -> None:
    said = baseline(history, "0003")
    assert "4 shipped migration(s), 1 new" in said
    recorded = (history / "migrations" / "d1check.sum").read_text().splitlines()[1:]
    assert [line.split()[0] for line in recorded] == [
        "0001_init.sql",
        "0002_add_user_name.sql",
        "0002_create_tags.sql",
        "0003_drop_posts.sql",
    ]


def test_baseline_of_an_unknown_version_is_bad_input(history: Path) -> None:
    result = CliRunner().invoke(cli, ["baseline", "--root", str(history), "0042"])
    assert result.exit_code == 2
    assert "no migration matches '0042'" in result.output
    assert not (history / "migrations" / "d1check.sum").exists()


def test_notes_of_shipped_history_are_in_the_terminal_summary(
    pytester: pytest.Pytester, history: Path
) -> None:
    baseline(history)
    result = pytester.runpytest(*INNER)
    result.assert_outcomes(passed=20, skipped=12)
    result.stdout.fnmatch_lines(
        [
            "*- d1check notes -*",
            "migrations::sequence: shipped migrations share version 0002: *",
            "migrations/0004_add_created_at.sql::applies: 0004_add_created_at.sql (shipped) "
            "fails on a database with rows, but production has already run it*",
        ]
    )


def test_notes_reach_the_summary_under_xdist(pytester: pytest.Pytester, history: Path) -> None:
    baseline(history)
    result = pytester.runpytest_subprocess(*INNER, "-n", "2")
    result.assert_outcomes(passed=20, skipped=12)
    result.stdout.fnmatch_lines(["*- d1check notes -*", "*0004_add_created_at.sql::applies: *"])


def test_a_new_migration_with_no_statement_fails_d1(
    pytester: pytest.Pytester, history: Path
) -> None:
    baseline(history)
    (history / "migrations" / "0005_placeholder.sql").write_text(
        "-- Migration number: 0005 \t 2026-12-07T10:00:00.000Z\n"
    )
    outcome, text = outcomes(pytester)["migrations/0005_placeholder.sql::d1"]
    assert outcome == "failed"
    assert "0005_placeholder.sql: no SQL statement (the file is empty or only comments)" in text
    assert "fix: write the migration's SQL, or delete the file" in text


def test_a_shipped_migration_with_no_statement_is_a_note(
    pytester: pytest.Pytester, history: Path
) -> None:
    (history / "migrations" / "0005_placeholder.sql").write_text("")
    baseline(history)
    result = pytester.runpytest(*INNER)
    result.stdout.fnmatch_lines(
        ["migrations/0005_placeholder.sql::d1: (shipped) *: no SQL statement*"]
    )
    assert "failed" not in result.stdout.lines[-1]


REBUILD_USERS = (
    "PRAGMA foreign_keys = OFF;\n"
    "CREATE TABLE users_new (id TEXT PRIMARY KEY, email TEXT NOT NULL UNIQUE, name TEXT,"
    " created_at TEXT);\n"
    "INSERT INTO users_new SELECT id, email, name, created_at FROM users;\n"
    "DROP TABLE users;\n"
    "ALTER TABLE users_new RENAME TO users;\n"
)


def add_cascading_child(history: Path) -> None:
    (history / "migrations" / "0005_sessions.sql").write_text(
        "CREATE TABLE sessions (id TEXT PRIMARY KEY,"
        " user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE);\n"
    )


def test_a_rebuild_that_loses_child_rows_fails_d1_when_new(
    pytester: pytest.Pytester, history: Path
) -> None:
    add_cascading_child(history)
    baseline(history)
    (history / "migrations" / "0006_rebuild_users.sql").write_text(REBUILD_USERS)
    outcome, text = outcomes(pytester)["migrations/0006_rebuild_users.sql::d1"]
    assert outcome == "failed"
    assert "sessions (ON DELETE CASCADE)" in text


def test_a_shipped_rebuild_that_lost_child_rows_is_a_note(
    pytester: pytest.Pytester, history: Path
) -> None:
    add_cascading_child(history)
    (history / "migrations" / "0006_rebuild_users.sql").write_text(REBUILD_USERS)
    baseline(history)
    result = pytester.runpytest(*INNER)
    assert result.parseoutcomes().get("failed", 0) == 0
    result.stdout.fnmatch_lines(
        ["migrations/0006_rebuild_users.sql::d1: (shipped) *sessions (ON DELETE CASCADE)*"]
    )


def test_a_passed_over_add_column_is_a_note(pytester: pytest.Pytester, history: Path) -> None:
    baseline(history)
    (history / "migrations" / "0005_add_bio.sql").write_text(
        "ALTER TABLE users ADD COLUMN bio TEXT;\n"
        "CREATE INDEX IF NOT EXISTS users_bio ON users(bio);\n"
    )
    result = pytester.runpytest(*INNER, "-k", "0005")
    result.stdout.fnmatch_lines(
        ["migrations/0005_add_bio.sql::idempotent: *is safe to apply again only under atomic*"]
    )


def test_baseline_of_nested_migrations_marks_them_shipped(tmp_path: Path) -> None:
    shutil.copytree(EXAMPLES / "nested_pattern", tmp_path, dirs_exist_ok=True)
    assert "2 shipped migration(s), 0 new" in baseline(tmp_path)
    recorded = (tmp_path / "migrations" / "d1check.sum").read_text().splitlines()[1:]
    assert [line.split()[0] for line in recorded] == [
        "0000_init/migration.sql",
        "0001_add_tags/migration.sql",
    ]
    config = load_config(tmp_path)
    family = config.default_family
    found = discover(family.migrations_dir, family.rollbacks_dir, family.migrations_pattern)
    assert [m.shipped for m in found.migrations] == [True, True]
    assert check_checksums(found).outcome == "passed"
