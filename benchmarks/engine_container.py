"""The real D1 engine in a container: image build, cold start and per-query latency.

Run: python3 benchmarks/engine_container.py [--queries N] [--skip-cold-build]
Compares the container's REST API (workerd's D1) with the in-process engine (apsw).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import apsw
import httpx

from d1check.containers import (
    DEFAULT_WRANGLER_VERSION,
    PACKAGE_DIR,
    D1EngineContainer,
    docker_client,
    ensure_image,
)


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def median_ms(action: Callable[[], object], runs: int) -> float:
    return statistics.median(timed(action) for _ in range(runs)) * 1000


def cold_build() -> float:
    client = docker_client()
    tag = "d1check-engine:benchmark-cold"
    seconds = timed(
        lambda: client.images.build(
            path=str(PACKAGE_DIR),
            tag=tag,
            network_mode="host",
            nocache=True,
            rm=True,
            buildargs={"WRANGLER_VERSION": DEFAULT_WRANGLER_VERSION},
        )
    )
    client.images.remove(tag, force=True)
    return seconds


def cached_build() -> float:
    client = docker_client()
    ensure_image()
    return timed(
        lambda: client.images.build(
            path=str(PACKAGE_DIR),
            network_mode="host",
            rm=True,
            buildargs={"WRANGLER_VERSION": DEFAULT_WRANGLER_VERSION},
        )
    )


def cold_start(runs: int) -> float:
    ensure_image()
    times = []
    for _ in range(runs):
        container = D1EngineContainer()
        times.append(timed(container.start))
        container.remove()
    return statistics.median(times)


def container_latency(queries: int) -> tuple[float, float]:
    container = D1EngineContainer().start()
    try:
        base = f"{container.api_base}/accounts/{container.account_id}/d1/database"
        with httpx.Client(headers={"Authorization": f"Bearer {container.token}"}) as client:
            db = client.post(base, json={"name": "bench"}).json()["result"]["uuid"]

            def send(sql: str, params: list[Any]) -> None:
                response = client.post(f"{base}/{db}/query", json={"sql": sql, "params": params})
                response.raise_for_status()

            send("CREATE TABLE t (id INTEGER PRIMARY KEY, x TEXT)", [])
            send("INSERT INTO t (x) VALUES (?)", ["seed"])
            select = median_ms(lambda: send("SELECT x FROM t WHERE id = ?", [1]), queries)
            insert = median_ms(lambda: send("INSERT INTO t (x) VALUES (?)", ["row"]), queries)
        return select, insert
    finally:
        container.remove()


def apsw_latency(queries: int) -> tuple[float, float]:
    connection = apsw.Connection(":memory:")
    connection.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, x TEXT)")
    connection.execute("INSERT INTO t (x) VALUES (?)", ("seed",))
    select = median_ms(
        lambda: connection.execute("SELECT x FROM t WHERE id = ?", (1,)).fetchall(), queries
    )
    insert = median_ms(
        lambda: connection.execute("INSERT INTO t (x) VALUES (?)", ("row",)), queries
    )
    return select, insert


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--starts", type=int, default=3)
    parser.add_argument("--skip-cold-build", action="store_true")
    args = parser.parse_args()
    rows: list[tuple[str, str]] = []
    if not args.skip_cold_build:
        rows.append(("image build, cold (no cache, npm install)", f"{cold_build():.1f} s"))
    rows.append(("image build, cached", f"{cached_build():.2f} s"))
    rows.append(
        (f"container cold start (median of {args.starts})", f"{cold_start(args.starts):.2f} s")
    )
    c_select, c_insert = container_latency(args.queries)
    a_select, a_insert = apsw_latency(args.queries)
    rows.append((f"SELECT by key, container REST (median of {args.queries})", f"{c_select:.2f} ms"))
    rows.append(("SELECT by key, in-process apsw", f"{a_select * 1000:.1f} µs"))
    rows.append((f"INSERT, container REST (median of {args.queries})", f"{c_insert:.2f} ms"))
    rows.append(("INSERT, in-process apsw", f"{a_insert * 1000:.1f} µs"))
    rows.append(
        (
            "ratio container / apsw (SELECT, INSERT)",
            f"{c_select / a_select:.0f}x, {c_insert / a_insert:.0f}x",
        )
    )
    width = max(len(name) for name, _ in rows)
    print(f"{'measure':<{width}}  value")
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


if __name__ == "__main__":
    main()
