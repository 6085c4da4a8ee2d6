"""The pass in a helper process: the items read what it stores, wait for what it holds, and lose
nothing when it stops early or dies."""

from __future__ import annotations

import fcntl
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict
from pathlib import Path

import pytest

from d1check import background
from d1check.background import worth_a_helper
from d1check.history import History
from d1check.session import Session

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import synth


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A synthetic history of 160 migrations (four segments), one broken at 150."""
    root = tmp_path_factory.mktemp("history-160")
    synth.write_project(synth.generate(160, seed=5), root)
    broken = sorted((root / "migrations").glob("0150_*.sql"))[0]
    broken.write_text(broken.read_text() + "\nINSERT INTO no_such_table VALUES (1);\n")
    return root


@pytest.fixture(scope="module")
def expected(project: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    """Every item's result from one in-process pass."""
    return _items(Session.load(project, tmp_path_factory.mktemp("whole")))


def _items(session: Session) -> str:
    """Every migration item's result, asked for one by one as the plugin's items do."""
    family = session.config.default_family.name
    results = {
        path.name: {
            check: asdict(session.migration_result(family, path.name, check))
            for check in ("applies", "rows", "rollback", "idempotent", "d1", "destructive")
        }
        for path in session.migration_files(family)
    }
    return json.dumps(results, sort_keys=True)


def _family(session: Session) -> str:
    return session.config.default_family.name


@pytest.mark.parametrize(
    ("mode", "missing", "cpus", "wanted"),
    [
        ("off", 5000, 8, False),
        ("on", 1, 1, True),
        ("on", 0, 8, False),
        ("auto", 5000, 1, False),
        ("auto", background.MIN_MISSING - 1, 8, False),
        ("auto", background.MIN_MISSING, 2, True),
    ],
)
def test_when_a_helper_is_worth_starting(mode: str, missing: int, cpus: int, wanted: bool) -> None:
    assert worth_a_helper(mode, missing, cpus) is wanted


def test_a_helper_computes_every_result_into_the_cache(
    project: Path, expected: str, tmp_path: Path
) -> None:
    session = Session.load(project, tmp_path / "cache")
    assert session.start_background(_family(session), "on")
    helper = session._helpers[_family(session)]
    assert helper.process.wait(120) == 0
    assert helper.log.read_text() == ""
    assert '"outcome": "failed"' in expected and "0150" in expected

    history = session.history(_family(session))
    assert isinstance(history, History)
    history._step = _no_pass  # type: ignore[method-assign]
    assert _items(session) == expected  # read from what the helper stored, nothing computed here
    assert not session.start_background(_family(session), "on")  # nothing left to compute


def _no_pass(*args: object, **kwargs: object) -> None:
    raise AssertionError("the items computed a result the helper had stored")


@pytest.mark.parametrize("later_free", [True, False])
def test_an_item_reads_the_segment_another_process_holds(
    project: Path, expected: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, later_free: bool
) -> None:
    """Meanwhile it computes the later segments nobody holds; with none free, it only waits."""
    cache = tmp_path / "cache"
    other = Session.load(project, cache)
    history = other.history(_family(other))
    assert isinstance(history, History)
    segments = other._segments_of(_family(other), history)
    first = segments.bounds[0]
    holding, release = threading.Event(), threading.Event()

    def compute_first_segment() -> None:
        assert other.cache is not None
        with other.cache.lock(segments._lock_name(first)):
            holding.set()
            release.wait(60)
            segments._run(*first)

    checked: list[int] = []
    step = History._step

    def recording_step(self: History, *, check: bool = True) -> None:
        if check and threading.current_thread() is threading.main_thread():
            checked.append(self.position)
        step(self, check=check)

    monkeypatch.setattr(History, "_step", recording_step)
    worker = threading.Thread(target=compute_first_segment)
    worker.start()
    holding.wait(60)
    session = Session.load(project, cache)
    session._helpers[_family(session)] = _FinishedHelper()  # as if a helper were running
    name = session.migration_files(_family(session))[0].name
    later = slice(1, None) if not later_free else slice(0, 0)
    with _holding_locks(Session.load(project, cache), later):
        threading.Timer(0.5, release.set).start()
        result = session.migration_result(_family(session), name, "rollback")
    worker.join(60)
    assert json.loads(json.dumps(asdict(result))) == json.loads(expected)[name]["rollback"]
    if later_free:
        assert checked and min(checked) >= first[1]  # later segments only, never the held one
    else:
        assert checked == []


class _FinishedHelper:
    def stop(self) -> int:
        return 0


@contextmanager
def _holding_locks(session: Session, which: slice) -> Iterator[None]:
    """Hold the locks of some of the family's segments, as another process computing them would."""
    history = session.history(_family(session))
    assert isinstance(history, History) and session.cache is not None
    segments = session._segments_of(_family(session), history)
    with ExitStack() as stack:
        for bound in segments.bounds[which]:
            lock = session.cache.directory / f"{segments._lock_name(bound)}.lock"
            fcntl.flock(stack.enter_context(open(lock, "a+b")), fcntl.LOCK_EX)
        yield


def test_a_helper_stopped_early_leaves_nothing_missing(
    project: Path, expected: str, tmp_path: Path
) -> None:
    session = Session.load(project, tmp_path / "cache")
    with _holding_locks(Session.load(project, tmp_path / "cache"), slice(-1, None)):
        assert session.start_background(_family(session), "on")
        time.sleep(0.5)
        assert session._helpers[_family(session)].running()  # it waits for the last segment
        session.stop_background()
        assert not session._helpers[_family(session)].running()
    assert _items(session) == expected


def test_a_helper_ends_with_the_process_that_started_it(project: Path, tmp_path: Path) -> None:
    starter = (
        "import sys\n"
        "from pathlib import Path\n"
        "from d1check.background import Background\n"
        "helper = Background.start(Path(sys.argv[1]), Path(sys.argv[2]), 'default')\n"
        "print(helper.process.pid, flush=True)\n"
    )
    with _holding_locks(Session.load(project, tmp_path / "cache"), slice(None)):
        out = subprocess.run(
            [sys.executable, "-c", starter, str(project), str(tmp_path / "cache")],
            capture_output=True,
            text=True,
            check=True,
        )
        pid = int(out.stdout.split()[0])
        deadline = time.monotonic() + 30
        while _alive(pid):  # without its watch it would wait for the held segments for ever
            assert time.monotonic() < deadline, "the helper outlived the process that started it"
            time.sleep(0.1)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_a_helper_needs_the_results_cache(project: Path) -> None:
    session = Session.load(project)
    assert not session.start_background(_family(session), "on")


def test_a_helper_that_cannot_start_leaves_the_work_to_the_items(
    project: Path, expected: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def cannot_start(*args: object) -> background.Background:
        raise OSError("no such interpreter")

    monkeypatch.setattr(background.Background, "start", cannot_start)
    session = Session.load(project, tmp_path / "cache")
    assert not session.start_background(_family(session), "on")
    assert _items(session) == expected


def test_stopping_keeps_the_helpers_of_the_families_still_needed(
    project: Path, tmp_path: Path
) -> None:
    session = Session.load(project, tmp_path / "cache")
    with _holding_locks(Session.load(project, tmp_path / "cache"), slice(-1, None)):
        assert session.start_background(_family(session), "on")
        session.stop_background(keep={_family(session)})
        time.sleep(0.3)
        assert session._helpers[_family(session)].running()
        session.stop_background(keep={"another"})
        assert not session._helpers[_family(session)].running()
