"""`--apply=local`: the gate applies to the local database only when the whole session passed."""

from __future__ import annotations

import shutil
from pathlib import Path

import apsw
import pytest

EXAMPLES = Path(__file__).parent / "examples"
INNER = ("-p", "no:cacheprovider", "-p", "no:hypothesispytest")
WRANGLER_LOCAL = Path(
    ".wrangler/state/v3/d1/miniflare-D1DatabaseObject/"
    "9ba2b04bf514d9facfd57ed57d849e77241a7adc99d1c1545d06688b43d84248.sqlite"
)


def use_example(pytester: pytest.Pytester, name: str) -> Path:
    shutil.copytree(EXAMPLES / name, pytester.path, dirs_exist_ok=True)
    return pytester.path


def query(path: Path, sql: str) -> list[tuple[object, ...]]:
    conn = apsw.Connection(str(path), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        return [tuple(row) for row in conn.execute(sql)]
    finally:
        conn.close()


def test_apply_local_writes_wranglers_file_and_tracking_rows(pytester: pytest.Pytester) -> None:
    project = use_example(pytester, "wrangler_project")
    result = pytester.runpytest(*INNER, "--apply=local")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["d1check: local default (*): applied 2 migration(s): *"])
    database = project / WRANGLER_LOCAL
    assert database.is_file()
    names = query(database, "SELECT name FROM d1_migrations ORDER BY id")
    assert names == [("0001_create_orders.sql",), ("0002_create_order_lines.sql",)]
    tables = {r[0] for r in query(database, "SELECT name FROM sqlite_schema WHERE type='table'")}
    assert {"orders", "order_lines"} <= tables


def test_a_second_apply_applies_nothing(pytester: pytest.Pytester) -> None:
    project = use_example(pytester, "wrangler_project")
    assert pytester.runpytest(*INNER, "--apply=local").ret == pytest.ExitCode.OK
    again = pytester.runpytest(*INNER, "--apply=local")
    assert again.ret == pytest.ExitCode.OK
    again.stdout.fnmatch_lines(["d1check: local default (*): up to date (2 applied)*"])
    assert len(query(project / WRANGLER_LOCAL, "SELECT name FROM d1_migrations")) == 2


def test_a_failing_session_applies_nothing(pytester: pytest.Pytester) -> None:
    project = use_example(pytester, "wrangler_project")
    (project / "db" / "migrations" / "0003_add_note.sql").write_text(
        "ALTER TABLE orders ADD COLUMN note TEXT NOT NULL;\n"
    )
    result = pytester.runpytest(*INNER, "--apply=local")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*the session did not pass (* failed): nothing applied to local"])
    assert not (project / WRANGLER_LOCAL).exists()


def test_without_wrangler_the_local_database_is_d1checks_own(pytester: pytest.Pytester) -> None:
    project = use_example(pytester, "good")
    result = pytester.runpytest(*INNER, "--apply=local")
    assert result.ret == pytest.ExitCode.OK
    names = query(
        project / ".d1check" / "local.sqlite", "SELECT name FROM d1_migrations ORDER BY id"
    )
    assert names == [
        ("0001_create_projects.sql",),
        ("0002_add_task_status.sql",),
        ("0003_clear_tasks.sql",),
    ]


def test_dry_run_changes_nothing(pytester: pytest.Pytester) -> None:
    project = use_example(pytester, "wrangler_project")
    result = pytester.runpytest(*INNER, "--apply=local", "--dry-run")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["*dry run: local default (*): would apply 0001_create_orders*"])
    assert not (project / WRANGLER_LOCAL).exists()
