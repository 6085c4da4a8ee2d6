"""Fleet rollout: many databases at once, bounded concurrency, a canary, one API budget, a journal.

Each client costs four requests when all goes well: a read-only read to plan (so a refused
database is never touched; one more request when the bookkeeping tables do not exist yet), lock
+ create bookkeeping tables + re-read (one batch), the Time Travel bookmark, and every pending
migration with its tracking and audit rows, the lock release and the verification reads (one
request while it stays under `MAX_REQUEST_BYTES`). Worker threads share one `D1Client` (one
connection pool) and one `RequestBudget`: a 429 pauses every worker for its Retry-After.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

import httpx

from d1check import plan as plan_module
from d1check.config import Config
from d1check.discovery import Migration, MigrationSet, discover
from d1check.errors import ConfigError, D1CheckError, LockHeld, RemoteError
from d1check.interrupts import Interrupted, Interrupts
from d1check.journal import (
    BOOKMARKED,
    FAILED,
    IN_FLIGHT,
    MIGRATED,
    REFUSED,
    SENDING,
    SKIPPED,
    STARTED,
    UP_TO_DATE,
    Journal,
    RunRecord,
    new_run_id,
)
from d1check.lease import (
    HOLDER_SQL,
    Leases,
    guard_sql,
    lock_held,
    read_holder,
    release_sql,
)
from d1check.live import SCHEMA_SQL, LiveState, schema_from_rows
from d1check.plan import (
    DeployOptions,
    Expected,
    Outcome,
    Plan,
    RunContext,
    Write,
    account_for,
    confirm,
    git_commit,
    migration_request,
    owner,
    plan_from_state,
    staged_names,
    staging_refusal,
    summary_lines,
    write_reports,
)
from d1check.remote import (
    AmbiguousWrite,
    D1Client,
    Params,
    QueryResult,
    RequestBudget,
    parse_budget,
)
from d1check.schema import Schema, diff_schemas
from d1check.targets import Target, resolve_targets
from d1check.tracking import (
    AUDIT_DDL,
    AUDIT_TABLE,
    LOCK_DDL,
    LOCK_SECONDS,
    LOCK_TAKE,
    TrackingStyle,
    tracking_name,
    version_label,
)
from d1check.writes import send_batch, send_sql

FleetOptions = plan_module.FleetOptions  # where `d1check.session` and callers find it
MAX_REQUEST_BYTES = 900_000
SEND_ATTEMPTS = 5
REQUESTS_PER_CLIENT = 4
FRESH_READ_REQUESTS = 1  # no tracking tables yet: the read batch fails, the schema is read alone


@dataclass(frozen=True)
class Job:
    """One client database of the rollout, with its family's migrations."""

    target: Target
    db_id: str
    migrations: MigrationSet
    expected: Expected
    bookmark: str = ""


@dataclass(frozen=True)
class Snapshot:
    """One read of a database: applied migrations, checksums, schema, lock holder."""

    live: LiveState
    holder: Mapping[str, object] = field(default_factory=dict)


# --- progress ------------------------------------------------------------------------------


class Progress(Protocol):
    """Shows the rollout advancing; one call per finished client."""

    def start(self, total: int) -> None: ...
    def advance(self, outcome: Outcome) -> None: ...
    def stop(self) -> None: ...


class PlainProgress:
    """One line per finished client (CI, no terminal)."""

    def __init__(self, write: Write) -> None:
        self._write = write
        self._done = 0
        self._total = 0
        self._lock = threading.Lock()

    def start(self, total: int) -> None:
        self._total = total

    def advance(self, outcome: Outcome) -> None:
        with self._lock:
            self._done += 1
            detail = outcome.to_version if outcome.status != "failed" else outcome.failed_at
            self._write(
                f"d1check: [{self._done}/{self._total}] {outcome.target}: {outcome.status} "
                f"{detail}".rstrip()
            )

    def stop(self) -> None:
        return None


class RichProgress:
    """A rich progress bar (a terminal)."""

    def __init__(self) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, TimeRemainingColumn
        from rich.progress import Progress as Bar

        self._bar = Bar(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            transient=False,
        )
        self._task = self._bar.add_task("rollout", total=0)
        self._failed = 0

    def start(self, total: int) -> None:
        self._bar.update(self._task, total=total)
        self._bar.start()

    def advance(self, outcome: Outcome) -> None:
        self._failed += outcome.status == "failed"
        text = f"rollout ({self._failed} failed)" if self._failed else "rollout"
        self._bar.update(self._task, advance=1, description=text)

    def stop(self) -> None:
        self._bar.stop()


class NoProgress:
    """Shows nothing."""

    def start(self, total: int) -> None:
        return None

    def advance(self, outcome: Outcome) -> None:
        return None

    def stop(self) -> None:
        return None


