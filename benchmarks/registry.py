"""How long d1check takes to read a large client registry (`config/clients.json`).

    python benchmarks/registry.py [--clients 10000]

Prints the time to read the registry alone, to load the whole project configuration, and to
resolve `production` to its databases (median of 5 runs each). Target: under 0.5 s for 10,000
clients, the registry being read on every run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from d1check.clients import load_clients
from d1check.config import load_config
from d1check.targets import resolve_targets

WRANGLER = """\
name = "app"
account_id = "0123456789abcdef0123456789abcdef"

[[d1_databases]]
binding = "DB"
database_name = "app-dev"
database_id = "00000000-0000-0000-0000-000000000000"
"""


def write_project(root: Path, clients: int) -> None:
    """A wrangler project with a registry of `clients` active clients."""
    (root / "wrangler.toml").write_text(WRANGLER, encoding="utf-8")
    (root / "migrations").mkdir()
    (root / "migrations" / "0001_init.sql").write_text("CREATE TABLE t (id INTEGER);\n")
    entries = [
        {
            "id": f"client-{i:05d}",
            "name": f"Client {i}",
            "database_name": f"app-client-{i:05d}",
            "database_id": f"00000000-0000-0000-0000-{i:012d}",
            "active": True,
        }
        for i in range(clients)
    ]
    (root / "config").mkdir()
    (root / "config" / "clients.json").write_text(
        json.dumps({"clients": entries}, indent=2), encoding="utf-8"
    )


def median_seconds(work: Callable[[], object], runs: int = 5) -> float:
    """The median wall time of `work` over `runs` runs."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        write_project(root, args.clients)
        registry = median_seconds(lambda: load_clients(root / "config" / "clients.json"))
        config = median_seconds(lambda: load_config(root))
        loaded = load_config(root)
        production = median_seconds(lambda: resolve_targets(loaded, "production"))
    print(f"clients: {args.clients:,}")
    print(f"read config/clients.json: {registry:.3f} s")
    print(f"load the project configuration: {config:.3f} s")
    print(f"resolve production: {production:.3f} s")
    verdict = "met" if config + production < 0.5 else "NOT met"
    print(f"configuration + production under 0.5 s: {verdict}")


if __name__ == "__main__":
    main()
