"""The real D1 engine (wrangler + workerd) for the real-world differential test, once per session.

The folders here are histories shaped like public D1 projects (written for this suite); they are
inputs, never collected themselves.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fidelity"))

from wrangler_driver import Wrangler, WranglerUnavailable, install_wrangler

INSTALL_SCRIPT = Path(__file__).resolve().parents[3] / "shared" / "tools" / "install-wrangler.sh"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "workerd: differential tests against the real D1 engine (wrangler + workerd)"
    )


@pytest.fixture(scope="session")
def realworld_wrangler() -> Wrangler:
    """wrangler 4.164 with workerd: `D1CHECK_WRANGLER`, else the install script's."""
    configured = os.environ.get("D1CHECK_WRANGLER")
    try:
        executable = Path(configured) if configured else install_wrangler(INSTALL_SCRIPT)
        wrangler = Wrangler(executable)
        wrangler.version()
    except WranglerUnavailable as exc:
        reason = f"the real D1 engine cannot be started: {exc}"
        if os.environ.get("D1CHECK_REQUIRE_ENGINES"):
            pytest.fail(f"D1CHECK_REQUIRE_ENGINES is set (CI), but {reason}")
        pytest.skip(reason)
    return wrangler
