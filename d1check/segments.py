"""Who computes which part of the pass: the history cut into segments, one lock each.

A process that needs results takes the segments nobody holds (pytest-xdist workers, the helper of
`d1check.background`, the items of a plain run) and computes each from the nearest kept state,
storing results per chunk and the state at each chunk's end in the cache; it waits only for
segments another process holds. Results do not depend on which process computed a segment.
"""

from __future__ import annotations

from d1check.cache import CHECKPOINT_EVERY, Checkpoint, Found, ResultCache, chunk_bounds
from d1check.checks import CheckResult
from d1check.discovery import Migration
from d1check.history import History, OnStep

__all__ = ["Missing", "Segments", "found_in_cache", "segment_bounds"]

Missing = list[Found | None]


def found_in_cache(cache: ResultCache, keys: list[str]) -> Missing:
    """What the cache holds of the versions whose keys are `keys` (None where nothing)."""
    summary = cache.load_summary(keys[-1]) if keys else None
    if summary is not None and len(summary) == len(keys):
        return list(summary)
    found: Missing = [None] * len(keys)
    for start, end in chunk_bounds(len(keys)):
        _load_chunk(cache, keys, found, start, end)
    return found


def _load_chunk(cache: ResultCache, keys: list[str], found: Missing, start: int, end: int) -> None:
    """Fill `found[start:end]` (one chunk) from the cache, when it is kept there."""
    chunk = cache.load_chunk(keys[start:end])
    if chunk is not None:
        found[start:end] = chunk


def segment_bounds(total: int, size: int | None = None) -> list[tuple[int, int]]:
    """The history cut into segments `[start, end)`: about 20 of them (small ones keep workers
    evenly busy), each a multiple of the checkpoint interval long, so segments start where
    states are kept."""
    if size is None:
        size = -(-total // 20)
        size = max(1, -(-size // CHECKPOINT_EVERY)) * CHECKPOINT_EVERY
    size = max(1, size)
    return [(start, min(start + size, total)) for start in range(0, total, size)]


class Segments:
    """Computing missing results segment by segment, so xdist workers share the work: a worker
    takes a segment nobody holds (non-blocking lock), and waits only when all missing are held.

    A segment starts from the nearest kept state at or before its start and replays the
    migrations in between without checks; the state is the checked pass's (same seeds, same
    synthesized rows), so results do not depend on where a pass started."""

    def __init__(
        self,
        cache: ResultCache,
        history: History,
        keys: list[str],
        found: Missing,
        size: int | None,
    ) -> None:
        self.cache = cache
        self.template = history
        self.history = history
        self.keys = keys
        self.found = found
        self.bounds = segment_bounds(len(keys), size)

    def compute(self) -> None:
        todo = [b for b in self.bounds if self._missing(*b) is not None]
        while todo:
            taken = False
            for bound in list(todo):
                if self._run_if_free(bound):
                    todo.remove(bound)
                    taken = True
            if todo and not taken:
                self._run_when_free(todo.pop(0))

    def missing_count(self) -> int:
        """How many versions have no results yet."""
        return sum(1 for f in self.found if f is None)

    def wait_for(self, position: int) -> Found:
        """The results of the version at `position` (0-based): read from the cache once the
        segment holding it is stored, or computed here when nobody holds it. While another
        process holds it, a later segment nobody holds is computed here meanwhile; with none
        left, the call waits."""
        bound = next(b for b in self.bounds if b[0] <= position < b[1])
        while self.found[position] is None:
            if self._run_if_free(bound):
                continue
            if not any(self._run_if_free(b) for b in self._meanwhile(bound)):
                self._run_when_free(bound)
        found = self.found[position]
        assert found is not None
        return found

    def _meanwhile(self, bound: tuple[int, int]) -> list[tuple[int, int]]:
        """The missing segments after `bound`, in the order to try them while another process
        holds `bound`: first the one this process's pass reached (no replay), then from the
        middle of the rest on, so that the two processes each go on through a long run of
        segments instead of replaying the ones the other just checked."""
        later = [b for b in self.bounds if b[0] > bound[0] and self._missing(*b) is not None]
        here = [b for b in later if b[0] == self.history.position]
        rest = [b for b in later if b not in here]
        middle = len(rest) // 2
        return here + rest[middle:] + rest[:middle]

    def _run_if_free(self, bound: tuple[int, int]) -> bool:
        """Compute the segment `bound` unless another process holds it; whether it was free."""
        with self.cache.lock(self._lock_name(bound), wait=False) as got:
            if got:
                self._run(*bound)
        return got

    def _run_when_free(self, bound: tuple[int, int]) -> None:
        """Compute the segment `bound`, waiting while another process holds it (once it is
        released, its stored results are read instead)."""
        with self.cache.lock(self._lock_name(bound)):
            self._run(*bound)

    def _lock_name(self, bound: tuple[int, int]) -> str:
        return f"{self.keys[0][:16]}-{bound[0]}"

    def _missing(self, start: int, end: int) -> int | None:
        return next((i for i in range(start, end) if self.found[i] is None), None)

    def _run(self, start: int, end: int) -> None:
        for chunk_start, chunk_end in chunk_bounds(len(self.keys)):
            if start <= chunk_start < end and self.found[chunk_start] is None:
                _load_chunk(self.cache, self.keys, self.found, chunk_start, chunk_end)
        first = self._missing(start, end)
        if first is None:
            return
        self._position_at(first)
        self.history.on_step = _store_step(self.cache, self.keys, self.found, end)
        self.history.run_to(end)
        self.history.on_step = None

    def _position_at(self, target: int) -> None:
        history = self.history
        kept = self._kept_state(target)
        if not kept[0] <= history.position <= target:
            history = self._fresh()
            if kept[1] is not None:
                history.resume(kept[0], *kept[1])
        self.history = history
        while history.position < target:
            history.replay_to(history.position + 1)
            position = history.position
            if position % CHECKPOINT_EVERY == 0 and kept[0] < position:
                state = history.state_bytes()
                if state is not None:
                    self.cache.store_state(self.keys[position - 1], *state)

    def _kept_state(self, target: int) -> tuple[int, Checkpoint | None]:
        """The last kept state at or before `target` (position 0: the empty database)."""
        for position in range(target - target % CHECKPOINT_EVERY, 0, -CHECKPOINT_EVERY):
            state = self.cache.load_state(self.keys[position - 1])
            if state is not None:
                return position, state
        return 0, None

    def _fresh(self) -> History:
        t = self.template
        return History(t.migrations, t.policy, seed_files=t.seed_files)


def _store_step(cache: ResultCache, keys: list[str], found: Missing, end: int) -> OnStep:
    """Keep each checked version's results in `found`; store a chunk's results once they are all
    there (at the chunk's end, or at `end`, where the segment stops), and the state at the end of
    each chunk."""
    total = len(keys)

    def store(
        position: int, migration: Migration, results: dict[str, CheckResult], history: History
    ) -> None:
        found[position - 1] = (results, history.last_fingerprint())
        chunk_end = position % CHECKPOINT_EVERY == 0 or position == total
        if not chunk_end and position != end:
            return
        start = (position - 1) // CHECKPOINT_EVERY * CHECKPOINT_EVERY
        stop = min(start + CHECKPOINT_EVERY, total)
        chunk = found[start:stop]
        if all(f is not None for f in chunk):
            cache.store_chunk(keys[start:stop], [f for f in chunk if f is not None])
        if chunk_end:
            state = history.state_bytes()
            if state is not None:
                cache.store_state(keys[position - 1], *state)

    return store