def make_progress(mode: str, write: Write) -> Progress:
    """`auto`: a rich bar on a terminal outside CI, plain lines otherwise."""
    if mode == "auto":
        tty = sys.stdout.isatty() and not os.environ.get("CI")
        mode = "rich" if tty else "plain"
    if mode == "rich":
        return RichProgress()
    return PlainProgress(write) if mode == "plain" else NoProgress()


# --- clients and the budget ----------------------------------------------------------------


def fleet_budget(budget: RequestBudget | None) -> RequestBudget:
    """The run's one budget; without a limit still a budget, so a 429 pauses every worker."""
    return budget if budget is not None else RequestBudget(1_000_000_000, 1.0)


def fleet_transport(concurrency: int) -> httpx.HTTPTransport:
    """One connection pool big enough for every worker."""
    size = max(10, concurrency * 2)
    return httpx.HTTPTransport(
        limits=httpx.Limits(max_connections=size, max_keepalive_connections=size)
    )


def estimate_requests(jobs: Sequence[Job]) -> int:
    """Requests the rollout needs when nothing fails (ETA under the budget)."""
    return sum(REQUESTS_PER_CLIENT + max(0, len(_chunks(_pending_guess(j))) - 1) for j in jobs)


def _pending_guess(job: Job) -> list[Migration]:
    return list(job.migrations.migrations)


# --- reads ---------------------------------------------------------------------------------


def _read_statements(style: TrackingStyle) -> list[tuple[str, Params]]:
    audit = (
        f"SELECT migration_name, checksum FROM \"{AUDIT_TABLE}\" WHERE action = 'apply' ORDER BY id"
    )
    return [(style.select_applied_sql(), None), (audit, None), (SCHEMA_SQL, None)]


def _live(results: Sequence[QueryResult], style: TrackingStyle) -> LiveState:
    applied = tuple(str(r["name"]) for r in results[0].results)
    checksums = {str(r["migration_name"]): str(r["checksum"]) for r in results[1].results}
    return LiveState(applied, checksums, _schema(results[2].results, style.table))


_SCHEMAS: dict[tuple[object, ...], Schema] = {}
_SCHEMAS_LOCK = threading.Lock()
_SCHEMA_CACHE = 256


def _schema(rows: list[dict[str, object]], table: str) -> Schema:
    """`schema_from_rows`, kept per distinct `sqlite_schema` content: a fleet's clients mostly
    share one schema, and rebuilding it costs a scratch database per read."""
    key = (table, *((r.get("type"), r.get("name"), r.get("sql")) for r in rows))
    with _SCHEMAS_LOCK:
        schema = _SCHEMAS.get(key)
    if schema is None:
        schema = schema_from_rows(rows, [table])
        with _SCHEMAS_LOCK:
            if len(_SCHEMAS) >= _SCHEMA_CACHE:
                _SCHEMAS.clear()
            _SCHEMAS[key] = schema
    return schema


def read_snapshot(client: D1Client, db_id: str, style: TrackingStyle) -> Snapshot:
    """Read-only: tracking, audit checksums and schema, in one request when the tables exist."""
    what = "reading the tracking table, the checksums and the schema"
    try:
        results = client.batch(db_id, _read_statements(style), write=False, purpose=what)
        return Snapshot(_live(results, style))
    except RemoteError as error:
        if "no such table" not in str(error):
            raise
    rows = client.query(db_id, SCHEMA_SQL, write=False, purpose=what)[0].results
    tables = {str(r["name"]) for r in rows if r["type"] == "table"}
    reads = _read_statements(style)
    wanted = [reads[i] for i, name in enumerate((style.table, AUDIT_TABLE)) if name in tables]
    found = client.batch(db_id, wanted, write=False, purpose=what) if wanted else []
    empty = QueryResult([], True)
    results = [found.pop(0) if name in tables else empty for name in (style.table, AUDIT_TABLE)]
    return Snapshot(_live([*results, QueryResult(rows, True)], style))


def lock_and_read(
    client: D1Client, db_id: str, style: TrackingStyle, ctx: RunContext, now: float | None = None
) -> Snapshot:
    """One request: take the lock (unless another live run holds it), create the bookkeeping
    tables, and read the lock holder, tracking, audit checksums and schema."""
    now = time.time() if now is None else now
    params: list[object] = [ctx.owner, ctx.run_id, now, now, now + LOCK_SECONDS, now]
    statements: list[tuple[str, Params]] = [
        (LOCK_DDL, None),
        (LOCK_TAKE, params),
        (style.create_sql(), None),
        (AUDIT_DDL, None),
        (HOLDER_SQL, None),
        *_read_statements(style),
    ]
    for attempt in range(1, SEND_ATTEMPTS + 1):
        try:
            results = send_batch(
                client, db_id, statements, purpose="taking the deploy lock and reading the database"
            )
            break
        except AmbiguousWrite:
            if attempt == SEND_ATTEMPTS:
                raise
    holder = results[4].results[0] if results[4].results else {}
    return Snapshot(_live(results[5:], style), holder)


