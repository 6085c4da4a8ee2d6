"""The D1 REST client: Cloudflare's D1 API over httpx, with retries, a request budget and redaction.

Requests are described by `ApiRequest` values and answers read by pure functions
(`parse_envelope`, `classify_exception`, `retry_delay`) so an async client can reuse them.
"""

from __future__ import annotations

import contextlib
import email.utils
import ipaddress
import json
import logging
import os
import random
import re
import threading
import time
import urllib.parse
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, TypeVar

import httpx

from d1check.errors import ConfigError, RemoteError
from d1check.statements import split_statements

DEFAULT_API_BASE = "https://api.cloudflare.com/client/v4"
API_BASE_ENV = "D1CHECK_API_BASE"
ACCOUNT_ENV = "CLOUDFLARE_ACCOUNT_ID"
TOKEN_ENV = "CLOUDFLARE_API_TOKEN"
DEFAULT_BUDGET = "1200/300"
REDACTED = "[REDACTED]"
DEFAULT_TIMEOUT = httpx.Timeout(40.0, connect=10.0)

_log = logging.getLogger(__name__)
_URL_CACHE = 4096
_AMBIGUOUS = (
    "the write may or may not have been applied: read the tracking table before sending it again"
)

Params = Sequence[object] | None
FailureKind = Literal["rate_limited", "server", "unsent", "lost"]
_Result = TypeVar("_Result")


class AmbiguousWrite(RemoteError):
    """A write failed where D1 may have applied it: read the tracking table before re-sending."""


@dataclass(frozen=True)
class DatabaseInfo:
    """One D1 database as the API lists it."""

    uuid: str
    name: str
    created_at: str = ""
    version: str = ""
    num_tables: int | None = None
    file_size: int | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DatabaseInfo:
        """Read the API's database object."""
        return cls(
            uuid=str(data.get("uuid", "")),
            name=str(data.get("name", "")),
            created_at=str(data.get("created_at") or ""),
            version=str(data.get("version") or ""),
            num_tables=data.get("num_tables"),
            file_size=data.get("file_size"),
        )


@dataclass(frozen=True)
class QueryResult:
    """The result of one statement of a `/query` request: rows as dicts, success, meta."""

    results: list[dict[str, object]]
    success: bool
    meta: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class RawResult:
    """The result of one statement of a `/raw` request: column names and rows as lists."""

    columns: list[str]
    rows: list[list[object]]
    success: bool
    meta: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class Restored:
    """The answer of a Time Travel restore."""

    bookmark: str
    previous_bookmark: str
    message: str


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter; `attempts` counts the first try."""

    attempts: int = 5
    base: float = 0.5
    cap: float = 30.0
    max_retry_after: float = 900.0


@dataclass(frozen=True)
class ApiRequest:
    """One API call, independent of the HTTP library's client (sync or async)."""

    method: str
    path: str
    params: tuple[tuple[str, str], ...] = ()
    body: object | None = None
    write: bool = False


@dataclass(frozen=True)
class Failure:
    """A failed attempt: what kind, the error to raise, and the server's Retry-After."""

    kind: FailureKind
    error: RemoteError
    retry_after: float | None = None


# --- configuration -------------------------------------------------------------------------


def is_loopback(host: str) -> bool:
    """True for localhost, 127.0.0.0/8 and ::1."""
    host = host.strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_api_url(url: str, *, what: str = "D1 API base") -> str:
    """Return `url` without a trailing slash; ConfigError unless https, or http on loopback."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return url.rstrip("/")
    if parts.scheme == "http" and parts.hostname and is_loopback(parts.hostname):
        return url.rstrip("/")
    if parts.scheme == "http":
        raise ConfigError(
            f"{what} {url!r} uses plain http on a host that is not loopback: the API token "
            "would travel unencrypted. Use https, or http only on 127.0.0.1, ::1 or localhost "
            f"(set {API_BASE_ENV} accordingly)."
        )
    raise ConfigError(
        f"{what} {url!r} is not an http(s) URL; expected e.g. {DEFAULT_API_BASE} "
        f"or http://127.0.0.1:8787/client/v4 (set {API_BASE_ENV})."
    )


def resolve_api_base(api_base: str | None = None) -> str:
    """The API base: the argument, else `D1CHECK_API_BASE`, else Cloudflare's."""
    return check_api_url(api_base or os.environ.get(API_BASE_ENV) or DEFAULT_API_BASE)


