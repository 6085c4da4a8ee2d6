"""The real D1 engine in a container: its REST API, D1's refusals, and its lifecycle."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from d1check.containers import (
    D1EngineContainer,
    EngineUnavailable,
    d1_engine,  # noqa: F401  (the fixture)
    docker_client,
    engine_containers,
    running_engine,
)

pytestmark = pytest.mark.engine_container


@pytest.fixture(autouse=True)
def _docker() -> None:
    try:
        docker_client()
    except EngineUnavailable as error:
        pytest.skip(str(error))


class Api:
    """A thin httpx wrapper over the container's D1 REST API, for the tests only."""

    def __init__(self, engine: D1EngineContainer) -> None:
        self.engine = engine
        self.base = f"{engine.api_base}/accounts/{engine.account_id}/d1/database"
        self.client = httpx.Client(headers={"Authorization": f"Bearer {engine.token}"}, timeout=60)
        self.bodies: list[str] = []

    def call(self, method: str, path: str = "", **kwargs: Any) -> httpx.Response:
        response = self.client.request(method, self.base + path, **kwargs)
        self.bodies.append(response.text)
        return response

    def create(self, name: str) -> str:
        response = self.call("POST", json={"name": name})
        assert response.status_code == 200, response.text
        uuid: str = response.json()["result"]["uuid"]
        return uuid

    def query(self, db: str, body: dict[str, Any], *, raw: bool = False) -> httpx.Response:
        return self.call("POST", f"/{db}/{'raw' if raw else 'query'}", json=body)

    def ok(self, db: str, sql: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
        response = self.query(db, {"sql": sql, "params": params or []})
        assert response.status_code == 200, response.text
        results: list[dict[str, Any]] = response.json()["result"]
        return results

    def error(self, db: str, body: dict[str, Any]) -> str:
        response = self.query(db, body)
        assert response.status_code == 400, response.text
        payload = response.json()
        assert payload["success"] is False
        assert payload["errors"][0]["code"] == 7500
        message: str = payload["errors"][0]["message"]
        return message

    def tables(self, db: str) -> list[str]:
        rows = self.ok(db, "SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")
        return [row["name"] for row in rows[0]["results"]]


@pytest.fixture()
def api(d1_engine: D1EngineContainer) -> Iterator[Api]:  # noqa: F811
    wrapper = Api(d1_engine)
    yield wrapper
    wrapper.client.close()


@pytest.fixture()
def db(api: Api, request: pytest.FixtureRequest) -> str:
    return api.create(request.node.name.replace("[", "-").replace("]", "")[:60])


def test_create_get_list_delete_a_database(api: Api) -> None:
    response = api.call("POST", json={"name": "crud-db"})
    created = response.json()["result"]
    assert response.json()["success"] is True
    assert set(created) == {"uuid", "name", "created_at", "version"}
    assert (created["name"], created["version"]) == ("crud-db", "production")
    assert api.call("GET", f"/{created['uuid']}").json()["result"] == created
    listed = api.call("GET", params={"name": "crud-db"}).json()["result"]
    assert [d["uuid"] for d in listed] == [created["uuid"]]
    assert api.call("DELETE", f"/{created['uuid']}").json()["success"] is True
    missing = api.call("GET", f"/{created['uuid']}")
    assert missing.status_code == 404
    assert missing.json()["errors"][0]["code"] == 7404


def test_a_duplicate_name_is_refused(api: Api) -> None:
    api.create("twice")
    response = api.call("POST", json={"name": "twice"})
    assert response.status_code == 400
    assert "already exists" in response.json()["errors"][0]["message"]


def test_query_binds_params_and_reports_meta(api: Api, db: str) -> None:
    api.ok(db, "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL)")
    inserted = api.ok(db, "INSERT INTO users (email) VALUES (?)", ["a@example.com"])[0]
    assert inserted["meta"]["changes"] == 1
    assert inserted["meta"]["last_row_id"] == 1
    rows = api.ok(db, "SELECT id, email FROM users WHERE email = ?", ["a@example.com"])
    assert rows[0]["results"] == [{"id": 1, "email": "a@example.com"}]


def test_several_statements_answer_one_result_each(api: Api, db: str) -> None:
    results = api.ok(
        db,
        "CREATE TABLE t (x); INSERT INTO t VALUES (1); -- a comment; with a semicolon\n"
        "CREATE TRIGGER tr AFTER INSERT ON t BEGIN UPDATE t SET x = x; END;\n"
        "SELECT x FROM t;",
    )
    assert len(results) == 4
    assert results[3]["results"] == [{"x": 1}]


def test_a_failing_statement_leaves_nothing_behind(api: Api, db: str) -> None:
    message = api.error(
        db, {"sql": "CREATE TABLE a (x); INSERT INTO a VALUES (1); INSERT INTO nope VALUES (1);"}
    )
    assert message == "D1_ERROR: no such table: nope: SQLITE_ERROR"
    assert api.tables(db) == []


def test_batch_runs_all_or_nothing(api: Api, db: str) -> None:
    good = api.query(
        db,
        {
            "batch": [
                {"sql": "CREATE TABLE b (x)"},
                {"sql": "INSERT INTO b VALUES (?)", "params": [7]},
                {"sql": "SELECT x FROM b"},
            ]
        },
    )
    assert good.status_code == 200, good.text
    assert good.json()["result"][2]["results"] == [{"x": 7}]
    api.error(
        db,
        {
            "batch": [
                {"sql": "INSERT INTO b VALUES (?)", "params": [8]},
                {"sql": "INSERT INTO b VALUES (?, ?)", "params": [9, 10]},
            ]
        },
    )
    assert api.ok(db, "SELECT count(*) AS n FROM b")[0]["results"] == [{"n": 1}]


def test_raw_answers_columns_and_rows(api: Api, db: str) -> None:
    api.ok(db, "CREATE TABLE r (a INTEGER, b TEXT)")
    api.ok(db, "INSERT INTO r VALUES (1, 'one')")
    full = api.query(db, {"sql": "SELECT a, b, a AS a FROM r"}, raw=True).json()["result"][0]
    assert full["results"] == {"columns": ["a", "b", "a"], "rows": [[1, "one", 1]]}
    empty = api.query(db, {"sql": "SELECT a, b FROM r WHERE a > ?", "params": [5]}, raw=True)
    assert empty.json()["result"][0]["results"] == {"columns": ["a", "b"], "rows": []}


WIDE = ", ".join(f"c{i} INTEGER" for i in range(101))
NARROW = ", ".join(f"c{i} INTEGER" for i in range(100))


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("ATTACH DATABASE 'other.db' AS other", "D1_ERROR: not authorized: SQLITE_AUTH"),
        ("CREATE TABLE _cf_x (a)", "D1_ERROR: not authorized: SQLITE_AUTH"),
        ('CREATE TABLE "_CF_Y" (a)', "D1_ERROR: not authorized: SQLITE_AUTH"),
        (
            "SELECT sqlite_version()",
            "D1_ERROR: not authorized to use function: sqlite_version at offset 7: SQLITE_ERROR",
        ),
        (f"CREATE TABLE wide ({WIDE})", "D1_ERROR: too many columns on wide: SQLITE_ERROR"),
        ("BEGIN TRANSACTION", "state.storage.transaction"),
        ("SAVEPOINT s", "state.storage.transaction"),
    ],
    ids=["attach", "cf-table", "cf-quoted", "sqlite-version", "101-columns", "begin", "savepoint"],
)
def test_d1_refuses_what_d1_refuses(api: Api, db: str, sql: str, expected: str) -> None:
    message = api.error(db, {"sql": sql})
    assert message.startswith("D1_ERROR: ")
    assert expected in message