@contextmanager
def journaled(runs_dir: Path, run_id: str, what: str, target: Target) -> Iterator[Journal]:
    """The journal of a one-database change other than a rollout (`what`: `rollback`,
    `restore`): started, then done or failed with the error."""
    with Journal.create(runs_dir, run_id, f"{what} {target.name}", [target.name]) as journal:
        journal.write(target.name, STARTED)
        try:
            yield journal
        except BaseException as error:
            journal.write(target.name, FAILED, error=f"{type(error).__name__}: {error}")
            raise
        journal.write(target.name, MIGRATED)


@contextmanager
def locked(client: D1Client, target: Target, db_id: str, ctx: RunContext) -> Iterator[Snapshot]:
    """Hold the deploy lock of one database for the block (as a renewed lease), with what the
    database holds once it is ours; LockHeld when another run holds it. `d1check rollback` and
    `d1check restore` change a database under it, as a rollout does."""
    leases = Leases(ctx.run_id, lambda _t: client)
    leases.hold(target, db_id)
    try:
        snapshot = lock_and_read(client, db_id, TrackingStyle(target.tracking_table), ctx)
        if snapshot.holder.get("run_id") != ctx.run_id:
            leases.drop(db_id)
            raise lock_held(target.name, snapshot.holder)
        yield snapshot
    finally:
        leases.release_all()


# --- one client ----------------------------------------------------------------------------


def _chunks(pending: Sequence[Migration]) -> list[list[Migration]]:
    chunks: list[list[Migration]] = []
    size = 0
    for migration in pending:
        bytes_ = len(migration.file.text.encode("utf-8")) + 2_000
        if chunks and size + bytes_ <= MAX_REQUEST_BYTES:
            chunks[-1].append(migration)
            size += bytes_
        else:
            chunks.append([migration])
            size = bytes_
    return chunks


class _Shared:
    """State every worker sees: the failure count and why new clients stop starting."""

    def __init__(self, max_failures: int) -> None:
        self.max_failures = max_failures
        self.failures = 0
        self.stop_reason = ""
        self._lock = threading.Lock()

    def stopped(self) -> str:
        with self._lock:
            return self.stop_reason

    def stop(self, reason: str) -> None:
        with self._lock:
            self.stop_reason = self.stop_reason or reason

    def failed(self) -> None:
        with self._lock:
            self.failures += 1
            if self.failures >= self.max_failures and not self.stop_reason:
                self.stop_reason = (
                    f"not started: {self.failures} client(s) failed (--max-failures "
                    f"{self.max_failures})"
                )


@dataclass(frozen=True)
class Rollout:
    """Everything a worker needs; shared by all of them."""

    client_for: Callable[[Target], D1Client]
    ctx: RunContext
    journal: Journal
    options: FleetOptions
    staged: Mapping[str, set[str]] = field(default_factory=dict)
    backup_dir: Path | None = None
    leases: Leases | None = None
    interrupts: Interrupts | None = None

    def lease(self) -> Leases:
        """The run's leases (`rollout` always sets them)."""
        assert self.leases is not None, "rollout() sets the leases"
        return self.leases


class _Failed(Exception):
    def __init__(self, migration: str, error: D1CheckError, *, final: bool = False) -> None:
        super().__init__(str(error))
        self.migration = migration
        self.error = error
        self.final = final  # nothing more may be sent (the lock is lost)


def migrate_client(job: Job, run: Rollout) -> Outcome:
    """Lock, read, plan, bookmark, apply, verify one client; always returns its one end state."""
    target = job.target
    outcome = Outcome(target.name, target.environment, target.database_name, "failed")
    started = time.monotonic()
    try:
        _migrate(job, run, outcome)
    except _Failed as failed:
        outcome.status, outcome.failed_at, outcome.error = "failed", failed.migration, str(failed)
    except LockHeld as held:
        outcome.status, outcome.error = "skipped", str(held)
    except D1CheckError as error:
        outcome.status, outcome.error = "failed", str(error)
    except Exception as error:
        outcome.status, outcome.error = "failed", f"{type(error).__name__}: {error}"
    outcome.seconds = time.monotonic() - started
    _record(run.journal, outcome)
    return outcome


def _plan(job: Job, run: Rollout, live: LiveState) -> Plan:
    plan = plan_from_state(job.target, job.db_id, live, job.migrations, job.expected)
    return replace(plan, refusal=plan.refusal or staging_refusal(plan, dict(run.staged)))


