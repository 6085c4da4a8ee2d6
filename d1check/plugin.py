"""The pytest plugin (entry point `d1check`): options, markers and fixtures, all cheap.

The checks, their items and the `--apply` gate (`d1check.items`) load only in a project with
something to check (a wrangler config, `[tool.d1check]`, a `migrations/` folder, or wrangler
configs in subfolders) or with `--apply`: elsewhere the plugin costs a few file lookups and writes
nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from d1check.background import MODES
from d1check.wrangler import find_wrangler_configs, find_wrangler_file

__all__ = ["d1_db", "d1_emulator", "d1_engine", "d1_migrator"]

MARKER = "d1check"
ENGINE_MARKER = "engine_container"
ITEMS_PLUGIN = "d1check-items"


def pytest_addoption(parser: pytest.Parser) -> None:
    """The d1check options, all in one group."""
    group = parser.getgroup("d1check", "D1 migration checks (d1check)")
    group.addoption(
        "--apply",
        metavar="TARGET",
        default=None,
        help="after the whole session passes, apply pending migrations to TARGET: local, "
        "staging, production, a client id or an environment name (default: apply nothing)",
    )
    group.addoption("--yes", action="store_true", help="confirm --apply without a prompt (CI)")
    group.addoption(
        "--dry-run", action="store_true", help="with --apply: print the plan, change nothing"
    )
    group.addoption(
        "--backup-dir", metavar="DIR", default=None, help="export each target here first"
    )
    group.addoption(
        "--d1check-report", metavar="FILE", default=None, help="write the apply summary as JSON"
    )
    group.addoption(
        "--concurrency",
        type=int,
        default=8,
        help="with several databases: how many are migrated at once (default 8)",
    )
    group.addoption(
        "--canary",
        type=int,
        default=1,
        help="with several databases: migrate and verify this many first (default 1)",
    )
    group.addoption(
        "--max-failures",
        type=int,
        default=3,
        help="stop starting databases after this many failures (default 3)",
    )
    group.addoption(
        "--resume",
        metavar="RUN",
        default=None,
        help="continue an interrupted rollout from its journal (.d1check/runs/RUN.jsonl)",
    )
    group.addoption(
        "--api-budget",
        metavar="N/S",
        default="1200/300",
        help="never send more than N API requests in any S seconds (default 1200/300; `none`)",
    )
    group.addoption(
        "--d1check-background",
        choices=MODES,
        default="auto",
        help="run the pass over the history in a helper process beside pytest's own work: auto "
        "(with a second CPU and at least 100 migrations to check), on, off (default auto)",
    )


def pytest_configure(config: pytest.Config) -> None:
    """Register the markers; where there is D1 to check (or `--apply`), load the checks."""
    config.addinivalue_line("markers", f"{MARKER}: a D1 migration check collected by d1check")
    config.addinivalue_line(
        "markers",
        f"{ENGINE_MARKER}: uses the real D1 engine in a container (the d1_engine fixture); "
        "given by d1check to every test that uses d1_engine",
    )
    root = Path(str(config.rootpath))
    wanted = config.getoption("apply") is not None
    if wanted or has_d1(root, config.getini("norecursedirs")):
        from d1check import items

        config.pluginmanager.register(items, ITEMS_PLUGIN)


def has_d1(root: Path, norecursedirs: Iterable[str] = ()) -> bool:
    """Whether the project at `root` has D1 migrations to check: a wrangler config, a
    `[tool.d1check]` table, a `migrations/` folder, or wrangler configs in subfolders (the cheap
    lookups `d1check.config.load_config` starts from)."""
    if find_wrangler_file(root) is not None or (root / "migrations").is_dir():
        return True
    if _declares_d1check(root / "pyproject.toml"):
        return True
    return bool(find_wrangler_configs(root, norecursedirs=norecursedirs))


def _declares_d1check(pyproject: Path) -> bool:
    try:
        return "tool.d1check" in pyproject.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False


def pytest_itemcollected(item: pytest.Item) -> None:
    """Mark the tests that use `d1_engine`, so `-m engine_container` selects them."""
    if "d1_engine" in getattr(item, "fixturenames", ()):
        item.add_marker(ENGINE_MARKER)


@pytest.fixture
def d1_migrator(request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fresh database at no version that moves through the project's migrations
    (`d1check.fixtures.Migrator`)."""
    from d1check.fixtures import migrator_for

    yield from migrator_for(request.config)


@pytest.fixture
def d1_db(d1_migrator: Any) -> Any:
    """A fresh D1-like database at the latest migration version, owned by this test."""
    return d1_migrator.latest()


@pytest.fixture
def d1_emulator(tmp_path: Path) -> Iterator[Any]:
    """A running D1 API emulator over files in `tmp_path`; use `d1_emulator.client()`."""
    from d1check.testing import D1Emulator

    with D1Emulator(tmp_path / "d1-emulator") as emulator:
        yield emulator


@pytest.fixture(scope="session")
def d1_engine() -> Iterator[Any]:
    """The real D1 engine behind the REST API, one per test session (per xdist worker); the
    container support is imported only when a test asks for it."""
    from d1check.containers import engine_for_session

    yield from engine_for_session()
