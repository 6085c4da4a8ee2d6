"""Segmented passes: workers share a cold history, and results do not depend on where a pass
started (a segment replays from the nearest kept state without checks)."""

from __future__ import annotations

import fcntl
import json
import re
import sys
import threading
import time
import types
from dataclasses import asdict
from pathlib import Path

import pytest

from d1check.cache import CHECKPOINT_EVERY, ResultCache, chain, chunk_bounds
from d1check.engine import D1Database
from d1check.history import History
from d1check.segments import Segments, segment_bounds
from d1check.session import Session

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import synth

_NOW = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")
SEED = "CREATE TABLE IF NOT EXISTS seed_mark (id INTEGER PRIMARY KEY);\n"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A synthetic history of 300 migrations with a seed file, one migration broken at 280."""
    root = tmp_path_factory.mktemp("history-300")
    synth.write_project(synth.generate(300, seed=3), root)
    first_table = _table_created_after(root / "migrations", 120)
    (root / "seed.sql").write_text(
        SEED + f"CREATE INDEX IF NOT EXISTS seed_idx ON {first_table}(id);\n", encoding="utf-8"
    )
    broken = sorted((root / "migrations").glob("0280_*.sql"))[0]
    broken.write_text(broken.read_text() + "\nINSERT INTO no_such_table VALUES (1);\n")
    pyproject = root / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + 'seed_files = ["seed.sql"]\n')
    return root


def _table_created_after(migrations: Path, number: int) -> str:
    for path in sorted(migrations.glob("*.sql")):
        if int(path.name[:4]) > number and "CREATE TABLE" in path.read_text():
            text = path.read_text()
            return text.split("CREATE TABLE", 1)[1].split("(", 1)[0].strip().split()[-1]
    raise AssertionError(f"no CREATE TABLE after migration {number}")


def _as_json(session: Session) -> str:
    family = session.config.default_family.name
    history = session.history(family)
    assert isinstance(history, History)
    results = session._cached_results(family, history)
    plain = {m: {c: asdict(r) for c, r in checks.items()} for m, checks in results.items()}
    return json.dumps({"results": plain, "prints": session._prints[family]}, sort_keys=True)


def _dump(data: bytes) -> list[str]:
    """Schema and rows of a kept state, in a stable order (CURRENT_TIMESTAMP values masked)."""
    db = D1Database.from_bytes(data)
    with db.internal() as conn:
        objects = conn.execute("SELECT type, name, sql FROM sqlite_schema ORDER BY name").fetchall()
        lines = [repr(o) for o in objects]
        for kind, name, _ in objects:
            if kind == "table" and not name.startswith("sqlite_"):
                rows = conn.execute(f'SELECT * FROM "{name}"').fetchall()
                lines += sorted(_NOW.sub("<now>", f"{name}: {row!r}") for row in rows)
    db.close()
    return lines


def _keys(session: Session) -> list[str]:
    history = session.history(session.config.default_family.name)
    assert isinstance(history, History)
    m = history.migrations
    return chain(history.policy, history.seed_files, m.migrations, m.migrations_dir)


def test_segment_bounds_start_at_checkpoints() -> None:
    bounds = segment_bounds(1000)
    assert len(bounds) == 20
    assert len(segment_bounds(4000)) == 20
    assert all(start % CHECKPOINT_EVERY == 0 for start, _ in bounds)
    assert bounds[0][0] == 0 and bounds[-1][1] == 1000
    assert segment_bounds(120) == [(0, 50), (50, 100), (100, 120)]
    assert segment_bounds(30) == [(0, 30)]
    assert segment_bounds(0) == []
    assert segment_bounds(100, 37) == [(0, 37), (37, 74), (74, 100)]


def test_a_segmented_pass_started_anywhere_equals_the_single_pass(
    project: Path, tmp_path: Path
) -> None:
    whole = Session.load(project, tmp_path / "whole", segment_size=10**6)
    expected = _as_json(whole)
    assert '"outcome": "failed"' in expected  # the broken migration is reported
    assert "0280" in expected and "which does not apply (see its ::applies)" in expected

    segmented = Session.load(project, tmp_path / "segmented", segment_size=37)
    keys = _keys(segmented)
    assert segmented.cache is not None
    first_lock = segmented.cache.directory / f"{keys[0][:16]}-0.lock"
    done: list[str] = []
    with open(first_lock, "a+b") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        worker = threading.Thread(target=lambda: done.append(_as_json(segmented)))
        worker.start()
        results = segmented.cache.directory / "results"
        later = [(s, e) for s, e in chunk_bounds(len(keys)) if s >= CHECKPOINT_EVERY]
        deadline = time.monotonic() + 120
        while not all((results / f"{keys[e - 1]}.chunk.json").exists() for _, e in later):
            assert time.monotonic() < deadline, "the other segments were not computed"
            time.sleep(0.05)
        first_chunk = results / f"{keys[CHECKPOINT_EVERY - 1]}.chunk.json"
        assert not first_chunk.exists()  # segment 0 waited for its lock
        fcntl.flock(held, fcntl.LOCK_UN)
    worker.join(120)
    assert done == [expected]
    assert whole.cache is not None
    compared = 0
    for position in range(CHECKPOINT_EVERY, len(keys) + 1, CHECKPOINT_EVERY):
        mine = segmented.cache.load_state(keys[position - 1])
        theirs = whole.cache.load_state(keys[position - 1])
        if mine is not None and theirs is not None:
            assert _dump(mine[0]) == _dump(theirs[0]), f"state at {position} differs"
            assert mine[1] == theirs[1]
            compared += 1
    assert compared >= 5


def test_two_workers_sharing_a_cache_get_the_single_pass_results(
    project: Path, tmp_path: Path
) -> None:
    expected = _as_json(Session.load(project, tmp_path / "whole", segment_size=10**6))
    shared = tmp_path / "shared"
    out: list[str] = []
    workers = [
        threading.Thread(
            target=lambda: out.append(_as_json(Session.load(project, shared, segment_size=50)))
        )
        for _ in range(2)
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join(120)
    assert out == [expected, expected]
    warm = Session.load(project, shared, segment_size=50)
    assert _as_json(warm) == expected


def test_replaying_without_checks_leaves_the_checked_pass_state(project: Path) -> None:
    session = Session.load(project)
    checked = session.history(session.config.default_family.name)
    assert isinstance(checked, History)
    replayed = History(checked.migrations, checked.policy, seed_files=checked.seed_files)
    for position in (1, 2, 37, 74, 111, 148, 185, 222, 279):
        checked.run_to(position)
        replayed.replay_to(position)
        mine, theirs = replayed.state_bytes(), checked.state_bytes()
        assert mine is not None and theirs is not None
        assert _dump(mine[0]) == _dump(theirs[0]), f"state at {position} differs"
        assert mine[1] == theirs[1], f"pending seed statements at {position} differ"
    checked.run_to(281)
    replayed.replay_to(281)
    assert replayed.state_bytes() is None and checked.state_bytes() is None


def test_meanwhile_a_process_goes_on_from_where_its_pass_is_else_from_the_middle(
    tmp_path: Path,
) -> None:
    keys = [f"key{i}" for i in range(300)]
    found: list[object] = [None] * 300
    pass_at = types.SimpleNamespace(position=0)
    segments = Segments(ResultCache(tmp_path), pass_at, keys, found, 50)  # type: ignore[arg-type]
    starts = lambda: [b[0] for b in segments._meanwhile((0, 50))]  # noqa: E731
    assert starts() == [150, 200, 250, 50, 100]
    pass_at.position = 100
    assert starts() == [100, 200, 250, 50, 150]
    found[150:200] = ["done"] * 50
    assert starts() == [100, 200, 250, 50]
