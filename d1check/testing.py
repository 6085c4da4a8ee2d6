"""The D1 API emulator: a real HTTP server on loopback that answers like Cloudflare's D1 API.

Each database is a SQLite file run through `D1Database`, so D1's refusals come back as D1
errors. Faults (429, 500, dropped connections, timeouts, a failure after the write committed)
can be scripted per request.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import random
import re
import secrets
import socket
import threading
import time
import urllib.parse
import uuid as uuidlib
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import apsw

from d1check.engine import D1Database, d1_error_message
from d1check.errors import SQLError
from d1check.remote import D1Client
from d1check.statements import split_statements

DEFAULT_TOKEN = "emulator-token"
DEFAULT_ACCOUNT = "0123456789abcdef0123456789abcdef"
API_PREFIX = "/client/v4"

RATE_LIMIT = "rate_limit"
ERROR = "error"
DROP = "drop"
TIMEOUT = "timeout"
COMMIT_THEN_ERROR = "commit_then_error"
COMMIT_THEN_DROP = "commit_then_drop"
COMMIT_THEN_TRUNCATED = "commit_then_truncated"
COMMIT_THEN_INVALID = "commit_then_invalid"
COMMIT_THEN_EMPTY = "commit_then_empty"
COMMIT_THEN_UNSUCCESSFUL = "commit_then_unsuccessful"
SHORT_RESULTS = "short_results"
SHORT_ANSWER = SHORT_RESULTS  # the same fault: the answer lacks its last result(s)
GARBLED = (COMMIT_THEN_TRUNCATED, COMMIT_THEN_INVALID, COMMIT_THEN_EMPTY, COMMIT_THEN_UNSUCCESSFUL)
AFTER_COMMIT = frozenset({COMMIT_THEN_ERROR, COMMIT_THEN_DROP, *GARBLED, SHORT_RESULTS})
FAULT_KINDS = frozenset({RATE_LIMIT, ERROR, DROP, TIMEOUT, *AFTER_COMMIT})
MAX_BODY_BYTES = 1_000_000


# --- faults --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fault:
    """One injected fault. `match`: a substring of `METHOD /path` the request must contain;
    `body`: a substring its body must contain (as sent, JSON-encoded).

    rate_limit: 429 with Retry-After; error: 500 before anything runs; drop: the connection is
    closed without an answer; timeout: no answer for `seconds`, then dropped;
    commit_then_error / commit_then_drop: the request is applied, then answered 500 / dropped;
    commit_then_truncated / _invalid / _empty / _unsuccessful: the request is applied, then
    answered 200 with JSON cut short, text that is not JSON, no body, or `success: false`
    without errors.
    short_results (also `SHORT_ANSWER`): the request is applied and answered with its last
    `missing` results left out (fewer results than statements sent).
    """

    kind: str
    match: str = ""
    retry_after: float = 1.0
    seconds: float = 5.0
    missing: int = 1
    body: str = ""

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(
                f"unknown fault {self.kind!r}; known: {', '.join(sorted(FAULT_KINDS))}"
            )

    @property
    def after_commit(self) -> bool:
        """Whether the request is applied before the fault strikes."""
        return self.kind in AFTER_COMMIT


@dataclass
class Faults:
    """What goes wrong, changeable while the server runs: a queue first, then chance."""

    latency: float = 0.0
    probability: float = 0.0
    random_kinds: tuple[str, ...] = (ERROR,)
    seed: int | None = None
    queue: deque[Fault] = field(default_factory=deque)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._rng = random.Random(self.seed)

    def push(self, *faults: Fault | str, match: str = "") -> None:
        """Queue faults for the next matching requests, in order."""
        with self._lock:
            for fault in faults:
                self.queue.append(Fault(fault, match) if isinstance(fault, str) else fault)

    def clear(self) -> None:
        """No more faults, no latency."""
        with self._lock:
            self.queue.clear()
            self.latency = 0.0
            self.probability = 0.0

    def take(self, request_line: str, body: bytes = b"") -> Fault | None:
        """The fault for this request (`METHOD /path`, its body), if any."""
        with self._lock:
            for fault in self.queue:
                if fault.match in request_line and fault.body.encode("utf-8") in body:
                    self.queue.remove(fault)
                    return fault
            if self.probability and self._rng.random() < self.probability:
                return Fault(self._rng.choice(self.random_kinds))
        return None


class RateLimit:
    """Cloudflare's API limit as the server applies it: arrivals counted by the server's clock;
    the request that makes `requests` + 1 within any `seconds`, and every call for `seconds`
    after it, answer 429 (the whole account is blocked)."""

    def __init__(self, requests: int, seconds: float) -> None:
        self.requests = requests
        self.seconds = seconds
        self.refused = 0
        self.admitted = 0
        self._arrivals: deque[float] = deque()
        self._blocked_until = 0.0
        self._lock = threading.Lock()

    def admit(self) -> float | None:
        """Count one arrival; None when it is served, else the seconds the block still lasts."""
        with self._lock:
            now = time.monotonic()
            self._arrivals.append(now)
            while self._arrivals[0] <= now - self.seconds:
                self._arrivals.popleft()
            if now < self._blocked_until:
                self.refused += 1
                return self._blocked_until - now
            if len(self._arrivals) > self.requests:
                self._blocked_until = now + self.seconds
                self.refused += 1
                return self.seconds
            self.admitted += 1
            return None


# --- answers -------------------------------------------------------------------------------


class ApiError(Exception):
    """An error answer: HTTP status, Cloudflare code and message."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def envelope(result: object = None, errors: Sequence[ApiError] = ()) -> dict[str, object]:
    """Cloudflare's answer envelope."""
    return {
        "result": result,
        "success": not errors,
        "errors": [{"code": e.code, "message": e.message} for e in errors],
        "messages": [],
    }


