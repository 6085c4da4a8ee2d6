"""The `d1check` command in-process (click's CliRunner); remote commands against the emulator."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from d1check import cli as cli_module
from d1check.cli import cli, output
from d1check.config import load_config
from d1check.discovery import discover
from d1check.engine import D1Database
from d1check.export import read_export
from d1check.gate import Expected
from d1check.local import local_database_path
from d1check.project import check_checksums
from d1check.session import GateOptions
from d1check.testing import D1Emulator

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = '[tool.d1check]\nmigrations_dir = "migrations"\nrollbacks_dir = "rollbacks"\n'
WRANGLER = """\
name = "app"
account_id = "{account}"

[[d1_databases]]
binding = "DB"
database_name = "app-prod"
database_id = "{prod}"

[env.staging]
[[env.staging.d1_databases]]
binding = "DB"
database_name = "app-staging"
database_id = "{staging}"
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the repository's example migrations and rollbacks."""
    root = tmp_path / "project"
    root.mkdir()
    shutil.copytree(REPO / "migrations", root / "migrations")
    shutil.copytree(REPO / "rollbacks", root / "rollbacks")
    (root / "pyproject.toml").write_text(PYPROJECT, encoding="utf-8")
    return root


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[D1Emulator]:
    with D1Emulator(tmp_path / "emulator") as running:
        yield running


@pytest.fixture
def remote_project(project: Path, emulator: D1Emulator) -> Path:
    """The project with a wrangler config whose databases live in the emulator (no env yet)."""
    prod, staging = emulator.create_database("app-prod"), emulator.create_database("app-staging")
    text = WRANGLER.format(account=emulator.account_id, prod=prod, staging=staging)
    (project / "wrangler.toml").write_text(text, encoding="utf-8")
    return project


@pytest.fixture
def credentials(monkeypatch: pytest.MonkeyPatch, emulator: D1Emulator) -> None:
    monkeypatch.setenv("D1CHECK_API_BASE", emulator.url)
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", emulator.token)
    monkeypatch.setenv("CLOUDFLARE_ACCOUNT_ID", emulator.account_id)


def run(command: str, root: Path, *args: str, stdin: str | None = None) -> Result:
    result = CliRunner().invoke(cli, [command, "--root", str(root), *args], input=stdin)
    assert "Traceback" not in result.output, result.output
    return result


def apply_remote(root: Path, target: str) -> None:
    from d1check.gate import apply_remote as gate_apply

    lines: list[str] = []
    options = GateOptions(yes=True, api_budget="none")
    if target == "production":
        apply_remote(root, "staging")
    assert gate_apply(load_config(root), target=target, options=options, write=lines.append), lines


def prod_id(emulator: D1Emulator) -> str:
    return emulator.client().database_id("app-prod")


# --- status --------------------------------------------------------------------------------


def test_status_local_only_project(project: Path) -> None:
    result = run("status", project)
    assert result.exit_code == 0, result.output
    assert "local:default" in result.output
    assert "(no database)" in result.output
    assert "staging: not configured" in result.output


def test_status_without_credentials_says_so(remote_project: Path) -> None:
    result = run("status", remote_project)
    assert result.exit_code == 0, result.output
    assert "staging → family default: app-staging" in result.output
    assert "production → family default: app-prod" in result.output
    rows = [line for line in result.output.splitlines() if line.startswith("default ")]
    assert len(rows) == 3
    assert all("no credentials" in row for row in rows[1:])
    assert "CLOUDFLARE_API_TOKEN is not set" in result.output


def test_status_with_credentials_reads_remote(
    remote_project: Path, credentials: None, emulator: D1Emulator
) -> None:
    apply_remote(remote_project, "staging")
    result = run("status", remote_project)
    assert result.exit_code == 0, result.output
    staging = next(
        line for line in result.output.splitlines() if line.startswith("default  staging")
    )
    assert "0005_create_control_overview" in staging and " none " in staging
    prod = next(
        line for line in result.output.splitlines() if line.startswith("default  production")
    )
    assert "(empty)" in prod and " 5 " in prod

    emulator.sql(emulator.client().database_id("app-staging"), "CREATE TABLE made_by_hand (x)")
    drifted = run("status", remote_project)
    assert "app-staging: drift:" in drifted.output
    assert "made_by_hand" in drifted.output


