"""Each per-migration check fails on a migration that deserves it, passes on one that does not."""

from __future__ import annotations

import shutil
from fnmatch import fnmatch
from pathlib import Path

import pytest

from d1check.checks import CheckResult, check_migration, lint_d1
from d1check.discovery import discover, read_sql_file
from d1check.engine import D1Database
from d1check.schema import Schema

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


@pytest.fixture
def recreated_run(pytester: pytest.Pytester) -> pytest.RunResult:
    return run_example(pytester, "rows_recreated")


def test_rows_passes_over_tables_the_migration_drops_and_recreates(
    recreated_run: pytest.RunResult,
) -> None:
    seen = outcomes(recreated_run)
    assert seen[item("0002_recreate_shelves", "applies")] == "passed"
    assert seen[item("0002_recreate_shelves", "rows")] == "passed"


def test_rows_names_only_the_drop_that_cascades_into_the_table_that_lost_rows(
    recreated_run: pytest.RunResult,
) -> None:
    node = item("0003_rebuild_authors", "rows")
    assert outcomes(recreated_run)[node] == "failed"
    message = text(recreated_run, node)
    assert "books: " in message
    assert "shelves" not in message
    assert "shelf_items" not in message
    assert "rack" not in message
    assert (
        "line 8: DROP TABLE authors fires the foreign-key actions of books (ON DELETE CASCADE)"
        in message
    )


CHAIN = (
    "CREATE TABLE a (id INTEGER PRIMARY KEY);\n"
    "CREATE TABLE b (id INTEGER PRIMARY KEY, a_id INTEGER REFERENCES a(id) ON DELETE CASCADE);\n"
    "CREATE TABLE c (id INTEGER PRIMARY KEY, b_id INTEGER REFERENCES b(id) ON DELETE CASCADE);\n"
    "CREATE TABLE d (id INTEGER PRIMARY KEY);\n"
    "INSERT INTO a VALUES (1);\nINSERT INTO b VALUES (1, 1);\nINSERT INTO c VALUES (1, 1);\n"
    "INSERT INTO d VALUES (1);\n"
)


def rows_result(tmp_path: Path, sql: str) -> CheckResult:
    """`::rows` of a migration holding `sql`, applied after `CHAIN` (a ← b ← c cascading)."""
    migrations = tmp_path / "migrations"
    migrations.mkdir()
    (migrations / "0001_chain.sql").write_text(CHAIN)
    (migrations / "0002_change.sql").write_text(sql)
    first, second = discover(migrations, tmp_path / "rollbacks").migrations
    with D1Database() as db:
        db.run(first.file.statements, source="0001_chain.sql")
        return check_migration(db, second)["rows"]


def test_rows_names_a_cascade_through_a_chain(tmp_path: Path) -> None:
    result = rows_result(tmp_path, "DELETE FROM d;\nDROP TABLE a;\n")
    assert result.failed
    assert (
        "cause: line 2: DROP TABLE a fires the foreign-key actions of "
        "b (ON DELETE CASCADE), c (ON DELETE CASCADE via b)"
    ) in result.message
    assert "line 1" not in result.message


def test_rows_does_not_name_a_chain_through_a_table_dropped_before(tmp_path: Path) -> None:
    result = rows_result(tmp_path, "DROP TABLE b;\nDROP TABLE a;\n")
    assert result.failed
    assert "c: 1 row before, 0 after" in result.message
    assert "cause: line 1: DROP TABLE b fires the foreign-key actions of c" in result.message
    assert "DROP TABLE a fires" not in result.message


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
    assert "0001_create_colours.sql:1: CREATE TABLE colours (id INTEGER PRIMARY KEY" in message
    assert "fails the second time: table colours already exists" in message
    assert "fix: write CREATE TABLE IF NOT EXISTS colours" in message


def test_declared_not_idempotent_skips(idempotent_run: pytest.RunResult) -> None:
    node = item("0002_create_sizes", "idempotent")
    assert outcomes(idempotent_run)[node] == "skipped"
    assert "declared not-idempotent" in text(idempotent_run, node)


def test_insert_that_duplicates_rows_on_a_second_run_fails_naming_it(
    idempotent_run: pytest.RunResult,
) -> None:
    node = item("0003_seed_colours", "idempotent")
    assert outcomes(idempotent_run)[node] == "failed"
    message = text(idempotent_run, node)
    assert "0003_seed_colours.sql:1: INSERT INTO colours (name) VALUES ('red')" in message
    assert "rows of colours: 6 after the first run, 8 after the second" in message
    assert "fix: write INSERT OR IGNORE (or add ON CONFLICT DO NOTHING)" in message


