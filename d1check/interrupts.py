"""Ctrl-C and SIGTERM during a deploy: the first stops new work and lets the run end cleanly, the
second exits at once.

After the first signal no new database is started; the requests in flight finish (or end as
ambiguous and are read back), the run gives back its locks, prints its summary with how to
resume, and exits as an interrupted pytest does (2; `d1check apply` exits 130). A second signal
exits at once: the journal, written before every step, still lets `--resume` finish the run
correctly, and the locks' leases run out by themselves.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

EXIT_INTERRUPTED = 2  # pytest's ExitCode.INTERRUPTED
SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(Exception):
    """The deploy was interrupted and ended cleanly; the summary says how to resume."""


class Interrupts:
    """Counts Ctrl-C/SIGTERM while installed; tells listeners about the first one."""

    def __init__(self) -> None:
        self.count = 0
        self.reason = ""
        self._listeners: list[Callable[[str], None]] = []

    @property
    def interrupted(self) -> bool:
        """Whether a signal came."""
        return self.count > 0

    def on_first(self, listener: Callable[[str], None]) -> None:
        """Call `listener(reason)` at the first signal (at once if it came already)."""
        self._listeners.append(listener)
        if self.interrupted:
            listener(self.reason)

    def interrupt(self, name: str) -> None:
        """What the first signal does (tests call it directly)."""
        self.count += 1
        if self.count > 1:
            sys.stderr.write(
                f"\nd1check: {name} again: exiting now; resume the run with --resume (its "
                "journal is up to date)\n"
            )
            sys.stderr.flush()
            os._exit(EXIT_INTERRUPTED)
        self.reason = f"not started: interrupted ({name})"
        sys.stderr.write(
            f"\nd1check: {name}: starting no new database, finishing those in flight; "
            "press Ctrl-C again to exit at once\n"
        )
        sys.stderr.flush()
        for listener in self._listeners:
            listener(self.reason)

    @contextmanager
    def installed(self) -> Iterator[Interrupts]:
        """Handle SIGINT and SIGTERM in the block (only in the main thread; elsewhere a no-op)."""
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = {s: signal.signal(s, self._handle) for s in SIGNALS}
        try:
            yield self
        finally:
            for number, handler in previous.items():
                signal.signal(number, handler)

    def _handle(self, number: int, _frame: FrameType | None) -> None:
        self.interrupt(signal.Signals(number).name)