def test_status_fleet_groups_databases_by_version_and_schema(
    remote_project: Path, credentials: None, emulator: D1Emulator
) -> None:
    apply_remote(remote_project, "staging")
    clean = run("status", remote_project, "--fleet", "staging")
    assert clean.exit_code == 0, clean.output
    assert "fleet staging: 1 database(s)" in clean.output
    assert "as expected: app-staging" in clean.output

    emulator.sql(emulator.client().database_id("app-staging"), "CREATE TABLE made_by_hand (x)")
    drifted = run("status", remote_project, "--fleet", "staging")
    assert "differs from the expected schema: app-staging" in drifted.output
    assert "table made_by_hand: added" in drifted.output


def test_status_unknown_family_is_usage_error(project: Path) -> None:
    result = run("status", project, "--family", "billing")
    assert result.exit_code == 2
    assert "no family 'billing'" in result.output


def test_bad_config_is_one_paragraph(project: Path) -> None:
    (project / "pyproject.toml").write_text('[tool.d1check]\nmigration_dir = "m"\n')
    result = run("status", project)
    assert result.exit_code == 2
    assert "unknown key 'migration_dir' (did you mean 'migrations_dir'?)" in result.output


# --- new -----------------------------------------------------------------------------------


def test_new_numbers_after_the_last_file(project: Path) -> None:
    result = run("new", project, "Add tags to controls")
    assert result.exit_code == 0, result.output
    assert "created migrations/0006_add_tags_to_controls.sql" in result.output
    assert "created rollbacks/0006_rollback.sql" in result.output
    text = (project / "migrations/0006_add_tags_to_controls.sql").read_text()
    assert text.startswith("-- Migration: 0006_add_tags_to_controls\n-- Add tags to controls\n")
    assert "rollbacks/0006_rollback.sql" in text
    assert run("new", project, "second").output.startswith("created migrations/0007_second.sql")


def test_new_follows_the_width_of_existing_files(tmp_path: Path) -> None:
    (tmp_path / "migrations").mkdir()
    (tmp_path / "migrations/01_a.sql").write_text("CREATE TABLE a (x);\n")
    assert "created migrations/02_b.sql" in run("new", tmp_path, "b").output
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "created migrations/0001_first.sql" in run("new", empty, "first").output


def test_new_refuses_to_overwrite_a_rollback(project: Path) -> None:
    (project / "rollbacks/0006_rollback.sql").write_text("-- mine\n")
    result = run("new", project, "tags")
    assert result.exit_code == 2
    assert "0006_rollback.sql exists already" in result.output
    assert not (project / "migrations/0006_tags.sql").exists()


# --- diff ----------------------------------------------------------------------------------


def test_diff_versions_differ_and_equal(project: Path) -> None:
    different = run("diff", project, "0002", "0003")
    assert different.exit_code == 1
    assert "table security_controls: column last_reviewed_at: added" in different.output
    same = run("diff", project, "0003", "0003_add_review_fields")
    assert same.exit_code == 0
    assert "no structural differences" in same.output


def test_diff_files_local_and_remote(
    remote_project: Path, credentials: None, emulator: D1Emulator
) -> None:
    assert run("reset", remote_project, "--yes").exit_code == 0
    local = local_database_path(
        load_config(remote_project), load_config(remote_project).default_family
    )
    assert run("diff", remote_project, str(local), "0005").exit_code == 0
    assert run("diff", remote_project, "local", "0004").exit_code == 1
    apply_remote(remote_project, "staging")
    assert run("diff", remote_project, "staging", "0005").exit_code == 0
    assert run("pull", remote_project, "staging").exit_code == 0
    export = str(remote_project / "schema/staging.sql")
    assert run("diff", remote_project, export, "local").exit_code == 0


