"""How many tables the row synthesizer fills, over real and synthetic histories.

Usage: ``python benchmarks/coverage.py [DIR ...] [--synth 200,1000] [--seed S]``. Each DIR is a
history (a folder with ``migrations/``) or a folder of histories. Each history is replayed as the
pass replays it (seed statements and synthesized rows before every migration); the script prints,
per history and in total, the tables of the last version that applies (total / with rows /
empty), and every table that stayed empty before some migration, with why.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import synth

from d1check.discovery import MigrationFileError, discover
from d1check.engine import D1Database
from d1check.history import History
from d1check.rows import synthesize_rows
from d1check.schema import read_schema


@dataclass(frozen=True)
class HistoryCoverage:
    """The synthesizer's coverage of one history."""

    name: str
    migrations: int
    applied: int  # how many migrations applied before the first that does not
    tables: int
    with_rows: int
    empty: tuple[tuple[str, str, str], ...]  # (table, before which migration, reason)


def measure(name: str, project: Path) -> HistoryCoverage | str:
    """Replay the history in `project` and measure; a string says why it could not be read."""
    try:
        migrations = discover(project / "migrations", project / "rollbacks")
    except MigrationFileError as error:
        return f"{name}: not read: {error}"
    history = History(migrations)
    total = len(migrations.migrations)
    applied = 0
    state = None
    for position in range(1, total + 1):
        history.replay_to(position)
        now = history.state_bytes()
        if now is None:
            break
        applied, state = position, now
    empty = list(history.empty_tables)
    tables = with_rows = 0
    if state is not None:
        db = D1Database.from_bytes(state[0])
        schema = read_schema(db, ignore=history.ignore)
        final = synthesize_rows(db, schema)
        tables = len(schema.tables) + len(schema.virtual_tables)
        with_rows = tables - len(final)
        seen = {(t, r) for t, _, r in empty}
        empty += [(t, "(the last version)", r) for t, r in final.items() if (t, r) not in seen]
    return HistoryCoverage(name, total, applied, tables, with_rows, tuple(empty))


def histories(paths: Sequence[Path]) -> Iterator[tuple[str, Path]]:
    """Every history under `paths`: a folder with `migrations/`, or the folders of one."""
    for path in paths:
        if (path / "migrations").is_dir():
            yield path.name, path
            continue
        for child in sorted(p for p in path.iterdir() if (p / "migrations").is_dir()):
            yield child.name, child


def report(found: Sequence[HistoryCoverage | str]) -> list[str]:
    """Lines for people: one per history, its empty tables, and the totals."""
    lines: list[str] = []
    measured = [f for f in found if isinstance(f, HistoryCoverage)]
    for item in found:
        if isinstance(item, str):
            lines.append(item)
            continue
        stops = "" if item.applied == item.migrations else f" (stops at {item.applied + 1})"
        lines.append(
            f"{item.name}: {item.migrations} migrations{stops}; tables {item.tables}, "
            f"with rows {item.with_rows}, empty {item.tables - item.with_rows}"
        )
        for table, before, reason in item.empty:
            lines.append(f"    empty: {table} before {before}: {reason}")
    total = sum(m.tables for m in measured)
    filled = sum(m.with_rows for m in measured)
    ever_empty = sum(len({t for t, _, _ in m.empty}) for m in measured)
    lines.append(
        f"TOTAL: {len(measured)} histories; tables {total}, with rows {filled}, "
        f"empty {total - filled}; tables empty before some migration: {ever_empty}"
    )
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: measure the histories named and the synthetic ones asked for."""
    parser = argparse.ArgumentParser(description="Measure the row synthesizer's coverage.")
    parser.add_argument("paths", type=Path, nargs="*", help="histories or folders of histories")
    parser.add_argument("--synth", default="", help="sizes of synthetic histories, e.g. 200,1000")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic histories")
    args = parser.parse_args(argv)
    found: list[HistoryCoverage | str] = [measure(n, p) for n, p in histories(args.paths)]
    sizes = [int(s) for s in args.synth.split(",") if s.strip()]
    with tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            project = Path(tmp) / f"synth-{size}"
            synth.write_project(synth.generate(size, args.seed), project)
            found.append(measure(f"synth {size} (seed {args.seed})", project))
    print("\n".join(report(found)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