def _migrate(job: Job, run: Rollout, outcome: Outcome) -> None:
    client = run.client_for(job.target)
    style = TrackingStyle(job.target.tracking_table)
    first = _plan(job, run, read_snapshot(client, job.db_id, style).live)
    outcome.from_version = outcome.to_version = version_label(first.applied)
    if first.drift:
        _refuse_if_a_run_is_at_work(client, job, run)
    if first.refusal or not first.pending:
        outcome.status, outcome.error = (
            ("refused", first.refusal) if first.refusal else ("up-to-date", "")
        )
        return
    snapshot = _locked_snapshot(client, job, run, style)
    plan = _plan(job, run, snapshot.live)
    outcome.from_version = outcome.to_version = version_label(plan.applied)
    if plan.refusal or not plan.pending:
        _release(client, job, run)
        outcome.status, outcome.error = (
            ("refused", plan.refusal)
            if plan.refusal
            else (
                "up-to-date",
                "",
            )
        )
        return
    outcome.bookmark = job.bookmark or client.bookmark(job.db_id)
    run.journal.write(job.target.name, BOOKMARKED, bookmark=outcome.bookmark)
    try:
        if run.backup_dir is not None:
            _backup(client, job, run.backup_dir)
        live = _apply(client, job, plan, run, outcome)
    except BaseException:
        _release(client, job, run)
        raise
    run.lease().drop(job.db_id)  # the last apply request gave the lock back
    _verify(job, plan, live)
    outcome.status = "applied"


def _refuse_if_a_run_is_at_work(client: D1Client, job: Job, run: Rollout) -> None:
    """A schema that differs while another d1check run holds the lock (or has just let it go)
    is that run's work, not a change by hand: skip the database with that reason."""
    holder = read_holder(client, job.db_id)
    if holder is None or holder.run_id == run.ctx.run_id:
        return
    if holder.live() or holder.until > time.time() - LOCK_SECONDS:
        raise LockHeld(
            f"{job.target.name}: its schema is not the expected one while {holder.describe()} "
            "holds its deploy lock: that run is changing it; run again once it has finished"
        )


def _backup(client: D1Client, job: Job, backup_dir: Path) -> None:
    backup_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    path = backup_dir / f"{job.target.name.replace(':', '_')}-{stamp}.sql"
    path.write_text(client.export(job.db_id, no_data=False), encoding="utf-8")


def _locked_snapshot(client: D1Client, job: Job, run: Rollout, style: TrackingStyle) -> Snapshot:
    deadline = time.monotonic() + run.options.lock_wait
    while True:
        run.lease().hold(job.target, job.db_id)  # an ambiguous answer may have taken it
        snapshot = lock_and_read(client, job.db_id, style, run.ctx)
        if snapshot.holder.get("run_id") == run.ctx.run_id:
            return snapshot
        run.lease().drop(job.db_id)
        if time.monotonic() >= deadline:
            raise lock_held(job.target.name, snapshot.holder)
        time.sleep(min(1.0, max(0.05, deadline - time.monotonic())))


def _release(client: D1Client, job: Job, run: Rollout) -> None:
    """Give the lock back now; when that fails, the run's end tries again."""
    with suppress(RemoteError):
        send_sql(client, job.db_id, release_sql(run.ctx.run_id))
        run.lease().drop(job.db_id)


def _apply(client: D1Client, job: Job, plan: Plan, run: Rollout, outcome: Outcome) -> LiveState:
    chunks = _chunks(plan.pending)
    live: LiveState | None = None
    for index, chunk in enumerate(chunks):
        last = index == len(chunks) - 1
        live = _send_chunk(client, job, plan, chunk, run, outcome, last=last)
    assert live is not None
    return live


def _send_chunk(
    client: D1Client,
    job: Job,
    plan: Plan,
    chunk: list[Migration],
    run: Rollout,
    outcome: Outcome,
    *,
    last: bool,
) -> LiveState:
    style = TrackingStyle(job.target.tracking_table)
    names = ", ".join(m.name for m in chunk)
    run.journal.write(job.target.name, SENDING, migration=names, bookmark=outcome.bookmark)
    parts = [
        migration_request(m, job.target, outcome.bookmark, run.ctx, heartbeat=m is chunk[-1])
        for m in chunk
    ]
    tracking, _, schema = (sql for sql, _ in _read_statements(style))
    tail = [release_sql(run.ctx.run_id)] if last else []
    guard = guard_sql(run.ctx.run_id)
    sql = "\n".join([guard, *parts, *tail, tracking + ";", schema + ";"])
    try:
        live = _send_once(client, job, chunk, sql, style, run.ctx.run_id)
    except _Failed as failed:
        if len(chunk) == 1 or failed.final:
            raise
        for single in chunk[:-1]:
            _send_chunk(client, job, plan, [single], run, outcome, last=False)
        return _send_chunk(client, job, plan, chunk[-1:], run, outcome, last=last)
    outcome.applied += [m.name for m in chunk]
    outcome.to_version = chunk[-1].name
    return live