def test_diff_unknown_source_is_usage_error(project: Path) -> None:
    result = run("diff", project, "0003", "prod")
    assert result.exit_code == 2
    assert "'prod' is neither a file, a version" in result.output
    missing = run("diff", project, "0003", "0042")
    assert missing.exit_code == 2
    assert "no migration matches '0042'" in missing.output


# --- reset, rollback -----------------------------------------------------------------------


def _local(root: Path) -> D1Database:
    config = load_config(root)
    return D1Database(local_database_path(config, config.default_family))


def test_reset_rebuilds_and_seeds(project: Path) -> None:
    (project / "seed.sql").write_text("INSERT INTO organizations (name) VALUES ('Acme');\n")
    with (project / "pyproject.toml").open("a") as fh:
        fh.write('seed_files = ["seed.sql"]\n')
    assert run("reset", project, "--yes").exit_code == 0
    db = _local(project)
    db.execute("INSERT INTO organizations (name) VALUES ('Stale')")
    db.close()
    result = run("reset", project, "--yes")
    assert result.exit_code == 0, result.output
    assert "applied 5 migration(s)" in result.output and "seeded from seed.sql" in result.output
    db = _local(project)
    assert db.execute("SELECT name FROM organizations") == [("Acme",)]
    assert len(db.execute("SELECT name FROM d1_migrations")) == 5
    db.close()


def test_reset_needs_confirmation_without_a_terminal(project: Path) -> None:
    result = run("reset", project)
    assert result.exit_code == 2
    assert "pass --yes" in result.output


def test_rollback_local(project: Path) -> None:
    assert run("reset", project, "--yes").exit_code == 0
    wrong = run("rollback", project, "0004", "local")
    assert wrong.exit_code == 2
    assert "0004_create_audit_log is not the last applied migration" in wrong.output
    result = run("rollback", project, "0005", "local")
    assert result.exit_code == 0, result.output
    assert "now at 0004_create_audit_log" in result.output
    db = _local(project)
    assert db.execute("SELECT name FROM sqlite_schema WHERE name = 'control_overview'") == []
    assert len(db.execute("SELECT name FROM d1_migrations")) == 4
    audit = db.execute("SELECT migration_name, action FROM _schema_audit ORDER BY id DESC")
    assert audit[0] == ("0005_create_control_overview", "rollback")
    db.close()
    assert run("diff", project, "local", "0004").exit_code == 0


def test_rollback_without_rollback_file(project: Path) -> None:
    assert run("reset", project, "--yes").exit_code == 0
    (project / "rollbacks/0005_rollback.sql").unlink()
    result = run("rollback", project, "0005", "local")
    assert result.exit_code == 2
    assert "no rollback file" in result.output


