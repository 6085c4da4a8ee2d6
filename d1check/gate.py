"""Applying to remote D1 databases: plan, refusals, lock, bookmark, backup, apply, verify, audit."""

from __future__ import annotations

import contextlib
import json
import os
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from d1check.config import Config
from d1check.discovery import Migration, MigrationSet, discover
from d1check.errors import ConfigError, D1CheckError, GateRefused, LockHeld, RemoteError
from d1check.history import replay
from d1check.live import LiveState, applied_migrations, live_state, remote_schema
from d1check.local import pending_migrations
from d1check.remote import AmbiguousWrite, D1Client, credentials, parse_budget
from d1check.schema import Schema, diff_schemas, format_diff, read_schema
from d1check.targets import Target, describe, resolve_targets
from d1check.tracking import (
    AUDIT_DDL,
    AUDIT_TABLE,
    LOCK_DDL,
    LOCK_SECONDS,
    LOCK_TABLE,
    LOCK_TAKE,
    TrackingStyle,
    audit_insert_sql,
    records_itself,
    tracking_name,
    version_label,
)

if TYPE_CHECKING:
    from d1check.fleet import FleetOptions
    from d1check.session import GateOptions

Write = Callable[[str], None]


@dataclass(frozen=True)
class Plan:
    """What applying to one target would do, or why it must not."""

    target: Target
    db_id: str
    applied: tuple[str, ...]
    pending: tuple[Migration, ...]
    unverified: tuple[str, ...] = ()
    refusal: str = ""


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


def make_client(config: Config, target: Target, options: GateOptions) -> D1Client:
    """A D1 client for `target`, with the run's API budget."""
    account = account_for(config, target)
    return D1Client.from_env(account_id=account, budget=parse_budget(options.api_budget))


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
        return Plan(target, db_id, tuple(applied), (), unverified, refusal)
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


# --- lock ----------------------------------------------------------------------------------


def acquire_lock(
    client: D1Client, db_id: str, run_id: str, owner: str, now: float | None = None
) -> None:
    """Take the deploy lock of a database; LockHeld when another live run holds it."""
    now = time.time() if now is None else now
    params = [owner, run_id, now, now, now + LOCK_SECONDS, now]
    with contextlib.suppress(AmbiguousWrite):
        client.batch(
            db_id,
            [(LOCK_DDL, None), (LOCK_TAKE, params)],
            write=True,
            purpose="taking the deploy lock",
        )
    rows = client.query(
        db_id,
        f'SELECT owner, run_id, expires_at FROM "{LOCK_TABLE}"',
        write=False,
        purpose="reading the deploy lock",
    )
    holder = rows[0].results[0] if rows and rows[0].results else {}
    if holder.get("run_id") != run_id:
        until = datetime.fromtimestamp(float(str(holder.get("expires_at", 0))), UTC)
        raise LockHeld(
            f"database {db_id} is locked by {holder.get('owner')} (run {holder.get('run_id')}) "
            f"until {until:%Y-%m-%d %H:%M:%S} UTC\nfix: wait for that run to finish; a lock left "
            "by a killed run expires by itself"
        )


def release_lock(client: D1Client, db_id: str, run_id: str) -> None:
    """Give the lock back (only ours)."""
    with contextlib.suppress(RemoteError):
        client.query(db_id, f'DELETE FROM "{LOCK_TABLE}" WHERE run_id = ?', [run_id], write=True)


def heartbeat_sql(run_id: str) -> str:
    """Extend our lock; sent with every migration."""
    now = time.time()
    return (
        f'UPDATE "{LOCK_TABLE}" SET heartbeat_at = {now}, expires_at = {now + LOCK_SECONDS} '
        f"WHERE run_id = '{run_id}';"
    )


# --- apply ---------------------------------------------------------------------------------


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


def _send_migration(client: D1Client, plan: Plan, migration: Migration, sql: str) -> None:
    style = TrackingStyle(plan.target.tracking_table)
    name = tracking_name(migration.name, migration.file_name, style)
    for _ in range(2):
        try:
            client.query(
                plan.db_id,
                sql,
                write=True,
                purpose=f"{plan.target.name}: applying {migration.name}",
            )
            return
        except AmbiguousWrite:
            if name in applied_migrations(client, plan.db_id, style):
                return
    raise RemoteError(
        f"{plan.target.name}: {migration.name} could not be sent; nothing of it landed"
    )