@pytest.mark.parametrize(
    "sql",
    ["CREATE TABLE ok (_cf_x INTEGER)", f"CREATE TABLE narrow ({NARROW})", "PRAGMA foreign_keys"],
    ids=["cf-column", "100-columns", "foreign-keys-pragma"],
)
def test_d1_accepts_what_d1_accepts(api: Api, db: str, sql: str) -> None:
    api.ok(db, sql)


def test_foreign_keys_are_enforced(api: Api, db: str) -> None:
    assert api.ok(db, "PRAGMA foreign_keys")[0]["results"] == [{"foreign_keys": 1}]


@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [
        ({"Authorization": "Bearer wrong"}, 401, 10000),
        ({}, 401, 10000),
    ],
    ids=["wrong-token", "no-token"],
)
def test_a_request_without_the_token_is_refused(
    d1_engine: D1EngineContainer,  # noqa: F811
    headers: dict[str, str],
    status: int,
    code: int,
) -> None:
    url = f"{d1_engine.api_base}/accounts/{d1_engine.account_id}/d1/database"
    response = httpx.get(url, headers=headers)
    assert response.status_code == status
    assert response.json()["errors"][0]["code"] == code
    assert d1_engine.token not in response.text


def test_another_account_is_refused(api: Api) -> None:
    other = api.base.replace(api.engine.account_id, "0" * 32)
    response = api.client.get(other)
    assert response.status_code == 403
    assert response.json()["success"] is False