def test_rollback_remote_needs_confirmation(
    remote_project: Path, credentials: None, emulator: D1Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    apply_remote(remote_project, "production")
    refused = run("rollback", remote_project, "0005", "production")
    assert refused.exit_code == 2 and "pass --yes" in refused.output
    monkeypatch.setattr(cli_module, "is_terminal", lambda: True)
    typo = run("rollback", remote_project, "0005", "production", stdin="rollback\n")
    assert typo.exit_code == 1 and "not confirmed" in typo.output
    result = run("rollback", remote_project, "0005", "production", stdin="ROLLBACK\n")
    assert result.exit_code == 0, result.output
    assert "app-prod: rolled back 0005_create_control_overview" in result.output
    db = prod_id(emulator)
    assert len(emulator.sql(db, "SELECT name FROM d1_migrations")) == 4
    audit = emulator.sql(db, "SELECT action FROM _schema_audit ORDER BY id DESC LIMIT 1")
    assert audit == [{"action": "rollback"}]
    hint = result.output.splitlines()[-1].split("d1check ", 1)[1].split()
    assert hint[:2] == ["restore", "app-prod"]
    undo = run(hint[0], remote_project, *hint[1:], "--yes")
    assert undo.exit_code == 0, undo.output
    assert len(emulator.sql(db, "SELECT name FROM d1_migrations")) == 5


# --- pull, restore -------------------------------------------------------------------------


def test_pull_schema_and_data(
    remote_project: Path, credentials: None, emulator: D1Emulator
) -> None:
    apply_remote(remote_project, "production")
    emulator.sql(prod_id(emulator), "INSERT INTO organizations (name) VALUES ('Remote Co')")
    result = run("pull", remote_project, "production", "--data", "--yes")
    assert result.exit_code == 0, result.output
    assert "wrote schema/production.sql" in result.output
    export = read_export(remote_project / "schema/production.sql")
    config = load_config(remote_project)
    family = config.default_family
    expected = Expected(discover(family.migrations_dir, family.rollbacks_dir), "d1_migrations")
    assert export.schema == expected.at(5)
    assert export.applied is not None and len(export.applied) == 5
    db = _local(remote_project)
    assert db.execute("SELECT name FROM organizations") == [("Remote Co",)]
    db.close()


def test_pull_without_credentials_is_usage_error(remote_project: Path) -> None:
    result = run("pull", remote_project, "production")
    assert result.exit_code == 2
    assert "CLOUDFLARE_ACCOUNT_ID is not set" in result.output or "TOKEN" in result.output


def test_restore_to_bookmark(remote_project: Path, credentials: None, emulator: D1Emulator) -> None:
    apply_remote(remote_project, "production")
    db = prod_id(emulator)
    bookmark = emulator.client().bookmark(db)
    emulator.sql(db, "DROP VIEW control_overview")
    refused = run("restore", remote_project, "production", "--bookmark", bookmark)
    assert refused.exit_code == 2
    result = run("restore", remote_project, "production", "--bookmark", bookmark, "--yes")
    assert result.exit_code == 0, result.output
    assert emulator.sql(db, "SELECT name FROM sqlite_schema WHERE name = 'control_overview'")


# --- hash, apply, emulate ------------------------------------------------------------------


def test_hash_then_checksums_pass(project: Path) -> None:
    result = run("hash", project)
    assert result.exit_code == 0
    assert result.output == (
        "wrote migrations/d1check.sum: 5 shipped migration(s), 0 new "
        "(commit it; run it again after each deploy)\n"
    )
    migrations = discover(project / "migrations", project / "rollbacks")
    assert check_checksums(migrations).outcome == "passed"
    path = project / "migrations/0003_add_review_fields.sql"
    path.write_text(path.read_text() + "\n-- edited\n")
    assert check_checksums(discover(project / "migrations", project / "rollbacks")).failed


def test_apply_runs_the_suite_then_the_gate(project: Path) -> None:
    result = run("apply", project, "local")
    assert result.exit_code == 0, result.output
    assert "d1check: running pytest --apply=local" in result.output
    assert "applied 5 migration(s)" in result.output
    assert run("diff", project, "local", "0005").exit_code == 0


def test_apply_fails_when_a_check_fails(project: Path) -> None:
    (project / "migrations/0006_bad.sql").write_text("CREATE TABLE broken (;\n")
    result = run("apply", project, "local")
    assert result.exit_code == 1
    assert "nothing applied" in result.output
    assert not local_database_path(
        load_config(project), load_config(project).default_family
    ).exists()


def test_apply_unknown_target_is_usage_error(project: Path) -> None:
    result = run("apply", project, "prod")
    assert result.exit_code == 2
    assert "unknown target 'prod'; valid targets: local, staging, production" in result.output
    budget = run("apply", project, "local", "--api-budget", "fast")
    assert budget.exit_code == 2 and "--api-budget" in budget.output


def test_emulate_passes_its_options(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, object] = {}

    def fake_serve(directory: Path, **kwargs: object) -> None:
        seen.update(kwargs, directory=directory)

    monkeypatch.setattr("d1check.testing.serve", fake_serve)
    assert run("emulate", project, "--port", "0", "--token", "t").exit_code == 0
    assert seen == {"directory": project / ".d1check/emulator", "port": 0, "token": "t"}


def test_help_shows_defaults() -> None:
    result = CliRunner().invoke(cli, ["apply", "--help"])
    text = " ".join(result.output.split())
    assert "[default: 1200/300]" in text
    assert "[default: (the current directory)]" in text


# --- conventions: -h, --json, tables -------------------------------------------------------


@pytest.mark.parametrize(
    "args", [[], *([name] for name in sorted(cli.commands))], ids=lambda a: "-".join(a) or "group"
)
def test_dash_h_is_help_everywhere(args: list[str]) -> None:
    result = CliRunner().invoke(cli, [*args, "-h"], prog_name="d1check")
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"Usage: d1check {' '.join(args)}".rstrip() + " [OPTIONS]")
    assert "-h, --help" in result.output


