"""Fleet rollout benchmark: many client databases behind an emulator with injected latency.

Usage: ``python benchmarks/fleet.py [--clients 200] [--migrations 3] [--latency 0.05]
[--concurrency 16] [--api-budget none] [--repeat 3] [--sequential]``.

The emulator runs in its own processes (so its threads do not share the interpreter with the
rollout's), every request waits `--latency` seconds, and each row of the table rolls out the
same pending migrations to fresh databases. The ideal is requests per client (the bookmark
included) x latency x rounds, where the canaries take their own round(s) and the rest
ceil((clients - canary) / concurrency); the target is within 1.3x of it. Each fleet
row is the median of `--repeat` runs (the machine may be shared). The default API budget's ETA
(`1200/300`) is printed beside the latency-bound measurement.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from d1check.discovery import discover
from d1check.fleet import (
    FRESH_READ_REQUESTS,
    REQUESTS_PER_CLIENT,
    FleetOptions,
    Job,
    Rollout,
    fleet_budget,
    fleet_transport,
    rollout,
)
from d1check.gate import Expected, RunContext
from d1check.journal import Journal
from d1check.remote import D1Client, RequestBudget, parse_budget
from d1check.targets import Target
from d1check.testing import DEFAULT_ACCOUNT, DEFAULT_TOKEN

SERVER = """
import json, sys
from d1check.testing import D1Emulator, Faults
directory, count, latency = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
with D1Emulator(directory, faults=Faults()) as emu:
    ids = [emu.create_database(f"client-{i:04d}") for i in range(count)]
    emu.faults.latency = latency
    print(json.dumps({"url": emu.url, "ids": ids}), flush=True)
    sys.stdin.read()
    print(json.dumps({"requests": sum(emu.requests.values())}), flush=True)
"""


@dataclass(frozen=True)
class Row:
    """One measured rollout."""

    name: str
    clients: int
    concurrency: int
    canary: int
    requests: int
    seconds: float
    ideal: float
    failed: int
    client_cpu: float
    emulator_cpu: float
    walls: tuple[float, ...] = ()


def write_migrations(folder: Path, count: int) -> None:
    """`count` pending migrations: a table, then columns and an index on it."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "0001_accounts.sql").write_text(
        "CREATE TABLE accounts (id INTEGER PRIMARY KEY, email TEXT NOT NULL);\n", "utf-8"
    )
    for n in range(2, count + 1):
        sql = (
            f"ALTER TABLE accounts ADD COLUMN c{n} TEXT;\n"
            f"CREATE INDEX accounts_c{n} ON accounts(c{n});\n"
        )
        (folder / f"{n:04d}_column_{n}.sql").write_text(sql, "utf-8")


