"""Each per-migration check fails on a migration that deserves it, passes on one that does not."""

from __future__ import annotations

import shutil
from fnmatch import fnmatch
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).parent / "examples"
INNER = ("-p", "no:cacheprovider", "-p", "no:hypothesispytest")


def run_example(pytester: pytest.Pytester, name: str, *args: str) -> pytest.RunResult:
    """Copy the example project `name` into pytester's directory and run pytest on it."""
    shutil.copytree(EXAMPLES / name, pytester.path, dirs_exist_ok=True)
    return pytester.runpytest(*INNER, *args)


def outcomes(result: pytest.RunResult) -> dict[str, str]:
    """The outcome of each item, by node id."""
    reports = result.reprec.getreports("pytest_runtest_logreport")  # type: ignore[attr-defined]
    return {r.nodeid: r.outcome for r in reports if r.when == "call"}


def text(result: pytest.RunResult, nodeid: str) -> str:
    """The failure (or skip) text of one item."""
    reports = result.reprec.getreports("pytest_runtest_logreport")  # type: ignore[attr-defined]
    found = [r for r in reports if r.nodeid == nodeid and r.when == "call"]
    assert found, f"no item {nodeid}"
    return str(found[0].longreprtext)


def item(migration: str, check: str) -> str:
    return f"migrations/{migration}.sql::{check}"


# --- applies -------------------------------------------------------------------------------