# --- the request budget ----------------------------------------------------------------------


def default_margin(seconds: float) -> float:
    """The safety margin a budget adds to its window: 2 % of it, at least 0.1 s (6 s for the
    default 1200/300) — for the server's clock running apart from ours and its window edges."""
    return max(0.1, 0.02 * seconds)


class RequestBudget:
    """At most `requests` requests in any window of `seconds` seconds of the server's clock
    (thread-safe), by construction.

    A request holds a slot from the moment it is sent (`acquire`) until its answer is back
    (`release`), and then counts for `seconds + margin` after that completion. The server counts
    a request when it arrives, some time between those two moments, so in any window of the
    server's clock no more than `requests` requests can arrive: when the last of them was sent,
    every other one was either in flight or completed less than a window before, and all of those
    held slots. The margin (`default_margin`) absorbs clock drift between us and the server.
    Share one budget between clients to hold a whole run to the account's API limit; every
    attempt, retries and 429s included, takes a slot; `pause` stops every sharer (after a 429,
    for its Retry-After).
    """

    def __init__(
        self,
        requests: int,
        seconds: float,
        *,
        margin: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if requests < 1 or seconds <= 0:
            raise ConfigError(f"request budget {requests}/{seconds}: both must be positive")
        self.requests = requests
        self.seconds = seconds
        self.margin = default_margin(seconds) if margin is None else margin
        self._clock = clock
        self._sleep = sleep
        self._done: deque[float] = deque()
        self._in_flight = 0
        self._paused_until = 0.0
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"RequestBudget({self.requests}/{self.seconds:g}, margin {self.margin:g}s)"

    def acquire(self) -> float:
        """Wait until one more request fits, hold its slot, and return the seconds waited;
        `release` when its answer is back."""
        waited = 0.0
        while True:
            with self._lock:
                wait = self._wait_needed(self._clock())
                if wait <= 0:
                    self._in_flight += 1
                    return waited
            self._sleep(wait)
            waited += wait

    def release(self) -> None:
        """The answer of a held request is back: it counts for one window from now."""
        with self._lock:
            self._in_flight -= 1
            self._done.append(self._clock())

    @contextmanager
    def slot(self) -> Iterator[float]:
        """Hold a slot while the request is out (yields the seconds waited for it)."""
        waited = self.acquire()
        try:
            yield waited
        finally:
            self.release()

    def pause(self, seconds: float) -> None:
        """Hold every request back for `seconds` from now."""
        with self._lock:
            self._paused_until = max(self._paused_until, self._clock() + seconds)

    def eta(self, count: int) -> float:
        """Seconds before the last of `count` requests may start, from an idle budget."""
        return 0.0 if count <= 0 else ((count - 1) // self.requests) * (self.seconds + self.margin)

    def sent_in_window(self) -> int:
        """How many requests count now: those out and those answered within the window."""
        with self._lock:
            self._expire(self._clock())
            return self._in_flight + len(self._done)

    def _wait_needed(self, now: float) -> float:
        self._expire(now)
        wait = self._paused_until - now
        if self._in_flight + len(self._done) >= self.requests:
            frees = self._done[0] + self.seconds + self.margin - now if self._done else 0.0
            wait = max(wait, frees, _POLL)
        return wait

    def _expire(self, now: float) -> None:
        while self._done and self._done[0] <= now - self.seconds - self.margin:
            self._done.popleft()


_POLL = 0.01


def parse_budget(text: str) -> RequestBudget | None:
    """`"1200/300"` → a budget of 1200 requests per 300 s; `"none"` → no budget."""
    value = text.strip().lower()
    if value in ("none", "off", "unlimited"):
        return None
    match = re.fullmatch(r"(\d+)\s*/\s*(\d+(?:\.\d+)?)s?", value)
    if not match or int(match[1]) < 1 or float(match[2]) <= 0:
        raise ConfigError(
            f"API budget {text!r} is not N/S (at most N requests in any S seconds, e.g. "
            f"{DEFAULT_BUDGET}) nor 'none'; fix --api-budget."
        )
    return RequestBudget(int(match[1]), float(match[2]))


# --- pure request and response handling ----------------------------------------------------


def clean_token(token: str) -> str:
    """The API token without surrounding whitespace (as other Cloudflare clients read it).

    ConfigError, naming neither the token nor the character, when what is left holds a control
    or non-ASCII character: such a token cannot be sent in an HTTP header.
    """
    value = token.strip()
    for position, char in enumerate(value, 1):
        if not " " <= char <= "~":
            kind = "a non-ASCII character" if ord(char) > 127 else "a control character"
            raise ConfigError(
                f"{TOKEN_ENV} holds {kind} at position {position} of {len(value)}: an API token "
                "is printable ASCII; copy the token again from the Cloudflare dashboard and "
                "set it without it"
            )
    return value


def check_token_env() -> None:
    """ConfigError when `CLOUDFLARE_API_TOKEN` is set to something that cannot be a token
    (checked before any work, so a bad token is a usage error, not a failure halfway)."""
    clean_token(os.environ.get(TOKEN_ENV, ""))


def secret_forms(secret: str) -> set[str]:
    """Every way an exception or a log line may print `secret`: raw, stripped, URL-encoded,
    escaped as in a str or bytes repr, and as JSON."""
    forms: set[str] = set()
    for value in {secret, secret.strip()}:
        forms |= {
            value,
            urllib.parse.quote(value, safe=""),
            urllib.parse.quote_plus(value),
            repr(value)[1:-1],
            json.dumps(value)[1:-1],
            repr(value.encode("utf-8", "backslashreplace"))[2:-1],
        }
    return {f for f in forms if len(f) >= 4 or f == secret.strip()} - {""}


class Redactor:
    """Removes a secret, in every form `secret_forms` knows, from any text."""

    def __init__(self, secret: str) -> None:
        self._forms = sorted(secret_forms(secret), key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for form in self._forms:
            text = text.replace(form, REDACTED)
        return text


def _statement_body(sql: str, params: Params) -> dict[str, object]:
    return {"sql": sql, "params": list(params or [])}


_READ_ONLY = re.compile(
    r"\s*(SELECT|EXPLAIN|VALUES)\b|\s*PRAGMA\s+[\w.]+\s*(\([^)]*\))?\s*;?\s*$", re.I
)


def looks_read_only(sql: str) -> bool:
    """True only for one plain SELECT/EXPLAIN/VALUES or a PRAGMA read (conservative)."""
    text = re.sub(r"^(\s|--[^\n]*\n|/\*.*?\*/)*", "", sql, flags=re.S).rstrip().rstrip(";")
    return ";" not in text and bool(_READ_ONLY.match(text))


class RequestBuilder:
    """Builds the API calls of one account."""

    def __init__(self, account_id: str) -> None:
        self.account_id = account_id

    def _db(self, db_id: str = "") -> str:
        base = f"/accounts/{urllib.parse.quote(self.account_id, safe='')}/d1/database"
        return f"{base}/{urllib.parse.quote(db_id, safe='')}" if db_id else base

    def list_databases(self, name: str | None, page: int, per_page: int) -> ApiRequest:
        params = [("page", str(page)), ("per_page", str(per_page))]
        if name:
            params.append(("name", name))
        return ApiRequest("GET", self._db(), tuple(params))

    def get_database(self, db_id: str) -> ApiRequest:
        return ApiRequest("GET", self._db(db_id))

    def create_database(self, name: str) -> ApiRequest:
        return ApiRequest("POST", self._db(), body={"name": name}, write=True)

    def query(self, db_id: str, sql: str, params: Params, *, write: bool, raw: bool) -> ApiRequest:
        path = f"{self._db(db_id)}/{'raw' if raw else 'query'}"
        return ApiRequest("POST", path, body=_statement_body(sql, params), write=write)

    def batch(
        self, db_id: str, statements: Sequence[tuple[str, Params]], write: bool
    ) -> ApiRequest:
        body = {"batch": [_statement_body(sql, params) for sql, params in statements]}
        return ApiRequest("POST", f"{self._db(db_id)}/query", body=body, write=write)

    def export(self, db_id: str, no_data: bool, bookmark: str | None) -> ApiRequest:
        body: dict[str, object] = {"output_format": "polling", "dump_options": {"no_data": no_data}}
        if bookmark:
            body["current_bookmark"] = bookmark
        return ApiRequest("POST", f"{self._db(db_id)}/export", body=body)

    def bookmark(self, db_id: str, timestamp: str | None) -> ApiRequest:
        params = (("timestamp", timestamp),) if timestamp else ()
        return ApiRequest("GET", f"{self._db(db_id)}/time_travel/bookmark", params)

    def restore(self, db_id: str, bookmark: str) -> ApiRequest:
        path = f"{self._db(db_id)}/time_travel/restore"
        return ApiRequest("POST", path, (("bookmark", bookmark),), write=True)


_HINTS = {
    401: "check CLOUDFLARE_API_TOKEN (a token with D1 edit permission)",
    403: "check CLOUDFLARE_ACCOUNT_ID and that the token may use D1 in that account",
    404: "check the database id or name (`d1check status` lists the targets)",
    429: "the account's API rate limit was hit; lower --api-budget",
}


def _error_text(
    req: ApiRequest, status: int, errors: list[dict[str, Any]]
) -> tuple[str, int | None]:
    code = errors[0].get("code") if errors else None
    message = "; ".join(str(e.get("message", "")) for e in errors) or f"HTTP {status}"
    text = f"{message} (D1 API {req.method} {req.path}: HTTP {status}"
    text += f", code {code})" if code is not None else ")"
    if status in _HINTS:
        text += f"; {_HINTS[status]}"
    return text, code if isinstance(code, int) else None


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if re.fullmatch(r"\d+(\.\d+)?", value):
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def parse_envelope(
    req: ApiRequest, status: int, headers: Mapping[str, str], content: bytes, redact: Redactor
) -> object:
    """The `result` of a successful answer; otherwise raise a `Failure`-bearing exception.

    A 2xx answer that is not a successful envelope (cut short, not JSON, empty, `success: false`
    without errors) is treated as a 5xx: a read is retried, a write is ambiguous.
    """
    try:
        data = json.loads(content)
    except ValueError:
        data = None
    envelope = data if isinstance(data, dict) else {}
    errors = [e for e in envelope.get("errors") or [] if isinstance(e, dict)]
    if 200 <= status < 300 and envelope.get("success", False) and not errors:
        return envelope.get("result")
    if not errors and not envelope:
        snippet = content[:200].decode("utf-8", "replace").strip()
        errors = [{"message": f"not a D1 API answer: {snippet!r}"}]
    text, code = _error_text(req, status, errors)
    error_type = RemoteError
    kind: FailureKind | None = None
    if status == 429:
        kind = "rate_limited"
    elif status >= 500 or 200 <= status < 300:
        kind = "server"
        error_type = AmbiguousWrite if req.write else RemoteError
    if error_type is AmbiguousWrite:
        text += f"; {_AMBIGUOUS}"
    error = error_type(redact(text), status=status, code=code)
    if kind is None:
        raise error
    raise _Retryable(Failure(kind, error, parse_retry_after(headers.get("retry-after"))))


class _Retryable(Exception):
    def __init__(self, failure: Failure) -> None:
        super().__init__(str(failure.error))
        self.failure = failure


_UNSENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.ProxyError)


def classify_exception(req: ApiRequest, exc: httpx.HTTPError, redact: Redactor) -> Failure:
    """A transport error as a Failure: `unsent` when the request cannot have reached D1."""
    detail = redact(f"{type(exc).__name__}: {exc}")
    if isinstance(exc, _UNSENT):
        error = RemoteError(f"D1 API {req.method} {req.path}: cannot connect ({detail})")
        return Failure("unsent", error)
    if isinstance(exc, httpx.TransportError) and not isinstance(
        exc, httpx.UnsupportedProtocol | httpx.LocalProtocolError
    ):
        error_type = AmbiguousWrite if req.write else RemoteError
        message = f"D1 API {req.method} {req.path}: no answer ({detail})"
        if req.write:
            message += f"; {_AMBIGUOUS}"
        return Failure("lost", error_type(message))
    raise RemoteError(f"D1 API {req.method} {req.path}: {detail}") from None


def retry_delay(
    failure: Failure,
    attempt: int,
    write: bool,
    policy: RetryPolicy,
    rng: Callable[[], float] = random.random,
) -> float:
    """Seconds to wait before attempt `attempt + 1`; raises the failure's error when none."""
    retryable = failure.kind in ("rate_limited", "unsent") or not write
    if not retryable or attempt >= policy.attempts:
        raise failure.error
    if failure.retry_after is not None:
        return min(failure.retry_after, policy.max_retry_after)
    return rng() * min(policy.cap, policy.base * 2.0 ** (attempt - 1))


def _query_results(result: object) -> list[QueryResult]:
    return [
        QueryResult(
            list(item.get("results") or []), bool(item.get("success")), item.get("meta") or {}
        )
        for item in _items(result)
    ]


def _raw_results(result: object) -> list[RawResult]:
    out = []
    for item in _items(result):
        results = item.get("results") or {}
        out.append(
            RawResult(
                list(results.get("columns") or []),
                [list(r) for r in results.get("rows") or []],
                bool(item.get("success")),
                item.get("meta") or {},
            )
        )
    return out


def expect_results(
    results: list[_Result], count: int, request: str, *, write: bool
) -> list[_Result]:
    """`results` when D1 answered at least one result per statement sent (`count`); else an
    error saying which request it was, how many results were expected and how many came:
    AmbiguousWrite for a write (it may have landed), RemoteError for a read."""
    if len(results) >= count:
        return results
    message = (
        f"{request}: D1 answered {len(results)} result(s) for the {count} statement(s) sent "
        "(one result per statement expected), so d1check cannot read the answer"
    )
    if write:
        raise AmbiguousWrite(f"{message}; {_AMBIGUOUS}")
    raise RemoteError(f"{message}; nothing was changed: run it again")


def _request_label(purpose: str, db_id: str) -> str:
    return f"{purpose} (database {db_id})" if purpose else f"a request to database {db_id}"


def _items(result: object) -> Iterator[dict[str, Any]]:
    if not isinstance(result, list):
        raise RemoteError(f"D1 API answered {type(result).__name__} where a list was expected")
    return (item for item in result if isinstance(item, dict))


def _timestamp(value: datetime | str | None) -> str | None:
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def credentials(account_id: str | None = None) -> tuple[str, str]:
    """The account id (`account_id`, else `CLOUDFLARE_ACCOUNT_ID`) and `CLOUDFLARE_API_TOKEN`;
    ConfigError naming the one that is missing."""
    account = account_id or os.environ.get(ACCOUNT_ENV, "")
    raw = os.environ.get(TOKEN_ENV, "")
    if not account:
        raise ConfigError(
            f"{ACCOUNT_ENV} is not set: export it (or set account_id in the wrangler config)"
        )
    if not clean_token(raw):
        raise ConfigError(f"{TOKEN_ENV} is not set: export a token with D1 edit permission")
    return account, raw


# --- the sync client -----------------------------------------------------------------------


class D1Client:
    """A synchronous client of the D1 REST API of one account.

    `api_base`: the argument, else `D1CHECK_API_BASE`, else Cloudflare's; plain http only on
    loopback. Reads are retried on 429, 5xx and connection errors; a write (`write=True`, or
    SQL that is not plainly read-only) is re-sent only when it cannot have landed (429, no
    connection), and raises `AmbiguousWrite` otherwise.
    """

    def __init__(
        self,
        account_id: str,
        token: str,
        *,
        api_base: str | None = None,
        transport: httpx.BaseTransport | None = None,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        budget: RequestBudget | None = None,
        retry: RetryPolicy = RetryPolicy(),
        sleep: Callable[[float], None] = time.sleep,
        rng: Callable[[], float] = random.random,
        export_poll_interval: float = 1.0,
    ) -> None:
        if not account_id:
            raise ConfigError(f"no Cloudflare account id; set {ACCOUNT_ENV}")
        self._redact = Redactor(token)
        token = clean_token(token)
        if not token:
            raise ConfigError(f"no Cloudflare API token; set {TOKEN_ENV}")
        self.api_base = resolve_api_base(api_base)
        self.account_id = account_id
        self.budget = budget
        self.retry = retry
        self.requests_sent = 0
        self._token = token
        self._build = RequestBuilder(account_id)
        self._sleep = sleep
        self._rng = rng
        self._poll_interval = export_poll_interval
        self._http = httpx.Client(transport=transport, timeout=timeout, follow_redirects=False)
        self._auth = {"Authorization": f"Bearer {token}"}
        self._urls: dict[str, httpx.URL] = {}

    @classmethod
    def from_env(cls, account_id: str | None = None, **kwargs: Any) -> D1Client:
        """A client from `CLOUDFLARE_ACCOUNT_ID` (unless given) and `CLOUDFLARE_API_TOKEN`."""
        account, token = credentials(account_id)
        return cls(account, token, **kwargs)

    def __repr__(self) -> str:
        return f"D1Client(account_id={self.account_id!r}, api_base={self.api_base!r})"

    def __enter__(self) -> D1Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the HTTP connections."""
        self._http.close()

    # databases

    def list_databases(
        self, name: str | None = None, *, per_page: int = 1000
    ) -> list[DatabaseInfo]:
        """Every database of the account (all pages); `name` filters as the API does."""
        found: list[DatabaseInfo] = []
        for page in range(1, 10_000):
            result = self._send(self._build.list_databases(name, page, per_page))
            items = list(_items(result))
            found += [DatabaseInfo.from_json(item) for item in items]
            if not items or len(items) < per_page:
                break
        return found

    def get_database(self, db_id: str) -> DatabaseInfo:
        """One database by its uuid."""
        result = self._send(self._build.get_database(db_id))
        return DatabaseInfo.from_json(result if isinstance(result, dict) else {})

    def database_id(self, name: str) -> str:
        """The uuid of the database named exactly `name`."""
        matches = [db for db in self.list_databases(name=name) if db.name == name]
        if not matches:
            raise RemoteError(
                f"no D1 database named {name!r} in account {self.account_id}; check the name "
                "in the wrangler config, or create it with `wrangler d1 create`"
            )
        return matches[0].uuid

    def create_database(self, name: str) -> DatabaseInfo:
        """Create a database; AmbiguousWrite when it may exist already (list before retrying)."""
        result = self._send(self._build.create_database(name))
        return DatabaseInfo.from_json(result if isinstance(result, dict) else {})

    # SQL

    def query(
        self,
        db_id: str,
        sql: str,
        params: Params = None,
        *,
        write: bool | None = None,
        purpose: str = "",
    ) -> list[QueryResult]:
        """Run `sql` (one or more statements, one transaction); one result per statement
        (RemoteError naming `purpose` when D1 answers fewer)."""
        is_write = _is_write(write, [sql])
        results = _query_results(
            self._send(self._build.query(db_id, sql, params, write=is_write, raw=False))
        )
        label = _request_label(purpose, db_id)
        return expect_results(results, _statement_count(sql), label, write=is_write)

    def batch(
        self,
        db_id: str,
        statements: Sequence[tuple[str, Params]],
        *,
        write: bool | None = None,
        purpose: str = "",
    ) -> list[QueryResult]:
        """Run several statements with their params in one request, as one transaction; one
        result per statement (RemoteError naming `purpose` when D1 answers fewer)."""
        is_write = _is_write(write, [sql for sql, _ in statements])
        results = _query_results(self._send(self._build.batch(db_id, statements, is_write)))
        label = _request_label(purpose, db_id)
        return expect_results(results, len(statements), label, write=is_write)

    def raw(
        self,
        db_id: str,
        sql: str,
        params: Params = None,
        *,
        write: bool | None = None,
        purpose: str = "",
    ) -> list[RawResult]:
        """Like `query`, rows as lists with the column names apart."""
        is_write = _is_write(write, [sql])
        results = _raw_results(
            self._send(self._build.query(db_id, sql, params, write=is_write, raw=True))
        )
        label = _request_label(purpose, db_id)
        return expect_results(results, _statement_count(sql), label, write=is_write)

    # export and Time Travel

    def export(self, db_id: str, no_data: bool = True, *, max_polls: int = 600) -> str:
        """The database as SQL (wrangler's dump), polling until the export completes."""
        bookmark: str | None = None
        for _ in range(max_polls):
            result = self._send(self._build.export(db_id, no_data, bookmark))
            info = result if isinstance(result, dict) else {}
            status = info.get("status")
            bookmark = info.get("at_bookmark") or bookmark
            if status == "complete":
                return self._download(str((info.get("result") or {}).get("signed_url", "")))
            if status == "error":
                raise RemoteError(self._redact(f"D1 export of {db_id} failed: {info.get('error')}"))
            self._sleep(self._poll_interval)
        raise RemoteError(f"D1 export of {db_id} did not complete after {max_polls} polls")

    def bookmark(self, db_id: str, timestamp: datetime | str | None = None) -> str:
        """The Time Travel bookmark of now, or of the state at `timestamp`."""
        result = self._send(self._build.bookmark(db_id, _timestamp(timestamp)))
        bookmark = result.get("bookmark") if isinstance(result, dict) else None
        if not bookmark:
            raise RemoteError(f"D1 API gave no bookmark for database {db_id}")
        return str(bookmark)

    def restore(self, db_id: str, bookmark: str) -> Restored:
        """Restore the database to `bookmark` (Time Travel)."""
        result = self._send(self._build.restore(db_id, bookmark))
        info = result if isinstance(result, dict) else {}
        return Restored(
            str(info.get("bookmark", "")),
            str(info.get("previous_bookmark", "")),
            str(info.get("message", "")),
        )

    # transport

    def _send(self, req: ApiRequest) -> object:
        for attempt in range(1, self.retry.attempts + 1):
            try:
                return self._attempt(req)
            except _Retryable as retryable:
                failure = retryable.failure
            delay = retry_delay(failure, attempt, req.write, self.retry, self._rng)
            _log.info("retrying in %.2f s (attempt %d): %s", delay, attempt + 1, failure.error)
            if failure.kind == "rate_limited" and self.budget is not None:
                self.budget.pause(delay)
            else:
                self._sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def _attempt(self, req: ApiRequest) -> object:
        with self.budget.slot() if self.budget is not None else contextlib.nullcontext(0.0):
            self.requests_sent += 1
            try:
                response = self._http.request(
                    req.method,
                    self._url(req.path),
                    params=req.params or None,
                    json=req.body,
                    headers=self._auth,
                )
            except httpx.HTTPError as exc:
                raise _Retryable(classify_exception(req, exc, self._redact)) from None
        return parse_envelope(
            req, response.status_code, response.headers, response.content, self._redact
        )

    def _url(self, path: str) -> httpx.URL:
        """The parsed URL of an API path, kept: a client sends several requests per database."""
        url = self._urls.get(path)
        if url is None:
            if len(self._urls) >= _URL_CACHE:
                self._urls.clear()
            url = self._urls[path] = httpx.URL(self.api_base + path)
        return url

    def _download(self, url: str) -> str:
        url = check_api_url(url, what="export download URL")
        try:
            response = self._http.get(url)
        except httpx.HTTPError as exc:
            raise RemoteError(
                self._redact(f"export download failed: {type(exc).__name__}: {exc}")
            ) from None
        if response.status_code != 200:
            raise RemoteError(f"export download failed: HTTP {response.status_code} from {url}")
        return response.text


def _statement_count(sql: str) -> int:
    """How many results D1 answers for `sql`: one per statement (comment-only pieces give none)."""
    return len(split_statements(sql))


def _is_write(write: bool | None, sqls: Sequence[str]) -> bool:
    if write is not None:
        return write
    return not all(looks_read_only(sql) for sql in sqls)
