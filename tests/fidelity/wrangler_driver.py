"""Drives the real D1 engine: `wrangler d1 … --local` (workerd) in a throw-away project."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
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


class Wrangler:
    """One wrangler executable, run against throw-away projects under `workdir`."""

    def __init__(self, executable: Path) -> None:
        self.executable = executable

    def version(self) -> str:
        """wrangler's version, which also proves it starts."""
        return self._run(["--version"], Path.cwd()).stdout.strip()

    def apply_migrations(self, migrations: Path, project: Path) -> Outcome:
        """`wrangler d1 migrations apply DB --local` over a copy of `migrations`."""
        _new_project(project)
        shutil.copytree(migrations, project / "migrations", dirs_exist_ok=True)
        done = self._run(["d1", "migrations", "apply", "DB", "--local", *_persist(project)], project)
        names = sorted((p.name for p in migrations.glob("*.sql")), key=wrangler_order_key)
        return _outcome(project, done, names)

    def execute_file(self, sql: Path, project: Path) -> Outcome:
        """`wrangler d1 execute DB --local --file` of one file; the failure is named by its file."""
        _new_project(project)
        (project / "migrations").mkdir()
        target = project / sql.name
        shutil.copyfile(sql, target)
        args = ["d1", "execute", "DB", "--local", "--file", str(target), *_persist(project)]
        done = self._run(args, project)
        return _outcome(project, done, [sql.name], executed=True)

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


def _new_project(project: Path) -> None:
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
