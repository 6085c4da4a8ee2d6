"""Keeps every test away from a real Cloudflare account."""

import pytest


@pytest.fixture(autouse=True)
def _no_cloudflare_account(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CLOUDFLARE_API_TOKEN", "CLOUDFLARE_ACCOUNT_ID", "D1CHECK_API_BASE"):
        monkeypatch.delenv(name, raising=False)