def read_back(client: D1Client, db_id: str, style: TrackingStyle) -> Snapshot:
    """After an ambiguous answer, before anything else: the tracking rows, audit checksums,
    schema and lock row, in one read-only request."""
    statements = [*_read_statements(style), (HOLDER_SQL, None)]
    what = "reading back the tracking rows, the lock and the schema"
    results = client.batch(db_id, statements, write=False, purpose=what)
    holder = results[3].results[0] if results[3].results else {}
    return Snapshot(_live(results[:3], style), holder)


def _send_once(
    client: D1Client,
    job: Job,
    chunk: list[Migration],
    sql: str,
    style: TrackingStyle,
    run_id: str,
) -> LiveState:
    names = [_tracking(m, style) for m in chunk]
    for _ in range(SEND_ATTEMPTS):
        try:
            what = f"the apply request of {', '.join(m.name for m in chunk)} to {job.target.name}"
            results = send_sql(client, job.db_id, sql, purpose=what)
            return _live([results[-2], QueryResult([], True), results[-1]], style)
        except AmbiguousWrite:
            back = read_back(client, job.db_id, style)
            if all(n in back.live.applied for n in names):
                return back.live
            if back.holder.get("run_id") != run_id:
                raise _lock_lost(job, chunk, back) from None
        except RemoteError as error:
            if "integer overflow" in str(error):  # the guard: is the lock still ours?
                back = read_back(client, job.db_id, style)
                if back.holder.get("run_id") != run_id:
                    raise _lock_lost(job, chunk, back) from None
            raise _Failed(chunk[0].name if len(chunk) == 1 else "", error) from None
    raise _Failed(
        chunk[0].name,
        RemoteError(f"{job.target.name}: {chunk[0].name} could not be sent; nothing of it landed"),
    )


def _lock_lost(job: Job, chunk: list[Migration], back: Snapshot) -> _Failed:
    """This run's lock is gone (its lease ran out and another run took it, or it was cleared):
    send nothing more to this database."""
    return _Failed(chunk[0].name, lock_held(job.target.name, back.holder), final=True)


def _tracking(migration: Migration, style: TrackingStyle) -> str:
    return tracking_name(migration.name, migration.file_name, style)


def _verify(job: Job, plan: Plan, live: LiveState) -> None:
    count = len(plan.applied) + len(plan.pending)
    style = TrackingStyle(job.target.tracking_table)
    wanted = [_tracking(m, style) for m in job.migrations.migrations[:count]]
    diffs = diff_schemas(job.expected.at(count), live.schema)
    if list(live.applied) != wanted or diffs:
        detail = "\n".join(str(d) for d in diffs) or f"tracking table holds {list(live.applied)}"
        error = RemoteError(
            f"{job.target.name}: after applying, the database is not at "
            f"{plan.pending[-1].name}:\n{detail}"
        )
        raise _Failed(plan.pending[-1].name, error)


def _record(journal: Journal, outcome: Outcome) -> None:
    state = {
        "applied": MIGRATED,
        "up-to-date": UP_TO_DATE,
        "failed": FAILED,
        "refused": REFUSED,
    }.get(outcome.status, SKIPPED)
    journal.write(
        outcome.target,
        state,
        version=outcome.to_version,
        migration=outcome.failed_at,
        bookmark=outcome.bookmark,
        error=outcome.error,
    )


# --- the fleet -----------------------------------------------------------------------------


def state_of(outcome: Outcome) -> str:
    """`migrated` (at the target version), `failed`, or `unchanged` (not started, skipped)."""
    if outcome.status in ("applied", "up-to-date"):
        return "migrated"
    return "failed" if outcome.status == "failed" else "unchanged"


def rollout(jobs: Sequence[Job], run: Rollout, progress: Progress | None = None) -> list[Outcome]:
    """Migrate every job: the canaries first, then the rest `concurrency` at a time."""
    if run.leases is None:
        run = replace(run, leases=Leases(run.ctx.run_id, run.client_for))
    leases = run.lease()
    shared = _Shared(run.options.max_failures)
    if run.interrupts is not None:
        run.interrupts.on_first(shared.stop)
    bar = progress or NoProgress()
    outcomes: dict[str, Outcome] = {}
    canaries, rest = list(jobs[: run.options.canary]), list(jobs[run.options.canary :])
    bar.start(len(jobs))
    try:
        with ThreadPoolExecutor(run.options.concurrency, thread_name_prefix="d1-fleet") as pool:
            for batch in (canaries, rest):
                futures = [pool.submit(_guarded, job, run, shared, bar) for job in batch]
                for job, future in zip(batch, futures, strict=True):
                    outcomes[job.target.name] = future.result()
                if batch is canaries and any(
                    outcomes[j.target.name].status == "failed" for j in canaries
                ):
                    shared.stop("not started: the canary failed")
    finally:
        leases.release_all()
        bar.stop()
    return [outcomes[j.target.name] for j in jobs]


