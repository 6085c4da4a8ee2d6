"""D1's limits and wrangler's traps, end to end: each migration fails where wrangler fails it
(measured with `wrangler d1 migrations apply --local`, see tests/fidelity) and passes elsewhere."""

from __future__ import annotations

import pytest

INNER = ("-p", "no:cacheprovider", "-p", "no:hypothesispytest")
PYPROJECT = """\
[tool.d1check]
migrations_dir = "migrations"
rollbacks_dir = "rollbacks"
require_rollbacks = false
check_idempotency = false
"""


def run_project(pytester: pytest.Pytester, files: dict[str, str]) -> pytest.RunResult:
    """Write a project (pyproject.toml plus `files` under migrations/) and run pytest on it."""
    pytester.makefile(".toml", pyproject=PYPROJECT)
    migrations = pytester.mkdir("migrations")
    for name, text in files.items():
        (migrations / name).write_bytes(text.encode("utf-8"))
    return pytester.runpytest(*INNER, "-rA")


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


def item(file_name: str, check: str) -> str:
    return f"migrations/{file_name}::{check}"


def wide_table(columns: int) -> str:
    names = ",\n  ".join(["id INTEGER PRIMARY KEY"] + [f"c{i:03} TEXT" for i in range(1, columns)])
    return f"CREATE TABLE wide (\n  {names}\n);\nINSERT INTO wide (id, c001) VALUES (1, 'a');\n"


# --- columns ----------------------------------------------------------------------------------


def test_a_table_of_100_columns_passes_and_the_101st_fails_where_it_is_added(
    pytester: pytest.Pytester,
) -> None:
    result = run_project(
        pytester,
        {
            "0001_wide.sql": wide_table(100),
            "0002_more.sql": "ALTER TABLE wide ADD COLUMN extra TEXT;\n",
        },
    )
    seen = outcomes(result)
    for check in ("applies", "rows", "d1"):
        assert seen[item("0001_wide.sql", check)] == "passed", text(
            result, item("0001_wide.sql", check)
        )
    assert seen[item("0002_more.sql", "applies")] == "failed"
    assert seen[item("0002_more.sql", "d1")] == "failed"
    assert "0002_more.sql:1: too many columns" in text(result, item("0002_more.sql", "applies"))


# --- statement length -------------------------------------------------------------------------


def padded(size: int) -> str:
    """An INSERT of `size` bytes, its `;` included."""
    head, tail = "INSERT INTO t (a) VALUES ('", "');"
    return head + "x" * (size - len(head) - len(tail)) + tail


COMMENT = "-- a comment travels with the statement\n"


@pytest.mark.parametrize(
    ("text_", "verdict"),
    [
        (padded(100_001), "passed"),  # wrangler sends 100,000 bytes: no `;`
        (padded(100_002), "failed"),
        (COMMENT + padded(100_001 - len(COMMENT)), "passed"),
        (COMMENT + padded(100_002 - len(COMMENT)), "failed"),
    ],
    ids=["100000", "100001", "comment-100000", "comment-100001"],
)
def test_statement_length_counts_what_wrangler_sends(
    pytester: pytest.Pytester, text_: str, verdict: str
) -> None:
    result = run_project(
        pytester, {"0001_t.sql": "CREATE TABLE t (a TEXT);\n", "0002_load.sql": text_ + "\n"}
    )
    seen = outcomes(result)
    assert seen[item("0002_load.sql", "applies")] == verdict
    assert seen[item("0002_load.sql", "d1")] == verdict
    if verdict == "failed":
        message = text(result, item("0002_load.sql", "d1"))
        assert "0002_load.sql:" in message
        assert "statement too long" in message
        assert "wrangler sends the statement as 100,001 bytes" in message


# --- wrangler's tracking row ------------------------------------------------------------------


def test_d1_fails_a_migration_that_writes_its_own_tracking_row(pytester: pytest.Pytester) -> None:
    result = run_project(
        pytester,
        {
            "0001_a.sql": "CREATE TABLE a (id INTEGER PRIMARY KEY);\n",
            "0002_records_itself.sql": "CREATE TABLE b (id INTEGER PRIMARY KEY);\n"
            "INSERT OR IGNORE INTO d1_migrations (name) VALUES ('0002_records_itself.sql');\n",
        },
    )
    node = item("0002_records_itself.sql", "d1")
    assert outcomes(result)[node] == "failed"
    message = text(result, node)
    assert "UNIQUE constraint failed: d1_migrations.name" in message
    assert "remove the INSERT into d1_migrations at migrations/0002_records_itself.sql:2" in message
    assert outcomes(result)[item("0001_a.sql", "d1")] == "passed"


def test_d1_fails_a_migration_that_drops_the_tracking_table(pytester: pytest.Pytester) -> None:
    result = run_project(pytester, {"0001_drop.sql": "DROP TABLE d1_migrations;\n"})
    node = item("0001_drop.sql", "d1")
    assert outcomes(result)[node] == "failed"
    message = text(result, node)
    assert "no such table: d1_migrations" in message
    assert "keep d1_migrations as wrangler created it" in message


def test_d1_fails_the_migration_whose_row_an_earlier_one_wrote(pytester: pytest.Pytester) -> None:
    result = run_project(
        pytester,
        {
            "0001_a.sql": "CREATE TABLE a (id INTEGER PRIMARY KEY);\n"
            "INSERT INTO d1_migrations (name) VALUES ('0002_b.sql');\n",
            "0002_b.sql": "CREATE TABLE b (id INTEGER PRIMARY KEY);\n",
        },
    )
    seen = outcomes(result)
    assert seen[item("0001_a.sql", "d1")] == "passed"  # wrangler applies it
    assert seen[item("0002_b.sql", "d1")] == "failed"
    assert "already holds a row for 0002_b.sql" in text(result, item("0002_b.sql", "d1"))


