"""d1check: make Cloudflare D1 schema migrations safe to ship."""

__version__ = "0.1.0"