def apply_plan(
    client: D1Client, plan: Plan, expected: Expected, ctx: RunContext, backup_dir: Path | None
) -> Outcome:
    """Lock, bookmark, back up, apply every pending migration, verify, release."""
    target = plan.target
    outcome = Outcome(
        target.name,
        target.environment,
        target.database_name,
        "applied",
        version_label(plan.applied),
        version_label(plan.applied),
    )
    started = time.monotonic()
    try:
        acquire_lock(client, plan.db_id, ctx.run_id, ctx.owner)
    except LockHeld as held:
        outcome.status, outcome.error = "refused", str(held)
        return outcome
    current = ""
    try:
        tracking = TrackingStyle(target.tracking_table).create_sql()
        client.query(
            plan.db_id,
            f"{tracking};\n{AUDIT_DDL};",
            write=True,
            purpose=f"{target.name}: creating the tracking and audit tables",
        )
        outcome.bookmark = client.bookmark(plan.db_id)
        if backup_dir is not None:
            _backup(client, plan, backup_dir)
        for migration in plan.pending:
            current = migration.name
            _send_migration(
                client, plan, migration, migration_request(migration, target, outcome.bookmark, ctx)
            )
            outcome.applied.append(migration.name)
            outcome.to_version = migration.name
        current = ""
        _verify(client, plan, expected)
        _record_duration(client, plan, outcome, time.monotonic() - started)
    except D1CheckError as error:
        outcome.status, outcome.error, outcome.failed_at = "failed", str(error), current
    finally:
        if outcome.status != "refused":
            release_lock(client, plan.db_id, ctx.run_id)
        outcome.seconds = time.monotonic() - started
    return outcome


def _backup(client: D1Client, plan: Plan, backup_dir: Path) -> None:
    backup_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = backup_dir / f"{plan.target.name.replace(':', '_')}-{stamp}.sql"
    path.write_text(client.export(plan.db_id, no_data=False), encoding="utf-8")


def _verify(client: D1Client, plan: Plan, expected: Expected) -> None:
    count = len(plan.applied) + len(plan.pending)
    live = remote_schema(client, plan.db_id, [plan.target.tracking_table])
    diffs = diff_schemas(expected.at(count), live)
    if diffs:
        raise GateRefused(
            f"{plan.target.name}: after applying, the schema is not the expected one:\n"
            + format_diff(diffs)
        )


def _record_duration(client: D1Client, plan: Plan, outcome: Outcome, seconds: float) -> None:
    if not outcome.applied:
        return
    names = ", ".join("'" + n.replace("'", "''") + "'" for n in outcome.applied)
    sql = (
        f'UPDATE "{AUDIT_TABLE}" SET duration_ms = {int(seconds * 1000)} '
        f"WHERE migration_name IN ({names}) AND duration_ms IS NULL"
    )
    with contextlib.suppress(RemoteError):
        client.query(plan.db_id, sql, write=True)


# --- the whole run -------------------------------------------------------------------------


def confirm(targets: Sequence[Target], options: GateOptions, write: Write) -> bool:
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


def apply_remote(
    config: Config,
    *,
    target: str,
    options: GateOptions,
    write: Write,
    fleet: FleetOptions | None = None,
) -> bool:
    """The gate for remote targets.

    Without fleet options (`fleet`, else `options.fleet`): plan all, refuse on any problem, then
    apply one database after another. With them: a fleet rollout (see `d1check.fleet`), where
    each database is planned, refused or applied on its own.
    """
    fleet = fleet if fleet is not None else getattr(options, "fleet", None)
    try:
        resolution = resolve_targets(config, target)
        write(f"d1check: {target} → {describe(resolution.targets)}")
        if fleet is not None:
            from d1check.fleet import run_fleet

            for s in resolution.skipped:
                write(f"d1check: skipped {s.target.name}: {s.reason}")
            return run_fleet(config, target, resolution.targets, options, fleet, write)
        return _run(
            config,
            resolution.targets,
            [s.target.name + ": " + s.reason for s in resolution.skipped],
            options,
            write,
        )
    except D1CheckError as error:
        write(f"d1check: apply to {target} refused: {error}")
        return False


