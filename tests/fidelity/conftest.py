"""Fixtures for the differential suite: the real engine (wrangler + workerd), once per session."""

from __future__ import annotations

import fcntl
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from wrangler_driver import Outcome, Wrangler, WranglerUnavailable, install_wrangler

INSTALL_SCRIPT = Path(__file__).resolve().parents[3] / "shared" / "tools" / "install-wrangler.sh"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "workerd: differential tests against the real D1 engine (wrangler + workerd)"
    )


@pytest.fixture(scope="session")
def shared_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory every xdist worker of this run shares (for results computed once)."""
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID")
    base = tmp_path_factory.getbasetemp()
    path = base.parent / f"fidelity-{run}" if run else base / "fidelity"
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def once(shared: Path, name: str, compute: Callable[[], str]) -> str:
    """`compute()` run by the first worker that asks; the others read its result."""
    result = shared / f"{name}.result"
    with _locked(shared / f"{name}.lock"):
        if not result.exists():
            tmp = result.with_suffix(".tmp")
            tmp.write_text(compute())
            tmp.rename(result)
    return result.read_text()


def _find_wrangler() -> str:
    configured = os.environ.get("D1CHECK_WRANGLER")
    try:
        executable = Path(configured) if configured else install_wrangler(INSTALL_SCRIPT)
        version = Wrangler(executable).version()
    except WranglerUnavailable as exc:
        return json.dumps({"error": str(exc)})
    return json.dumps({"path": str(executable), "version": version})


@pytest.fixture(scope="session")
def wrangler(shared_dir: Path) -> Wrangler:
    """wrangler 4.164 with workerd: `D1CHECK_WRANGLER`, else installed once per session."""
    found = json.loads(once(shared_dir, "wrangler", _find_wrangler))
    if "error" in found:
        reason = f"the real D1 engine cannot be started: {found['error']}"
        if os.environ.get("D1CHECK_REQUIRE_ENGINES"):
            pytest.fail(f"D1CHECK_REQUIRE_ENGINES is set (CI), but {reason}")
        pytest.skip(reason)
    return Wrangler(Path(found["path"]))


def outcome_to_json(outcome: Outcome) -> dict[str, object]:
    """An Outcome as JSON, to share between workers."""
    return {
        "applied": list(outcome.applied),
        "failed": outcome.failed,
        "error": outcome.error,
        "database": str(outcome.database) if outcome.database else None,
    }


def outcome_from_json(data: dict[str, object]) -> Outcome:
    """The inverse of `outcome_to_json`."""
    applied = data["applied"]
    database = data["database"]
    return Outcome(
        tuple(str(a) for a in applied) if isinstance(applied, list) else (),
        None if data["failed"] is None else str(data["failed"]),
        str(data["error"]),
        Path(str(database)) if database else None,
    )