def test_applies_fails_on_not_null_column_without_default(pytester: pytest.Pytester) -> None:
    result = run_example(pytester, "applies_not_null")
    seen = outcomes(result)
    assert seen[item("0001_create_books", "applies")] == "passed"
    assert seen[item("0002_add_isbn", "applies")] == "failed"
    result.stdout.fnmatch_lines(
        [
            "*0002_add_isbn.sql:4: Cannot add a NOT NULL column with default value NULL*",
            "*ALTER TABLE books ADD COLUMN isbn TEXT NOT NULL;",
            "*fix: give the new column a DEFAULT*",
            "*with rows in 1 of 1 tables*",
        ]
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED


def test_applies_names_file_and_line_of_a_syntax_error(pytester: pytest.Pytester) -> None:
    result = run_example(pytester, "applies_syntax")
    assert outcomes(result)[item("0001_create_books", "applies")] == "failed"
    result.stdout.fnmatch_lines(['*0001_create_books.sql:4: near "CREAT": syntax error*'])


def test_a_migration_that_does_not_apply_skips_the_checks_that_need_it(
    pytester: pytest.Pytester,
) -> None:
    result = run_example(pytester, "applies_not_null")
    seen = outcomes(result)
    for check in ("rows", "rollback"):
        assert seen[item("0002_add_isbn", check)] == "skipped"
    assert "does not apply" in text(result, item("0002_add_isbn", "rows"))


def test_every_check_passes_on_good_migrations(pytester: pytest.Pytester) -> None:
    result = run_example(pytester, "good")
    result.assert_outcomes(passed=17, skipped=3)
    assert result.ret == pytest.ExitCode.OK


# --- rows ----------------------------------------------------------------------------------


def test_rows_fails_on_the_table_rebuild_cascade(pytester: pytest.Pytester) -> None:
    result = run_example(pytester, "rows_cascade")
    seen = outcomes(result)
    assert seen[item("0001_create_authors", "rows")] == "passed"
    assert seen[item("0002_rebuild_authors", "applies")] == "passed"
    assert seen[item("0002_rebuild_authors", "rows")] == "failed"
    message = text(result, item("0002_rebuild_authors", "rows"))
    assert "books: 4 rows before, 0 after" in message
    assert (
        "DROP TABLE authors fires the foreign-key actions of books (ON DELETE CASCADE)" in message
    )
    assert "line 12" in message


def test_rows_passes_on_delete_from_a_table(pytester: pytest.Pytester) -> None:
    result = run_example(pytester, "good")
    seen = outcomes(result)
    assert seen[item("0003_clear_tasks", "rows")] == "passed"
    assert seen[item("0002_add_task_status", "rows")] == "passed"


# --- rollback ------------------------------------------------------------------------------


@pytest.fixture
def rollback_run(pytester: pytest.Pytester) -> pytest.RunResult:
    return run_example(pytester, "rollback")


def test_rollback_passes_when_it_restores_the_previous_version(
    rollback_run: pytest.RunResult,
) -> None:
    assert outcomes(rollback_run)[item("0001_create_items", "rollback")] == "passed"


def test_rollback_round_trip_of_add_and_drop_column_passes(rollback_run: pytest.RunResult) -> None:
    assert outcomes(rollback_run)[item("0006_add_item_price", "rollback")] == "passed"


def test_rollback_that_forgets_an_index_fails_with_the_diff(rollback_run: pytest.RunResult) -> None:
    node = item("0002_index_item_names", "rollback")
    assert outcomes(rollback_run)[node] == "failed"
    message = text(rollback_run, node)
    assert "rollbacks/0002_rollback.sql" in message
    assert "index idx_items_name: added" in message


def test_rollback_that_forgets_a_column_fails_with_the_diff(rollback_run: pytest.RunResult) -> None:
    node = item("0003_add_item_note", "rollback")
    assert outcomes(rollback_run)[node] == "failed"
    assert "table items: column note: added (TEXT)" in text(rollback_run, node)


def test_missing_rollback_fails_with_the_irreversible_hint(rollback_run: pytest.RunResult) -> None:
    node = item("0004_create_tags", "rollback")
    assert outcomes(rollback_run)[node] == "failed"
    message = text(rollback_run, node)
    assert "no rollback file" in message
    assert "rollbacks/0004_rollback.sql" in message
    assert "-- d1check: irreversible <reason>" in message


def test_declared_irreversible_skips_the_rollback(rollback_run: pytest.RunResult) -> None:
    node = item("0005_create_labels", "rollback")
    assert outcomes(rollback_run)[node] == "skipped"
    assert "declared irreversible: labels are shared with the billing service" in text(
        rollback_run, node
    )


def test_rollback_that_loses_rows_fails(rollback_run: pytest.RunResult) -> None:
    node = item("0007_add_item_colour", "rollback")
    assert outcomes(rollback_run)[node] == "failed"
    assert "rows of items are not restored: 4 rows at the previous version, 0 after" in text(
        rollback_run, node
    )


def test_rollback_must_delete_a_self_recorded_tracking_row(pytester: pytest.Pytester) -> None:
    result = run_example(pytester, "seed_tracking")
    seen = outcomes(result)
    assert seen[item("0001_create_notes", "rollback")] == "failed"
    assert seen[item("0002_create_pins", "rollback")] == "passed"
    message = text(result, item("0001_create_notes", "rollback"))
    assert "records itself in _migrations, and the rollback leaves that row behind" in message
    assert "DELETE FROM _migrations WHERE version = '0001';" in message


# --- idempotent ----------------------------------------------------------------------------


@pytest.fixture
def idempotent_run(pytester: pytest.Pytester) -> pytest.RunResult:
    return run_example(pytester, "idempotent")


def test_create_table_without_if_not_exists_is_not_idempotent(
    idempotent_run: pytest.RunResult,
) -> None:
    node = item("0001_create_colours", "idempotent")
    assert outcomes(idempotent_run)[node] == "failed"
    message = text(idempotent_run, node)
    assert "table colours already exists" in message
    assert "IF NOT EXISTS" in message


def test_declared_not_idempotent_skips(idempotent_run: pytest.RunResult) -> None:
    node = item("0002_create_sizes", "idempotent")
    assert outcomes(idempotent_run)[node] == "skipped"
    assert "declared not-idempotent" in text(idempotent_run, node)


def test_insert_that_duplicates_rows_on_a_second_run_fails(
    idempotent_run: pytest.RunResult,
) -> None:
    node = item("0003_seed_colours", "idempotent")
    assert outcomes(idempotent_run)[node] == "failed"
    assert "rows of colours: 6 after the first run, 8 after the second" in text(
        idempotent_run, node
    )


def test_guarded_insert_is_idempotent(idempotent_run: pytest.RunResult) -> None:
    assert outcomes(idempotent_run)[item("0004_seed_sizes", "idempotent")] == "passed"


# --- d1 ------------------------------------------------------------------------------------


@pytest.fixture
def lints_run(pytester: pytest.Pytester) -> pytest.RunResult:
    return run_example(pytester, "d1_lints")


def test_d1_fails_on_pragma_foreign_keys(lints_run: pytest.RunResult) -> None:
    node = item("0002_foreign_keys_off", "d1")
    assert outcomes(lints_run)[node] == "failed"
    assert outcomes(lints_run)[item("0002_foreign_keys_off", "applies")] == "passed"
    message = text(lints_run, node)
    assert "0002_foreign_keys_off.sql:1: PRAGMA foreign_keys = OFF does nothing on D1" in message
    assert "PRAGMA defer_foreign_keys = true" in message


def test_d1_fails_on_a_last_statement_without_semicolon(lints_run: pytest.RunResult) -> None:
    node = item("0003_no_semicolon", "d1")
    assert outcomes(lints_run)[node] == "failed"
    assert "the last statement has no `;`" in text(lints_run, node)


def test_d1_fails_on_an_unterminated_comment(lints_run: pytest.RunResult) -> None:
    node = item("0004_open_comment", "d1")
    assert outcomes(lints_run)[node] == "failed"
    assert "a `/*` comment is never closed" in text(lints_run, node)


def test_d1_fails_on_a_rollback_that_drops_an_indexed_column(lints_run: pytest.RunResult) -> None:
    node = item("0005_add_email", "d1")
    assert outcomes(lints_run)[node] == "failed"
    message = text(lints_run, node)
    assert "rollbacks/0005_rollback.sql:2: SQLite refuses to drop people.email" in message
    assert "drop index idx_people_email first" in message


def test_d1_passes_on_a_plain_migration(lints_run: pytest.RunResult) -> None:
    assert outcomes(lints_run)[item("0001_create_people", "d1")] == "passed"


@pytest.mark.parametrize(
    ("example", "migration", "expected"),
    [
        ("d1_transaction", "0001_create_orders", "*0001_create_orders.sql:1: BEGIN — D1 refuses*"),
        ("d1_transaction", "0001_create_orders", "*0001_create_orders.sql:3: COMMIT — D1 refuses*"),
        ("d1_transaction", "0001_create_orders", "*state.storage.transaction()*"),
        ("d1_attach", "0001_attach_archive", "*D1 does not allow ATTACH*"),
        ("d1_cf_table", "0001_create_cf_table", "*names starting with _cf_ are reserved for D1*"),
        ("d1_many_columns", "0001_create_wide_table", "*too many columns on wide*"),
        ("d1_many_columns", "0001_create_wide_table", "*at most 100 columns*"),
        ("d1_long_statement", "0002_load_items", "*0002_load_items.sql:2: statement too long*"),
        ("d1_long_statement", "0002_load_items", "*134,231 bytes; D1 allows 100,000*"),
        ("d1_drop_indexed_column", "0002_drop_email", "*SQLite refuses to drop people.email*"),
    ],
)
def test_d1_fails_on_what_d1_refuses(
    pytester: pytest.Pytester, example: str, migration: str, expected: str
) -> None:
    result = run_example(pytester, example)
    node = item(migration, "d1")
    assert outcomes(result)[node] == "failed"
    lines = text(result, node).splitlines()
    assert any(fnmatch(line, expected) for line in lines), text(result, node)
    assert result.ret == pytest.ExitCode.TESTS_FAILED


def test_d1_passes_triggers_fts5_views_and_warns_on_a_large_file(
    pytester: pytest.Pytester,
) -> None:
    result = run_example(pytester, "d1_good")
    seen = outcomes(result)
    for name in (
        "0002_note_trigger_and_view",
        "0003_note_search",
        "0004_load_notes",
    ):
        assert seen[item(name, "d1")] == "passed"
        assert seen[item(name, "applies")] == "passed"
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(
        ["*D1CheckWarning: *0004_load_notes.sql: 166,659 bytes; remote `migrations apply`*"]
    )


# --- destructive ---------------------------------------------------------------------------


def test_destructive_fails_without_a_declared_reason(pytester: pytest.Pytester) -> None:
    result = run_example(pytester, "destructive")
    seen = outcomes(result)
    assert seen[item("0002_drop_coupons", "destructive")] == "failed"
    assert seen[item("0003_drop_legacy_code", "destructive")] == "failed"
    assert seen[item("0004_rename_carts", "destructive")] == "failed"
    assert "line 2: DROP TABLE coupons" in text(result, item("0002_drop_coupons", "destructive"))
    assert "line 3: DROP COLUMN products.legacy_code" in text(
        result, item("0003_drop_legacy_code", "destructive")
    )
    message = text(result, item("0004_rename_carts", "destructive"))
    assert "line 2: RENAME TABLE carts TO baskets" in message
    assert "-- d1check: allow-destructive <reason>" in message


def test_destructive_passes_with_the_directive_and_exempts_rollbacks(
    pytester: pytest.Pytester,
) -> None:
    result = run_example(pytester, "destructive")
    seen = outcomes(result)
    assert seen[item("0005_drop_wishlists", "destructive")] == "passed"
    assert seen[item("0001_create_shop", "destructive")] == "passed"
    assert seen[item("0004_rename_carts", "rollback")] == "passed"


def test_destructive_passes_with_allow_destructive_in_the_config(
    pytester: pytest.Pytester,
) -> None:
    shutil.copytree(EXAMPLES / "destructive", pytester.path, dirs_exist_ok=True)
    pyproject = pytester.path / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + "allow_destructive = true\n")
    result = pytester.runpytest(*INNER, "-k", "destructive")
    result.assert_outcomes(passed=5)


