"""A content-addressed cache of check results and states: an unchanged prefix is not re-applied.

The key of version k hashes the key of version k-1 with migration k and its rollback; the key of the
empty history hashes the engine, d1check's version, the policy and the seed files. Results are
stored by chunks of `CHECKPOINT_EVERY` versions (from the start), each under the key of its last
version, and with each chunk the state after it (the database with its synthesized rows). Writes
are atomic (a temporary name, then a rename), so pytest-xdist workers can share the directory.
The history is cut into segments with a file lock each: a worker computes a segment nobody holds,
and waits only when every missing one is held.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

from d1check import __version__
from d1check.checks import CheckResult, Policy
from d1check.discovery import Migration
from d1check.engine import engine_description
from d1check.filelock import exclusive
from d1check.rows import Coverage

CHECKPOINT_EVERY = 50
Checkpoint = tuple[bytes, list[int], bytes]
"""A kept state of the pass: the database with rows, its pending seed statements (indexes), and
the database as built from empty."""
Found = tuple[dict[str, CheckResult], str]
"""One version's check results (by check name) and the schema fingerprint after it."""


def chunk_bounds(total: int) -> list[tuple[int, int]]:
    """The chunks `[start, end)` of a history of `total` versions: every `CHECKPOINT_EVERY`."""
    return [
        (start, min(start + CHECKPOINT_EVERY, total)) for start in range(0, total, CHECKPOINT_EVERY)
    ]


def base_key(policy: Policy, seed_files: Sequence[Path], migrations_dir: Path) -> str:
    """The key of the empty history."""
    digest = hashlib.sha256()
    for part in (engine_description(), __version__, repr(policy), str(migrations_dir)):
        digest.update(part.encode() + b"\0")
    for path in seed_files:
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def next_key(previous: str, migration: Migration) -> str:
    """The key of the history that ends with `migration`."""
    digest = hashlib.sha256(previous.encode())
    digest.update(migration.file_name.encode() + b"\0" + migration.file.sha256.encode())
    digest.update(b"\0shipped" if migration.shipped else b"\0new")
    if migration.rollback is not None:
        digest.update(b"\0" + migration.rollback.sha256.encode())
    for directive in migration.directives:
        digest.update(f"\0{directive.kind}:{directive.reason}".encode())
    return digest.hexdigest()


def chain(
    policy: Policy,
    seed_files: Sequence[Path],
    migrations: Sequence[Migration],
    migrations_dir: Path,
) -> list[str]:
    """Keys of every version: index k is the key after migration k (0-based)."""
    keys = []
    key = base_key(policy, seed_files, migrations_dir)
    for migration in migrations:
        key = next_key(key, migration)
        keys.append(key)
    return keys


class ResultCache:
    """Check results and checkpoint states under one directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        (directory / "results").mkdir(parents=True, exist_ok=True)
        (directory / "states").mkdir(parents=True, exist_ok=True)

    def _chunk_path(self, key: str) -> Path:
        return self.directory / "results" / f"{key}.chunk.json"

    def _state_path(self, key: str) -> Path:
        return self.directory / "states" / f"{key}.sqlite"

    def load_chunk(self, keys: Sequence[str]) -> list[Found] | None:
        """The results and schema fingerprints of the versions whose keys are `keys` (a chunk, as
        stored by `store_chunk`), if kept."""
        try:
            data = json.loads(self._chunk_path(keys[-1]).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if [item["key"] for item in data] != list(keys):
            return None
        return [_decoded(item) for item in data]

    def store_chunk(self, keys: Sequence[str], found: Sequence[Found]) -> None:
        """Keep the results of consecutive versions in one file (atomically)."""
        payload = [{"key": key, **_encoded(f)} for key, f in zip(keys, found, strict=True)]
        _atomic_write(self._chunk_path(keys[-1]), json.dumps(payload).encode())

    def has_summary(self, key: str) -> bool:
        """Whether the whole history whose last key is `key` is kept in one file."""
        return (self.directory / "results" / f"{key}.all.json").is_file()

    def load_summary(self, key: str) -> list[Found] | None:
        """Every version's results and fingerprint of the history whose last key is `key`."""
        try:
            data = json.loads((self.directory / "results" / f"{key}.all.json").read_text("utf-8"))
        except (OSError, ValueError):
            return None
        return [_decoded(item) for item in data]

    def store_summary(self, key: str, found: list[Found]) -> None:
        """Keep a whole history's results in one file, so a rerun reads one file."""
        payload = [_encoded(f) for f in found]
        _atomic_write(self.directory / "results" / f"{key}.all.json", json.dumps(payload).encode())

    def load_state(self, key: str) -> Checkpoint | None:
        """A checkpoint state (the database with rows, its pending seed statements, the empty
        database), if kept."""
        path = self._state_path(key)
        try:
            pending = json.loads(path.with_suffix(".json").read_text())
            empty = path.with_suffix(".empty").read_bytes()
            return path.read_bytes(), [int(i) for i in pending], empty
        except (OSError, ValueError):
            return None

    def store_state(self, key: str, data: bytes, pending_seeds: list[int], empty: bytes) -> None:
        """Keep a checkpoint state (atomically; the seeds file last, as the commit mark)."""
        _atomic_write(self._state_path(key), data)
        _atomic_write(self._state_path(key).with_suffix(".empty"), empty)
        _atomic_write(
            self._state_path(key).with_suffix(".json"), json.dumps(pending_seeds).encode()
        )

    @contextmanager
    def lock(self, name: str, *, wait: bool = True) -> Iterator[bool]:
        """An exclusive lock across processes (xdist workers); yields whether it was taken
        (always, when `wait`; without `wait`, False when another process holds it). Where the
        platform has no `fcntl`, every caller takes it (see `d1check.filelock`)."""
        with exclusive(self.directory / f"{name}.lock", wait=wait) as taken:
            yield taken


def _encoded(found: Found) -> dict[str, object]:
    results, fingerprint = found
    return {"results": {n: asdict(r) for n, r in results.items()}, "fingerprint": fingerprint}


def _decoded(item: dict[str, Any]) -> Found:
    return _results(item["results"]), str(item["fingerprint"])


def _results(data: dict[str, dict[str, object]]) -> dict[str, CheckResult]:
    return {
        name: CheckResult(
            str(r["check"]),
            str(r["outcome"]),
            str(r["message"]),
            tuple(map(str, r["warnings"])),  # type: ignore[call-overload]
            str(r.get("note", "")),
            _coverage(r.get("coverage")),
        )
        for name, r in data.items()
    }


def _coverage(data: object) -> Coverage | None:
    return Coverage.from_json(data) if isinstance(data, dict) else None


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