def test_a_fleet_of_300_databases_grows_the_pool_and_keeps_data(api: Api) -> None:
    first = api.create("fleet-0")
    api.ok(first, "CREATE TABLE kept (x); INSERT INTO kept VALUES (42);")
    ids = [first] + [api.create(f"fleet-{i}") for i in range(1, 300)]
    for uuid in ids[-5:]:
        api.ok(uuid, "CREATE TABLE t (x)")
    assert api.ok(first, "SELECT x FROM kept")[0]["results"] == [{"x": 42}]
    names = {d["name"] for d in api.call("GET", params={"name": "fleet-"}).json()["result"]}
    assert len(names) == 300


def test_the_token_never_appears_in_outputs(api: Api, db: str) -> None:
    api.error(db, {"sql": "SELECT * FROM nope"})
    api.call("GET")
    logs = b"".join(api.engine.get_logs()).decode()
    assert "d1-engine ready" in logs
    for text in [*api.bodies, logs, repr(api.engine)]:
        assert api.engine.token not in text


def test_the_container_is_removed_when_its_block_ends() -> None:
    with running_engine() as engine:
        name = engine.container_name
        assert docker_client().containers.get(name).status == "running"
        assert engine.get_wrapped_container().id in engine_containers()
    assert not docker_client().containers.list(all=True, filters={"name": name})


def test_the_fixture_leaves_no_container(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(sys.path))
    pytester.makeconftest('pytest_plugins = ["d1check.containers"]')
    pytester.makepyfile(
        textwrap.dedent(
            """
            def test_engine(d1_engine):
                with open("name.txt", "w") as f:
                    f.write(d1_engine.container_name)
                assert d1_engine.api_base.startswith("http://127.0.0.1:")
            """
        )
    )
    result = pytester.runpytest_subprocess("-p", "no:d1check", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    name = (pytester.path / "name.txt").read_text()
    assert not docker_client().containers.list(all=True, filters={"name": name})


def _engine_process() -> subprocess.Popen[str]:
    code = "from d1check.containers import run_engine_forever; run_engine_forever()"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env
    )


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_engine_command_prints_exports_and_cleans_up_on_signal(signum: int) -> None:
    process = _engine_process()
    assert process.stdout is not None
    exports = dict(
        process.stdout.readline().strip().removeprefix("export ").split("=", 1) for _ in range(3)
    )
    assert set(exports) == {"D1CHECK_API_BASE", "CLOUDFLARE_ACCOUNT_ID", "CLOUDFLARE_API_TOKEN"}
    url = f"{exports['D1CHECK_API_BASE']}/accounts/{exports['CLOUDFLARE_ACCOUNT_ID']}/d1/database"
    auth = {"Authorization": f"Bearer {exports['CLOUDFLARE_API_TOKEN']}"}
    assert httpx.get(url, headers=auth).status_code == 200
    process.stdout.readline()
    port = exports["D1CHECK_API_BASE"].split(":")[2].split("/")[0]
    process.send_signal(signum)
    assert process.wait(timeout=30) == 0
    assert "removed" in process.stdout.read()
    time.sleep(0.1)
    prefix = f"d1check-engine-{port}-"
    assert not docker_client().containers.list(all=True, filters={"name": prefix})