def run_example_project_with(
    pytester: pytest.Pytester, rollback: str, text: str
) -> pytest.RunResult:
    """The README's example project with one rollback file replaced, run under pytest."""
    root = Path(__file__).resolve().parents[1]
    shutil.copytree(root / "migrations", pytester.path / "migrations")
    shutil.copytree(root / "rollbacks", pytester.path / "rollbacks")
    (pytester.path / "rollbacks" / rollback).write_text(text)
    return pytester.runpytest(*INNER)


def test_a_rollback_that_forgets_an_index_fails_with_the_fix(pytester: pytest.Pytester) -> None:
    result = run_example_project_with(
        pytester,
        "0003_rollback.sql",
        "ALTER TABLE security_controls DROP COLUMN reviewer_email;\n"
        "ALTER TABLE security_controls DROP COLUMN last_reviewed_at;\n",
    )
    assert outcomes(result)[item("0003_add_review_fields", "rollback")] == "failed"
    result.stdout.fnmatch_lines(
        [
            "*_ 0003_add_review_fields::rollback _*",
            "*the rollback fails on the migrated database:",
            "rollbacks/0003_rollback.sql:2: error in index idx_security_controls_reviewed*",
            "*fix: drop index idx_security_controls_reviewed first*",
        ]
    )
    assert "Traceback" not in result.stdout.str()