def _guarded(job: Job, run: Rollout, shared: _Shared, bar: Progress) -> Outcome:
    reason = shared.stopped()
    if reason:
        t = job.target
        outcome = Outcome(t.name, t.environment, t.database_name, "skipped", error=reason)
        run.journal.write(t.name, SKIPPED, error=reason)
    else:
        outcome = migrate_client(job, run)
        if outcome.status == "failed":
            shared.failed()
    bar.advance(outcome)
    return outcome


def resumed_jobs(jobs: Sequence[Job], record: RunRecord) -> tuple[list[Job], list[Outcome]]:
    """Jobs still to run after an interruption, and the outcomes the journal already holds."""
    todo: list[Job] = []
    done: list[Outcome] = []
    for job in jobs:
        state = record.state(job.target.name)
        t = job.target
        if state.state in (MIGRATED, UP_TO_DATE, FAILED):
            status = {MIGRATED: "applied", UP_TO_DATE: "up-to-date"}.get(state.state, "failed")
            outcome = Outcome(
                t.name, t.environment, t.database_name, status, to_version=state.version
            )
            outcome.bookmark, outcome.error, outcome.failed_at = (
                state.bookmark,
                state.error,
                state.migration if state.state == FAILED else "",
            )
            done.append(outcome)
        else:
            keep = state.bookmark if state.state in IN_FLIGHT else ""
            todo.append(replace(job, bookmark=keep))
    return todo, done


# --- reporting -----------------------------------------------------------------------------


def tally(outcomes: Sequence[Outcome]) -> str:
    """`198 migrated, 1 unchanged, 1 failed` (a database already up to date is unchanged)."""
    states = ["unchanged" if o.status == "up-to-date" else state_of(o) for o in outcomes]
    return ", ".join(f"{states.count(s)} {s}" for s in ("migrated", "unchanged", "failed"))


def restore_plan(outcomes: Sequence[Outcome]) -> list[str]:
    """`d1check restore` lines for the failed clients that have a bookmark."""
    failed = [o for o in outcomes if o.status == "failed" and o.bookmark and o.applied]
    if not failed:
        return []
    lines = [
        f"d1check: restore plan for {len(failed)} failed client(s); D1 rate-limits Time Travel "
        "restores, so run them one at a time and space them:"
    ]
    lines += [f"  d1check restore {o.target} --bookmark {o.bookmark}" for o in failed]
    return lines


def budget_eta(budget: RequestBudget | None, requests: int) -> str:
    """The ETA the budget imposes on `requests` requests."""
    if budget is None:
        return f"~{requests} requests, no API budget"
    eta = budget.eta(requests)
    return f"~{requests} requests under the API budget {budget.requests}/{budget.seconds:g}s: " + (
        f"at least {eta:.0f} s" if eta else "fits in one window"
    )


# --- drift report --------------------------------------------------------------------------


@dataclass(frozen=True)
class DriftGroup:
    """Clients that share an applied version and a schema fingerprint."""

    version: str
    fingerprint: str
    targets: tuple[str, ...]
    differences: tuple[str, ...]

    @property
    def count(self) -> int:
        """How many clients the group holds."""
        return len(self.targets)


@dataclass(frozen=True)
class DriftReport:
    """The fleet grouped by (applied version, schema fingerprint); unreadable clients apart."""

    groups: tuple[DriftGroup, ...]
    errors: Mapping[str, str]

    def lines(self) -> list[str]:
        """The report as text: one header line per group, its diff indented."""
        out = []
        for g in self.groups:
            state = "as expected" if not g.differences else "differs from the expected schema"
            names = ", ".join(g.targets[:5]) + (", …" if g.count > 5 else "")
            out.append(f"{g.count:>5}  {g.version}  {g.fingerprint[:12]}  {state}: {names}")
            out += [f"         {d}" for d in g.differences]
        out += [f"error  {name}: {error}" for name, error in self.errors.items()]
        return out


def fleet_drift_report(
    jobs: Sequence[Job],
    client_for: Callable[[Target], D1Client],
    *,
    concurrency: int = 8,
) -> DriftReport:
    """Read every client (read-only, one request each) and group them."""
    with ThreadPoolExecutor(concurrency, thread_name_prefix="d1-drift") as pool:
        reads = list(pool.map(lambda j: _read_for_report(j, client_for), jobs))
    errors = {j.target.name: r for j, r in zip(jobs, reads, strict=True) if isinstance(r, str)}
    keyed: dict[tuple[str, str], list[tuple[Job, LiveState]]] = {}
    for job, read in zip(jobs, reads, strict=True):
        if not isinstance(read, str):
            key = (version_label(read.applied), read.schema.fingerprint())
            keyed.setdefault(key, []).append((job, read))
    groups = [_group(key, members) for key, members in keyed.items()]
    groups.sort(key=lambda g: (-g.count, g.version))
    return DriftReport(tuple(groups), errors)