def test_guarded_inserts_are_idempotent(idempotent_run: pytest.RunResult) -> None:
    seen = outcomes(idempotent_run)
    assert seen[item("0004_seed_sizes", "idempotent")] == "passed"
    assert seen[item("0008_seed_labels", "idempotent")] == "passed"


def test_add_column_is_passed_over_and_the_file_passes(idempotent_run: pytest.RunResult) -> None:
    assert outcomes(idempotent_run)[item("0005_add_colour_hex", "idempotent")] == "passed"


def test_add_column_is_passed_over_and_the_index_after_it_still_fails(
    idempotent_run: pytest.RunResult,
) -> None:
    node = item("0006_add_colour_rank", "idempotent")
    assert outcomes(idempotent_run)[node] == "failed"
    message = text(idempotent_run, node)
    assert "0006_add_colour_rank.sql:2: CREATE INDEX idx_colours_rank" in message
    assert "fix: write CREATE INDEX IF NOT EXISTS idx_colours_rank" in message
    assert "0006_add_colour_rank.sql:1: ALTER TABLE colours ADD COLUMN rank INTEGER; " in message
    assert "duplicate column" not in message


def test_a_drizzle_file_fails_on_each_create_and_passes_over_its_add_column(
    idempotent_run: pytest.RunResult,
) -> None:
    node = item("0007_drizzle_labels", "idempotent")
    assert outcomes(idempotent_run)[node] == "failed"
    message = text(idempotent_run, node)
    assert "0007_drizzle_labels.sql:1: CREATE TABLE `labels`" in message
    assert "0007_drizzle_labels.sql:6: CREATE UNIQUE INDEX `labels_name_unique`" in message
    assert "fix: write CREATE UNIQUE INDEX IF NOT EXISTS labels_name_unique" in message
    assert "statement-breakpoint" not in message
    assert "(SQLite has no idempotent ADD COLUMN)" in message


def idempotent_result(tmp_path: Path, sql: str) -> CheckResult:
    """`::idempotent` of a migration holding `sql`, applied after one creating `colours`."""
    migrations = tmp_path / "migrations"
    migrations.mkdir()
    (migrations / "0001_colours.sql").write_text(
        "CREATE TABLE colours (id INTEGER PRIMARY KEY, name TEXT);\n"
        "INSERT INTO colours (name) VALUES ('red');\n"
    )
    (migrations / "0002_change.sql").write_text(sql)
    first, second = discover(migrations, tmp_path / "rollbacks").migrations
    with D1Database() as db:
        db.run(first.file.statements, source="0001_colours.sql")
        return check_migration(db, second)["idempotent"]


def test_a_table_rebuild_that_renames_its_copy_runs_again_whole(tmp_path: Path) -> None:
    result = idempotent_result(
        tmp_path,
        "CREATE TABLE IF NOT EXISTS colours__new (id INTEGER PRIMARY KEY, name TEXT NOT NULL"
        " DEFAULT '');\n"
        "INSERT INTO colours__new (id, name) SELECT id, coalesce(name, '') FROM colours;\n"
        "DROP TABLE colours;\n"
        "ALTER TABLE colours__new RENAME TO colours;\n",
    )
    assert result.outcome == "passed", result.message
    assert not result.note  # the RENAME ran again and succeeded: nothing was passed over


def test_a_passed_over_statement_leaves_a_note_on_the_passing_result(tmp_path: Path) -> None:
    result = idempotent_result(
        tmp_path,
        "ALTER TABLE colours ADD COLUMN hex TEXT;\n"
        "CREATE INDEX IF NOT EXISTS idx_colours_hex ON colours(hex);\n"
        "ALTER TABLE colours RENAME COLUMN name TO label;\n",
    )
    assert result.outcome == "passed"
    assert "safe to apply again only under atomic tracking" in result.message
    assert "0002_change.sql:1: ALTER TABLE colours ADD COLUMN hex TEXT;" in result.message
    assert "(SQLite has no idempotent RENAME COLUMN)" in result.message


def test_a_file_without_passed_over_statements_passes_without_a_note(tmp_path: Path) -> None:
    result = idempotent_result(
        tmp_path, "INSERT INTO colours (id, name) VALUES (7, 'teal') ON CONFLICT DO NOTHING;\n"
    )
    assert (result.outcome, result.message) == ("passed", "")


