"""The run journal of a fleet rollout: one fsync'd JSON line per state change of a client.

`.d1check/runs/<run_id>.jsonl` starts with a `run` line (target, clients) and then holds one
line per client state change. The databases' tracking tables stay the truth of what is applied;
the journal tells `--resume RUN` which clients were finished, which were in flight, and the
bookmark each in-flight client had before it was touched.
"""

from __future__ import annotations

import json
import os
import secrets
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from d1check.errors import ConfigError

RUNS_DIR = Path(".d1check") / "runs"

STARTED, BOOKMARKED, SENDING = "started", "bookmarked", "sending"
MIGRATED, UP_TO_DATE, FAILED = "migrated", "up-to-date", "failed"
REFUSED, SKIPPED = "refused", "skipped"
IN_FLIGHT = frozenset({STARTED, BOOKMARKED, SENDING})
DONE = frozenset({MIGRATED, UP_TO_DATE, FAILED})


@dataclass(frozen=True)
class ClientState:
    """The last recorded state of one client, with what was recorded along the way."""

    client: str
    state: str
    bookmark: str = ""
    migration: str = ""
    version: str = ""
    error: str = ""


@dataclass(frozen=True)
class RunRecord:
    """What a journal says about a run."""

    run_id: str
    target: str
    clients: tuple[str, ...]
    states: Mapping[str, ClientState] = field(default_factory=dict)

    def state(self, client: str) -> ClientState:
        """The client's last state (`""` when the journal never mentions it)."""
        return self.states.get(client, ClientState(client, ""))

    def in_flight(self) -> list[str]:
        """Clients that were started and never reached an end state."""
        return [c for c in self.clients if self.state(c).state in IN_FLIGHT]

    def finished(self) -> list[str]:
        """Clients that reached migrated, up-to-date or failed."""
        return [c for c in self.clients if self.state(c).state in DONE]


def new_run_id() -> str:
    """A sortable, unique run id such as `20261126T140200Z-3fa9c1`."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


def journal_path(runs_dir: Path, run_id: str) -> Path:
    """Where the journal of `run_id` lives."""
    if not run_id or "/" in run_id or run_id.startswith("."):
        raise ConfigError(f"run id {run_id!r} is not a run id (see {runs_dir} for past runs)")
    return runs_dir / f"{run_id}.jsonl"


class Journal:
    """An append-only, fsync'd JSON-lines file; safe to share between threads.

    Threads that write at once share one fsync (group commit): a line is on disk when `write`
    returns, at the price of one fsync per burst rather than one per line.
    """

    def __init__(self, path: Path, record: RunRecord) -> None:
        self.path = path
        self.record = record
        self._file: IO[str] = path.open("a", encoding="utf-8")
        self._lock = threading.Lock()
        self._sync_lock = threading.Lock()
        self._written = 0
        self._synced = 0

    @classmethod
    def create(cls, runs_dir: Path, run_id: str, target: str, clients: Sequence[str]) -> Journal:
        """Start the journal of a new run."""
        path = journal_path(runs_dir, run_id)
        if path.exists():
            raise ConfigError(
                f"{path}: a run with this id exists; resume it with --resume {run_id}"
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        journal = cls(path, RunRecord(run_id, target, tuple(clients)))
        journal._append({"event": "run", "run_id": run_id, "target": target, "clients": clients})
        return journal

    @classmethod
    def resume(cls, runs_dir: Path, run_id: str) -> Journal:
        """Reopen the journal of an interrupted run (ConfigError when there is none)."""
        path = journal_path(runs_dir, run_id)
        journal = cls(path, read_journal(path))
        journal._append({"event": "resume", "run_id": run_id})
        return journal

    def write(self, client: str, state: str, **data: str) -> None:
        """Record a state change of `client` (durable when this returns)."""
        self._append({"event": "state", "client": client, "state": state, **data})

    def close(self) -> None:
        """Close the file."""
        self._file.close()

    def _append(self, entry: dict[str, Any]) -> None:
        line = json.dumps({"at": round(time.time(), 3), **entry}, sort_keys=True)
        with self._lock:
            self._file.write(line + "\n")
            self._file.flush()
            self._written += 1
            mine = self._written
        with self._sync_lock:
            if self._synced >= mine:
                return
            with self._lock:
                upto = self._written
            os.fsync(self._file.fileno())
            self._synced = upto

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_journal(path: Path) -> RunRecord:
    """Read a journal; a last line cut short by a crash is ignored."""
    if not path.exists():
        raise ConfigError(
            f"no journal {path}: nothing to resume; list runs with `ls {path.parent}`"
        )
    entries = _entries(path)
    header = next((e for e in entries if e.get("event") == "run"), None)
    if header is None:
        raise ConfigError(f"{path}:1: not a d1check run journal (no `run` line)")
    states: dict[str, ClientState] = {}
    for entry in entries:
        if entry.get("event") == "state":
            states[str(entry["client"])] = _merge(states.get(str(entry["client"])), entry)
    clients = tuple(str(c) for c in header.get("clients", []))
    return RunRecord(str(header["run_id"]), str(header["target"]), clients, states)


def _entries(path: Path) -> list[dict[str, Any]]:
    lines = path.read_text(encoding="utf-8").splitlines()
    entries = []
    for number, line in enumerate(lines, 1):
        try:
            entries.append(json.loads(line))
        except ValueError:
            if number != len(lines):
                raise ConfigError(
                    f"{path}:{number}: not JSON; the journal is damaged, start a new run"
                ) from None
    return entries


def _merge(previous: ClientState | None, entry: Mapping[str, Any]) -> ClientState:
    before = previous or ClientState(str(entry["client"]), "")
    return ClientState(
        before.client,
        str(entry["state"]),
        str(entry.get("bookmark") or before.bookmark),
        str(entry.get("migration") or before.migration),
        str(entry.get("version") or before.version),
        str(entry.get("error", "")),
    )