def _read_for_report(job: Job, client_for: Callable[[Target], D1Client]) -> LiveState | str:
    try:
        style = TrackingStyle(job.target.tracking_table)
        return read_snapshot(client_for(job.target), job.db_id, style).live
    except D1CheckError as error:
        return str(error)


def _group(key: tuple[str, str], members: list[tuple[Job, LiveState]]) -> DriftGroup:
    job, live = members[0]
    return DriftGroup(
        key[0], key[1], tuple(j.target.name for j, _ in members), _differences(job, live)
    )


def _differences(job: Job, live: LiveState) -> tuple[str, ...]:
    style = TrackingStyle(job.target.tracking_table)
    names = [_tracking(m, style) for m in job.migrations.migrations]
    if list(live.applied) != names[: len(live.applied)]:
        return (f"applied migrations are not a prefix of the history: {', '.join(live.applied)}",)
    expected: Schema = job.expected.at(len(live.applied))
    return tuple(str(d) for d in diff_schemas(expected, live.schema))


# --- from a configuration ------------------------------------------------------------------


def run_fleet(
    config: Config,
    target: str,
    targets: Sequence[Target],
    options: DeployOptions,
    fleet: FleetOptions,
    write: Write,
) -> bool:
    """The gate for many databases: plan and apply per client, journal, report."""
    client_for, clients = account_clients(config, options.api_budget, fleet.concurrency)
    try:
        jobs = make_jobs(config, targets, client_for)
        shown = parse_budget(options.api_budget)
        eta = budget_eta(shown, estimate_requests(jobs))
        write(f"d1check: fleet of {len(jobs)} database(s); {eta}")
        if options.dry_run:
            return _dry_run(jobs, client_for, fleet, write)
        if not confirm([j.target for j in jobs], options, write):
            return False
        interrupts = Interrupts()
        with interrupts.installed():
            run_id, outcomes = _run_journaled(
                config, target, jobs, client_for, options, fleet, write, interrupts
            )
    finally:
        for client in clients.values():
            client.close()
    report_fleet(outcomes, options, write)
    if interrupts.interrupted:
        write_interrupted(outcomes, target, run_id, write)
        raise Interrupted(f"the deploy to {target} was interrupted; resume with --resume {run_id}")
    return all(state_of(o) == "migrated" for o in outcomes)


def write_interrupted(outcomes: Sequence[Outcome], target: str, run_id: str, write: Write) -> None:
    """What an interrupted run did, what is left, and how to resume it."""
    left = [o.target for o in outcomes if o.status == "skipped"]
    done = len(outcomes) - len(left)
    write(
        f"d1check: interrupted: {done} database(s) done, {len(left)} not started"
        + (f" ({', '.join(left[:5])}{', …' if len(left) > 5 else ''})" if left else "")
    )
    write(
        f"d1check: resume with: pytest --apply={target} --resume {run_id} "
        f"(or: d1check apply {target} --resume {run_id})"
    )


def account_clients(
    config: Config,
    api_budget: str,
    concurrency: int,
    *,
    budget: RequestBudget | None = None,
) -> tuple[Callable[[Target], D1Client], dict[str | None, D1Client]]:
    """One client per account, made on first need, all under one budget (`budget`, shared with
    other work of the command, else one made from `api_budget`); close them after."""
    budget = budget if budget is not None else fleet_budget(parse_budget(api_budget))
    clients: dict[str | None, D1Client] = {}
    lock = threading.Lock()

    def client_for(t: Target) -> D1Client:
        with lock:
            if t.account_id not in clients:
                clients[t.account_id] = D1Client.from_env(
                    account_id=account_for(config, t),
                    budget=budget,
                    transport=fleet_transport(concurrency),
                )
            return clients[t.account_id]

    return client_for, clients


def drift_report_for(
    config: Config,
    target: str,
    *,
    api_budget: str = "1200/300",
    concurrency: int = 8,
    budget: RequestBudget | None = None,
) -> DriftReport:
    """`fleet_drift_report` for a target name of the configuration (what `status` shows)."""
    client_for, clients = account_clients(config, api_budget, concurrency, budget=budget)
    try:
        jobs = make_jobs(config, resolve_targets(config, target).targets, client_for)
        return fleet_drift_report(jobs, client_for, concurrency=concurrency)
    finally:
        for client in clients.values():
            client.close()