def _run(
    config: Config,
    targets: Sequence[Target],
    skipped: list[str],
    options: GateOptions,
    write: Write,
) -> bool:
    from d1check.session import git_commit

    clients: dict[str | None, D1Client] = {}

    def client_for(t: Target) -> D1Client:
        if t.account_id not in clients:
            clients[t.account_id] = make_client(config, t, options)
        return clients[t.account_id]

    try:
        families = {
            f: discover(
                config.family(f).migrations_dir,
                config.family(f).rollbacks_dir,
                config.family(f).migrations_pattern,
            )
            for f in {t.family for t in targets}
        }
        expected = {f: Expected(m, config.family(f).tracking_table) for f, m in families.items()}
        for line in skipped:
            write(f"d1check: skipped {line}")
        plans = [
            plan_target(client_for(t), t, families[t.family], expected[t.family]) for t in targets
        ]
        staged = (
            staged_names(config, client_for)
            if any(t.environment == "production" for t in targets)
            else {}
        )
        plans = [_with_staging(p, staged) for p in plans]
        outcomes = _execute(
            plans,
            expected,
            client_for,
            options,
            write,
            RunContext(uuid.uuid4().hex, owner(), git_commit(config.root)),
        )
    finally:
        for client in clients.values():
            client.close()
    _report(outcomes, options, write)
    return all(o.status in ("applied", "up-to-date", "planned") for o in outcomes)


def _with_staging(plan: Plan, staged: dict[str, set[str]]) -> Plan:
    refusal = plan.refusal or staging_refusal(plan, staged)
    return Plan(plan.target, plan.db_id, plan.applied, plan.pending, plan.unverified, refusal)


def _execute(
    plans: list[Plan],
    expected: dict[str, Expected],
    client_for: Callable[[Target], D1Client],
    options: GateOptions,
    write: Write,
    ctx: RunContext,
) -> list[Outcome]:
    refused = [p for p in plans if p.refusal]
    for plan in refused:
        write(f"d1check: refused: {plan.refusal}")
    if refused:
        return [
            _outcome(
                p, "refused" if p.refusal else "skipped", p.refusal or "another target was refused"
            )
            for p in plans
        ]
    for plan in plans:
        if plan.unverified:
            write(
                f"d1check: {plan.target.name}: {len(plan.unverified)} migration(s) applied "
                "before d1check, not verified"
            )
    if options.dry_run:
        return [_dry_run(p, write) for p in plans]
    if not confirm([p.target for p in plans if p.pending], options, write):
        return [_outcome(p, "skipped", "not confirmed") for p in plans]
    outcomes = []
    for plan in plans:
        if not plan.pending:
            outcomes.append(_outcome(plan, "up-to-date"))
            continue
        outcome = apply_plan(
            client_for(plan.target), plan, expected[plan.target.family], ctx, options.backup_dir
        )
        write(_outcome_line(outcome))
        outcomes.append(outcome)
    return outcomes


def _outcome_line(outcome: Outcome) -> str:
    applied = ", ".join(outcome.applied) or "none"
    if outcome.status == "failed":
        at = f" at {outcome.failed_at}" if outcome.failed_at else ""
        return f"d1check: {outcome.target}: failed{at} (applied before it: {applied})"
    if outcome.status == "refused":
        return f"d1check: {outcome.target}: refused, nothing applied: {outcome.error}"
    return f"d1check: {outcome.target}: {outcome.status} {applied}"


def _outcome(plan: Plan, status: str, error: str = "") -> Outcome:
    version = version_label(plan.applied)
    t = plan.target
    return Outcome(t.name, t.environment, t.database_name, status, version, version, error=error)


def _dry_run(plan: Plan, write: Write) -> Outcome:
    write(
        f"d1check: dry run: {plan.target.name} ({plan.target.database_name}) at "
        f"{version_label(plan.applied)}"
    )
    for migration in plan.pending:
        write(f"  would apply {migration.name}:")
        for statement in migration.file.statements:
            write("    " + statement.sql.replace("\n", "\n    "))
    outcome = _outcome(plan, "planned")
    outcome.to_version = plan.pending[-1].name if plan.pending else outcome.from_version
    return outcome


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


def _report(outcomes: list[Outcome], options: GateOptions, write: Write) -> None:
    for line in summary_lines(outcomes):
        write(line)
    for o in outcomes:
        if o.status == "failed":
            write(f"d1check: {o.target} failed: {o.error}")
            if o.bookmark:
                write(f"  restore with: d1check restore {o.target} --bookmark {o.bookmark}")
    write_reports(outcomes, options)


def write_reports(outcomes: Sequence[Outcome], options: GateOptions) -> None:
    """The JSON report (`--d1check-report`) and the GitHub step summary, when asked for."""
    if options.report is not None:
        options.report.write_text(
            json.dumps([asdict(o) for o in outcomes], indent=2), encoding="utf-8"
        )
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        with open(summary, "a", encoding="utf-8") as fh:
            fh.write(markdown_summary(outcomes))
