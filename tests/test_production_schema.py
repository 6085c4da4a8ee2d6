"""The `::production` item: an export matches a version of the history, or its drift is shown."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from d1check.discovery import discover
from d1check.history import replay
from d1check.testing import dump_sql

ROOT = Path(__file__).resolve().parents[1]
INNER = ("-p", "no:cacheprovider", "-p", "no:hypothesispytest")


def project(pytester: pytest.Pytester, export_text: str) -> None:
    """The root example project with `schema/production.sql` as its production export."""
    shutil.copytree(ROOT / "migrations", pytester.path / "migrations")
    shutil.copytree(ROOT / "rollbacks", pytester.path / "rollbacks")
    (pytester.path / "schema").mkdir()
    (pytester.path / "schema" / "production.sql").write_text(export_text)
    (pytester.path / "pyproject.toml").write_text(
        '[tool.d1check]\nproduction_schema = "schema/*.sql"\n'
    )


def export_at(count: int, *, no_data: bool, extra: str = "") -> str:
    """A wrangler-style export of the example history after `count` migrations."""
    migrations = discover(ROOT / "migrations", ROOT / "rollbacks").migrations[:count]
    db = replay(migrations)
    if extra:
        db.run_script(extra, source="hand-change")
    with db.internal() as conn:
        text = dump_sql(conn, no_data=no_data)
    db.close()
    return text


def production(result: pytest.RunResult) -> tuple[str, str]:
    reports = result.reprec.getreports("pytest_runtest_logreport")  # type: ignore[attr-defined]
    found = [r for r in reports if r.nodeid.endswith("::production") and r.when == "call"]
    assert len(found) == 1, [r.nodeid for r in reports]
    return found[0].outcome, str(found[0].longreprtext)


def test_an_export_at_an_earlier_version_passes_and_names_what_is_pending(
    pytester: pytest.Pytester,
) -> None:
    project(pytester, export_at(3, no_data=False))
    result = pytester.runpytest(*INNER, "-v", "-k", "production")
    outcome, _ = production(result)
    assert outcome == "passed"
    result.stdout.fnmatch_lines(["*schema/production.sql::production PASSED*"])
    from d1check.session import Session

    state = Session.load(pytester.path)
    message = state.production_result(pytester.path / "schema" / "production.sql").message
    assert message == (
        "production.sql matches 0003_add_review_fields; pending: 0004_create_audit_log, "
        "0005_create_control_overview"
    )


def test_a_schema_only_export_of_the_latest_version_passes(pytester: pytest.Pytester) -> None:
    project(pytester, export_at(5, no_data=True))
    result = pytester.runpytest(*INNER, "-k", "production")
    assert production(result)[0] == "passed"


def test_a_hand_changed_production_fails_with_the_structural_diff(
    pytester: pytest.Pytester,
) -> None:
    hand_change = "ALTER TABLE users ADD COLUMN phone TEXT;"
    project(pytester, export_at(4, no_data=False, extra=hand_change))
    result = pytester.runpytest(*INNER, "-k", "production")
    outcome, text = production(result)
    assert outcome == "failed"
    assert "matches no version of the history" in text
    assert "compared with 0004_create_audit_log" in text
    assert "table users: column phone: added" in text
    assert "fix: someone changed production by hand" in text
    assert result.ret == pytest.ExitCode.TESTS_FAILED


def test_a_sqlite_schema_dump_is_read_too(pytester: pytest.Pytester) -> None:
    migrations = discover(ROOT / "migrations", ROOT / "rollbacks").migrations[:2]
    db = replay(migrations)
    rows = db.query("SELECT sql FROM sqlite_schema WHERE sql IS NOT NULL ORDER BY rowid")
    db.close()
    text = "".join(f"{row['sql']};\n" for row in rows)
    assert "CREATE TABLE sqlite_sequence(name,seq);" in text
    project(pytester, text)
    result = pytester.runpytest(*INNER, "-k", "production")
    assert production(result)[0] == "passed"


@pytest.mark.parametrize(
    ("selection", "families"),
    [((), {"default"}), (("-k", "production"), {"default"}), (("-k", "sequence"), set())],
)
def test_the_helper_is_kept_only_for_the_families_selected_items_read(
    pytester: pytest.Pytester, selection: tuple[str, ...], families: set[str]
) -> None:
    from d1check.items import _SESSION, families_in

    project(pytester, export_at(5, no_data=True))
    recorded = pytester.inline_run(*INNER, "--collect-only", *selection)
    session = recorded.getcall("pytest_collection_finish").session
    assert session.items
    assert families_in(session.items, session.config.stash[_SESSION]) == families