def test_version_is_the_package_version() -> None:
    from d1check import __version__

    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert result.output == f"d1check, version {__version__}\n"


def status_json(root: Path) -> dict[str, Any]:
    result = run("status", root, "--json")
    assert result.exit_code == 0, result.output
    document: dict[str, Any] = json.loads(result.output)
    return document


def test_status_json_local_database_before_and_after_reset(project: Path) -> None:
    before = status_json(project)
    assert [name["name"] for name in before["targets"]] == ["staging", "production"]
    assert before["targets"][0]["databases"] == []
    assert "staging" in before["targets"][0]["problem"]
    (local,) = before["databases"]
    assert local == {
        "family": "default",
        "environment": "local",
        "target": "local:default",
        "database": ".d1check/local.sqlite",
        "exists": False,
        "read": False,
        "applied": None,
        "pending": 5,
        "drift": "none",
        "last_applied": None,
        "detail": None,
    }

    assert run("reset", project, "--yes").exit_code == 0
    (after,) = status_json(project)["databases"]
    assert after["exists"] and after["read"]
    assert after["applied"] == "0005_create_control_overview"
    assert after["pending"] == 0 and after["drift"] == "none"
    assert after["last_applied"] is not None


def test_status_json_remote_rows_and_fleet(
    remote_project: Path, credentials: None, emulator: D1Emulator
) -> None:
    apply_remote(remote_project, "staging")
    emulator.sql(emulator.client().database_id("app-staging"), "CREATE TABLE made_by_hand (x)")
    result = run("status", remote_project, "--json", "--fleet", "staging")
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    by_target = {row["target"]: row for row in document["databases"]}
    staging, prod = by_target["app-staging"], by_target["app-prod"]
    assert staging["applied"] == "0005_create_control_overview" and staging["pending"] == 0
    assert staging["drift"] == "drift" and "made_by_hand" in staging["detail"]
    assert prod["read"] and prod["exists"] and prod["applied"] is None and prod["pending"] == 5
    assert prod["drift"] == "none" and prod["detail"] is None
    (group,) = document["fleet"]["groups"]
    assert document["fleet"]["target"] == "staging"
    assert group["databases"] == ["app-staging"] and group["count"] == 1
    assert group["applied"] == "0005_create_control_overview"
    assert "table made_by_hand: added" in group["differences"]
    assert document["fleet"]["errors"] == {}


def test_status_json_without_credentials(remote_project: Path) -> None:
    rows = status_json(remote_project)["databases"]
    remote = [row for row in rows if row["environment"] != "local"]
    assert {row["target"] for row in remote} == {"app-staging", "app-prod"}
    for row in remote:
        assert row["drift"] == "no credentials" and not row["read"] and row["exists"] is None
        assert row["applied"] is None and row["pending"] is None
        assert row["detail"] == "CLOUDFLARE_API_TOKEN is not set"


