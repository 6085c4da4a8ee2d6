"""The `d1_db` and `d1_migrator` fixtures, used by a team's own tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).parent / "examples"
INNER = ("-p", "no:cacheprovider", "-p", "no:hypothesispytest")


def test_fixtures_in_a_teams_own_tests(pytester: pytest.Pytester) -> None:
    shutil.copytree(EXAMPLES / "fixtures_project", pytester.path, dirs_exist_ok=True)
    result = pytester.runpytest(*INNER, "tests", "-v")
    result.assert_outcomes(passed=5)
    result.stdout.fnmatch_lines(
        [
            "*test_latest_version_has_the_tables PASSED*",
            "*test_backfill_migrates_existing_rows PASSED*",
            "*test_down_runs_the_rollback PASSED*",
            "*test_writes_a_row PASSED*",
            "*test_sees_no_row_of_another_test PASSED*",
        ]
    )


def test_fixture_tests_see_no_rows_left_by_an_earlier_test_in_reverse_order(
    pytester: pytest.Pytester,
) -> None:
    shutil.copytree(EXAMPLES / "fixtures_project", pytester.path, dirs_exist_ok=True)
    file = "tests/test_people.py"
    result = pytester.runpytest(
        *INNER,
        f"{file}::test_sees_no_row_of_another_test",
        f"{file}::test_writes_a_row",
        f"{file}::test_sees_no_row_of_another_test",
    )
    assert result.ret == pytest.ExitCode.OK


def test_to_an_unknown_version_names_the_migrations(pytester: pytest.Pytester) -> None:
    shutil.copytree(EXAMPLES / "fixtures_project", pytester.path, dirs_exist_ok=True)
    pytester.makepyfile(
        test_unknown="""
        import pytest
        from d1check.errors import MigrationFileError

        def test_unknown(d1_migrator):
            with pytest.raises(MigrationFileError, match="0001_create_people"):
                d1_migrator.to("0042")
        """
    )
    pytester.runpytest(*INNER, "test_unknown.py").assert_outcomes(passed=1)