def make_jobs(
    config: Config, targets: Sequence[Target], client_for: Callable[[Target], D1Client]
) -> list[Job]:
    """One job per target; database ids looked up once per account where the config has none."""
    families = {
        f: discover(
            config.family(f).migrations_dir,
            config.family(f).rollbacks_dir,
            config.family(f).migrations_pattern,
        )
        for f in {t.family for t in targets}
    }
    expected = {f: Expected(m, config.family(f).tracking_table) for f, m in families.items()}
    ids: dict[tuple[str | None, str], str] = {}
    for t in targets:
        if not t.database_id and (t.account_id, t.database_name) not in ids:
            listing = client_for(t).list_databases()
            ids.update({(t.account_id, db.name): db.uuid for db in listing})
    jobs = []
    for t in targets:
        db_id = t.database_id or ids.get((t.account_id, t.database_name))
        if not db_id:
            raise RemoteError(
                f"no D1 database named {t.database_name!r} (target {t.name}); check the name "
                "in the configuration, or create it with `wrangler d1 create`"
            )
        jobs.append(Job(t, db_id, families[t.family], expected[t.family]))
    return jobs


def _run_journaled(
    config: Config,
    target: str,
    jobs: list[Job],
    client_for: Callable[[Target], D1Client],
    options: DeployOptions,
    fleet: FleetOptions,
    write: Write,
    interrupts: Interrupts | None = None,
) -> tuple[str, list[Outcome]]:
    run_id = fleet.resume or new_run_id()
    names = [j.target.name for j in jobs]
    runs_dir = fleet.journal_dir(config.root)
    with opened_journal(runs_dir, run_id, target, names, fleet.resume is not None) as journal:
        todo, done = resumed_jobs(jobs, journal.record) if fleet.resume else (jobs, [])
        write(
            f"d1check: run {run_id} (journal {journal.path}): {len(todo)} to do, "
            f"{len(done)} finished before; concurrency {fleet.concurrency}, canary "
            f"{fleet.canary}, max failures {fleet.max_failures}"
        )
        production = any(j.target.environment == "production" for j in todo)
        staged = staged_names(config, client_for) if production else {}
        ctx = RunContext(run_id, owner(), git_commit(config.root))
        run = Rollout(
            client_for, ctx, journal, fleet, staged, options.backup_dir, interrupts=interrupts
        )
        outcomes = done + rollout(todo, run, make_progress(fleet.progress, write))
    order = {name: i for i, name in enumerate(names)}
    return run_id, sorted(outcomes, key=lambda o: order.get(o.target, len(order)))


def _dry_run(
    jobs: Sequence[Job], client_for: Callable[[Target], D1Client], fleet: FleetOptions, write: Write
) -> bool:
    def plan(job: Job) -> Plan:
        style = TrackingStyle(job.target.tracking_table)
        live = read_snapshot(client_for(job.target), job.db_id, style).live
        return plan_from_state(job.target, job.db_id, live, job.migrations, job.expected)

    with ThreadPoolExecutor(fleet.concurrency, thread_name_prefix="d1-plan") as pool:
        plans = list(pool.map(plan, jobs))
    for p in plans:
        todo = ", ".join(m.name for m in p.pending) or "nothing"
        line = f"refused: {p.refusal}" if p.refusal else f"would apply {todo}"
        write(
            f"d1check: dry run: {p.target.name} ({p.target.database_name}) at "
            f"{version_label(p.applied)}: {line}"
        )
        if len(plans) == 1:
            _show_sql(p, write)
    return not any(p.refusal for p in plans)


def _show_sql(plan: Plan, write: Write) -> None:
    for migration in plan.pending:
        write(f"  would apply {migration.name}:")
        for statement in migration.file.statements:
            write("    " + statement.sql.replace("\n", "\n    "))


def report_fleet(outcomes: Sequence[Outcome], options: DeployOptions, write: Write) -> None:
    """Summary table, failures, restore plan, tally; JSON report and step summary if asked."""
    for line in summary_lines(outcomes):
        write(line)
    for o in outcomes:
        if o.status == "applied":
            write(f"d1check: {o.target}: applied {', '.join(o.applied) or o.to_version}")
        if o.status in ("failed", "refused") or (o.status == "skipped" and o.error):
            where = f" at {o.failed_at}" if o.failed_at else ""
            write(f"d1check: {o.target} {o.status}{where}: {o.error}")
        if o.status == "failed" and o.bookmark and len(outcomes) == 1:
            write(f"  restore with: d1check restore {o.target} --bookmark {o.bookmark}")
    for line in restore_plan(outcomes):
        write(line)
    write(f"d1check: fleet: {tally(outcomes)}")
    write_reports(outcomes, options)


@contextmanager
def opened_journal(
    runs_dir: Path, run_id: str, target: str, clients: Sequence[str], resume: bool
) -> Iterator[Journal]:
    """The run's journal: created, or reopened for `--resume` (target must match)."""
    journal = (
        Journal.resume(runs_dir, run_id)
        if resume
        else Journal.create(runs_dir, run_id, target, clients)
    )
    try:
        if journal.record.target != target:
            raise ConfigError(
                f"{journal.path}: run {run_id} applied to {journal.record.target!r}, not "
                f"{target!r}; resume it with --apply={journal.record.target}"
            )
        yield journal
    finally:
        journal.close()
