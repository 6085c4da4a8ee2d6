"""The deploy lock as a lease: a run holds a database's lock row only while it keeps renewing it.

A run takes the lock with an expiry `LOCK_SECONDS` ahead and renews it every `RENEW_EVERY`
seconds while it holds it, so the lock of a run killed on any machine frees itself within about a
minute. A run that ends gives back every lock it still holds (`release_all`), whatever happened.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from d1check.errors import D1CheckError, LockHeld, RemoteError
from d1check.remote import D1Client
from d1check.targets import Target
from d1check.tracking import LOCK_SECONDS, LOCK_TABLE, quote
from d1check.writes import send_sql

RENEW_EVERY = LOCK_SECONDS / 4
HOLDER_SQL = f'SELECT owner, run_id, acquired_at, heartbeat_at, expires_at FROM "{LOCK_TABLE}"'

_log = logging.getLogger(__name__)


def release_sql(run_id: str) -> str:
    """The statement that gives a run's lock back (never another run's)."""
    return f'DELETE FROM "{LOCK_TABLE}" WHERE run_id = {quote(run_id)};'


def guard_sql(run_id: str) -> str:
    """A statement that fails (integer overflow) unless run `run_id` holds the lock: sent first
    in every apply request, so a migration lands only under its run's lock."""
    return (
        f'SELECT CASE WHEN EXISTS (SELECT 1 FROM "{LOCK_TABLE}" WHERE run_id = {quote(run_id)}) '
        "THEN 1 ELSE abs(-9223372036854775808) END AS lock_held;"
    )


def renew_sql(run_id: str, now: float | None = None) -> str:
    """The statement that extends a run's lease by `LOCK_SECONDS` from now."""
    now = time.time() if now is None else now
    return (
        f'UPDATE "{LOCK_TABLE}" SET heartbeat_at = {now}, expires_at = {now + LOCK_SECONDS} '
        f"WHERE run_id = {quote(run_id)};"
    )


def _utc(value: object) -> str:
    try:
        moment = float(str(value))
    except ValueError:
        return "?"
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(moment))


@dataclass(frozen=True)
class Holder:
    """Who holds a database's lock, as its lock row says."""

    run_id: str
    owner: str
    since: float
    until: float

    @classmethod
    def from_row(cls, row: Mapping[str, object]) -> Holder | None:
        """The holder of a lock row (None for no row)."""
        if not row:
            return None
        return cls(
            str(row.get("run_id", "")),
            str(row.get("owner", "")),
            float(str(row.get("acquired_at") or 0)),
            float(str(row.get("expires_at") or 0)),
        )

    def live(self, now: float | None = None) -> bool:
        """Whether the lease still runs."""
        return self.until > (time.time() if now is None else now)

    def describe(self) -> str:
        """`run R (owner, since …, until …)`."""
        state = "until" if self.live() else "expired"
        since, until = _utc(self.since), _utc(self.until)
        return f"run {self.run_id} ({self.owner}, since {since}, {state} {until})"


def lock_held(name: str, row: Mapping[str, object]) -> LockHeld:
    """The refusal of a run that finds another run's lock."""
    holder = Holder.from_row(row)
    if holder is None:
        return LockHeld(
            f"{name}: this run no longer holds the deploy lock (it was cleared); fix: run again"
        )
    who = holder.describe()
    return LockHeld(
        f"{name} is locked by {who}; fix: wait for that run to finish (the lease of a run that "
        f"was killed runs out within {LOCK_SECONDS:.0f} s), or clear it with "
        f"`d1check unlock {name}` once you know that run is gone"
    )


class Leases:
    """The locks one run holds (or may hold), renewed in the background until given back.

    `hold` before the lock request is sent (an ambiguous answer may have taken it), `drop` once it
    is given back or known not to be ours; `release_all` at the end of the run.
    """

    def __init__(
        self, run_id: str, client_for: Callable[[Target], D1Client], every: float = RENEW_EVERY
    ) -> None:
        self.run_id = run_id
        self._client_for = client_for
        self._every = every
        self._held: dict[str, Target] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def hold(self, target: Target, db_id: str) -> None:
        """Count `db_id`'s lock as ours (to renew, and to give back at the end)."""
        with self._lock:
            self._held[db_id] = target
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._renew_loop, name="d1-lease", daemon=True
                )
                self._thread.start()

    def drop(self, db_id: str) -> None:
        """`db_id`'s lock is given back (or was never ours)."""
        with self._lock:
            self._held.pop(db_id, None)

    def held(self) -> dict[str, Target]:
        """The locks counted as ours now, by database id."""
        with self._lock:
            return dict(self._held)

    def release_all(self) -> list[str]:
        """Give back every lock still counted as ours; the database ids it could not reach (their
        leases run out by themselves)."""
        self._stop.set()
        failed = []
        for db_id, target in self.held().items():
            try:
                send_sql(self._client_for(target), db_id, release_sql(self.run_id))
                self.drop(db_id)
            except D1CheckError as error:
                _log.warning("could not release the lock of %s: %s", target.name, error)
                failed.append(db_id)
        return failed

    def renew(self) -> None:
        """Extend every lease held now (what the background thread does)."""
        for db_id, target in self.held().items():
            try:
                send_sql(self._client_for(target), db_id, renew_sql(self.run_id))
            except D1CheckError as error:
                _log.warning("could not renew the lock of %s: %s", target.name, error)

    def _renew_loop(self) -> None:
        while not self._stop.wait(self._every):
            self.renew()


def read_holder(client: D1Client, db_id: str) -> Holder | None:
    """Who holds the deploy lock of a database now (None: no lock row, or no lock table)."""
    try:
        results = client.query(db_id, HOLDER_SQL, write=False)
    except RemoteError as error:
        if "no such table" in str(error):
            return None
        raise
    rows = results[0].results if results else []
    return Holder.from_row(rows[0]) if rows else None


def clear_lock(client: D1Client, db_id: str, run_id: str) -> bool:
    """Remove the lock of run `run_id` (only that run's); True when there was one to remove."""
    results = send_sql(client, db_id, release_sql(run_id).rstrip(";") + " RETURNING run_id")
    return bool(results and results[0].results)