def test_an_update_that_compounds_fails_naming_it(tmp_path: Path) -> None:
    result = idempotent_result(
        tmp_path,
        "ALTER TABLE colours ADD COLUMN score INTEGER NOT NULL DEFAULT 0;\n"
        "UPDATE colours SET score = score + 1;\n",
    )
    assert result.outcome == "failed"
    assert "0002_change.sql:2: UPDATE colours SET score = score + 1;" in result.message
    assert "changes rows the second time" in result.message


def test_each_statement_that_fails_again_is_named_and_the_next_still_runs(tmp_path: Path) -> None:
    result = idempotent_result(
        tmp_path,
        "INSERT INTO colours (id, name) VALUES (10, 'teal');\n"
        "CREATE INDEX idx_colours_name ON colours(name);\n"
        "CREATE TABLE IF NOT EXISTS shades (id INTEGER PRIMARY KEY);\n",
    )
    assert result.outcome == "failed"
    message = result.message
    assert "0002_change.sql:1: INSERT INTO colours (id, name) VALUES (10, 'teal');" in message
    assert "UNIQUE constraint failed: colours.id" in message
    assert "fix: write INSERT OR IGNORE" in message
    assert "0002_change.sql:2: CREATE INDEX idx_colours_name" in message
    assert "fix: write CREATE INDEX IF NOT EXISTS idx_colours_name" in message
    assert "0002_change.sql:3:" not in message


def test_a_drop_without_if_exists_fails_naming_its_idempotent_form(tmp_path: Path) -> None:
    result = idempotent_result(tmp_path, "DROP TABLE colours;\n")
    assert result.outcome == "failed"
    assert "0002_change.sql:1: DROP TABLE colours;" in result.message
    assert "fails the second time: no such table: colours" in result.message
    assert "fix: write DROP TABLE IF EXISTS colours" in result.message


def test_a_drop_and_create_again_in_one_file_is_idempotent(tmp_path: Path) -> None:
    result = idempotent_result(
        tmp_path,
        "CREATE INDEX idx_colours_name ON colours(name);\nDROP INDEX idx_colours_name;\n",
    )
    assert (result.outcome, result.message) == ("passed", "")


def test_a_schema_difference_is_named_under_the_statement_that_made_it(tmp_path: Path) -> None:
    result = idempotent_result(
        tmp_path,
        "CREATE TABLE IF NOT EXISTS shades_new (id INTEGER PRIMARY KEY);\n"
        "ALTER TABLE shades_new RENAME TO shades;\n"
        "DROP INDEX IF EXISTS idx_colours_name;\n"
        "CREATE INDEX IF NOT EXISTS idx_colours_name ON colours(name);\n",
    )
    assert result.outcome == "failed"
    message = result.message
    assert "0002_change.sql:1: CREATE TABLE IF NOT EXISTS shades_new" in message
    assert "table shades_new: added" in message
    assert "0002_change.sql:4:" not in message


def test_an_insert_or_replace_that_changes_rows_again_is_named_with_or_ignore(
    tmp_path: Path,
) -> None:
    result = idempotent_result(
        tmp_path,
        "CREATE TABLE IF NOT EXISTS counters (id INTEGER PRIMARY KEY, name TEXT UNIQUE);\n"
        "INSERT OR REPLACE INTO counters (name) VALUES ('visits');\n",
    )
    assert result.outcome == "failed"
    message = result.message
    assert "0002_change.sql:2: INSERT OR REPLACE INTO counters" in message
    assert "rows of counters: 1 after the first run, 1 after the second (values differ)" in message
    assert "use INSERT OR IGNORE or ON CONFLICT DO NOTHING" in message


def test_a_second_run_that_leaves_foreign_key_violations_fails(tmp_path: Path) -> None:
    result = idempotent_result(
        tmp_path,
        "CREATE TABLE IF NOT EXISTS tints (id INTEGER PRIMARY KEY, "
        "colour_id INTEGER REFERENCES colours(id));\n"
        "INSERT OR IGNORE INTO colours (id, name) VALUES (9, 'plum');\n"
        "INSERT OR IGNORE INTO tints (id, colour_id) VALUES (1, 9);\n"
        "PRAGMA defer_foreign_keys = true;\n"
        "DELETE FROM colours WHERE id = 9;\n"
        "INSERT INTO colours (id, name) VALUES (9, 'plum'), (50, 'navy');\n",
    )
    assert result.outcome == "failed"
    assert "the second run leaves rows that violate foreign keys" in result.message


# --- d1 ------------------------------------------------------------------------------------


@pytest.fixture
def lints_run(pytester: pytest.Pytester) -> pytest.RunResult:
    return run_example(pytester, "d1_lints")


