"""Exclusive locks across processes (pytest-xdist workers, parallel runs) on a lock file.

POSIX systems lock with `fcntl.flock`. Where there is no `fcntl` (Windows), no lock is taken
and every caller is told it holds the lock: d1check stays correct without one, because what
it guards is written atomically (a temporary name, then a rename). Two workers may then check
the same segment of the history, or build the same engine image, at the same time: the cost is
repeated work, never a wrong result.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - exercised in a subprocess that refuses fcntl
    LOCKS_ACROSS_PROCESSES = False
else:
    LOCKS_ACROSS_PROCESSES = True

__all__ = ["LOCKS_ACROSS_PROCESSES", "exclusive"]


@contextmanager
def exclusive(path: Path, *, wait: bool = True) -> Iterator[bool]:
    """Holds the lock on `path` (created when missing); yields whether it was taken: always
    when `wait`, and without `wait` False while another process holds it. Without `fcntl`,
    takes nothing and yields True."""
    if not LOCKS_ACROSS_PROCESSES:
        yield True
        return
    with open(path, "a+b") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
