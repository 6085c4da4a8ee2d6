"""The remote `d1check` commands (status, pull, diff, unlock) against the emulator: secrets,
the API budget and the deploy lock."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from d1check.cli import cli
from d1check.testing import D1Emulator

REPO = Path(__file__).resolve().parents[1]
TOKEN = "tok-cli-D1CHECK-never-print-51c7e0"
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
def emulator(tmp_path: Path) -> Iterator[D1Emulator]:
    with D1Emulator(tmp_path / "emulator", token=TOKEN) as running:
        yield running


@pytest.fixture
def project(tmp_path: Path, emulator: D1Emulator, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The example migrations, a wrangler config whose databases live in the emulator, and
    credentials for it."""
    root = tmp_path / "project"
    root.mkdir()
    shutil.copytree(REPO / "migrations", root / "migrations")
    shutil.copytree(REPO / "rollbacks", root / "rollbacks")
    (root / "pyproject.toml").write_text(PYPROJECT, encoding="utf-8")
    prod, staging = emulator.create_database("app-prod"), emulator.create_database("app-staging")
    text = WRANGLER.format(account=emulator.account_id, prod=prod, staging=staging)
    (root / "wrangler.toml").write_text(text, encoding="utf-8")
    monkeypatch.setenv("D1CHECK_API_BASE", emulator.url)
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", TOKEN)
    monkeypatch.setenv("CLOUDFLARE_ACCOUNT_ID", emulator.account_id)
    return root


def run(command: str, root: Path, *args: str, stdin: str | None = None) -> Result:
    result = CliRunner().invoke(cli, [command, "--root", str(root), *args], input=stdin)
    assert "Traceback" not in result.output, result.output
    assert TOKEN not in result.output
    return result


# --- the token ------------------------------------------------------------------------------

BAD_TOKENS = [f"{TOKEN[:7]}\n{TOKEN[7:]}", f"{TOKEN}\u00e9", f"{TOKEN[:4]}\x7f{TOKEN[4:]}"]


@pytest.mark.parametrize("bad", BAD_TOKENS)
@pytest.mark.parametrize("command", [("status",), ("pull", "staging"), ("diff", "staging", "0005")])
def test_a_token_that_cannot_be_sent_is_a_usage_error_without_showing_it(
    project: Path, monkeypatch: pytest.MonkeyPatch, bad: str, command: tuple[str, ...]
) -> None:
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", bad)
    result = run(command[0], project, *command[1:])
    assert result.exit_code == 2, result.output
    assert "CLOUDFLARE_API_TOKEN holds a" in result.output
    assert TOKEN[7:] not in result.output and "UnicodeEncodeError" not in result.output


@pytest.mark.parametrize("command", [("status",), ("pull", "staging")])
def test_a_token_with_whitespace_around_it_works(
    project: Path, monkeypatch: pytest.MonkeyPatch, command: tuple[str, ...]
) -> None:
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", f"{TOKEN}\n")
    result = run(command[0], project, *command[1:])
    assert result.exit_code == 0, result.output
    assert "error" not in result.output.lower()
