"""benchmarks/realworld.py: what it reads from a history, how it parses d1check's run, and how it
decides agreement (no engine needed)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import realworld
from realworld import Failure, Run, Schema, Verdict

HERE = Path(__file__).parent


def _only(history: str) -> realworld.Database:
    (db,) = realworld.databases_of(HERE / history)
    return db


def test_migrations_are_named_and_ordered_as_wrangler_does() -> None:
    assert _only("merged_branches").migration_names() == [
        "0001_init.sql",
        "0002_order_status.sql",
        "0003_add_coupons.sql",
        "0003_order_notes.sql",
        "0004_orders_by_status.sql",
    ]
    assert _only("migrations_pattern").migration_names() == [
        "20250301090000_init/migration.sql",
        "20250315120000_post_slug/migration.sql",
    ]


def test_configs_are_found_in_subfolders_with_their_databases() -> None:
    app, audit = realworld.databases_of(HERE / "two_databases")
    assert (app.binding, app.tracking_table) == ("APP_DB", "d1_migrations")
    assert (audit.binding, audit.tracking_table) == ("AUDIT_DB", "audit_migrations")
    assert audit.migrations_dir == (HERE / "two_databases/migrations/audit").resolve()
    monorepo = _only("monorepo_app")
    assert monorepo.config == HERE / "monorepo_app/apps/api/wrangler.jsonc"
    assert monorepo.migrations_dir == (HERE / "monorepo_app/apps/api/migrations").resolve()
    subfolder = _only("config_subfolder")
    assert subfolder.migrations_dir == (HERE / "config_subfolder/migrations").resolve()


def test_a_real_run_is_parsed_into_counts_and_failing_items(tmp_path: Path) -> None:
    copy = tmp_path / "missing_parent"
    shutil.copytree(HERE / "missing_parent", copy)
    run = realworld.run_pytest(copy)
    assert run.exit_code == 1 and not run.usage_error
    assert run.counts["failed"] == len(run.failures) >= 2
    (applies,) = run.failing("applies")
    assert applies.item == "migrations/0002_default_project.sql::applies"
    assert applies.file == "0002_default_project.sql"
    assert applies.message.startswith(
        "d1check applies: migrations/0002_default_project.sql:2: FOREIGN KEY constraint failed"
    )


def _run(*items: str, exit_code: int = 1) -> Run:
    failures = tuple(Failure(item, "message") for item in items)
    return Run(exit_code, {"failed": len(items)}, failures, "", 0.0)


BUILDS = Verdict(3, None, "", "digest", 1.0)
FAILS_AT_2 = Verdict(1, "0002_b.sql", "no such table: t", None, 1.0)


@pytest.mark.parametrize(
    ("verdict", "run", "expected"),
    [
        (BUILDS, _run(exit_code=0), (True, True)),
        (BUILDS, _run("migrations/0001_a.sql::rollback"), (False, True)),
        (BUILDS, _run("migrations/0001_a.sql::d1"), (False, False)),
        (FAILS_AT_2, _run("migrations/0002_b.sql::applies"), (True, True)),
        (FAILS_AT_2, _run("migrations/0003_c.sql::applies"), (False, False)),
        (FAILS_AT_2, _run("migrations/0002_b.sql::rollback"), (False, False)),
    ],
    ids=["green", "policy-only", "fact", "same-file", "other-file", "no-applies"],
)
def test_agreement_compares_the_failing_migration(
    verdict: Verdict, run: Run, expected: tuple[bool, bool]
) -> None:
    assert realworld.agreement(verdict, run, 3) == expected


def test_a_usage_error_never_agrees() -> None:
    run = Run(4, {}, (), "ERROR: d1check: bad config", 0.0)
    assert realworld.agreement(BUILDS, run, 3) == (False, False)


def test_collecting_nothing_agrees_only_with_an_empty_history() -> None:
    nothing = Run(5, {}, (), "", 0.0)
    assert realworld.agreement(BUILDS, nothing, 3) == (False, False)
    assert realworld.agreement(BUILDS, nothing, 0) == (True, True)


ROWS = (
    ("table", "t", "t", "CREATE TABLE t (a)"),
    ("index", "t_a", "t", "CREATE INDEX t_a ON t (a)"),
)


def test_schemas_compare_rows_and_tracking_but_not_the_audit_table() -> None:
    workerd = Schema(ROWS, ("0001_a.sql",))
    audit = ("table", "_schema_audit", "_schema_audit", "CREATE TABLE _schema_audit (x)")
    assert realworld.schema_differences(workerd, Schema((*ROWS, audit), ("0001_a.sql",))) == []
    changed = Schema((ROWS[0], ("index", "t_a", "t", "CREATE INDEX t_a ON t (a DESC)")), ())
    assert realworld.schema_differences(workerd, changed) == [
        "different sql: index t_a",
        "tracking rows differ: workerd ('0001_a.sql',) local ()",
    ]
    assert realworld.schema_differences(workerd, Schema(ROWS[:1], ("0001_a.sql",))) == [
        "missing locally: index t_a"
    ]


def test_the_minimal_config_keeps_the_d1_entry(tmp_path: Path) -> None:
    history = tmp_path / "h"
    shutil.copytree(HERE / "two_databases", history)
    config = history / "wrangler.toml"
    config.write_text("node_compat = true\n" + config.read_text())
    audit = realworld.databases_of(history)[1]
    minimal = realworld._minimal_config(audit, config)
    (entry,) = realworld.load_wrangler_config(minimal).databases
    assert (entry.binding, entry.migrations_dir, entry.migrations_table) == (
        "AUDIT_DB",
        "migrations/audit",
        "audit_migrations",
    )
    assert "node_compat" not in minimal.read_text()
