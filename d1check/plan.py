"""What a deploy decides and reports, shared by every command that changes remote databases:
the plan of one database (read-only, with its refusals), the run's identity, the request text of
a migration, confirmation and the summary.

It imports nothing that runs a deploy, so the engine (`d1check.fleet`), the gate's entry point
(`d1check.gate`) and the commands can all use it without an import circle.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

from d1check.config import Config
from d1check.discovery import Migration, MigrationSet
from d1check.errors import ConfigError, GateRefused
from d1check.history import replay
from d1check.journal import RUNS_DIR
from d1check.live import LiveState, applied_migrations, live_state
from d1check.local import pending_migrations
from d1check.remote import D1Client, credentials, parse_budget
from d1check.schema import Schema, diff_schemas, format_diff, read_schema
from d1check.targets import Target, resolve_targets
from d1check.tracking import (
    LOCK_SECONDS,
    LOCK_TABLE,
    TrackingStyle,
    audit_insert_sql,
    quote,
    records_itself,
    tracking_name,
    version_label,
)

Write = Callable[[str], None]


@dataclass(frozen=True)
class FleetOptions:
    """How a fleet rollout runs (the pytest options `--concurrency`, `--canary`, ...)."""

    concurrency: int = 8
    canary: int = 1
    max_failures: int = 3
    resume: str | None = None
    lock_wait: float = 0.0
    runs_dir: Path | None = None
    progress: str = "auto"

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ConfigError(f"--concurrency {self.concurrency}: must be at least 1 (default 8)")
        if self.canary < 0 or self.max_failures < 1:
            raise ConfigError(
                f"--canary {self.canary} / --max-failures {self.max_failures}: the canary count "
                "must be 0 or more and the failure limit 1 or more (defaults 1 and 3)"
            )
        if self.progress not in ("auto", "rich", "plain", "none"):
            raise ConfigError(f"progress {self.progress!r}: use auto, rich, plain or none")

    def journal_dir(self, root: Path) -> Path:
        """Where run journals live: `runs_dir`, else `<root>/.d1check/runs`."""
        return self.runs_dir if self.runs_dir is not None else root / RUNS_DIR


class DeployOptions(Protocol):
    """How a deploy runs (the pytest gate's `GateOptions` is one)."""

    @property
    def yes(self) -> bool: ...
    @property
    def dry_run(self) -> bool: ...
    @property
    def backup_dir(self) -> Path | None: ...
    @property
    def report(self) -> Path | None: ...
    @property
    def api_budget(self) -> str: ...
    @property
    def fleet(self) -> FleetOptions | None: ...


@dataclass(frozen=True)
class Plan:
    """What applying to one target would do, or why it must not."""

    target: Target
    db_id: str
    applied: tuple[str, ...]
    pending: tuple[Migration, ...]
    unverified: tuple[str, ...] = ()
    refusal: str = ""
    drift: bool = False  # refused because the live schema is not the expected one


@dataclass
class Outcome:
    """What happened to one target."""

    target: str
    environment: str
    database: str
    status: str  # applied, up-to-date, refused, failed, skipped, planned
    from_version: str = ""
    to_version: str = ""
    applied: list[str] = field(default_factory=list)
    seconds: float = 0.0
    bookmark: str = ""
    error: str = ""
    failed_at: str = ""


class Expected:
    """Expected schemas at each version of a family's history, built on first need."""

    def __init__(self, migrations: MigrationSet, tracking_table: str) -> None:
        self.migrations = migrations
        self.tracking_table = tracking_table
        self._schemas: dict[int, Schema] = {}

    def at(self, count: int) -> Schema:
        """The schema after the first `count` migrations."""
        if count not in self._schemas:
            db = replay(self.migrations.migrations[:count], tracking_table=self.tracking_table)
            self._schemas[count] = read_schema(db, ignore=[self.tracking_table])
            db.close()
        return self._schemas[count]


def account_for(config: Config, target: Target) -> str | None:
    """The account id a target names (its own, else the wrangler config's); None: the
    environment's `CLOUDFLARE_ACCOUNT_ID`."""
    return target.account_id or (config.wrangler.account_id if config.wrangler else None)


def require_credentials(config: Config, targets: Sequence[Target]) -> None:
    """ConfigError naming what is missing when a client for one of `targets` could not be made
    (no API token, no account id): checked before any work starts."""
    for target in targets:
        credentials(account_for(config, target))


def make_client(config: Config, target: Target, options: DeployOptions) -> D1Client:
    """A D1 client for `target`, with the run's API budget."""
    return D1Client.from_env(
        account_id=account_for(config, target), budget=parse_budget(options.api_budget)
    )


def plan_target(
    client: D1Client, target: Target, migrations: MigrationSet, expected: Expected
) -> Plan:
    """Read the target and decide what to apply; a Plan with `refusal` set when it must not."""
    db_id = target.database_id or client.database_id(target.database_name)
    live = live_state(client, db_id, TrackingStyle(target.tracking_table))
    return plan_from_state(target, db_id, live, migrations, expected)


def plan_from_state(
    target: Target, db_id: str, live: LiveState, migrations: MigrationSet, expected: Expected
) -> Plan:
    """Decide what to apply from what the target holds (however it was read)."""
    style = TrackingStyle(target.tracking_table)
    applied = list(live.applied)
    try:
        pending = pending_migrations(migrations, applied, style, target.name)
    except GateRefused as refused:
        return Plan(target, db_id, tuple(applied), (), refusal=str(refused))
    by_name = {tracking_name(m.name, m.file_name, style): m for m in migrations.migrations}
    changed = [
        n
        for n in applied
        if n.removesuffix(".sql") in live.checksums
        and live.checksums[n.removesuffix(".sql")] != by_name[n].file.sha256
    ]
    unverified = tuple(n for n in applied if n.removesuffix(".sql") not in live.checksums)
    if changed:
        return Plan(target, db_id, tuple(applied), (), unverified, _drift(target, changed))
    diffs = diff_schemas(expected.at(len(applied)), live.schema)
    if diffs:
        refusal = (
            f"{target.name}: the live schema is not the schema of {version_label(applied)} "
            "(someone changed it by hand?), expected → live:\n"
            + format_diff(diffs)
            + "\nfix: write a migration for the change, or undo it on the database"
        )
        return Plan(target, db_id, tuple(applied), (), unverified, refusal, drift=True)
    return Plan(target, db_id, tuple(applied), pending, unverified)


def _drift(target: Target, changed: list[str]) -> str:
    return (
        f"{target.name}: applied migrations changed since they were applied (checksums differ): "
        f"{', '.join(changed)}\nfix: restore those files as applied and write a new migration"
    )


def staging_refusal(plan: Plan, staged: dict[str, set[str]]) -> str:
    """Production refuses migrations that staging has not applied yet."""
    if plan.target.environment != "production" or plan.target.family not in staged:
        return ""
    style = TrackingStyle(plan.target.tracking_table)
    missing = [
        m.name
        for m in plan.pending
        if tracking_name(m.name, m.file_name, style) not in staged[plan.target.family]
    ]
    if not missing:
        return ""
    return (
        f"{plan.target.name}: not applied to staging yet: {', '.join(missing)}\n"
        "fix: run `pytest --apply=staging` first (the staged workflow)"
    )


def staged_names(config: Config, client_for: Callable[[Target], D1Client]) -> dict[str, set[str]]:
    """Migrations applied on every staging database, by family (empty without staging)."""
    try:
        staging = resolve_targets(config, "staging").targets
    except ConfigError:
        return {}
    found: dict[str, set[str]] = {}
    for target in staging:
        client = client_for(target)
        db_id = target.database_id or client.database_id(target.database_name)
        names = set(applied_migrations(client, db_id, TrackingStyle(target.tracking_table)))
        found[target.family] = found[target.family] & names if target.family in found else names
    return found


def heartbeat_sql(run_id: str) -> str:
    """Extend our lock lease; sent with every migration."""
    now = time.time()
    return (
        f'UPDATE "{LOCK_TABLE}" SET heartbeat_at = {now}, expires_at = {now + LOCK_SECONDS} '
        f"WHERE run_id = {quote(run_id)};"
    )


@dataclass(frozen=True)
class RunContext:
    """Who applies, from which commit, in which run."""

    run_id: str
    owner: str
    git_commit: str | None


def migration_request(
    migration: Migration, target: Target, bookmark: str, ctx: RunContext, *, heartbeat: bool = True
) -> str:
    """The one request that applies a migration with its tracking row, audit row and heartbeat."""
    style = TrackingStyle(target.tracking_table)
    parts = [s.sql if s.terminated else s.sql + ";" for s in migration.file.statements]
    if not records_itself(migration.file.statements, style.table):
        name = tracking_name(migration.name, migration.file_name, style)
        parts.append(style.insert_sql(name, migration.version, migration.file.sha256))
    parts.append(
        audit_insert_sql(
            version=migration.version,
            name=migration.name,
            checksum=migration.file.sha256,
            applied_by=ctx.owner,
            environment=target.environment,
            target=target.name,
            git_commit=ctx.git_commit,
            bookmark=bookmark,
        )
    )
    if heartbeat:
        parts.append(heartbeat_sql(ctx.run_id))
    return "\n".join(parts)


# --- confirmation and the summary --------------------------------------------------------


def confirm(targets: Sequence[Target], options: DeployOptions, write: Write) -> bool:
    """Production needs `yes` typed at a terminal, or --yes."""
    if options.yes or options.dry_run or not any(t.environment == "production" for t in targets):
        return True
    try:
        tty = open("/dev/tty", "r+")  # noqa: SIM115
    except OSError:
        write("d1check: refusing to apply to production without a terminal: pass --yes (CI)")
        return False
    with tty:
        tty.write(f"Apply to {len(targets)} production database(s)? Type 'yes' to continue: ")
        tty.flush()
        answer = tty.readline().strip()
    if answer != "yes":
        write("d1check: not confirmed; nothing applied")
        return False
    return True


def owner() -> str:
    """Who applies: the CI actor, else the local user."""
    from d1check.local import _user

    return os.environ.get("GITHUB_ACTOR") or _user()


def summary_lines(outcomes: Sequence[Outcome]) -> list[str]:
    """The summary table as plain text."""
    header = f"{'target':<24} {'from → to':<48} {'status':<10} {'time':>7}  bookmark"
    lines = [header]
    for o in outcomes:
        span = f"{o.from_version} → {o.to_version}"
        lines.append(f"{o.target:<24} {span:<48} {o.status:<10} {o.seconds:>6.2f}s  {o.bookmark}")
    return lines


def markdown_summary(outcomes: Sequence[Outcome]) -> str:
    """The summary as a markdown table (for $GITHUB_STEP_SUMMARY)."""
    rows = ["| target | from → to | status | time | bookmark |", "|---|---|---|---|---|"]
    rows += [
        f"| {o.target} | {o.from_version} → {o.to_version} | {o.status} | {o.seconds:.2f}s "
        f"| {o.bookmark} |"
        for o in outcomes
    ]
    return "## d1check apply\n\n" + "\n".join(rows) + "\n"


def write_reports(outcomes: Sequence[Outcome], options: DeployOptions) -> None:
    """The JSON report (`--d1check-report`) and the GitHub step summary, when asked for."""
    if options.report is not None:
        options.report.write_text(
            json.dumps([asdict(o) for o in outcomes], indent=2), encoding="utf-8"
        )
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        with open(summary, "a", encoding="utf-8") as fh:
            fh.write(markdown_summary(outcomes))


def git_commit(root: Path) -> str | None:
    """The current git commit of `root`, or None outside a repository."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.stdout.strip() or None