def test_a_rollback_that_leaves_a_trigger_names_the_drop_to_add(pytester: pytest.Pytester) -> None:
    result = run_example_project_with(
        pytester,
        "0004_rollback.sql",
        "DROP INDEX IF EXISTS idx_audit_log_record;\nDROP TABLE IF EXISTS audit_log;\n",
    )
    assert outcomes(result)[item("0004_create_audit_log", "rollback")] == "failed"
    result.stdout.fnmatch_lines(
        [
            "*_ 0004_create_audit_log::rollback _*",
            "d1check rollback: rollbacks/0004_rollback.sql:",
            "  trigger trg_security_controls_status: added",
            "  fix: add to the rollback: DROP TRIGGER IF EXISTS trg_security_controls_status",
        ]
    )


def test_a_rollback_that_forgets_a_column_names_the_drop_to_add(pytester: pytest.Pytester) -> None:
    result = run_example_project_with(
        pytester,
        "0003_rollback.sql",
        "DROP INDEX IF EXISTS idx_security_controls_reviewed;\n"
        "ALTER TABLE security_controls DROP COLUMN last_reviewed_at;\n",
    )
    assert outcomes(result)[item("0003_add_review_fields", "rollback")] == "failed"
    result.stdout.fnmatch_lines(
        [
            "d1check rollback: rollbacks/0003_rollback.sql:",
            "  table security_controls: column reviewer_email: added (TEXT)",
            "  fix: add to the rollback: ALTER TABLE security_controls DROP COLUMN reviewer_email",
        ]
    )


def test_a_rollback_that_drops_a_column_too_many_names_the_column_to_restore(
    pytester: pytest.Pytester,
) -> None:
    result = run_example_project_with(
        pytester,
        "0004_rollback.sql",
        "DROP TRIGGER IF EXISTS trg_security_controls_status;\n"
        "DROP INDEX IF EXISTS idx_audit_log_record;\nDROP TABLE IF EXISTS audit_log;\n"
        "ALTER TABLE security_controls DROP COLUMN reviewer_email;\n",
    )
    assert outcomes(result)[item("0004_create_audit_log", "rollback")] == "failed"
    result.stdout.fnmatch_lines(
        ["*fix: add to the rollback: ALTER TABLE security_controls ADD COLUMN reviewer_email TEXT*"]
    )