def test_diff_json_lists_each_difference(project: Path) -> None:
    result = run("diff", project, "0003", "0004", "--json")
    assert result.exit_code == 1
    document = json.loads(result.output)
    assert document["from"] == "version 0003_add_review_fields"
    assert document["to"] == "version 0004_create_audit_log"
    assert document["equal"] is False
    assert {
        "kind": "table",
        "name": "audit_log",
        "property": None,
        "change": "added",
        "before": None,
        "after": "table",
        "text": "table audit_log: added",
    } in document["differences"]
    assert len(document["differences"]) == 3


def test_diff_json_of_a_changed_column_keeps_both_values(project: Path) -> None:
    changed = project / "migrations/0006_widen.sql"
    changed.write_text("ALTER TABLE audit_log ADD COLUMN note TEXT NOT NULL DEFAULT '';\n")
    document = json.loads(run("diff", project, "0005", "0006", "--json").output)
    (difference,) = document["differences"]
    assert difference["change"] == "added" and difference["property"] == "column note"
    assert difference["after"] == str(difference["after"]) and "TEXT" in difference["after"]


def test_diff_json_equal_exits_0(project: Path) -> None:
    result = run("diff", project, "0004", "0004", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["equal"] is True
    assert json.loads(result.output)["differences"] == []


def cell_words(rows: list[list[str]]) -> set[str]:
    return {word for row in rows for cell in row for word in cell.split()}


@pytest.mark.parametrize("columns", [80, 100])
def test_rich_table_never_splits_a_word(
    columns: int, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    headers = ["family", "environment", "target", "database", "applied", "pending", "drift"]
    headers += ["last applied"]
    rows = [
        ["default", "local", "local:default", "app-prod", "0004_create_audit_log", "1", "none"],
        ["default", "production", "app-prod", "app-prod", "0005_create_control_overview", "0"],
    ]
    rows[0] += ["2026-11-26 14:11:20"]
    rows[1] += ["no credentials", "-"]
    monkeypatch.setattr("d1check.cli.output.use_rich", lambda: True)
    monkeypatch.setenv("COLUMNS", str(columns))
    output.print_table("d1check status", headers, rows)
    lines = capsys.readouterr().out.splitlines()
    assert max(len(line) for line in lines) <= columns
    words = cell_words([headers, *rows])
    shown = [w for line in lines[1:] for w in line.split() if set(w) != {"─"}]
    for word in shown:
        whole = word in words
        cut = word.endswith("…") and any(w.startswith(word[:-1]) for w in words)
        assert whole or cut, f"{word!r} is a piece of a word:\n" + "\n".join(lines)
    assert "0004_create_audit_log" in shown or any(w.endswith("…") for w in shown)


@pytest.mark.parametrize("target", ["", "  "], ids=["empty", "blank"])
def test_apply_with_an_empty_target_is_usage_error(project: Path, target: str) -> None:
    result = run("apply", project, target)
    assert result.exit_code == 2
    assert "TARGET is empty: name one of local, staging, production" in result.output
    assert "running pytest" not in result.output


def test_apply_without_credentials_stops_before_the_suite(
    remote_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CLOUDFLARE_API_TOKEN", raising=False)
    result = run("apply", remote_project, "staging", "--yes")
    assert result.exit_code == 2
    assert "CLOUDFLARE_API_TOKEN is not set: export a token with D1 edit permission" in (
        result.output
    )
    assert "running pytest" not in result.output


@pytest.mark.parametrize(
    ("terminal", "no_color", "flag"),
    [(True, "", "--color=yes"), (True, "1", "--color=no"), (False, "", "--color=no")],
)
def test_apply_gives_pytest_the_colour_of_its_own_terminal(
    monkeypatch: pytest.MonkeyPatch, terminal: bool, no_color: str, flag: str
) -> None:
    monkeypatch.setattr(cli_module.sys.stdout, "isatty", lambda: terminal, raising=False)
    if no_color:
        monkeypatch.setenv("NO_COLOR", no_color)
    else:
        monkeypatch.delenv("NO_COLOR", raising=False)
    args = cli_module.pytest_command(
        "local", yes=False, dry_run=False, backup_dir=None, report=None, api_budget="none"
    )
    assert flag in args
