"""What the d1check plugin adds to a pytest run in a project with no D1 at all.

    python benchmarks/plugin_cost.py [--runs 15]

Runs `python -m pytest -q` on a project of one test, with the plugin and with `-p no:d1check`,
alternating, and prints the medians and their difference. Target: under 0.05 s.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def one_run(project: Path, *extra: str) -> float:
    """Wall time of one pytest run of `project` (which must pass)."""
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *extra],
        cwd=project,
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        project = Path(scratch)
        (project / "tests").mkdir()
        (project / "tests" / "test_app.py").write_text("def test_app():\n    assert True\n")
        (project / "node_modules" / "left-pad").mkdir(parents=True)
        with_plugin, without = [], []
        one_run(project)  # warm the file cache
        for _ in range(args.runs):
            with_plugin.append(one_run(project))
            without.append(one_run(project, "-p", "no:d1check"))
    on, off = statistics.median(with_plugin), statistics.median(without)
    print(f"pytest with d1check: {on:.3f} s; with -p no:d1check: {off:.3f} s")
    print(f"(median of {args.runs} runs each, alternating)")
    cost = on - off
    verdict = "met" if cost < 0.05 else "NOT met"
    print(f"d1check's cost where there is no D1: {cost:.3f} s ({verdict}: under 0.05 s)")


if __name__ == "__main__":
    main()