def _sql_error(message: str) -> ApiError:
    return ApiError(400, 7500, f"D1_ERROR: {message}")


def _now_iso(moment: float | None = None) -> str:
    when = datetime.fromtimestamp(time.time() if moment is None else moment, UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def _parse_timestamp(text: str) -> float:
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(
            400, 7400, f"invalid timestamp {text!r}: use RFC 3339 or Unix seconds"
        ) from None
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


# --- SQL dumps -----------------------------------------------------------------------------


def sql_literal(value: object) -> str:
    """A value as a SQLite literal, as `.dump` writes it."""
    if value is None:
        return "NULL"
    if isinstance(value, bool | int):
        return str(int(value))
    if isinstance(value, float):
        return repr(value) if value == value and abs(value) != float("inf") else "NULL"
    if isinstance(value, bytes):
        return f"X'{value.hex().upper()}'"
    return "'" + str(value).replace("'", "''") + "'"


def _quote_name(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def dump_sql(conn: apsw.Connection, *, no_data: bool) -> str:
    """A wrangler-style dump: tables (with rows), sqlite_sequence, then indexes, triggers, views.

    Raises ApiError for databases with virtual tables, as D1's export does.
    """
    objects = [
        (str(kind), str(name), str(sql))
        for kind, name, sql in conn.execute(
            "SELECT type, name, sql FROM sqlite_schema WHERE sql IS NOT NULL ORDER BY rowid"
        )
    ]
    modules = [
        m[1]
        for _, _, sql in objects
        if (m := re.match(r"(?is)CREATE\s+VIRTUAL\s+TABLE\s+\S+\s+USING\s+(\w+)", sql))
    ]
    if modules:
        raise ApiError(
            400,
            7500,
            f"D1 Export error: cannot export databases with Virtual Tables ({modules[0]})",
        )
    lines = ["PRAGMA defer_foreign_keys=TRUE;"]
    for kind, name, sql in objects:
        if kind != "table" or name.startswith(("sqlite_", "_cf_")):
            continue
        lines.append(re.sub(r"(?i)^CREATE\s+TABLE\s+", "CREATE TABLE IF NOT EXISTS ", sql) + ";")
        if not no_data:
            lines += _insert_lines(conn, name)
    if any(name == "sqlite_sequence" for _, name, _ in objects):
        lines.append("DELETE FROM sqlite_sequence;")
        if not no_data:
            lines += _insert_lines(conn, "sqlite_sequence")
    lines += [sql + ";" for kind, _, sql in objects if kind in ("index", "trigger", "view")]
    return "\n".join(lines)


def _insert_lines(conn: apsw.Connection, table: str) -> list[str]:
    rows = conn.execute(f"SELECT * FROM {_quote_name(table)}").fetchall()
    return [
        f"INSERT INTO {_quote_name(table)} VALUES({','.join(sql_literal(v) for v in row)});"
        for row in rows
    ]


# --- databases -----------------------------------------------------------------------------


@dataclass
class _Database:
    uuid: str
    name: str
    created_at: str
    path: Path
    lock: threading.RLock = field(default_factory=threading.RLock)
    handle: D1Database | None = None
    history: list[tuple[float, str]] = field(default_factory=list)
    images: dict[str, bytes] = field(default_factory=dict)

    def open(self) -> D1Database:
        if self.handle is None:
            self.handle = D1Database(self.path)
            with self.handle.internal() as conn:
                # a test double: speed over durability (no journal file made per transaction)
                conn.execute("PRAGMA synchronous = OFF; PRAGMA journal_mode = MEMORY").fetchall()
        return self.handle

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()
            self.handle = None

    def info(self) -> dict[str, object]:
        with self.lock:
            db = self.open()
            with db.internal() as conn:
                names = conn.execute("SELECT name FROM sqlite_schema WHERE type = 'table'")
                tables = sum(1 for (n,) in names if not n.startswith(("sqlite_", "_cf_")))
        return {
            "uuid": self.uuid,
            "name": self.name,
            "created_at": self.created_at,
            "version": "production",
            "num_tables": tables,
            "file_size": self.path.stat().st_size if self.path.exists() else 0,
        }


@dataclass
class _Export:
    bookmark: str
    dump: str
    filename: str
    polls_left: int
    error: str = ""


def _statement_meta(
    db: D1Database, before: tuple[int, int], rows: int, started: float
) -> dict[str, object]:
    conn = db.connection
    with db.internal() as c:
        schema_version = _pragma(c, "schema_version")
        size = _pragma(c, "page_count") * _pragma(c, "page_size")
    changes = conn.total_changes() - before[0]
    return {
        "served_by": "d1check-emulator",
        "duration": round((time.perf_counter() - started) * 1000, 3),
        "changes": changes,
        "last_row_id": conn.last_insert_rowid(),
        "changed_db": changes > 0 or schema_version != before[1],
        "size_after": size,
        "rows_read": rows,
        "rows_written": changes,
    }


# Words of the statements D1 refuses before SQLite sees them (`engine.d1_refusal`, and renames to
# `_cf_` names); text without any of them runs straight through apsw, which iterates
# multi-statement text itself.
_REFUSAL_WORDS = re.compile(
    r"(?<![A-Za-z0-9_])(?:BEGIN|COMMIT|END|ROLLBACK|SAVEPOINT|RELEASE|VACUUM|CARRAY|RENAME)"
    r"(?![A-Za-z0-9_])",
    re.IGNORECASE,
)
_EMPTY = re.compile(r"(?:\s|;|--[^\n]*|/\*.*?(?:\*/|\Z))*", re.DOTALL)
_PROBE = "SELECT * FROM pragma_schema_version, pragma_page_count, pragma_page_size"


class _Fallback(Exception):
    """The fast path cannot answer exactly: roll back and take the statement-splitting path."""


@dataclass
class _Open:
    started: float
    changes: int
    readonly: bool
    names: list[str]
    rows: list[tuple[Any, ...]] = field(default_factory=list)


class _FastRun:
    """One request's statements run by apsw directly; results and meta as D1 gives them."""

    def __init__(self, db: D1Database) -> None:
        self.db = db
        self.conn = db.connection
        self.schema, self.size = self._probe(begin=True)
        self.results: list[dict[str, Any]] = []
        self._open: _Open | None = None

    def _probe(self, *, begin: bool = False) -> tuple[int, int]:
        with self.db.internal() as conn:
            if begin:
                conn.execute("BEGIN")
            row = conn.execute(_PROBE).fetchall()[0]
        schema, pages, page_size = (v if isinstance(v, int) else 0 for v in row)
        return schema, pages * page_size

    def piece(self, sql: str, params: Sequence[object]) -> None:
        cursor = self.conn.cursor()
        count = 0

        def trace(cur: apsw.Cursor, text: str, _bindings: object) -> bool:
            nonlocal count
            self._close()
            names = [d[0] for d in cur.get_description()]
            if not names and _EMPTY.fullmatch(text):
                return True
            count += 1
            if count > 1 and params:
                raise _Fallback
            self._open = _Open(
                time.perf_counter(), self.conn.total_changes(), cur.is_readonly, names
            )
            return True

        cursor.exec_trace = trace
        cursor.execute(sql, tuple(params))
        for row in cursor:
            assert self._open is not None
            self._open.rows.append(row)
        self._close()
        if count == 0:
            raise _Fallback

    def _close(self) -> None:
        done, self._open = self._open, None
        if done is None:
            return
        changes = self.conn.total_changes() - done.changes
        schema = self.schema
        if not done.readonly:
            self.schema, self.size = self._probe()
        rows = [dict(zip(done.names, row, strict=True)) for row in done.rows]
        meta = {
            "served_by": "d1check-emulator",
            "duration": round((time.perf_counter() - done.started) * 1000, 3),
            "changes": changes,
            "last_row_id": self.conn.last_insert_rowid(),
            "changed_db": changes > 0 or self.schema != schema,
            "size_after": self.size,
            "rows_read": len(rows),
            "rows_written": changes,
        }
        self.results.append({"results": rows, "success": True, "meta": meta})


def _plain(pieces: Sequence[tuple[str, Sequence[object]]]) -> bool:
    return not any(_REFUSAL_WORDS.search(sql) for sql, _ in pieces)


def _pragma(conn: apsw.Connection, name: str) -> int:
    value = conn.execute(f"PRAGMA {name}").fetchall()[0][0]
    return int(value) if isinstance(value, int | float | str) else 0


def _schema_version(db: D1Database) -> int:
    with db.internal() as conn:
        return _pragma(conn, "schema_version")


# --- the emulator --------------------------------------------------------------------------


class D1Emulator:
    """D1's REST API on 127.0.0.1, backed by one SQLite file per database in `directory`.

    Use as a context manager; `url` is the API base for `D1Client(api_base=...)`. Every
    committed write records a Time Travel state; the newest `keep_bookmarks` per database stay.
    `export_polls`: how many polls answer `active` before an export completes. Bookmark images
    stay in memory up to `memory_bookmarks` bytes, then (and at `stop`) go to files under
    `directory/.bookmarks`. `rate_limit`: the account's API limit (none by default); bodies over
    `max_body_bytes` are refused (413) from their Content-Length, before they are read.
    """

    def __init__(
        self,
        directory: str | Path,
        *,
        token: str = DEFAULT_TOKEN,
        account_id: str = DEFAULT_ACCOUNT,
        host: str = "127.0.0.1",
        port: int = 0,
        faults: Faults | None = None,
        export_polls: int = 1,
        keep_bookmarks: int = 100,
        memory_bookmarks: int = 64 << 20,
        rate_limit: RateLimit | None = None,
        max_body_bytes: int = MAX_BODY_BYTES,
    ) -> None:
        self.directory = Path(directory)
        self.token = token
        self.account_id = account_id
        self.host = host
        self.port = port
        self.faults = faults or Faults()
        self.export_polls = export_polls
        self.keep_bookmarks = keep_bookmarks
        self.memory_bookmarks = memory_bookmarks
        self.rate_limit = rate_limit
        self.max_body_bytes = max_body_bytes
        self._held = 0
        self._held_lock = threading.Lock()
        self.requests: Counter[str] = Counter()
        self._databases: dict[str, _Database] = {}
        self._exports: dict[str, _Export] = {}
        self._lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._sequence = 0

    # lifecycle

    def start(self) -> D1Emulator:
        """Load the databases of `directory` and serve in a background thread."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self._load_registry()
        server = ThreadingHTTPServer((self.host, self.port), _Handler)
        server.daemon_threads = True
        server.emulator = self  # type: ignore[attr-defined]
        self._server = server
        self.port = server.server_address[1]
        self._thread = threading.Thread(
            target=server.serve_forever, args=(0.05,), name="d1-emulator", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close every database."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        for record in list(self._databases.values()):
            with record.lock:
                self._spill(record)
                record.close()

    def __enter__(self) -> D1Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The API base, e.g. `http://127.0.0.1:PORT/client/v4`."""
        return f"{self._origin}{API_PREFIX}"

    @property
    def _origin(self) -> str:
        host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(self.host, self.host)
        return f"http://[{host}]:{self.port}" if ":" in host else f"http://{host}:{self.port}"

    def client(self, **kwargs: Any) -> D1Client:
        """A D1Client for this emulator (its token, account and URL)."""
        return D1Client(self.account_id, self.token, api_base=self.url, **kwargs)

    def count(self, suffix: str = "", method: str | None = None) -> int:
        """Requests served whose path ends with `suffix` (and whose method is `method`)."""
        with self._lock:
            return sum(
                n
                for key, n in self.requests.items()
                if key.split(" ", 1)[1].endswith(suffix) and method in (None, key.split(" ", 1)[0])
            )

    # direct access, for tests

    def create_database(self, name: str) -> str:
        """Create a database without HTTP; returns its uuid."""
        return str(self._create(name)["uuid"])

    def database_path(self, db_id: str) -> Path:
        """The SQLite file of a database."""
        return self._record(db_id).path

    def sql(self, db_id: str, sql: str, params: Sequence[object] = ()) -> list[dict[str, object]]:
        """Run one statement on a database without HTTP (D1's rules apply)."""
        record = self._record(db_id)
        with record.lock:
            return record.open().query(sql, params)

    # registry

    def _registry_path(self) -> Path:
        return self.directory / "databases.json"

    def _load_registry(self) -> None:
        path = self._registry_path()
        entries = json.loads(path.read_text("utf-8")) if path.exists() else []
        for entry in entries:
            record = _Database(
                entry["uuid"], entry["name"], entry["created_at"], self._db_file(entry["uuid"])
            )
            self._databases[record.uuid] = record
            self._snapshot(record)

    def _save_registry(self) -> None:
        entries = [
            {"uuid": r.uuid, "name": r.name, "created_at": r.created_at}
            for r in self._databases.values()
        ]
        tmp = self._registry_path().with_suffix(".tmp")
        tmp.write_text(json.dumps(entries, indent=1), "utf-8")
        os.replace(tmp, self._registry_path())

    def _db_file(self, db_id: str) -> Path:
        return self.directory / f"{db_id}.sqlite"

    def _record(self, db_id: str) -> _Database:
        with self._lock:
            record = self._databases.get(db_id)
        if record is None:
            raise ApiError(404, 7404, f"The database {db_id} could not be found")
        return record

    def _create(self, name: str) -> dict[str, object]:
        if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,63}", name or ""):
            raise ApiError(
                400, 7400, f"invalid database name {name!r}: use lowercase letters, digits, - and _"
            )
        with self._lock:
            if any(r.name == name for r in self._databases.values()):
                raise ApiError(400, 7502, "A database with that name already exists")
            db_id = str(uuidlib.uuid4())
            record = _Database(db_id, name, _now_iso(), self._db_file(db_id))
            record.open()
            self._databases[db_id] = record
            self._save_registry()
            self._snapshot(record)
        return {
            "uuid": db_id,
            "name": name,
            "created_at": record.created_at,
            "version": "production",
        }

    def _delete(self, db_id: str) -> None:
        record = self._record(db_id)
        with self._lock, record.lock:
            record.close()
            with self._held_lock:
                self._held -= sum(len(image) for image in record.images.values())
            record.images.clear()
            del self._databases[db_id]
            self._save_registry()
            record.path.unlink(missing_ok=True)

    # Time Travel

    def _snapshot(self, record: _Database) -> str:
        with self._lock:
            self._sequence += 1
            bookmark = (
                f"{self._sequence:08x}-{int(time.time()) & 0xFFFFFFFF:08x}-{secrets.token_hex(16)}"
            )
        with record.lock:
            image = record.open().to_bytes()
            record.images[bookmark] = image
            freed = 0
            record.history.append((time.time(), bookmark))
            while len(record.history) > max(1, self.keep_bookmarks):
                _, oldest = record.history.pop(0)
                dropped = record.images.pop(oldest, None)
                if dropped is None:
                    self._bookmark_file(record, oldest).unlink(missing_ok=True)
                freed += len(dropped or b"")
            with self._held_lock:
                self._held += len(image) - freed
                spill = self._held > self.memory_bookmarks
            if spill:
                self._spill(record)
        return bookmark

    def _bookmark_file(self, record: _Database, bookmark: str) -> Path:
        return self.directory / ".bookmarks" / record.uuid / f"{bookmark}.sqlite"

    def _spill(self, record: _Database) -> None:
        """Write a database's bookmark images kept in memory to their files."""
        with record.lock:
            if not record.images:
                return
            self._bookmark_file(record, "x").parent.mkdir(parents=True, exist_ok=True)
            for bookmark, image in record.images.items():
                self._bookmark_file(record, bookmark).write_bytes(image)
            with self._held_lock:
                self._held -= sum(len(image) for image in record.images.values())
            record.images.clear()

    def _bookmark_image(self, record: _Database, bookmark: str) -> bytes | None:
        with record.lock:
            image = record.images.get(bookmark)
        if image is None and re.fullmatch(r"[0-9a-f-]+", bookmark):
            path = self._bookmark_file(record, bookmark)
            image = path.read_bytes() if path.exists() else None
        return image

    def _bookmark(self, record: _Database, timestamp: str | None) -> str:
        with record.lock:
            if timestamp is None:
                return record.history[-1][1]
            moment = _parse_timestamp(timestamp)
            earlier = [bookmark for when, bookmark in record.history if when <= moment]
        if not earlier:
            raise ApiError(
                400, 7500, f"no bookmark at or before {timestamp}: the database is younger"
            )
        return earlier[-1]

    def _restore(self, record: _Database, bookmark: str) -> dict[str, object]:
        image = self._bookmark_image(record, bookmark)
        if image is None:
            raise ApiError(400, 7500, f"unknown bookmark {bookmark!r} for database {record.uuid}")
        with record.lock:
            previous = record.history[-1][1]
            record.close()
            tmp = record.path.with_suffix(".restore")
            tmp.write_bytes(image)
            os.replace(tmp, record.path)
            new = self._snapshot(record)
        return {"bookmark": new, "previous_bookmark": previous, "message": "Database restored"}

    # SQL

    def _run(
        self, record: _Database, pieces: Sequence[tuple[str, Sequence[object]]]
    ) -> list[dict[str, Any]]:
        if _plain(pieces):
            with record.lock:
                results = self._run_fast(record.open(), pieces)
                if results is not None:
                    if any(r["meta"]["changed_db"] for r in results):
                        self._snapshot(record)
                    return results
        statements = _split(pieces)
        with record.lock:
            db = record.open()
            with db.internal() as conn:
                conn.execute("BEGIN")
            try:
                results = [self._statement(db, sql, params) for sql, params in statements]
                with db.internal() as conn:
                    conn.execute("COMMIT")
            except apsw.Error as exc:
                self._rollback(db)
                raise _sql_error(d1_error_message(exc, "COMMIT")) from None
            except BaseException:
                self._rollback(db)
                raise
            if any(r["meta"]["changed_db"] for r in results):
                self._snapshot(record)
        return results

    @staticmethod
    def _run_fast(
        db: D1Database, pieces: Sequence[tuple[str, Sequence[object]]]
    ) -> list[dict[str, Any]] | None:
        """The request run without splitting its text; None when only the exact path can answer
        (an error, a statement count D1 refuses), with nothing of it applied."""
        try:
            run = _FastRun(db)
            for sql, params in pieces:
                run.piece(sql, params)
            with db.internal() as conn:
                conn.execute("COMMIT")
        except (_Fallback, apsw.Error):
            D1Emulator._rollback(db)
            return None
        except BaseException:
            D1Emulator._rollback(db)
            raise
        return run.results

    @staticmethod
    def _rollback(db: D1Database) -> None:
        with db.internal() as conn:
            if not conn.getautocommit():
                conn.execute("ROLLBACK")

    @staticmethod
    def _statement(db: D1Database, sql: str, params: Sequence[object]) -> dict[str, Any]:
        started = time.perf_counter()
        before = (db.connection.total_changes(), _schema_version(db))
        try:
            rows = db.query(sql, params)
        except SQLError as exc:
            raise _sql_error(exc.message) from None
        meta = _statement_meta(db, before, len(rows), started)
        return {"results": rows, "success": True, "meta": meta}

    # export

    def _export(self, record: _Database, body: dict[str, Any]) -> dict[str, object]:
        current = body.get("current_bookmark")
        if current:
            with self._lock:
                job = self._exports.get(str(current))
            if job is None:
                raise ApiError(400, 7500, f"no export in progress at bookmark {current!r}")
        else:
            job = self._start_export(record, bool((body.get("dump_options") or {}).get("no_data")))
        if job.error:
            return {
                "success": False,
                "type": "export",
                "at_bookmark": job.bookmark,
                "status": "error",
                "error": job.error,
                "messages": [],
            }
        if job.polls_left > 0:
            job.polls_left -= 1
            return {
                "success": True,
                "type": "export",
                "at_bookmark": job.bookmark,
                "status": "active",
                "messages": ["Generating dump"],
            }
        signed = f"{self._origin}/__export/{job.bookmark}/{job.filename}"
        return {
            "success": True,
            "type": "export",
            "at_bookmark": job.bookmark,
            "status": "complete",
            "messages": ["Export complete"],
            "result": {"filename": job.filename, "signed_url": signed},
        }

    def _start_export(self, record: _Database, no_data: bool) -> _Export:
        with record.lock:
            bookmark = record.history[-1][1]
            db = record.open()
            try:
                with db.internal() as conn:
                    dump, error = dump_sql(conn, no_data=no_data), ""
            except ApiError as exc:
                dump, error = "", exc.message
        key = f"{bookmark}.{secrets.token_hex(8)}"
        job = _Export(key, dump, f"{record.name}-{bookmark[:17]}.sql", self.export_polls, error)
        with self._lock:
            self._exports[key] = job
        return job

    def _download(self, key: str) -> str | None:
        with self._lock:
            job = self._exports.get(key)
        return None if job is None or job.polls_left > 0 or job.error else job.dump

    # routing

    def handle(self, method: str, path: str, query: dict[str, str], body: Any) -> object:
        """Answer one authorised API call; raises ApiError for error answers."""
        match = re.fullmatch(r"/accounts/([^/]+)/d1/database(?:/([^/]+)(/.*)?)?", path)
        if match is None:
            raise ApiError(404, 7000, "No route for that URI")
        account, db_id, rest = match.group(1), match.group(2), match.group(3) or ""
        if account != self.account_id:
            raise ApiError(
                403,
                7403,
                "The given account is not valid or is not authorized to access this service",
            )
        if db_id is None:
            return self._collection(method, query, body)
        record = self._record(db_id)
        return self._on_database(record, method, rest, query, body)

    def _collection(self, method: str, query: dict[str, str], body: Any) -> object:
        if method == "POST":
            return self._create(str(_field(body, "name")))
        if method != "GET":
            raise ApiError(405, 7001, f"Method {method} not allowed")
        with self._lock:
            records = sorted(self._databases.values(), key=lambda r: r.created_at)
        name = query.get("name")
        matching = [r for r in records if not name or name in r.name]
        page, per_page = _int_param(query, "page", 1), _int_param(query, "per_page", 1000)
        return [r.info() for r in matching[(page - 1) * per_page : page * per_page]]

    def _on_database(
        self, record: _Database, method: str, rest: str, query: dict[str, str], body: Any
    ) -> object:
        route = (method, rest)
        if route == ("GET", ""):
            return record.info()
        if route == ("DELETE", ""):
            self._delete(record.uuid)
            return None
        if route in (("POST", "/query"), ("POST", "/raw")):
            results = self._run(record, _pieces(body))
            return results if rest == "/query" else [_as_raw(r) for r in results]
        if route == ("POST", "/export"):
            return self._export(record, body if isinstance(body, dict) else {})
        if route == ("GET", "/time_travel/bookmark"):
            return {"bookmark": self._bookmark(record, query.get("timestamp"))}
        if route == ("POST", "/time_travel/restore"):
            bookmark = query.get("bookmark")
            if not bookmark and query.get("timestamp"):
                bookmark = self._bookmark(record, query["timestamp"])
            if not bookmark:
                raise ApiError(400, 7400, "restore needs ?bookmark= or ?timestamp=")
            return self._restore(record, str(bookmark))
        raise ApiError(404, 7000, "No route for that URI")


def _int_param(query: dict[str, str], name: str, default: int) -> int:
    value = query.get(name, str(default))
    if not value.isdigit() or int(value) < 1:
        raise ApiError(400, 7400, f"The request is malformed: {name} must be a positive integer")
    return int(value)


def _field(body: Any, name: str) -> object:
    if not isinstance(body, dict) or name not in body:
        raise ApiError(400, 7400, f"The request is malformed: {name} is required")
    return body[name]


def _pieces(body: Any) -> list[tuple[str, Sequence[object]]]:
    if isinstance(body, dict) and isinstance(body.get("batch"), list):
        return [(str(_field(item, "sql")), _params(item)) for item in body["batch"]]
    return [(str(_field(body, "sql")), _params(body))]


def _params(item: Any) -> Sequence[object]:
    params = item.get("params") if isinstance(item, dict) else None
    if params is None:
        return ()
    if not isinstance(params, list):
        raise ApiError(400, 7400, "The request is malformed: params must be an array")
    return params


def _split(pieces: Sequence[tuple[str, Sequence[object]]]) -> list[tuple[str, Sequence[object]]]:
    statements: list[tuple[str, Sequence[object]]] = []
    for sql, params in pieces:
        parts = split_statements(sql)
        if len(parts) > 1 and params:
            raise _sql_error("Wrong number of parameter bindings for SQL query.: SQLITE_RANGE")
        statements += [(part.sql, params) for part in parts]
    if not statements:
        raise _sql_error("No SQL statements detected.")
    return statements


def _as_raw(result: dict[str, Any]) -> dict[str, Any]:
    rows: list[dict[str, object]] = result["results"]
    columns = list(rows[0]) if rows else []
    raw_rows = [list(row.values()) for row in rows]
    return {**result, "results": {"columns": columns, "rows": raw_rows}}


# --- HTTP ----------------------------------------------------------------------------------


def _without_last_results(payload: dict[str, object], missing: int) -> dict[str, object]:
    """An answer whose `result` list lacks its last `missing` entries."""
    result = payload.get("result")
    if not isinstance(result, list):
        return payload
    return {**payload, "result": result[: max(0, len(result) - missing)]}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    wbufsize = 1 << 16  # one send per answer: no Nagle delay between headers and body
    server_version = "d1check-emulator"

    @property
    def emulator(self) -> D1Emulator:
        return self.server.emulator  # type: ignore[attr-defined,no-any-return]

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests read `emulator.requests` instead."""

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def _serve(self, method: str) -> None:
        url = urllib.parse.urlsplit(self.path)
        emulator = self.emulator
        with emulator._lock:
            emulator.requests[f"{method} {url.path}"] += 1
        if url.path.startswith("/__export/"):
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self._download(url.path.removeprefix("/__export/").split("/", 1)[0])
            return
        if emulator.faults.latency:
            time.sleep(emulator.faults.latency)
        blocked = emulator.rate_limit.admit() if emulator.rate_limit is not None else None
        if blocked is not None:
            self._refuse_body()
            self._fault(Fault(RATE_LIMIT, retry_after=math.ceil(blocked)))
            return
        length = int(self.headers.get("Content-Length") or 0)
        if length > emulator.max_body_bytes:
            self._too_large(length)
            return
        body_bytes = self.rfile.read(length)
        fault = emulator.faults.take(f"{method} {url.path}", body_bytes)
        if fault is not None and not fault.after_commit:
            self._fault(fault)
            return
        status, payload = self._answer(method, url, body_bytes)
        if fault is not None and fault.kind == SHORT_RESULTS:
            self._send(status, _without_last_results(payload, fault.missing))
            return
        if fault is not None:
            self._after_commit(fault, status, payload)
            return
        self._send(status, payload)

    def _refuse_body(self) -> None:
        """Read and drop the body of a refused request (so the answer is not lost to a reset)."""
        left = int(self.headers.get("Content-Length") or 0)
        while left > 0:
            chunk = self.rfile.read(min(left, 1 << 16))
            if not chunk:
                break
            left -= len(chunk)

    def _too_large(self, length: int) -> None:
        limit = self.emulator.max_body_bytes
        error = ApiError(
            413, 7400, f"Request body too large: {length} bytes (the limit is {limit} bytes)"
        )
        self._refuse_body()  # drained, so the connection stays usable for the next request
        self._send(413, envelope(None, [error]))

    def _after_commit(self, fault: Fault, status: int, payload: dict[str, object]) -> None:
        body = json.dumps(payload).encode("utf-8")
        if fault.kind == COMMIT_THEN_TRUNCATED:
            self._send_bytes(200, body[: max(1, len(body) // 2)], "application/json")
        elif fault.kind == COMMIT_THEN_INVALID:
            self._send_bytes(200, b"<html>upstream answered</html>", "text/html")
        elif fault.kind == COMMIT_THEN_EMPTY:
            self._send_bytes(200, b"", "application/json")
        elif fault.kind == COMMIT_THEN_UNSUCCESSFUL:
            self._send(200, {"result": None, "success": False, "errors": [], "messages": []})
        else:
            self._fault(fault)

    def _answer(
        self, method: str, url: urllib.parse.SplitResult, body_bytes: bytes
    ) -> tuple[int, dict[str, object]]:
        emulator = self.emulator
        if self.headers.get("Authorization", "") != f"Bearer {emulator.token}":
            error = ApiError(401, 10000, "Authentication error")
            return 401, envelope(None, [error])
        if not url.path.startswith(API_PREFIX + "/"):
            return 404, envelope(None, [ApiError(404, 7000, "No route for that URI")])
        query = dict(urllib.parse.parse_qsl(url.query))
        try:
            body = json.loads(body_bytes) if body_bytes else None
        except ValueError:
            return 400, envelope(
                None, [ApiError(400, 7400, "The request is malformed: invalid JSON")]
            )
        try:
            result = emulator.handle(method, url.path.removeprefix(API_PREFIX), query, body)
        except ApiError as exc:
            return exc.status, envelope([] if exc.code == 7500 else None, [exc])
        return 200, envelope(result)

    def _fault(self, fault: Fault) -> None:
        if fault.kind == RATE_LIMIT:
            error = ApiError(429, 971, "Please wait and consider throttling your request speed")
            self._send(429, envelope(None, [error]), {"Retry-After": f"{fault.retry_after:g}"})
        elif fault.kind in (ERROR, COMMIT_THEN_ERROR):
            self._send(500, envelope(None, [ApiError(500, 7500, "Internal error")]))
        else:
            if fault.kind == TIMEOUT:
                time.sleep(fault.seconds)
            self._drop()

    def _drop(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _download(self, key: str) -> None:
        dump = self.emulator._download(key)
        if dump is None:
            self._send_bytes(404, b"export not found", "text/plain")
        else:
            self._send_bytes(200, dump.encode("utf-8"), "application/sql")

    def _send(self, status: int, payload: object, headers: dict[str, str] | None = None) -> None:
        self._send_bytes(status, json.dumps(payload).encode("utf-8"), "application/json", headers)

    def _send_bytes(
        self, status: int, data: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


# --- entry points --------------------------------------------------------------------------


def serve(
    directory: str | Path,
    host: str = "127.0.0.1",
    port: int = 8787,
    token: str = DEFAULT_TOKEN,
    account_id: str = DEFAULT_ACCOUNT,
) -> None:
    """Run an emulator in the foreground until interrupted (`d1check emulate`)."""
    with D1Emulator(
        directory, token=token, account_id=account_id, host=host, port=port
    ) as emulator:
        print(f"D1 API emulator on {emulator.url} (databases in {emulator.directory})", flush=True)
        print(f"  D1CHECK_API_BASE={emulator.url}", flush=True)
        print(f"  CLOUDFLARE_ACCOUNT_ID={emulator.account_id}", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            print("stopped", flush=True)


def main(argv: Sequence[str] | None = None) -> None:
    """`d1check emulate` as a standalone command line."""
    parser = argparse.ArgumentParser(prog="d1check emulate", description=serve.__doc__)
    parser.add_argument(
        "directory",
        nargs="?",
        default=".d1check/emulator",
        help="where the SQLite files live (default .d1check/emulator)",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument(
        "--port", type=int, default=8787, help="port (default 8787; 0 picks a free one)"
    )
    parser.add_argument(
        "--token",
        default=os.environ.get("CLOUDFLARE_API_TOKEN") or DEFAULT_TOKEN,
        help="bearer token to accept (default $CLOUDFLARE_API_TOKEN, else emulator-token)",
    )
    parser.add_argument(
        "--account-id",
        default=os.environ.get("CLOUDFLARE_ACCOUNT_ID") or DEFAULT_ACCOUNT,
        help="account id to accept (default $CLOUDFLARE_ACCOUNT_ID, else a fixed test id)",
    )
    args = parser.parse_args(argv)
    serve(args.directory, args.host, args.port, args.token, args.account_id)
