"""The D1 API emulator over real loopback HTTP: endpoints, atomicity, D1's refusals, faults."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from d1check import testing
from d1check.errors import RemoteError
from d1check.remote import D1Client, RetryPolicy
from d1check.testing import D1Emulator, Fault, Faults, dump_sql, sql_literal

SCHEMA = (
    "CREATE TABLE users(id INTEGER PRIMARY KEY AUTOINCREMENT, email TEXT NOT NULL UNIQUE);\n"
    "CREATE TABLE posts(id INTEGER PRIMARY KEY, user_id INTEGER REFERENCES users(id), body TEXT);\n"
    "CREATE INDEX posts_user ON posts(user_id);\n"
)


@pytest.fixture
def emu(tmp_path: Path) -> Iterator[D1Emulator]:
    with D1Emulator(tmp_path / "d1") as emulator:
        yield emulator


@pytest.fixture
def client(emu: D1Emulator) -> Iterator[D1Client]:
    with emu.client(sleep=lambda s: None, retry=RetryPolicy(attempts=1)) as c:
        yield c


@pytest.fixture
def db(emu: D1Emulator, client: D1Client) -> str:
    uuid = client.create_database("app").uuid
    client.query(uuid, SCHEMA)
    return uuid


def tables(emu: D1Emulator, db: str) -> list[object]:
    rows = emu.sql(db, "SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")
    return [r["name"] for r in rows]


# --- lifecycle ----------------------------------------------------------------------------------


def test_url_is_a_loopback_api_base(emu: D1Emulator) -> None:
    assert emu.url == f"http://127.0.0.1:{emu.port}/client/v4" and emu.port > 0


def test_fixture_serves_in_tmp_path(d1_emulator: D1Emulator, tmp_path: Path) -> None:
    assert d1_emulator.directory.is_relative_to(tmp_path)
    assert d1_emulator.client().list_databases() == []


def test_databases_survive_a_restart(tmp_path: Path) -> None:
    with D1Emulator(tmp_path / "d1") as first:
        uuid = first.client().create_database("keep").uuid
        first.client().query(uuid, "CREATE TABLE t(a); INSERT INTO t VALUES (1);")
    with D1Emulator(tmp_path / "d1") as second:
        assert second.client().database_id("keep") == uuid
        assert second.client().query(uuid, "SELECT a FROM t")[0].results == [{"a": 1}]


def test_main_help_exits_cleanly(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        testing.main(["--help"])
    assert info.value.code == 0 and "--port" in capsys.readouterr().out


# --- databases ---------------------------------------------------------------------------------


def test_create_list_get_delete(emu: D1Emulator, client: D1Client) -> None:
    created = client.create_database("orders")
    assert created.name == "orders" and created.version == "production" and created.created_at
    client.create_database("orders-eu")
    assert sorted(d.name for d in client.list_databases()) == ["orders", "orders-eu"]
    assert [d.name for d in client.list_databases(name="eu")] == ["orders-eu"]
    assert client.database_id("orders") == created.uuid
    info = client.get_database(created.uuid)
    assert info.name == "orders" and info.num_tables == 0 and (info.file_size or 0) > 0
    response = httpx.delete(
        f"{emu.url}/accounts/{emu.account_id}/d1/database/{created.uuid}",
        headers={"Authorization": f"Bearer {emu.token}"},
    )
    assert response.json() == {"result": None, "success": True, "errors": [], "messages": []}
    assert [d.name for d in client.list_databases()] == ["orders-eu"]
    assert not emu.directory.joinpath(f"{created.uuid}.sqlite").exists()


def test_duplicate_name_is_refused(client: D1Client) -> None:
    client.create_database("app")
    with pytest.raises(RemoteError, match="already exists") as info:
        client.create_database("app")
    assert info.value.code == 7502


def test_unknown_name_and_id(client: D1Client) -> None:
    with pytest.raises(RemoteError, match="no D1 database named 'nope'"):
        client.database_id("nope")
    with pytest.raises(RemoteError, match="could not be found") as info:
        client.get_database("00000000-0000-0000-0000-000000000000")
    assert info.value.status == 404 and info.value.code == 7404


def test_counts_requests_per_path(emu: D1Emulator, client: D1Client, db: str) -> None:
    client.query(db, "SELECT 1")
    assert emu.count("/query") == 2 and emu.count("/query", method="GET") == 0
    assert emu.count("/database", method="POST") == 1


# --- authentication -------------------------------------------------------------------------------


def test_missing_or_wrong_token_is_401(emu: D1Emulator) -> None:
    url = f"{emu.url}/accounts/{emu.account_id}/d1/database"
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": emu.token}):
        response = httpx.get(url, headers=headers)
        assert response.status_code == 401
        assert response.json() == {
            "result": None,
            "success": False,
            "errors": [{"code": 10000, "message": "Authentication error"}],
            "messages": [],
        }


def test_other_account_is_refused(emu: D1Emulator) -> None:
    other = D1Client("another-account", emu.token, api_base=emu.url)
    with pytest.raises(RemoteError) as info:
        other.list_databases()
    assert info.value.status == 403 and info.value.code == 7403


# --- SQL ------------------------------------------------------------------------------------------


def test_query_answers_one_result_per_statement_with_meta(client: D1Client, db: str) -> None:
    results = client.query(
        db,
        "INSERT INTO users(email) VALUES ('a@x'); INSERT INTO users(email) VALUES ('b@x'); "
        "SELECT id, email FROM users ORDER BY id;",
    )
    assert [r.success for r in results] == [True, True, True]
    assert results[1].meta["last_row_id"] == 2 and results[1].meta["changes"] == 1
    assert results[2].results == [{"id": 1, "email": "a@x"}, {"id": 2, "email": "b@x"}]
    meta = results[0].meta
    for key in (
        "changes",
        "duration",
        "last_row_id",
        "rows_read",
        "rows_written",
        "size_after",
        "changed_db",
    ):
        assert key in meta
    assert meta["changed_db"] is True and results[2].meta["changed_db"] is False


def test_params_are_bound(client: D1Client, db: str) -> None:
    client.query(db, "INSERT INTO users(email) VALUES (?)", ["p@x"])
    assert client.query(db, "SELECT email FROM users WHERE email = ?1", ["p@x"])[0].results == [
        {"email": "p@x"}
    ]


def test_params_with_several_statements_are_refused(client: D1Client, db: str) -> None:
    with pytest.raises(RemoteError, match="parameter bindings"):
        client.query(db, "SELECT ?; SELECT ?;", [1])


def test_raw_gives_columns_and_rows(client: D1Client, db: str) -> None:
    client.query(db, "INSERT INTO users(email) VALUES ('r@x')")
    [raw] = client.raw(db, "SELECT id, email FROM users")
    assert raw.columns == ["id", "email"] and raw.rows == [[1, "r@x"]] and raw.success


def test_failing_statement_leaves_nothing_of_the_request(
    emu: D1Emulator, client: D1Client, db: str
) -> None:
    with pytest.raises(RemoteError, match="no such table: missing: SQLITE_ERROR") as info:
        client.query(
            db,
            "CREATE TABLE extra(a); INSERT INTO users(email) VALUES ('lost@x'); "
            "INSERT INTO missing VALUES (1);",
        )
    assert info.value.code == 7500 and str(info.value).startswith("D1_ERROR: ")
    assert "extra" not in tables(emu, db)
    assert emu.sql(db, "SELECT count(*) AS n FROM users") == [{"n": 0}]


def test_passing_request_keeps_everything(emu: D1Emulator, client: D1Client, db: str) -> None:
    client.query(db, "CREATE TABLE extra(a); INSERT INTO users(email) VALUES ('kept@x');")
    assert "extra" in tables(emu, db)
    assert emu.sql(db, "SELECT email FROM users") == [{"email": "kept@x"}]


def test_batch_is_one_transaction(emu: D1Emulator, client: D1Client, db: str) -> None:
    ok = client.batch(
        db,
        [
            ("INSERT INTO users(email) VALUES (?)", ["1@x"]),
            ("SELECT count(*) AS n FROM users", None),
        ],
    )
    assert ok[1].results == [{"n": 1}]
    with pytest.raises(RemoteError, match=r"UNIQUE constraint failed: users\.email"):
        client.batch(
            db,
            [
                ("INSERT INTO users(email) VALUES (?)", ["2@x"]),
                ("INSERT INTO users(email) VALUES (?)", ["1@x"]),
            ],
        )
    assert emu.sql(db, "SELECT email FROM users") == [{"email": "1@x"}]


def test_foreign_keys_are_enforced(client: D1Client, db: str) -> None:
    with pytest.raises(RemoteError, match="FOREIGN KEY constraint failed"):
        client.query(db, "INSERT INTO posts(user_id, body) VALUES (99, 'orphan')")


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("ATTACH DATABASE 'other.sqlite' AS other", "D1_ERROR: not authorized: SQLITE_AUTH"),
        ("CREATE TABLE _cf_stuff(a)", "D1_ERROR: not authorized: SQLITE_AUTH"),
        ('CREATE TABLE "_CF_Stuff"(a)', "D1_ERROR: not authorized: SQLITE_AUTH"),
        ("BEGIN TRANSACTION", "D1_ERROR: To execute a transaction, please use"),
        ("SAVEPOINT s", "D1_ERROR: To execute a transaction, please use"),
        ("SELECT sqlite_version()", "D1_ERROR: not authorized to use function: sqlite_version"),
        ("PRAGMA user_version", "D1_ERROR: not authorized"),
    ],
)
def test_d1_refusals_come_back_as_d1_errors(
    emu: D1Emulator, client: D1Client, db: str, sql: str, message: str
) -> None:
    with pytest.raises(RemoteError) as info:
        client.query(db, f"CREATE TABLE before_refusal(a); {sql};")
    assert str(info.value).startswith(message) and info.value.code == 7500
    assert "before_refusal" not in tables(emu, db)


def test_a_column_named_cf_is_fine(client: D1Client, db: str) -> None:
    client.query(db, "CREATE TABLE ok(_cf_col TEXT)")


def test_allowed_pragma_works(client: D1Client, db: str) -> None:
    rows = client.query(db, "PRAGMA table_info(users)")[0].results
    assert [r["name"] for r in rows] == ["id", "email"]


def test_malformed_body_is_400(emu: D1Emulator, db: str) -> None:
    url = f"{emu.url}/accounts/{emu.account_id}/d1/database/{db}/query"
    auth = {"Authorization": f"Bearer {emu.token}"}
    assert httpx.post(url, content=b"{not json", headers=auth).status_code == 400
    response = httpx.post(url, json={"params": []}, headers=auth)
    assert response.status_code == 400 and "sql is required" in response.text


# --- export --------------------------------------------------------------------------------------


def test_export_schema_only(client: D1Client, db: str) -> None:
    client.query(db, "INSERT INTO users(email) VALUES ('e@x')")
    dump = client.export(db)
    users, posts, index = SCHEMA.splitlines()
    assert dump.splitlines() == [
        "PRAGMA defer_foreign_keys=TRUE;",
        users.replace("CREATE TABLE", "CREATE TABLE IF NOT EXISTS"),
        posts.replace("CREATE TABLE", "CREATE TABLE IF NOT EXISTS"),
        "DELETE FROM sqlite_sequence;",
        index,
    ]


def test_export_with_data_reimports(emu: D1Emulator, client: D1Client, db: str) -> None:
    client.query(
        db, "INSERT INTO users(email) VALUES ('it''s@x'); INSERT INTO posts VALUES (5, 1, NULL);"
    )
    dump = client.export(db, no_data=False)
    assert "INSERT INTO \"users\" VALUES(1,'it''s@x');" in dump
    assert "INSERT INTO \"sqlite_sequence\" VALUES('users',1);" in dump
    copy = client.create_database("copy").uuid
    client.query(copy, dump.replace("PRAGMA defer_foreign_keys=TRUE;", ""))
    assert emu.sql(copy, "SELECT * FROM posts") == [{"id": 5, "user_id": 1, "body": None}]


def test_export_polls_before_completing(emu: D1Emulator, client: D1Client, db: str) -> None:
    emu.export_polls = 3
    client.export(db)
    assert emu.count("/export") == 4 and emu.count(".sql") == 1


def test_export_refuses_virtual_tables(client: D1Client, db: str) -> None:
    client.query(db, "CREATE VIRTUAL TABLE search USING fts5(body)")
    with pytest.raises(RemoteError, match=r"cannot export databases with Virtual Tables \(fts5\)"):
        client.export(db)


def test_sql_literals() -> None:
    assert [sql_literal(v) for v in (None, 3, 1.5, "a'b", b"\x01\xff")] == [
        "NULL",
        "3",
        "1.5",
        "'a''b'",
        "X'01FF'",
    ]


def test_dump_of_an_empty_database() -> None:
    import apsw

    assert dump_sql(apsw.Connection(":memory:"), no_data=True) == "PRAGMA defer_foreign_keys=TRUE;"


# --- Time Travel ---------------------------------------------------------------------------------


def test_bookmark_and_restore(emu: D1Emulator, client: D1Client, db: str) -> None:
    client.query(db, "INSERT INTO users(email) VALUES ('before@x')")
    bookmark = client.bookmark(db)
    client.query(db, "DROP TABLE posts; DELETE FROM users;")
    restored = client.restore(db, bookmark)
    assert restored.message == "Database restored" and restored.previous_bookmark != bookmark
    assert tables(emu, db) == ["posts", "sqlite_sequence", "users"]
    assert emu.sql(db, "SELECT email FROM users") == [{"email": "before@x"}]
    client.restore(db, restored.previous_bookmark)
    assert tables(emu, db) == ["sqlite_sequence", "users"]


def test_bookmark_at_a_timestamp(client: D1Client, db: str) -> None:
    client.query(db, "INSERT INTO users(email) VALUES ('one@x')")
    moment = datetime.now(UTC)
    time.sleep(0.01)
    client.query(db, "INSERT INTO users(email) VALUES ('two@x')")
    client.restore(db, client.bookmark(db, moment))
    assert client.query(db, "SELECT email FROM users")[0].results == [{"email": "one@x"}]
    with pytest.raises(RemoteError, match="no bookmark at or before"):
        client.bookmark(db, "2000-01-01T00:00:00Z")


def test_restore_of_an_unknown_bookmark(client: D1Client, db: str) -> None:
    with pytest.raises(RemoteError, match="unknown bookmark"):
        client.restore(db, "00000000-deadbeef")


# --- faults --------------------------------------------------------------------------------------


def test_faults_apply_in_order_to_matching_requests(
    emu: D1Emulator, client: D1Client, db: str
) -> None:
    emu.faults.push(Fault("error", match="/raw"))
    client.query(db, "SELECT 1")
    with pytest.raises(RemoteError) as info:
        client.raw(db, "SELECT 1")
    assert info.value.status == 500
    client.raw(db, "SELECT 1")


def test_rate_limit_fault_answers_429_with_retry_after(emu: D1Emulator, db: str) -> None:
    emu.faults.push(Fault("rate_limit", retry_after=42))
    response = httpx.get(f"{emu.url}/accounts/{emu.account_id}/d1/database")
    assert response.status_code == 429 and response.headers["Retry-After"] == "42"


def test_commit_then_error_applies_the_write(emu: D1Emulator, client: D1Client, db: str) -> None:
    emu.faults.push("commit_then_error")
    with pytest.raises(RemoteError):
        client.query(db, "CREATE TABLE landed(a)", write=True)
    assert "landed" in tables(emu, db)


def test_random_faults_with_a_seed(tmp_path: Path) -> None:
    faults = Faults(probability=0.5, random_kinds=("error",), seed=7)
    with D1Emulator(tmp_path / "d1", faults=faults) as emu:
        client = emu.client(retry=RetryPolicy(attempts=1))
        outcomes = []
        for _ in range(20):
            try:
                client.list_databases()
                outcomes.append(True)
            except RemoteError:
                outcomes.append(False)
    assert 0 < outcomes.count(False) < 20


def test_latency(emu: D1Emulator, client: D1Client, db: str) -> None:
    emu.faults.latency = 0.2
    started = time.perf_counter()
    client.query(db, "SELECT 1")
    assert time.perf_counter() - started >= 0.2
    emu.faults.clear()
    assert emu.faults.latency == 0


def test_unknown_fault_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown fault 'explode'"):
        Fault("explode")


def test_old_bookmarks_are_pruned(tmp_path: Path) -> None:
    with D1Emulator(tmp_path / "d1", keep_bookmarks=2) as emu:
        client = emu.client(retry=RetryPolicy(attempts=1))
        db = client.create_database("app").uuid
        first = client.bookmark(db)
        client.query(db, "CREATE TABLE a(x)")
        client.query(db, "CREATE TABLE b(x)")
        with pytest.raises(RemoteError, match="unknown bookmark"):
            client.restore(db, first)
    assert len(list((emu.directory / ".bookmarks" / db).iterdir())) == 2


def test_bookmarks_spill_to_files_and_survive_a_restart(tmp_path: Path) -> None:
    with D1Emulator(tmp_path / "d1", memory_bookmarks=1) as emu:
        client = emu.client(retry=RetryPolicy(attempts=1))
        db = client.create_database("app").uuid
        client.query(db, "CREATE TABLE a(x)")
        bookmark = client.bookmark(db)
        assert (emu.directory / ".bookmarks" / db / f"{bookmark}.sqlite").exists()
    with D1Emulator(tmp_path / "d1") as emu, emu.client() as client:
        client.query(db, "CREATE TABLE b(x)")
        client.restore(db, bookmark)
        assert tables(emu, db) == ["a"]


def test_list_is_paged(emu: D1Emulator, client: D1Client) -> None:
    names = [f"client-{i}" for i in range(5)]
    for name in names:
        emu.create_database(name)
    assert sorted(d.name for d in client.list_databases(per_page=2)) == names
    assert emu.count("/database", method="GET") == 3


# --- the fast path: apsw runs the text itself, answers as the statement-splitting path ----------

EXACT_CASES: list[tuple[str, list[object] | None]] = [
    ("INSERT INTO users(email) VALUES ('a@x'), ('b@x'); SELECT * FROM users;", None),
    ("CREATE TABLE legend(end_date TEXT, began TEXT); INSERT INTO legend VALUES ('x', 'y');", None),
    ("SELECT id, email AS e, id AS again FROM users ORDER BY id -- trailing comment\n", None),
    ("UPDATE users SET email = email || '!' WHERE id = ?; ", [1]),
    ("DELETE FROM users; SELECT count(*) AS n FROM users; SELECT 1 AS one;", None),
    ("SELECT 1 AS one;; SELECT 2 AS two; -- done\n/* really */", None),
]


def _answers(tmp_path: Path, name: str) -> list[list[object]]:
    with D1Emulator(tmp_path / name) as emulator, emulator.client() as c:
        uuid = c.create_database("app").uuid
        c.query(uuid, SCHEMA)
        out: list[list[object]] = []
        for sql, params in EXACT_CASES:
            results = c.query(uuid, sql, params)
            out.append(
                [
                    (r.results, r.success, {k: v for k, v in r.meta.items() if k != "duration"})
                    for r in results
                ]
            )
        out.append([(r.results, r.meta["changes"]) for r in c.batch(uuid, [("SELECT ?", [7])] * 2)])
        return out


def test_the_fast_path_answers_as_the_splitting_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def never(pieces: object) -> None:
        raise AssertionError(f"split although plain: {pieces}")

    with monkeypatch.context() as patched:
        patched.setattr(testing, "_split", never)
        fast = _answers(tmp_path, "fast")
    monkeypatch.setattr(testing, "_plain", lambda pieces: False)
    assert fast == _answers(tmp_path, "exact")


@pytest.mark.parametrize(
    ("sql", "params", "message"),
    [
        ("INSERT INTO users(email) VALUES ('z'); VACUUM", None, "cannot VACUUM"),
        ("INSERT INTO users(email) VALUES ('z'); commit", None, "To execute a transaction"),
        ("INSERT INTO users(email) VALUES ('z'); END", None, "To execute a transaction"),
        ("SELECT * FROM carray(1, 2)", None, "no such table: carray"),
        ("INSERT INTO users(email) VALUES (?); SELECT 1", ["z"], "SQLITE_RANGE"),
        ("  -- nothing but a comment\n", None, "No SQL statements detected"),
        ("INSERT INTO users(email) VALUES ('z'); SELECT nope FROM users", None, "no such column"),
    ],
)
def test_refusals_and_errors_leave_nothing_behind(
    emu: D1Emulator, client: D1Client, db: str, sql: str, params: list[object] | None, message: str
) -> None:
    with pytest.raises(RemoteError, match=message):
        client.query(db, sql, params)
    assert emu.sql(db, "SELECT count(*) AS n FROM users") == [{"n": 0}]


def test_a_rename_to_an_internal_name_is_refused_over_http(tmp_path: Path) -> None:
    with D1Emulator(tmp_path / "emu") as emu:
        db_id = emu.create_database("app")
        client = emu.client()
        client.query(db_id, "CREATE TABLE t (a)")
        with pytest.raises(RemoteError) as info:
            client.query(db_id, "ALTER TABLE t RENAME TO _cf_t", write=True)
        assert "not authorized" in str(info.value)
        assert emu.sql(db_id, "SELECT name FROM sqlite_schema WHERE type = 'table'") == [
            {"name": "t"}
        ]


# --- the API limit, body size, garbled answers ---------------------------------------------------


def _list(emu: D1Emulator) -> httpx.Response:
    return httpx.get(
        f"{emu.url}/accounts/{emu.account_id}/d1/database",
        headers={"Authorization": f"Bearer {emu.token}"},
    )


def test_rate_limit_blocks_every_call_for_the_window_after_one_too_many(tmp_path: Path) -> None:
    limit = testing.RateLimit(3, 0.6)
    with D1Emulator(tmp_path / "d1", rate_limit=limit) as emu:
        assert [_list(emu).status_code for _ in range(3)] == [200, 200, 200]
        over = _list(emu)
        assert over.status_code == 429 and over.headers["Retry-After"] == "1"
        time.sleep(0.3)
        assert _list(emu).status_code == 429  # the block holds though the window moved on
        time.sleep(0.7)
        assert _list(emu).status_code == 200
        assert limit.refused == 2 and limit.admitted == 4


def test_rate_limit_counts_arrivals_in_a_sliding_window(tmp_path: Path) -> None:
    limit = testing.RateLimit(2, 0.5)
    with D1Emulator(tmp_path / "d1", rate_limit=limit) as emu:
        for _ in range(4):
            assert _list(emu).status_code == 200
            time.sleep(0.3)
        assert limit.refused == 0


def test_a_body_over_the_limit_is_refused_before_it_is_read(tmp_path: Path) -> None:
    with D1Emulator(tmp_path / "d1", max_body_bytes=2_000) as emu:
        client = emu.client(retry=RetryPolicy(attempts=1))
        db = emu.create_database("app")
        with pytest.raises(RemoteError, match="too large: 3") as info:
            client.query(db, "SELECT '" + "x" * 3_000 + "'")
        assert info.value.status == 413
        assert client.query(db, "SELECT 1 AS n")[0].results == [{"n": 1}]


@pytest.mark.parametrize("kind", testing.GARBLED)
def test_a_garbled_answer_after_commit_is_an_ambiguous_write(
    emu: D1Emulator, client: D1Client, db: str, kind: str
) -> None:
    from d1check.remote import AmbiguousWrite

    emu.faults.push(kind)
    with pytest.raises(AmbiguousWrite, match="may or may not have been applied"):
        client.query(db, "CREATE TABLE landed(a)", write=True)
    assert "landed" in tables(emu, db)


@pytest.mark.parametrize("kind", testing.GARBLED)
def test_a_garbled_answer_to_a_read_is_retried(emu: D1Emulator, db: str, kind: str) -> None:
    client = emu.client(sleep=lambda s: None, retry=RetryPolicy(attempts=2))
    emu.faults.push(kind)
    assert client.query(db, "SELECT 1 AS n", write=False)[0].results == [{"n": 1}]
    assert emu.count("/query") == 3  # the schema, the garbled answer, the retry


def test_a_short_answer_lacks_the_last_result(emu: D1Emulator, client: D1Client, db: str) -> None:
    emu.faults.push(testing.SHORT_ANSWER)
    with pytest.raises(RemoteError, match=r"D1 answered 1 result\(s\) for the 2 statement"):
        client.batch(db, [("SELECT 1 AS a", None), ("SELECT 2 AS b", None)], write=False)
