"""Input that must be refused before anything runs: names that forge output or file names, a
tracking table that cannot be quoted, migrations that a symbolic link takes outside the
repository."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from d1check.clients import load_clients
from d1check.errors import ConfigError

INNER = ("-p", "no:cacheprovider", "-p", "no:hypothesispytest")


def registry(tmp_path: Path, **client: object) -> Path:
    entry = {"id": "acme", "database_name": "acme-db", "database_id": "uuid-1", **client}
    path = tmp_path / "clients.json"
    path.write_text(json.dumps({"clients": [entry]}), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("id", "acme\nd1check: production: applied", "a control character ('\\n') at position 5"),
        ("id", "../../etc/acme", "a path separator ('/') at position 3"),
        ("database_name", "acme\rdb", "a control character ('\\r') at position 5"),
        ("database_id", "a\\b", "a path separator ('\\\\') at position 2"),
    ],
)
def test_a_client_name_that_could_forge_output_or_paths_is_refused(
    tmp_path: Path, field: str, value: str, problem: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load_clients(registry(tmp_path, **{field: value}))
    assert f"clients[0]: {field} {value!r} holds {problem}; use a plain name" in str(info.value)


def test_plain_and_commented_registries_load(tmp_path: Path) -> None:
    assert [c.id for c in load_clients(registry(tmp_path)).clients] == ["acme"]
    commented = tmp_path / "commented.json"
    commented.write_text(
        '{\n  // the one client\n  "clients": [{"id": "b", "database_name": "b",'
        ' "database_id": "2",},],\n}\n',
        encoding="utf-8",
    )
    assert [c.id for c in load_clients(commented).clients] == ["b"]


@pytest.mark.parametrize("table", ['d1_"migrations', "d1_migrations\n", "x`y"])
def test_a_tracking_table_that_cannot_be_quoted_is_a_usage_error(
    pytester: pytest.Pytester, table: str
) -> None:
    pytester.makepyprojecttoml(f"[tool.d1check]\ntracking_table = {json.dumps(table)}\n")
    (pytester.path / "migrations").mkdir()
    (pytester.path / "migrations" / "0001_a.sql").write_text("CREATE TABLE a (id INTEGER);\n")
    result = pytester.runpytest(*INNER)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*tracking_table * a tracking table name must be plain*"])


def test_a_migration_linked_from_outside_the_repository_is_refused(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    outside = tmp_path / "elsewhere.sql"
    outside.write_text("CREATE TABLE stolen (id INTEGER PRIMARY KEY);\n")
    (pytester.path / ".git").mkdir()
    (pytester.path / "migrations").mkdir()
    (pytester.path / "migrations" / "0001_a.sql").write_text("CREATE TABLE a (id INTEGER);\n")
    (pytester.path / "migrations" / "0002_b.sql").symlink_to(outside)
    result = pytester.runpytest(*INNER, "-k", "0002 and applies")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [f"*0002_b.sql: a symbolic link to {outside.resolve()}, outside the repository*"]
    )


def test_a_link_that_stays_inside_the_repository_is_fine(pytester: pytest.Pytester) -> None:
    (pytester.path / ".git").mkdir()
    (pytester.path / "shared").mkdir()
    (pytester.path / "shared" / "b.sql").write_text("CREATE TABLE b (id INTEGER PRIMARY KEY);\n")
    (pytester.path / "migrations").mkdir()
    (pytester.path / "migrations" / "0001_b.sql").symlink_to(pytester.path / "shared" / "b.sql")
    result = pytester.runpytest(*INNER, "-k", "applies")
    result.assert_outcomes(passed=1)
