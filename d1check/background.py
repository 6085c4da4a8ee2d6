"""The pass beside pytest: a helper process computes a family's missing results into the cache.

pytest spends about as long on its own work per item (running the protocol, reporting) as the pass
spends checking a migration, and both run on one core. A helper process started at collection
runs the pass into the results cache, segment by segment, while pytest collects and reports; each
item then waits only for the segment that holds its migration. The protocol is the one
pytest-xdist workers share (`d1check.segments`): a segment is computed under its lock, so an
item that reaches a segment nobody holds computes it itself, and a helper that dies or is stopped
costs nothing but the work it did not do.

Run as `python -m d1check.background ROOT CACHE_DIR FAMILY PARENT_PID` (by `Background.start`).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import d1check

MIN_MISSING = 100
"""`auto` starts a helper only when at least this many versions are missing: below, the pass takes
less time than starting a process does."""

MODES = ("auto", "on", "off")


def worth_a_helper(mode: str, missing: int, cpus: int | None = None) -> bool:
    """Whether `mode` (`auto`, `on`, `off`) asks for a helper when `missing` versions have no
    results yet: `auto` wants a second CPU and a long history, `on` only something to compute."""
    if mode == "off" or missing == 0:
        return False
    if mode == "on":
        return True
    usable = cpus if cpus is not None else usable_cpus()
    return usable > 1 and missing >= MIN_MISSING


def usable_cpus() -> int:
    """The CPUs this process may run on."""
    affinity = getattr(os, "sched_getaffinity", None)
    return len(affinity(0)) if affinity is not None else os.cpu_count() or 1


class Background:
    """A running helper process."""

    def __init__(self, process: subprocess.Popen[bytes], log: Path) -> None:
        self.process = process
        self.log = log

    @classmethod
    def start(cls, root: Path, cache_dir: Path, family: str) -> Background:
        """Start computing `family`'s missing results of the project at `root` into `cache_dir`
        (from the current directory, which the cache keys' paths are relative to). Its output
        goes to `cache_dir/background-<family>.log`."""
        package_parent = str(Path(d1check.__file__).resolve().parent.parent)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (package_parent, env.get("PYTHONPATH", "")) if p
        )
        log = cache_dir / f"background-{family}.log"
        command = [sys.executable, "-m", "d1check.background"]
        command += [str(root), str(cache_dir), family, str(os.getpid())]
        with open(log, "wb") as out:
            process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env
            )
        return cls(process, log)

    def running(self) -> bool:
        """Whether the helper has not exited yet."""
        return self.process.poll() is None

    def stop(self) -> int:
        """Stop the helper if it still runs (its finished segments stay in the cache) and return
        its exit status."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
        return self.process.wait()


def _exit_with(parent: int) -> None:
    """End this process as soon as `parent` is no longer its parent (the session ended)."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.2)
        os._exit(0)

    threading.Thread(target=watch, daemon=True).start()


def main(argv: Sequence[str] | None = None) -> int:
    """Compute one family's missing results into the cache; exit status 0 when done."""
    from d1check.session import Session

    root, cache_dir, family, parent = argv if argv is not None else sys.argv[1:]
    _exit_with(int(parent))
    Session.load(Path(root), Path(cache_dir)).compute(family)
    return 0


if __name__ == "__main__":
    sys.exit(main())
