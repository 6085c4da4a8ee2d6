"""Keeps every test away from a real Cloudflare account; settings of d1check's own test suite."""

import os

import pytest

# d1check's own suite removes the engine containers it starts (the fixture's teardown), so it
# does not need testcontainers' reaper (Ryuk), whose image a machine without registry access
# cannot pull. This is the suite's choice; the d1check package sets nothing on import.
os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")


@pytest.fixture(autouse=True)
def _no_cloudflare_account(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CLOUDFLARE_API_TOKEN", "CLOUDFLARE_ACCOUNT_ID", "D1CHECK_API_BASE"):
        monkeypatch.delenv(name, raising=False)
