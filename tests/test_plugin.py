"""The pytest plugin as a user meets it: item ids, selection, marker, configuration, output."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from d1check.checks import CHECK_NAMES

EXAMPLES = Path(__file__).parent / "examples"
INNER = ("-p", "no:cacheprovider", "-p", "no:hypothesispytest")


def use_example(pytester: pytest.Pytester, name: str) -> Path:
    shutil.copytree(EXAMPLES / name, pytester.path, dirs_exist_ok=True)
    return pytester.path


def nodeids(result: pytest.RunResult) -> list[str]:
    reports = result.reprec.getreports("pytest_runtest_logreport")  # type: ignore[attr-defined]
    return [r.nodeid for r in reports if r.when == "call"]


def test_item_ids_are_one_per_check_and_migration(pytester: pytest.Pytester) -> None:
    use_example(pytester, "good")
    result = pytester.runpytest(*INNER, "--collect-only", "-q")
    expected = ["migrations::sequence", "migrations::checksums"]
    for name in ("0001_create_projects", "0002_add_task_status", "0003_clear_tasks"):
        expected += [f"migrations/{name}.sql::{check}" for check in CHECK_NAMES]
    assert CHECK_NAMES == ("applies", "rows", "rollback", "idempotent", "d1", "destructive")
    result.stdout.fnmatch_lines(expected, consecutive=True)
    assert result.ret == pytest.ExitCode.OK


def test_k_selects_one_check(pytester: pytest.Pytester) -> None:
    use_example(pytester, "good")
    result = pytester.runpytest(*INNER, "-k", "rollback")
    assert sorted(nodeids(result)) == [
        "migrations/0001_create_projects.sql::rollback",
        "migrations/0002_add_task_status.sql::rollback",
        "migrations/0003_clear_tasks.sql::rollback",
    ]


def test_items_carry_the_registered_marker(pytester: pytest.Pytester) -> None:
    use_example(pytester, "good")
    result = pytester.runpytest(*INNER, "--strict-markers", "-m", "d1check")
    result.assert_outcomes(passed=17, skipped=3)
    assert pytester.runpytest(*INNER, "-m", "not d1check").ret == pytest.ExitCode.NO_TESTS_COLLECTED
    pytester.runpytest(*INNER, "--markers").stdout.fnmatch_lines(["@pytest.mark.d1check:*"])


def test_a_project_without_migrations_is_left_alone(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_plain="def test_ok():\n    assert True\n")
    result = pytester.runpytest(*INNER)
    result.assert_outcomes(passed=1)
    assert nodeids(result) == ["test_plain.py::test_ok"]


def test_a_plain_wrangler_project_is_verified(pytester: pytest.Pytester) -> None:
    project = use_example(pytester, "wrangler_project")
    assert not (project / "pyproject.toml").exists()
    result = pytester.runpytest(*INNER)
    result.assert_outcomes(passed=13, skipped=1)
    assert "db/migrations/0001_create_orders.sql::applies" in nodeids(result)
    result.stdout.fnmatch_lines(["d1check: family default: db/migrations*"])


def test_an_unknown_config_key_is_a_usage_error(pytester: pytest.Pytester) -> None:
    project = use_example(pytester, "good")
    (project / "pyproject.toml").write_text("[tool.d1check]\nunknown_key = 1\n")
    result = pytester.runpytest(*INNER)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unknown_key*"])
    result.stderr.no_fnmatch_line("*Traceback*")


def test_a_non_utf8_migration_fails_naming_the_byte_offset(pytester: pytest.Pytester) -> None:
    project = use_example(pytester, "good")
    path = project / "migrations" / "0003_clear_tasks.sql"
    path.write_bytes(b"-- caf\xe9\nDELETE FROM tasks;\n")
    result = pytester.runpytest(*INNER)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*0003_clear_tasks.sql*not valid UTF-8: byte offset 6 (0xe9)*"])
    result.stdout.no_fnmatch_line("*Traceback*")


def test_the_report_header_names_the_engine(pytester: pytest.Pytester) -> None:
    use_example(pytester, "good")
    result = pytester.runpytest(*INNER)
    result.stdout.fnmatch_lines(["d1check: SQLite 3.54.1 *"])


def test_failures_are_reported_without_a_traceback(pytester: pytest.Pytester) -> None:
    use_example(pytester, "rollback")
    result = pytester.runpytest(*INNER)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["d1check rollback: *0004_create_tags.sql: no rollback file"])
    for marker in ("Traceback", "raise CheckFailed", "plugin.py:*: CheckFailed", "E   *"):
        result.stdout.no_fnmatch_line(f"*{marker}*")


@pytest.mark.parametrize("example", ["good", "rollback"])
def test_the_pass_in_a_helper_process_reports_what_the_pass_in_pytest_does(
    pytester: pytest.Pytester, example: str
) -> None:
    use_example(pytester, example)
    cached = ("-p", "no:hypothesispytest", "-rA")
    logs = pytester.path / ".pytest_cache" / "d" / "d1check"
    off = pytester.runpytest(*cached, "--d1check-background=off")
    assert not list(logs.glob("background-*.log"))
    shutil.rmtree(pytester.path / ".pytest_cache")
    on = pytester.runpytest(*cached, "--d1check-background=on")
    (log,) = logs.glob("background-*.log")
    assert log.read_text() == ""
    assert on.ret == off.ret
    assert on.parseoutcomes() == off.parseoutcomes()
    summary = [line for line in off.outlines if line.startswith(("PASSED", "SKIPPED", "FAILED"))]
    assert summary and [line for line in on.outlines if line in summary] == summary


def test_a_project_without_d1_loads_no_checks_and_writes_nothing(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_app="def test_app():\n    assert True\n")
    result = pytester.runpytest_subprocess(
        "-p", "no:hypothesispytest", "-p", "no:benchmark", "--trace-config"
    )
    result.assert_outcomes(passed=1)
    assert "d1check-items" not in result.stdout.str()
    assert not (pytester.path / ".pytest_cache" / "d" / "d1check").exists()
    assert not (pytester.path / ".d1check").exists()


def test_a_project_with_migrations_loads_the_checks(pytester: pytest.Pytester) -> None:
    (pytester.path / "migrations").mkdir()
    (pytester.path / "migrations" / "0001_a.sql").write_text(
        "CREATE TABLE IF NOT EXISTS a (id INTEGER PRIMARY KEY);\n"
    )
    result = pytester.runpytest_subprocess("-p", "no:hypothesispytest", "--trace-config")
    assert "d1check-items" in result.stdout.str()
    result.stdout.fnmatch_lines(["*migrations/0001_a.sql*"])
