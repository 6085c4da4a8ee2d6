"""Project layouts as users have them: several databases in one wrangler config, a wrangler config
in a subfolder, nested (ORM) migrations, a byte-order mark, two config files side by side."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpcore  # noqa: F401  (imported once: pytester's in-process runs restore sys.modules)
import pytest
from click.testing import CliRunner

import d1check.gate
import d1check.plugin  # noqa: F401  (likewise)
from d1check.checks import CHECK_NAMES
from d1check.cli import cli
from d1check.discovery import discover
from d1check.testing import D1Emulator

EXAMPLES = Path(__file__).parent / "examples"
INNER = ("-p", "no:cacheprovider", "-p", "no:hypothesispytest")


def use_example(pytester: pytest.Pytester, name: str) -> Path:
    shutil.copytree(EXAMPLES / name, pytester.path, dirs_exist_ok=True)
    return pytester.path


def nodeids(result: pytest.RunResult) -> list[str]:
    reports = result.reprec.getreports("pytest_runtest_logreport")  # type: ignore[attr-defined]
    return [r.nodeid for r in reports if r.when == "call"]


def items(directory: str, *names: str) -> list[str]:
    ids = [f"{directory}::sequence", f"{directory}::checksums"]
    return ids + [f"{directory}/{n}::{check}" for n in names for check in CHECK_NAMES]


# -- several databases in one wrangler config ---------------------------------------------------


def test_two_databases_are_two_families_each_collected(pytester: pytest.Pytester) -> None:
    use_example(pytester, "two_databases")
    result = pytester.runpytest(*INNER, "--collect-only", "-q")
    assert result.ret == pytest.ExitCode.OK
    expected = items("analytics/migrations", "0001_create_events.sql")
    expected += items("migrations", "0001_create_users.sql", "0002_create_sessions.sql")
    result.stdout.fnmatch_lines(expected, consecutive=True)
    result.stdout.no_fnmatch_line("*analytics/migrations/0001_create_users*")


def test_two_databases_each_checked_with_its_own_rollbacks(pytester: pytest.Pytester) -> None:
    use_example(pytester, "two_databases")
    result = pytester.runpytest(*INNER, "-rs")
    result.stdout.fnmatch_lines(
        [
            "d1check: family db: migrations (tracking table d1_migrations)",
            "d1check: family analytics: analytics/migrations (tracking table analytics_migrations)",
        ]
    )
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    assert "analytics/migrations/0001_create_events.sql::rollback" in nodeids(result)


def test_a_database_claimed_by_two_families_is_a_usage_error(pytester: pytest.Pytester) -> None:
    project = use_example(pytester, "two_databases")
    wrangler = project / "wrangler.toml"
    wrangler.write_text(wrangler.read_text().replace('"ANALYTICS_ID"', '"APP_ID"'))
    result = pytester.runpytest(*INNER)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*database 'app' is both binding 'DB'*ambiguous*"])
    result.stderr.no_fnmatch_line("*Traceback*")
    status = CliRunner().invoke(cli, ["status", "--root", str(project)])
    assert status.exit_code == 2
    assert "database 'app' is both binding 'DB'" in status.output


# -- a wrangler config in a subfolder -----------------------------------------------------------


def test_a_config_in_a_subfolder_is_found_and_checked(pytester: pytest.Pytester) -> None:
    use_example(pytester, "subfolder_project")
    result = pytester.runpytest(*INNER)
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    assert "services/api/migrations/0001_create_orders.sql::rollback" in nodeids(result)
    assert not [i for i in nodeids(result) if "node_modules" in i]
    result.stdout.fnmatch_lines(
        [
            "d1check: wrangler config services/api/wrangler.toml (found in a subfolder*",
            "d1check: family default: services/api/migrations (tracking table d1_migrations)",
        ]
    )


def test_no_search_below_a_root_with_its_own_migrations(pytester: pytest.Pytester) -> None:
    project = use_example(pytester, "subfolder_project")
    (project / "migrations").mkdir()
    result = pytester.runpytest(*INNER)
    assert nodeids(result) == ["migrations::sequence", "migrations::checksums"]


def test_a_migrations_folder_of_subfolders_is_a_usage_error(pytester: pytest.Pytester) -> None:
    project = use_example(pytester, "nested_pattern")
    wrangler = project / "wrangler.toml"
    wrangler.write_text(wrangler.read_text().replace("migrations_pattern", "# migrations_pattern"))
    result = pytester.runpytest(*INNER)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "*migrations: no *.sql migrations in the folder itself, but its subfolders hold "
            "migrations/0000_init/migration.sql, *set migrations_pattern = "
            '"migrations/*/migration.sql"*'
        ]
    )


# -- wrangler's migrations_pattern --------------------------------------------------------------


def test_nested_migrations_are_collected_as_wrangler_names_them(pytester: pytest.Pytester) -> None:
    use_example(pytester, "nested_pattern")
    result = pytester.runpytest(*INNER, "-rs")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    expected = items("migrations", "0000_init/migration.sql", "0001_add_tags/migration.sql")
    assert nodeids(result) == expected
    result.stdout.fnmatch_lines(["d1check: family default: migrations (migrations_pattern */*"])


def test_a_nested_migration_without_its_rollback_fails(pytester: pytest.Pytester) -> None:
    project = use_example(pytester, "nested_pattern")
    (project / "rollbacks" / "0001_rollback.sql").unlink()
    result = pytester.runpytest(*INNER)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "*_ 0001_add_tags/migration::rollback _*",
            "d1check rollback: migrations/0001_add_tags/migration.sql: no rollback file",
            "fix: write rollbacks/0001_rollback.sql, *",
        ]
    )


# -- reading wrangler configs as wrangler does --------------------------------------------------


def test_a_wrangler_toml_with_a_byte_order_mark_is_read(pytester: pytest.Pytester) -> None:
    project = use_example(pytester, "wrangler_project")
    wrangler = project / "wrangler.toml"
    wrangler.write_bytes(b"\xef\xbb\xbf" + wrangler.read_bytes())
    result = pytester.runpytest(*INNER)
    assert result.ret == pytest.ExitCode.OK, result.stderr.str()
    assert "db/migrations/0001_create_orders.sql::applies" in nodeids(result)


def test_wrangler_jsonc_wins_over_toml_and_the_header_says_so(pytester: pytest.Pytester) -> None:
    project = use_example(pytester, "wrangler_project")
    (project / "wrangler.jsonc").write_text(
        '{\n  // read first by wrangler\n  "d1_databases": [\n'
        '    {"binding": "DB", "database_name": "shop", "migrations_dir": "sql"},\n  ],\n}\n'
    )
    shutil.copytree(project / "db/migrations", project / "sql")
    (project / "sql" / "0001_create_orders.sql").rename(project / "sql" / "0001_orders.sql")
    result = pytester.runpytest(*INNER)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(
        ["d1check: wrangler config wrangler.jsonc; wrangler.toml ignored: wrangler reads *"]
    )
    applied = [i for i in nodeids(result) if i.endswith("::applies")]
    assert applied == ["sql/0001_orders.sql::applies", "sql/0002_create_order_lines.sql::applies"]


# -- applying: each database receives only its own family's migrations -------------------------


def test_production_applies_each_family_only_to_its_own_database(
    pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = use_example(pytester, "two_databases")
    with D1Emulator(tmp_path / "emulator", token="tok-layouts") as emu:
        app, analytics = emu.create_database("app"), emu.create_database("analytics")
        wrangler = project / "wrangler.toml"
        text = wrangler.read_text().replace("APP_ID", app).replace("ANALYTICS_ID", analytics)
        wrangler.write_text(text)
        monkeypatch.setenv("D1CHECK_API_BASE", emu.url)
        monkeypatch.setenv("CLOUDFLARE_API_TOKEN", emu.token)
        monkeypatch.setenv("CLOUDFLARE_ACCOUNT_ID", emu.account_id)
        dry = pytester.runpytest(*INNER, "--api-budget=none", "--apply=production", "--dry-run")
        dry.stdout.fnmatch_lines(
            ["d1check: production → family db: app; family analytics: analytics"]
        )
        assert tables(emu, app) == tables(emu, analytics) == []
        result = pytester.runpytest(*INNER, "--api-budget=none", "--apply=production", "--yes")
        assert result.ret == pytest.ExitCode.OK, result.stdout.str()
        result.stdout.fnmatch_lines(
            [
                "d1check: production → family db: app; family analytics: analytics",
                "*app: applied 0002_create_sessions",
                "*analytics: applied 0001_create_events",
            ]
        )
        assert tables(emu, app) == ["d1_migrations", "sessions", "users"]
        assert tables(emu, analytics) == ["analytics_migrations", "events"]
        assert applied(emu, app, "d1_migrations") == [
            "0001_create_users.sql",
            "0002_create_sessions.sql",
        ]
        assert applied(emu, analytics, "analytics_migrations") == ["0001_create_events.sql"]


def tables(emu: D1Emulator, db_id: str) -> list[str]:
    rows = emu.sql(db_id, "SELECT name FROM sqlite_schema WHERE type = 'table'")
    names = (str(r["name"]) for r in rows)
    return sorted(n for n in names if not n.startswith(("sqlite_", "_cf", "_d1check", "_schema")))


def applied(emu: D1Emulator, db_id: str, table: str) -> list[str]:
    return [str(r["name"]) for r in emu.sql(db_id, f'SELECT name FROM "{table}" ORDER BY id')]


def test_status_shows_what_each_name_resolves_to_per_family(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = use_example(pytester, "two_databases")
    monkeypatch.delenv("CLOUDFLARE_API_TOKEN", raising=False)
    result = CliRunner().invoke(cli, ["status", "--root", str(project)])
    assert result.exit_code == 0, result.output
    assert "production → family db: app; family analytics: analytics" in result.output
    assert "staging: not configured" in result.output
    rows = [line.split()[:3] for line in result.output.splitlines() if "local:" in line]
    assert rows == [["db", "local", "local:db"], ["analytics", "local", "local:analytics"]]


def test_nested_order_is_wranglers(tmp_path: Path) -> None:
    """The order the real wrangler records (tests/fidelity/test_layouts_wrangler.py checks it)."""
    expected = [
        "0000_init/migration.sql",
        "0001_add_tags/migration.sql",
        "2_mid/migration.sql",
        "0010_wide/migration.sql",
        "10_later/migration.sql",
        "notes/migration.sql",
    ]
    extra = ["0001_add_tags/extra.sql", ".cache/migration.sql", "deep/x/migration.sql"]
    for name in [*reversed(expected), *extra]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("SELECT 1;\n")
    found = discover(tmp_path, tmp_path / "none", "*/migration.sql").migrations
    assert [m.file_name for m in found] == expected
    assert [(m.name, m.version, m.number) for m in found[:3]] == [
        ("0000_init/migration", "0000", 0),
        ("0001_add_tags/migration", "0001", 1),
        ("2_mid/migration", "2", 2),
    ]
    deep = discover(tmp_path, tmp_path / "none", "**/migration.sql").migrations
    assert "deep/x/migration.sql" in [m.file_name for m in deep]


# -- the layout of the migration guide our users follow ------------------------------------------


def test_the_guide_layout_runs_as_written(pytester: pytest.Pytester) -> None:
    use_example(pytester, "guide_layout")
    result = pytester.runpytest(*INNER)
    assert result.ret == pytest.ExitCode.OK, result.stdout.str() + result.stderr.str()
    assert "migrations/0003_add_review_fields.sql::rollback" in nodeids(result)


def test_the_guide_layout_without_registry_refuses_production(pytester: pytest.Pytester) -> None:
    project = use_example(pytester, "guide_layout")
    (project / "config" / "clients.json").unlink()
    result = pytester.runpytest(*INNER, "--apply=production", "--yes")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*--apply=production:*which databases are production is not declared*"]
    )
