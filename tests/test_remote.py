"""The D1 REST client: configuration, retries, ambiguous writes, the budget, redaction."""

from __future__ import annotations

import json
import logging
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from d1check.errors import ConfigError, RemoteError
from d1check.remote import (
    DEFAULT_API_BASE,
    AmbiguousWrite,
    D1Client,
    Redactor,
    RequestBudget,
    RetryPolicy,
    clean_token,
    looks_read_only,
    parse_budget,
    parse_retry_after,
)
from d1check.testing import COMMIT_THEN_DROP, COMMIT_THEN_ERROR, DROP, ERROR, D1Emulator, Fault

TOKEN = "s3cr3t-T0ken_value-1234567890abcdef"
ACCOUNT = "acc0123"
DB = "db-uuid"


class FakeClock:
    """A clock whose sleep only moves time forward."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def ok(result: object) -> httpx.Response:
    return httpx.Response(
        200, json={"result": result, "success": True, "errors": [], "messages": []}
    )


def fail(
    status: int, code: int, message: str, headers: dict[str, str] | None = None
) -> httpx.Response:
    body = {"result": None, "success": False, "errors": [{"code": code, "message": message}]}
    return httpx.Response(status, json=body, headers=headers)


Handler = Callable[[httpx.Request], httpx.Response]


def mock_client(handler: Handler, **kwargs: object) -> tuple[D1Client, FakeClock]:
    clock = FakeClock()
    defaults: dict[str, object] = {"sleep": clock.sleep, "rng": lambda: 1.0}
    defaults.update(kwargs)
    client = D1Client(
        ACCOUNT,
        TOKEN,
        api_base="https://api.example.test/client/v4",
        transport=httpx.MockTransport(handler),
        **defaults,  # type: ignore[arg-type]
    )
    return client, clock


def scripted(*answers: httpx.Response | Exception) -> tuple[Handler, list[httpx.Request]]:
    """A handler answering in order; records the requests it saw."""
    seen: list[httpx.Request] = []
    queue = list(answers)

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = queue.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    return handler, seen


ROWS = [{"results": [{"n": 1}], "success": True, "meta": {"changes": 0}}]


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CLOUDFLARE_ACCOUNT_ID", "CLOUDFLARE_API_TOKEN", "D1CHECK_API_BASE"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[D1Emulator]:
    with D1Emulator(tmp_path / "d1", token=TOKEN) as emu:
        yield emu


# --- configuration --------------------------------------------------------------------------


def test_default_api_base_is_cloudflare() -> None:
    assert D1Client(ACCOUNT, TOKEN).api_base == DEFAULT_API_BASE


def test_env_replaces_the_api_base_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("D1CHECK_API_BASE", "http://127.0.0.1:8787/client/v4/")
    assert D1Client(ACCOUNT, TOKEN).api_base == "http://127.0.0.1:8787/client/v4"


@pytest.mark.parametrize(
    "base",
    ["http://127.0.0.1:1/v4", "http://127.9.9.9/v4", "http://[::1]:80/v4", "http://localhost/v4"],
)
def test_plain_http_is_accepted_on_loopback(base: str) -> None:
    assert D1Client(ACCOUNT, TOKEN, api_base=base).api_base == base


@pytest.mark.parametrize(
    "base", ["http://api.cloudflare.com/client/v4", "http://10.0.0.5/v4", "http://128.0.0.1/v4"]
)
def test_plain_http_is_refused_off_loopback(base: str) -> None:
    with pytest.raises(ConfigError, match="plain http on a host that is not loopback"):
        D1Client(ACCOUNT, TOKEN, api_base=base)


def test_plain_http_from_env_is_refused_off_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("D1CHECK_API_BASE", "http://example.com/client/v4")
    with pytest.raises(ConfigError, match="D1CHECK_API_BASE"):
        D1Client(ACCOUNT, TOKEN)


def test_from_env_reads_account_and_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLOUDFLARE_ACCOUNT_ID", "env-acc")
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", TOKEN)
    assert D1Client.from_env().account_id == "env-acc"
    assert D1Client.from_env("arg-acc").account_id == "arg-acc"


def test_from_env_names_the_missing_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="CLOUDFLARE_ACCOUNT_ID"):
        D1Client.from_env()
    monkeypatch.setenv("CLOUDFLARE_ACCOUNT_ID", "acc")
    with pytest.raises(ConfigError, match="CLOUDFLARE_API_TOKEN"):
        D1Client.from_env()


# --- requests and answers -------------------------------------------------------------------


def test_query_sends_sql_params_and_bearer_token() -> None:
    handler, seen = scripted(ok(ROWS))
    client, _ = mock_client(handler)
    [result] = client.query(DB, "SELECT ? AS n", [1])
    assert result.results == [{"n": 1}] and result.success and result.meta == {"changes": 0}
    request = seen[0]
    assert request.url.path == f"/client/v4/accounts/{ACCOUNT}/d1/database/{DB}/query"
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert json.loads(request.content) == {"sql": "SELECT ? AS n", "params": [1]}


def test_repeated_requests_reuse_the_url_and_keep_params_and_token() -> None:
    handler, seen = scripted(ok(ROWS), ok(ROWS), ok({"bookmark": "b1"}), ok({"bookmark": "b2"}))
    client, _ = mock_client(handler)
    client.query(DB, "SELECT 1")
    client.query(DB, "SELECT 1")
    assert client.bookmark(DB) == "b1"
    assert client.bookmark(DB, "2024-01-01T00:00:00Z") == "b2"
    assert seen[0].url == seen[1].url and not seen[2].url.query
    assert seen[3].url.params["timestamp"] == "2024-01-01T00:00:00Z"
    assert all(r.headers["authorization"] == f"Bearer {TOKEN}" for r in seen)


def test_batch_sends_each_statement_with_its_params() -> None:
    handler, seen = scripted(ok(ROWS + ROWS))
    client, _ = mock_client(handler)
    assert len(client.batch(DB, [("INSERT INTO t VALUES (?)", [1]), ("SELECT 1", None)])) == 2
    assert json.loads(seen[0].content) == {
        "batch": [
            {"sql": "INSERT INTO t VALUES (?)", "params": [1]},
            {"sql": "SELECT 1", "params": []},
        ]
    }


def test_d1_error_keeps_code_and_message() -> None:
    handler, _ = scripted(fail(400, 7500, "D1_ERROR: no such table: x: SQLITE_ERROR"))
    client, _ = mock_client(handler)
    with pytest.raises(RemoteError) as info:
        client.query(DB, "SELECT * FROM x")
    assert info.value.code == 7500 and info.value.status == 400
    assert str(info.value).startswith("D1_ERROR: no such table: x: SQLITE_ERROR")
    assert not isinstance(info.value, AmbiguousWrite)


def test_non_json_answer_is_a_remote_error() -> None:
    handler, _ = scripted(httpx.Response(502, text="<html>bad gateway</html>"))
    client, _ = mock_client(handler, retry=RetryPolicy(attempts=1))
    with pytest.raises(RemoteError, match="not a D1 API answer"):
        client.query(DB, "SELECT 1")


def test_list_databases_follows_pages() -> None:
    page1 = [{"uuid": f"u{i}", "name": f"n{i}"} for i in range(2)]
    handler, seen = scripted(ok(page1), ok([{"uuid": "u2", "name": "n2"}]))
    client, _ = mock_client(handler)
    assert [d.uuid for d in client.list_databases(per_page=2)] == ["u0", "u1", "u2"]
    assert [r.url.params["page"] for r in seen] == ["1", "2"]


def test_export_polls_then_downloads_without_the_token() -> None:
    polling = {"status": "active", "at_bookmark": "bm1"}
    done = {
        "status": "complete",
        "at_bookmark": "bm1",
        "result": {"signed_url": "https://r2.test/x.sql"},
    }
    handler, seen = scripted(ok(polling), ok(done), httpx.Response(200, text="CREATE TABLE t(a);"))
    client, clock = mock_client(handler, export_poll_interval=0.25)
    assert client.export(DB) == "CREATE TABLE t(a);"
    assert json.loads(seen[1].content)["current_bookmark"] == "bm1"
    assert json.loads(seen[0].content)["dump_options"] == {"no_data": True}
    assert "authorization" not in seen[2].headers
    assert clock.slept == [0.25]


def test_export_refuses_a_plain_http_download_off_loopback() -> None:
    done = {
        "status": "complete",
        "at_bookmark": "b",
        "result": {"signed_url": "http://evil.test/x"},
    }
    handler, _ = scripted(ok(done))
    client, _ = mock_client(handler)
    with pytest.raises(ConfigError, match="export download URL"):
        client.export(DB)


# --- retries ----------------------------------------------------------------------------------


def test_read_is_retried_on_500_with_backoff() -> None:
    handler, seen = scripted(fail(500, 7500, "Internal"), fail(503, 7500, "Busy"), ok(ROWS))
    client, clock = mock_client(handler, retry=RetryPolicy(attempts=5, base=0.5, cap=30))
    assert client.query(DB, "SELECT 1")[0].results == [{"n": 1}]
    assert len(seen) == 3
    assert clock.slept == [0.5, 1.0]  # rng() = 1.0: full jitter at its top


def test_backoff_is_capped() -> None:
    handler, _ = scripted(*[fail(500, 1, "x")] * 4, ok(ROWS))
    client, clock = mock_client(handler, retry=RetryPolicy(attempts=5, base=1, cap=3))
    client.query(DB, "SELECT 1")
    assert clock.slept == [1.0, 2.0, 3.0, 3.0]


def test_read_gives_up_after_the_attempts() -> None:
    handler, seen = scripted(*[fail(500, 7500, "Internal")] * 3)
    client, _ = mock_client(handler, retry=RetryPolicy(attempts=3))
    with pytest.raises(RemoteError, match="Internal") as info:
        client.query(DB, "SELECT 1")
    assert len(seen) == 3 and info.value.status == 500


def test_429_honours_retry_after() -> None:
    handler, seen = scripted(fail(429, 971, "slow down", {"Retry-After": "7"}), ok(ROWS))
    client, clock = mock_client(handler)
    client.query(DB, "SELECT 1")
    assert clock.slept == [7.0] and len(seen) == 2


def test_429_on_a_write_is_retried() -> None:
    handler, seen = scripted(fail(429, 971, "slow down", {"Retry-After": "2"}), ok(ROWS))
    client, clock = mock_client(handler)
    client.query(DB, "INSERT INTO t VALUES (1)", write=True)
    assert len(seen) == 2 and clock.slept == [2.0]


def test_429_pauses_the_shared_budget() -> None:
    clock = FakeClock()
    budget = RequestBudget(100, 60, clock=clock, sleep=clock.sleep)
    handler, _ = scripted(fail(429, 971, "slow", {"Retry-After": "30"}), ok(ROWS))
    client, _ = mock_client(handler, budget=budget)
    client.query(DB, "SELECT 1")
    assert clock.slept == [30.0]


def test_connect_error_is_retried_even_for_a_write() -> None:
    handler, seen = scripted(httpx.ConnectError("refused"), ok(ROWS))
    client, _ = mock_client(handler)
    client.query(DB, "INSERT INTO t VALUES (1)", write=True)
    assert len(seen) == 2


@pytest.mark.parametrize(
    "answer",
    [
        fail(500, 7500, "Internal"),
        httpx.ReadTimeout("read timed out"),
        httpx.RemoteProtocolError("gone"),
    ],
)
def test_write_is_never_resent_when_it_may_have_landed(answer: httpx.Response | Exception) -> None:
    handler, seen = scripted(answer, ok(ROWS))
    client, _ = mock_client(handler)
    with pytest.raises(AmbiguousWrite, match=r"tracking table|Internal"):
        client.query(DB, "INSERT INTO t VALUES (1)", write=True)
    assert len(seen) == 1


def test_sql_that_is_not_plainly_read_only_counts_as_a_write() -> None:
    handler, seen = scripted(httpx.ReadTimeout("timed out"))
    client, _ = mock_client(handler)
    with pytest.raises(AmbiguousWrite):
        client.query(DB, "CREATE TABLE t(a); INSERT INTO t VALUES (1);")
    assert len(seen) == 1


def test_create_and_restore_are_writes() -> None:
    handler, seen = scripted(fail(502, 1, "bad gateway"), fail(502, 1, "bad gateway"))
    client, _ = mock_client(handler)
    with pytest.raises(AmbiguousWrite):
        client.create_database("app")
    with pytest.raises(AmbiguousWrite):
        client.restore(DB, "bm")
    assert len(seen) == 2


@pytest.mark.parametrize(
    ("sql", "read"),
    [
        ("SELECT * FROM t", True),
        ("  -- comment\nselect 1;", True),
        ("PRAGMA table_info(users)", True),
        ("PRAGMA foreign_keys = ON", False),
        ("INSERT INTO t VALUES (1)", False),
        ("WITH x AS (SELECT 1) DELETE FROM t", False),
        ("SELECT 1; DELETE FROM t", False),
        ("SELECT '--'; DELETE FROM t", False),
    ],
)
def test_looks_read_only(sql: str, read: bool) -> None:
    assert looks_read_only(sql) is read


def test_parse_retry_after() -> None:
    assert parse_retry_after("12") == 12.0
    assert parse_retry_after("Thu, 01 Jan 1970 00:01:40 GMT", now=40.0) == 60.0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


# --- over real HTTP against the emulator ---------------------------------------------------------


def test_emulator_500_on_a_read_is_retried(emulator: D1Emulator) -> None:
    db = emulator.create_database("app")
    emulator.faults.push(ERROR, ERROR, match="/query")
    client = emulator.client(sleep=lambda s: None)
    assert client.query(db, "SELECT 1 AS one")[0].results == [{"one": 1}]
    assert emulator.count("/query") == 3


def test_emulator_429_is_retried_after_its_retry_after(emulator: D1Emulator) -> None:
    db = emulator.create_database("app")
    emulator.faults.push(Fault("rate_limit", "/query", retry_after=3))
    slept: list[float] = []
    client = emulator.client(sleep=slept.append)
    client.query(db, "CREATE TABLE t(a)", write=True)
    assert slept == [3.0] and emulator.count("/query") == 2
    assert emulator.sql(db, "SELECT name FROM sqlite_schema") == [{"name": "t"}]


@pytest.mark.parametrize("fault", [COMMIT_THEN_ERROR, COMMIT_THEN_DROP])
def test_emulator_write_that_landed_raises_ambiguous_and_is_not_resent(
    emulator: D1Emulator, fault: str
) -> None:
    db = emulator.create_database("app")
    client = emulator.client(sleep=lambda s: None)
    client.query(db, "CREATE TABLE d1_migrations(id INTEGER PRIMARY KEY, name TEXT UNIQUE)")
    emulator.faults.push(fault, match="/query")
    with pytest.raises(AmbiguousWrite):
        client.query(db, "INSERT INTO d1_migrations(name) VALUES ('0001_init.sql')", write=True)
    assert emulator.count("/query") == 2
    rows = client.query(db, "SELECT name FROM d1_migrations")[0].results
    assert rows == [{"name": "0001_init.sql"}]


def test_emulator_dropped_write_that_did_not_land_is_still_ambiguous(emulator: D1Emulator) -> None:
    db = emulator.create_database("app")
    emulator.faults.push(DROP, match="/query")
    client = emulator.client(sleep=lambda s: None)
    with pytest.raises(AmbiguousWrite):
        client.query(db, "CREATE TABLE t(a)", write=True)
    assert emulator.sql(db, "SELECT name FROM sqlite_schema") == []


def test_emulator_timeout_on_a_read_is_retried(emulator: D1Emulator) -> None:
    db = emulator.create_database("app")
    emulator.faults.push(Fault("timeout", "/query", seconds=1.0))
    client = emulator.client(sleep=lambda s: None, timeout=httpx.Timeout(0.3))
    assert client.query(db, "SELECT 2 AS two")[0].results == [{"two": 2}]


def test_emulator_timeout_on_a_write_is_ambiguous(emulator: D1Emulator) -> None:
    db = emulator.create_database("app")
    emulator.faults.push(Fault("timeout", "/query", seconds=1.0))
    client = emulator.client(sleep=lambda s: None, timeout=httpx.Timeout(0.3))
    with pytest.raises(AmbiguousWrite, match="ReadTimeout"):
        client.query(db, "CREATE TABLE t(a)", write=True)


def test_connection_refused_is_a_remote_error_after_retries(tmp_path: Path) -> None:
    with D1Emulator(tmp_path / "gone") as emu:
        url = emu.url
    client = D1Client(
        ACCOUNT, TOKEN, api_base=url, sleep=lambda s: None, retry=RetryPolicy(attempts=2)
    )
    with pytest.raises(RemoteError, match="cannot connect"):
        client.list_databases()
    assert client.requests_sent == 2


# --- the budget -------------------------------------------------------------------------------


def test_parse_budget() -> None:
    budget = parse_budget("1200/300")
    assert budget is not None and (budget.requests, budget.seconds) == (1200, 300.0)
    assert parse_budget("none") is None and parse_budget("NONE") is None


@pytest.mark.parametrize("text", ["", "1200", "0/300", "10/0", "ten/5", "-1/5"])
def test_parse_budget_rejects_bad_values(text: str) -> None:
    with pytest.raises(ConfigError, match="N/S"):
        parse_budget(text)


def test_budget_counts_a_request_from_sending_until_a_window_after_its_answer() -> None:
    clock = FakeClock()
    budget = RequestBudget(3, 10, margin=0.5, clock=clock, sleep=clock.sleep)
    starts, answers = [], []
    for _ in range(7):
        with budget.slot():
            starts.append(clock.now - 1000)
            clock.now += 1  # each request takes a second to be answered
            answers.append(clock.now - 1000)
    assert starts == [0, 1, 2, 11.5, 12.5, 13.5, 23]
    # the server counts each request somewhere between its start and its answer: whatever it
    # picks, no window of 10 s holds more than 3
    for late in (False, True):
        seen = answers if late else starts
        for t in seen:
            assert sum(1 for s in seen if t <= s < t + 10) <= 3
    assert budget.eta(7) == 21 and budget.eta(3) == 0 and budget.eta(0) == 0


def test_budget_holds_slots_of_requests_still_out() -> None:
    clock = FakeClock()
    budget = RequestBudget(2, 10, margin=0, clock=clock, sleep=clock.sleep)
    budget.acquire()
    budget.acquire()
    assert budget.sent_in_window() == 2
    clock.now += 100  # still out after 100 s: still counted
    assert budget.sent_in_window() == 2
    budget.release()
    assert budget.sent_in_window() == 2
    clock.now += 10
    assert budget.sent_in_window() == 1


def test_budget_margin_defaults_to_two_percent_of_the_window() -> None:
    budget = parse_budget("1200/300")
    assert budget is not None and budget.margin == 6.0
    assert RequestBudget(20, 2).margin == 0.1


def test_client_holds_to_the_budget_over_http(emulator: D1Emulator) -> None:
    clock = FakeClock()
    budget = RequestBudget(4, 60, margin=0, clock=clock, sleep=clock.sleep)
    db = emulator.create_database("app")
    client = emulator.client(budget=budget)
    sent_at = []
    for _ in range(9):
        client.query(db, "SELECT 1")
        sent_at.append(clock.now - 1000)
    assert sent_at == [0, 0, 0, 0, 60, 60, 60, 60, 120]
    assert emulator.count("/query") == 9


# --- the token never shows ------------------------------------------------------------------------


def _all_text(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc)) + repr(exc) + str(exc)


def test_token_is_redacted_from_transport_errors() -> None:
    handler, _ = scripted(httpx.ConnectError(f"cannot reach https://x/?t={TOKEN} Bearer {TOKEN}"))
    client, _ = mock_client(handler, retry=RetryPolicy(attempts=1))
    with pytest.raises(RemoteError) as info:
        client.query(DB, "SELECT 1")
    assert TOKEN not in _all_text(info.value)
    assert "[REDACTED]" in str(info.value)


def test_token_is_redacted_from_error_answers() -> None:
    handler, _ = scripted(fail(400, 7500, f"bad token {TOKEN}"))
    client, _ = mock_client(handler)
    with pytest.raises(RemoteError) as info:
        client.query(DB, "SELECT 1")
    assert TOKEN not in _all_text(info.value)


def test_token_is_not_in_repr_nor_logs(
    emulator: D1Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client = emulator.client(sleep=lambda s: None)
    db = emulator.create_database("app")
    emulator.faults.push(DROP, match="/query")
    with pytest.raises(AmbiguousWrite) as info:
        client.query(db, "CREATE TABLE t(a)")
    emulator.faults.push(ERROR, match="/query")
    client.query(db, "SELECT 1")
    assert "retrying in" in caplog.text
    assert TOKEN not in repr(client) + str(vars(client).get("budget"))
    assert TOKEN not in _all_text(info.value)
    assert caplog.records and TOKEN not in caplog.text


def test_wrong_token_is_401_without_the_token(emulator: D1Emulator) -> None:
    client = D1Client(emulator.account_id, "wrong-token-value", api_base=emulator.url)
    with pytest.raises(RemoteError) as info:
        client.list_databases()
    assert info.value.status == 401 and info.value.code == 10000
    assert "CLOUDFLARE_API_TOKEN" in str(info.value)
    assert "wrong-token-value" not in _all_text(info.value)


# --- the token as the environment gives it ----------------------------------------------------


def test_token_whitespace_around_it_is_stripped_and_requests_succeed(
    emulator: D1Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    client = D1Client(emulator.account_id, f"  {TOKEN}\r\n", api_base=emulator.url)
    assert client.list_databases() == []
    assert caplog.records and TOKEN not in caplog.text


@pytest.mark.parametrize(
    ("token", "kind"),
    [
        (f"{TOKEN[:8]}\n{TOKEN[8:]}", "a control character at position 9"),
        (f"{TOKEN[:5]}\x1b{TOKEN[5:]}", "a control character at position 6"),
        (f"{TOKEN}é", "a non-ASCII character"),
        (f"{TOKEN[:3]}\u200b{TOKEN[3:]}", "a non-ASCII character at position 4"),
    ],
)
def test_token_with_a_control_or_non_ascii_character_is_refused_without_showing_it(
    token: str, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ConfigError, match=kind) as info:
        D1Client(ACCOUNT, token)
    assert TOKEN[:8] not in _all_text(info.value) and "CLOUDFLARE_API_TOKEN" in str(info.value)
    monkeypatch.setenv("CLOUDFLARE_ACCOUNT_ID", ACCOUNT)
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", token)
    with pytest.raises(ConfigError, match=kind):
        D1Client.from_env()


def test_clean_token_keeps_a_good_token_whole() -> None:
    assert clean_token(f"\t{TOKEN} \n") == TOKEN
    assert clean_token(TOKEN) == TOKEN


@pytest.mark.parametrize(
    "printed",
    [
        f"Illegal header value b'Bearer {TOKEN}\\n'",
        f"Bearer {TOKEN}",
        f"header {TOKEN!r}",
        f"{(TOKEN + chr(10)).encode()!r}",
        f"url ?t={TOKEN}%0A",
        f'json "{TOKEN}\\n"',
    ],
)
def test_redaction_covers_every_printed_form(printed: str) -> None:
    redact = Redactor(TOKEN + "\n")
    assert TOKEN not in redact(printed)
    assert "[REDACTED]" in redact(printed)


def test_redaction_covers_escaped_forms_of_a_token_with_odd_characters() -> None:
    secret = "ab\x01cd-é-" + TOKEN
    text = " ".join([repr(secret), repr(secret.encode()), secret, json.dumps(secret)])
    cleaned = Redactor(secret)(text)
    assert TOKEN not in cleaned and cleaned.count("[REDACTED]") == 4