def start_shards(
    data: Path, clients: int, shards: int, latency: float
) -> list[subprocess.Popen[str]]:
    """Emulator processes serving `clients` databases between them."""
    servers = []
    for shard in range(shards):
        count = clients // shards + (shard < clients % shards)
        servers.append(
            subprocess.Popen(
                [sys.executable, "-c", SERVER, str(data / f"emulator-{shard}"), str(count),
                 str(latency)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
        )  # fmt: skip
    return servers


def measure(
    name: str,
    workdir: Path,
    args: argparse.Namespace,
    concurrency: int,
    canary: int,
    budget: RequestBudget | None,
) -> Row:
    """Start emulators with fresh databases, roll out through one budget, and time it."""
    data = workdir / name.replace(" ", "-").replace(",", "")
    servers = start_shards(data, args.clients, args.shards, args.latency)
    shared = fleet_budget(budget)
    clients: dict[str, D1Client] = {}
    try:
        migrations = discover(workdir / "migrations", workdir / "rollbacks")
        expected = Expected(migrations, "d1_migrations")
        expected.at(len(migrations.migrations))
        jobs: list[Job] = []
        for server in servers:
            assert server.stdout is not None
            info = json.loads(server.stdout.readline())
            client = D1Client(
                DEFAULT_ACCOUNT,
                DEFAULT_TOKEN,
                api_base=info["url"],
                budget=shared,
                transport=fleet_transport(concurrency),
            )
            for db in info["ids"]:
                clients[db] = client
                name_ = f"c{len(jobs):04d}"
                target = Target(name_, "default", "production", name_, db, "d1_migrations", True)
                jobs.append(Job(target, db, migrations, expected))
        jobs.sort(key=lambda j: j.target.name)
        options = FleetOptions(concurrency=concurrency, canary=canary, max_failures=10**6)
        with Journal.create(data / "runs", "bench", "production", []) as journal:
            ctx = RunContext("bench", "bench", None)
            run = Rollout(lambda t: clients[str(t.database_id)], ctx, journal, options)
            started = time.perf_counter()
            cpu_start = _cpu(resource.RUSAGE_SELF), _process_cpu(servers)
            outcomes = rollout(jobs, run)
            seconds = time.perf_counter() - started
            client_cpu = _cpu(resource.RUSAGE_SELF) - cpu_start[0]
            emulator_cpu = _process_cpu(servers) - cpu_start[1]
        requests = 0
        for server in servers:
            assert server.stdin is not None and server.stdout is not None
            server.stdin.close()
            requests += int(json.loads(server.stdout.readline())["requests"])
    finally:
        for client in set(clients.values()):
            client.close()
        for server in servers:
            server.kill()
            server.wait()
    rounds = math.ceil(canary / concurrency) + math.ceil((args.clients - canary) / concurrency)
    ideal = (REQUESTS_PER_CLIENT + FRESH_READ_REQUESTS) * args.latency * rounds
    failed = sum(o.status != "applied" for o in outcomes)
    return Row(
        name, args.clients, concurrency, canary, requests, seconds, ideal, failed, client_cpu,
        emulator_cpu, (seconds,),
    )  # fmt: skip


def median_row(rows: Sequence[Row]) -> Row:
    """The run with the median wall time, carrying every run's wall time."""
    ordered = sorted(rows, key=lambda r: r.seconds)
    return replace(ordered[(len(ordered) - 1) // 2], walls=tuple(r.seconds for r in rows))


def _process_cpu(servers: Sequence[subprocess.Popen[str]]) -> float:
    """CPU seconds the emulator processes have used so far (Linux /proc)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for server in servers:
        fields = Path(f"/proc/{server.pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def _cpu(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def table(rows: Sequence[Row], budget_text: str) -> list[str]:
    """The results as a plain-text table, with the default budget's ETA per row."""
    default = parse_budget("1200/300")
    assert default is not None
    head = (
        f"{'run':<18}{'clients':>8}{'conc':>5}{'canary':>7}{'requests':>9}{'req/client':>11}"
        f"{'ideal s':>8}{'wall s':>8}{'ratio':>6}{'failed':>7}{'client cpu s':>13}"
        f"{'emu cpu s':>10}{'cpu ms/req':>11}  {'ETA 1200/300':>12}  wall s of each run"
    )
    cores = os.cpu_count() or 1
    lines = [
        f"API budget of the measured runs: {budget_text}; {cores} CPU(s); median run of each "
        "row; cpu ms/req = (client + emulator CPU) / requests",
        head,
        "-" * len(head),
    ]
    for r in rows:
        eta = max(r.seconds, default.eta(r.requests))
        per_request = (r.client_cpu + r.emulator_cpu) / r.requests * 1000 if r.requests else 0.0
        walls = ", ".join(f"{w:.2f}" for w in r.walls)
        lines.append(
            f"{r.name:<18}{r.clients:>8}{r.concurrency:>5}{r.canary:>7}{r.requests:>9}"
            f"{r.requests / r.clients:>11.2f}{r.ideal:>8.2f}{r.seconds:>8.2f}"
            f"{r.seconds / r.ideal if r.ideal else 0:>6.2f}{r.failed:>7}{r.client_cpu:>13.2f}"
            f"{r.emulator_cpu:>10.2f}{per_request:>11.2f}  {eta:>10.1f} s  {walls}"
        )
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print the table; exit 1 when the fleet misses 1.3x of ideal."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--migrations", type=int, default=3)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--api-budget", default="none")
    parser.add_argument("--repeat", type=int, default=3, help="runs per fleet row (median)")
    parser.add_argument(
        "--sequential", action="store_true", help="also time a one-at-a-time loop (slow)"
    )
    parser.add_argument(
        "--shards",
        type=int,
        default=4,
        help="emulator processes (default 4): one Python emulator cannot serve 16 requests at "
        "once without its own CPU becoming the bottleneck",
    )
    args = parser.parse_args(argv)
    budget = parse_budget(args.api_budget)
    runs = max(1, args.repeat)
    with tempfile.TemporaryDirectory(prefix="d1fleet-") as tmp:
        workdir = Path(tmp)
        write_migrations(workdir / "migrations", args.migrations)
        rows = [
            median_row(
                [
                    measure(f"{name} {n}", workdir, args, args.concurrency, canary, budget)
                    for n in range(runs)
                ]
            )
            for name, canary in (("fleet", 0), ("fleet, canary 1", 1))
        ]
        rows = [replace(r, name=r.name.rsplit(" ", 1)[0]) for r in rows]
        if args.sequential:
            rows.append(measure("sequential loop", workdir, args, 1, 0, budget))
    for line in table(rows, args.api_budget):
        print(line)
    default = parse_budget("1200/300")
    assert default is not None
    per_client = REQUESTS_PER_CLIENT + FRESH_READ_REQUESTS
    for clients in (400, 1000, 5000):
        requests = clients * per_client
        print(
            f"default budget 1200/300, {clients} fresh clients x {per_client} requests: "
            f"the last request may start after {default.eta(requests):.0f} s"
        )
    return 0 if rows[0].seconds <= 1.3 * rows[0].ideal and not rows[0].failed else 1


if __name__ == "__main__":
    sys.exit(main())