def test_d1_warns_on_pragma_foreign_keys_off_where_no_drop_cascades(
    lints_run: pytest.RunResult,
) -> None:
    node = item("0002_foreign_keys_off", "d1")
    assert outcomes(lints_run)[node] == "passed"
    lints_run.stdout.fnmatch_lines(
        [
            "*D1CheckWarning: *0002_foreign_keys_off.sql:1: PRAGMA foreign_keys = OFF does "
            "nothing on D1 (foreign keys are always enforced)*"
        ]
    )
    assert "0002_foreign_keys_off.sql:3" not in lints_run.stdout.str()
    assert "signals a table rebuild" not in lints_run.stdout.str()


def test_d1_warns_on_a_rebuild_under_foreign_keys_off_of_a_table_without_children(
    lints_run: pytest.RunResult,
) -> None:
    assert outcomes(lints_run)[item("0008_rebuild_teams", "d1")] == "passed"
    lints_run.stdout.fnmatch_lines(
        ["*D1CheckWarning: *0008_rebuild_teams.sql:2: PRAGMA foreign_keys = OFF does nothing*"]
    )


def test_d1_fails_on_foreign_keys_off_in_a_rebuild_whose_drop_cascades(
    lints_run: pytest.RunResult,
) -> None:
    node = item("0007_rebuild_people", "d1")
    assert outcomes(lints_run)[node] == "failed"
    message = text(lints_run, node)
    assert (
        "0007_rebuild_people.sql:2: PRAGMA foreign_keys = OFF does nothing on D1: "
        "DROP TABLE people at line 5 still deletes the rows of badges (ON DELETE CASCADE)"
    ) in message
    assert "0007_rebuild_people.sql:7" not in message


def test_d1_passes_defer_foreign_keys(lints_run: pytest.RunResult) -> None:
    assert outcomes(lints_run)[item("0009_defer_foreign_keys", "d1")] == "passed"
    assert "0009_defer_foreign_keys.sql:" not in lints_run.stdout.str()


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
        ("d1_long_statement", "0002_load_items", "*as 134,272 bytes*; D1 allows 100,000*"),
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


def several_transactions_finding(tmp_path: Path, sql: str) -> str:
    """The `several transactions` finding of `lint_d1` on a file holding `sql` ("" if none)."""
    path = tmp_path / "0001_wrapped.sql"
    path.write_text(sql)
    findings = lint_d1(read_sql_file(path), Schema())
    return "\n".join(f for f in findings if "several transactions" in f)


@pytest.mark.parametrize(
    ("sql", "line", "where"),
    [
        ("-- no BEGIN TRANSACTION needed\nCREATE TABLE a (id INTEGER);\n", ":1: ", "in a comment"),
        (
            "CREATE TABLE a (b TEXT);\nINSERT INTO a VALUES ('BEGIN TRANSACTION');\n",
            ":2: ",
            "in a string",
        ),
        (
            "BEGIN TRANSACTION ;\nCREATE TABLE a (id INTEGER);\nCOMMIT;\n",
            ":1: ",
            "not written exactly `BEGIN TRANSACTION;`",
        ),
        (
            "BEGIN TRANSACTION;\nCREATE TABLE a (id INTEGER);\nCOMMIT;\n"
            "BEGIN TRANSACTION;\nCREATE TABLE b (id INTEGER);\nCOMMIT;\n",
            ":4: ",
            "a second `BEGIN TRANSACTION;`",
        ),
    ],
)
def test_d1_says_why_wrangler_refuses_several_transactions(
    tmp_path: Path, sql: str, line: str, where: str
) -> None:
    finding = several_transactions_finding(tmp_path, sql)
    assert f"0001_wrapped.sql{line}" in finding
    assert where in finding
    assert "more than once" not in finding


@pytest.mark.parametrize(
    "sql",
    [
        "BEGIN TRANSACTION;\nCREATE TABLE a (id INTEGER);\nCOMMIT;\n",
        "-- exported without BEGIN TRANSACTION; D1 wraps the file\nCREATE TABLE a (id INTEGER);\n",
        "begin transaction;\nCREATE TABLE a (id INTEGER);\ncommit;\n",
        "BEGIN;\nCREATE TABLE a (id INTEGER);\nCOMMIT;\n",
    ],
)
def test_d1_finds_no_several_transactions_where_wrangler_trims_or_ignores_the_text(
    tmp_path: Path, sql: str
) -> None:
    assert several_transactions_finding(tmp_path, sql) == ""


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