def test_d1_passes_unrelated_tracking_rows(pytester: pytest.Pytester) -> None:
    result = run_project(
        pytester,
        {
            "0001_a.sql": "CREATE TABLE a (id INTEGER PRIMARY KEY);\n",
            "0002_seed.sql": "INSERT INTO d1_migrations (name) VALUES ('seed');\n",
            "0003_forget.sql": "DELETE FROM d1_migrations WHERE name = 'seed';\n",
        },
    )
    seen = outcomes(result)
    for name in ("0001_a.sql", "0002_seed.sql", "0003_forget.sql"):
        assert seen[item(name, "d1")] == "passed", text(result, item(name, "d1"))


def test_d1_passes_self_recording_in_the_hand_written_migrations_table(
    pytester: pytest.Pytester,
) -> None:
    pytester.makefile(".toml", pyproject=PYPROJECT + 'tracking_table = "_migrations"\n')
    migrations = pytester.mkdir("migrations")
    (migrations / "0001_a.sql").write_text(
        "CREATE TABLE a (id INTEGER PRIMARY KEY);\n"
        "INSERT INTO _migrations (version, name) VALUES ('0001', 'a');\n"
    )
    result = pytester.runpytest(*INNER)
    assert outcomes(result)[item("0001_a.sql", "d1")] == "passed"


# --- a last statement without its `;` ---------------------------------------------------------


@pytest.mark.parametrize(
    "text_",
    [
        "CREATE TABLE b (y)\n",
        "CREATE TABLE b (y) -- no semicolon; here\n",
        "CREATE TABLE b (y) /* ; */",
        "CREATE TABLE a (x);\r\nCREATE TABLE b (y)\r\n",
        "CREATE TABLE a (x);--> statement-breakpoint\nCREATE TABLE b (y)",
        "CREATE TABLE a (x);\nCREATE TRIGGER ta AFTER INSERT ON a BEGIN SELECT 1; END",
    ],
    ids=["newline", "comment-after", "block-comment", "crlf", "drizzle", "trigger"],
)
def test_d1_fails_a_last_statement_without_its_semicolon(
    pytester: pytest.Pytester, text_: str
) -> None:
    result = run_project(pytester, {"0001_last.sql": text_})
    node = item("0001_last.sql", "d1")
    assert outcomes(result)[node] == "failed"
    assert "the last statement has no `;`" in text(result, node)


@pytest.mark.parametrize(
    "text_",
    [
        "CREATE TABLE b (y); -- done",
        "CREATE TABLE b (y);\n--> statement-breakpoint\nCREATE INDEX b_y ON b (y);\n"
        "--> statement-breakpoint\n",
        "CREATE TABLE b (y);\n/* the end */",
        "CREATE TABLE b (y);\r\n-- end",
    ],
    ids=["comment-no-eol", "drizzle", "block-comment", "crlf"],
)
def test_d1_passes_a_terminated_last_statement(pytester: pytest.Pytester, text_: str) -> None:
    result = run_project(pytester, {"0001_last.sql": text_})
    node = item("0001_last.sql", "d1")
    assert outcomes(result)[node] == "passed", text(result, node)


# --- directives -------------------------------------------------------------------------------


def test_a_bad_directive_fails_only_the_d1_item_of_its_file(pytester: pytest.Pytester) -> None:
    result = run_project(
        pytester,
        {
            "0001_a.sql": "CREATE TABLE a (id INTEGER PRIMARY KEY);\n-- d1check: not-idempotent\n",
            "0002_b.sql": "/* d1check: allow-destruction users asked */\n"
            "CREATE TABLE b (id INTEGER PRIMARY KEY);\n",
            "0002_c.sql": "CREATE TABLE c (id INTEGER PRIMARY KEY);\n",
        },
    )
    seen = outcomes(result)
    assert seen["migrations::sequence"] == "failed"  # two migrations numbered 2
    assert seen[item("0001_a.sql", "d1")] == "failed"
    message = text(result, item("0001_a.sql", "d1"))
    assert "migrations/0001_a.sql:2: directive `d1check: not-idempotent` needs a reason" in message
    assert "fix: write `-- d1check: <directive> <reason>`" in message
    assert seen[item("0002_b.sql", "d1")] == "failed"
    assert "0002_b.sql:1: unknown directive `d1check: allow-destruction`" in text(
        result, item("0002_b.sql", "d1")
    )
    for name in ("0001_a.sql", "0002_b.sql", "0002_c.sql"):
        assert seen[item(name, "applies")] == "passed"
        assert seen[item(name, "destructive")] == "passed"
    assert seen[item("0002_c.sql", "d1")] == "passed"


def test_d1_passes_a_rollback_without_its_last_semicolon(pytester: pytest.Pytester) -> None:
    """wrangler never sends rollbacks; d1check ends each of their statements itself."""
    pytester.makefile(".toml", pyproject=PYPROJECT.replace("require_rollbacks = false", ""))
    pytester.mkdir("migrations")
    pytester.mkdir("rollbacks")
    (pytester.path / "migrations" / "0001_a.sql").write_text("CREATE TABLE a (x);\n")
    (pytester.path / "rollbacks" / "0001_rollback.sql").write_text("DROP TABLE a")
    result = pytester.runpytest(*INNER)
    seen = outcomes(result)
    assert seen[item("0001_a.sql", "rollback")] == "passed"
    assert seen[item("0001_a.sql", "d1")] == "passed", text(result, item("0001_a.sql", "d1"))
