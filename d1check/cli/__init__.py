"""The `d1check` command: a thin click layer over the library (status, apply, pull, reset, new,
diff, rollback, restore, baseline, hash, emulate, engine)."""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click

from d1check import __version__
from d1check.cli.json_output import diff_document, echo_json, status_document
from d1check.cli.localdb import load_into_local, reset_local
from d1check.cli.output import USAGE, CommandError, from_error, print_table, use_rich
from d1check.cli.pull import file_stem, pull_data, pull_schema
from d1check.cli.rollback import RollbackPlan, plan_remote, rollback_local, rollback_remote
from d1check.cli.scaffold import create_migration
from d1check.config import Config, Family, load_config
from d1check.discovery import discover
from d1check.errors import ConfigError, D1CheckError
from d1check.fleet import drift_report_for, journaled, locked
from d1check.gate import require_credentials
from d1check.journal import RUNS_DIR, new_run_id
from d1check.lease import clear_lock, read_holder
from d1check.plan import RunContext
from d1check.project import read_sums, write_sums
from d1check.remote import DEFAULT_BUDGET, check_token_env, parse_budget
from d1check.schema import format_diff
from d1check.status import (
    ClientFactory,
    ProjectStatus,
    StatusRow,
    default_client_factory,
    diff_sources,
    load_source,
    project_status,
    remote_target,
    remote_targets,
)
from d1check.targets import Target, resolve_targets, target_names
from d1check.writes import send_restore

__all__ = ["cli", "main"]

F = TypeVar("F", bound=Callable[..., Any])
INTERRUPTED = 130  # the shell's code for a command ended by Ctrl-C


class D1CheckGroup(click.Group):
    """Turns every D1CheckError into one readable paragraph and its exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        """Run the subcommand; no traceback for errors d1check raises on purpose."""
        try:
            return super().invoke(ctx)
        except D1CheckError as error:
            raise from_error(error) from None


def root_option(func: F) -> F:
    """`--root DIR`: the project (default: the current directory)."""
    option = click.option(
        "--root",
        type=click.Path(file_okay=False, exists=True, path_type=Path),
        default=".",
        show_default="the current directory",
        help="The project directory (pyproject.toml, wrangler config, migrations/).",
    )
    return option(func)


def family_option(func: F) -> F:
    """`--family F`: one migrations family (default: the first one)."""
    option = click.option(
        "--family",
        default=None,
        show_default="the first family",
        help="A family of [tool.d1check.families].",
    )
    return option(func)


def json_option(func: F) -> F:
    """`--json`: one JSON document on stdout instead of text (shapes in docs/cli.md)."""
    option = click.option(
        "--json", "as_json", is_flag=True, help="Print one JSON document (see docs/cli.md)."
    )
    return option(func)


def yes_option(what: str) -> Callable[[F], F]:
    """`--yes`: confirm without a prompt."""
    return click.option("--yes", is_flag=True, help=f"Confirm {what} without a prompt (CI).")


def budget_option(func: F) -> F:
    """`--api-budget N/S`: one request budget for every API call of the command."""
    option = click.option(
        "--api-budget",
        default=DEFAULT_BUDGET,
        show_default=True,
        help="Send at most N API requests in any S seconds (N/S), or none.",
    )
    return option(func)


def _config(root: Path) -> Config:
    return load_config(root.resolve())


def _family(config: Config, name: str | None) -> Family:
    return config.family(name) if name else config.default_family


def _who() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return os.environ.get("GITHUB_ACTOR") or user


def _runs_dir(config: Config) -> Path:
    """Where run journals live (`.d1check/runs` in the project)."""
    return config.root / RUNS_DIR


def _rel(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path)


def is_terminal() -> bool:
    """Whether a person can answer a prompt."""
    return sys.stdin.isatty()


def confirm(yes: bool, question: str, *, word: str | None = None) -> None:
    """Go on with --yes, or when a person at a terminal agrees (types `word`, when given)."""
    if yes:
        return
    if not is_terminal():
        raise ConfigError(f"confirmation needed ({question}): pass --yes, no terminal to ask at")
    if word is None:
        agreed = click.confirm(question, default=False)
    else:
        agreed = click.prompt(f"{question} Type {word} to continue", default="") == word
    if not agreed:
        raise CommandError("not confirmed; nothing changed")


@click.group(
    cls=D1CheckGroup,
    context_settings={"show_default": True, "help_option_names": ["-h", "--help"]},
)
@click.version_option(__version__, prog_name="d1check")
def cli() -> None:
    """Make Cloudflare D1 schema migrations safe to ship."""


# --- status --------------------------------------------------------------------------------


def _status_cells(row: StatusRow) -> list[str]:
    pending = "?" if row.pending is None else str(row.pending)
    cells = [row.family, row.environment, row.target, row.database, row.applied, pending]
    return [*cells, row.drift, row.last_applied]


def _show_status(status: ProjectStatus) -> None:
    click.echo("targets:")
    for name in status.resolved:
        if name.problem:
            click.echo(f"  {name.name}: not configured ({name.problem.splitlines()[0]})")
            continue
        text = name.description
        skipped = f" (skipped: {', '.join(name.skipped)})" if name.skipped else ""
        click.echo(f"  {name.name} → {text}{skipped}")
    click.echo("")
    headers = ["family", "environment", "target", "database", "applied"]
    headers += ["pending", "drift", "last applied"]
    print_table("d1check status", headers, [_status_cells(r) for r in status.rows])
    notes = {r.detail for r in status.rows if r.drift == "no credentials"}
    for note in sorted(notes):
        click.echo(f"\nno credentials: {note}; remote databases were not read")
    for row in status.rows:
        if row.drift in ("drift", "error"):
            click.echo(f"\n{row.target}: {row.drift}:\n{row.detail}")


@cli.command()
@root_option
@family_option
@click.option(
    "--fleet",
    "fleet_target",
    metavar="TARGET",
    default=None,
    help="Also group TARGET's databases (e.g. production) by applied version and schema, "
    "with a structural diff for each group that differs from the expected schema.",
)
@json_option
@budget_option
def status(
    root: Path, family: str | None, fleet_target: str | None, as_json: bool, api_budget: str
) -> None:
    """Every local and remote database: applied version, pending, drift, last applied.

    Lists what `staging`, `production` and the other target names resolve to. Remote rows say
    "no credentials" when CLOUDFLARE_API_TOKEN is not set.
    """
    config = _config(root)
    check_token_env()
    budget = parse_budget(api_budget)
    clients = default_client_factory(config, budget)
    found = project_status(config, family=family, clients=clients)
    report = (
        drift_report_for(config, fleet_target, api_budget=api_budget, budget=budget)
        if fleet_target
        else None
    )
    if as_json:
        fleet = (fleet_target, report) if fleet_target and report is not None else None
        echo_json(status_document(found, fleet))
        return
    _show_status(found)
    _show_locks(config, family, clients)
    if fleet_target and report is not None:
        click.echo(f"\nfleet {fleet_target}: {sum(g.count for g in report.groups)} database(s)")
        click.echo("count  applied  schema  state: databases")
        for line in report.lines():
            click.echo(line)


# --- apply ---------------------------------------------------------------------------------


def pytest_command(
    target: str,
    *,
    yes: bool,
    dry_run: bool,
    backup_dir: Path | None,
    report: Path | None,
    api_budget: str,
) -> list[str]:
    """`python -m pytest -q --apply=TARGET …`: the suite, then the gate. pytest's output is
    piped through this command, so its colour follows this command's terminal (`NO_COLOR`
    switches it off)."""
    args = [sys.executable, "-m", "pytest", "-q", f"--apply={target}", f"--api-budget={api_budget}"]
    args += [f"--color={'yes' if use_rich() else 'no'}"]
    args += ["--yes"] if yes else []
    args += ["--dry-run"] if dry_run else []
    args += [f"--backup-dir={backup_dir.resolve()}"] if backup_dir else []
    args += [f"--d1check-report={report.resolve()}"] if report else []
    return args


def run_streamed(args: Sequence[str], cwd: Path) -> int:
    """Run a command, echoing its output line by line; its exit code.

    Ctrl-C reaches the command too (same process group); it decides what to do, and this keeps
    echoing until it ends. A SIGTERM sent to this process is passed on to the command.
    """
    with (
        subprocess.Popen(
            args, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        ) as process,
        _forwarding_sigterm(process),
    ):
        assert process.stdout is not None
        while True:
            try:
                for line in process.stdout:
                    click.echo(line, nl=False)
                break
            except KeyboardInterrupt:
                continue
        while True:
            try:
                return process.wait()
            except KeyboardInterrupt:
                continue


@contextlib.contextmanager
def _forwarding_sigterm(process: subprocess.Popen[str]) -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, lambda number, _frame: process.send_signal(number))
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def applied_from_report(report: Path) -> tuple[int, int]:
    """(databases applied to, databases in the report) from a `--d1check-report` file; (0, 0)
    when the gate never wrote it (the session failed first)."""
    try:
        outcomes = json.loads(report.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return 0, 0
    return sum(1 for o in outcomes if o.get("status") == "applied"), len(outcomes)


@cli.command()
@root_option
@click.argument("target")
@yes_option("production")
@click.option("--dry-run", is_flag=True, help="Print the plan and the SQL; change nothing.")
@click.option(
    "--backup-dir", type=click.Path(path_type=Path), help="Export each target here first."
)
@click.option("--report", type=click.Path(path_type=Path), help="Write the summary as JSON.")
@click.option(
    "--api-budget",
    default="1200/300",
    help="Send at most N API requests in any S seconds (N/S), or none.",
)
@click.option("--concurrency", default=8, show_default=True, help="Databases migrated at once.")
@click.option("--canary", default=1, show_default=True, help="Databases migrated first, alone.")
@click.option(
    "--max-failures", default=3, show_default=True, help="Stop starting databases after this."
)
@click.option("--resume", metavar="RUN", default=None, help="Continue an interrupted rollout.")
def apply(
    root: Path,
    target: str,
    yes: bool,
    dry_run: bool,
    backup_dir: Path | None,
    report: Path | None,
    api_budget: str,
    concurrency: int,
    canary: int,
    max_failures: int,
    resume: str | None,
) -> None:
    """Run the suite, then apply pending migrations to TARGET if everything passed.

    Exactly `pytest --apply=TARGET …` in the project root; exit 0 when it applied (or had
    nothing to do), 1 when a check or the apply failed, 2 on bad configuration (an empty
    TARGET, an unknown one, missing credentials for a remote one: found before the suite runs),
    130 when interrupted (Ctrl-C or SIGTERM: the databases in flight finish, the summary says how
    to resume with --resume).
    """
    config = _config(root)
    if not target.strip():
        raise CommandError(f"TARGET is empty: name one of {', '.join(target_names(config))}", USAGE)
    resolution = resolve_targets(config, target)
    if target != "local":
        require_credentials(config, resolution.targets)
    parse_budget(api_budget)
    if target != "local":
        check_token_env()
    with tempfile.TemporaryDirectory(prefix="d1check-apply-") as scratch:
        shown = report or Path(scratch) / "report.json"
        args = pytest_command(
            target,
            yes=yes,
            dry_run=dry_run,
            backup_dir=backup_dir,
            report=shown,
            api_budget=api_budget,
        )
        args += [
            f"--concurrency={concurrency}",
            f"--canary={canary}",
            f"--max-failures={max_failures}",
        ]
        args += [f"--resume={resume}"] if resume else []
        click.echo("d1check: running " + " ".join(["pytest", *args[4:]]))
        code = run_streamed(args, config.root)
        applied, total = applied_from_report(shown)
    if code == 4:
        raise CommandError(f"pytest refused its options (exit {code}); see above", 2)
    if code == 2:
        raise CommandError(
            f"interrupted; applied to {applied} of {total} database(s); the summary above says "
            "how to resume",
            INTERRUPTED,
        )
    if code != 0 and applied:
        raise CommandError(
            f"pytest exited {code}: applied to {applied} of {total} database(s), the rest "
            "failed or were refused; see the summary above"
        )
    if code != 0:
        raise CommandError(f"pytest exited {code}: nothing applied; see above")


# --- pull, reset ---------------------------------------------------------------------------


@cli.command()
@root_option
@click.argument("target")
@click.option("--data", is_flag=True, help="Also export the data and load it into local.")
@yes_option("replacing the local database")
@family_option
@budget_option
def pull(
    root: Path, target: str, data: bool, yes: bool, family: str | None, api_budget: str
) -> None:
    """Write the schema of remote TARGET to schema/<TARGET>.sql (CREATE statements and the
    tracking rows, read from sqlite_schema through the API)."""
    config = _config(root)
    check_token_env()
    remote = remote_target(config, target, family)
    client = default_client_factory(config, parse_budget(api_budget))(remote)
    stem = file_stem(target)
    try:
        path = pull_schema(client, remote, config.root / "schema" / f"{stem}.sql")
        click.echo(f"wrote {_rel(path, config.root)} (schema of {remote.database_name})")
        if not data:
            return
        dump = pull_data(client, remote, config.root / ".d1check" / "pull" / f"{stem}.sql")
        click.echo(f"wrote {_rel(dump, config.root)} (export with data)")
    finally:
        client.close()
    confirm(yes, f"Replace the local {remote.family} database with the data of {target}?")
    local = load_into_local(config, config.family(remote.family), dump)
    click.echo(f"loaded into {_rel(local, config.root)}")


@cli.command()
@root_option
@yes_option("deleting the local databases")
def reset(root: Path, yes: bool) -> None:
    """Rebuild every local database: delete it (with -wal/-shm), apply every migration with its
    tracking row, then run the seed files."""
    config = _config(root)
    confirm(yes, "Delete the local databases and rebuild them from the migrations?")
    from d1check.plan import git_commit

    result = reset_local(config, git_commit=git_commit(config.root))
    for local in result.applied:
        where = _rel(local.path, config.root)
        count = len(local.applied_now)
        click.echo(f"local {local.family} ({where}): applied {count} migration(s)")
    for seed in result.seeded:
        click.echo(f"seeded from {_rel(seed, config.root)}")


# --- new, hash, diff -----------------------------------------------------------------------


@cli.command()
@root_option
@click.argument("name")
@family_option
def new(root: Path, name: str, family: str | None) -> None:
    """Create the next numbered migration NAME and its rollback file, from templates."""
    config = _config(root)
    created = create_migration(_family(config, family), name, config.root)
    click.echo(f"created {_rel(created.migration, config.root)}")
    click.echo(f"created {_rel(created.rollback, config.root)}")


@cli.command()
@root_option
@click.argument("version", required=False)
@family_option
def baseline(root: Path, version: str | None, family: str | None) -> None:
    """Record the migrations up to VERSION (default: every one present) as shipped.

    Shipped migrations are already applied somewhere and must never change: d1check then checks
    them for facts only (they build a new database, D1 accepts them, they are unchanged) and
    holds the migrations after them to the whole policy. Writes d1check.sum (to commit) in each
    family's migrations directory.
    """
    config = _config(root)
    families = [config.family(family)] if family else list(config.families.values())
    for fam in families:
        migrations = discover(fam.migrations_dir, fam.rollbacks_dir, fam.migrations_pattern)
        path = write_sums(migrations, version)
        count = len(read_sums(path).files)
        new = len(migrations.migrations) - count
        click.echo(
            f"wrote {_rel(path, config.root)}: {count} shipped migration(s), {new} new "
            "(commit it; run it again after each deploy)"
        )


@cli.command("hash")
@root_option
@family_option
@click.pass_context
def hash_(ctx: click.Context, root: Path, family: str | None) -> None:
    """The same as `d1check baseline` without VERSION: every migration present is shipped."""
    ctx.invoke(baseline, root=root, version=None, family=family)


@cli.command()
@root_option
@click.argument("a")
@click.argument("b")
@family_option
@json_option
@budget_option
def diff(root: Path, a: str, b: str, family: str | None, as_json: bool, api_budget: str) -> None:
    """Structural diff from A to B; each is a version (0003), a sqlite file, an export .sql
    file, `local`, or a remote target. Exit 1 when they differ, 0 when equal."""
    config = _config(root)
    fam = _family(config, family)
    check_token_env()
    clients = default_client_factory(config, parse_budget(api_budget))
    first = load_source(config, a, family=fam, clients=clients)
    second = load_source(config, b, family=fam, clients=clients)
    diffs = diff_sources(first, second)
    if as_json:
        echo_json(diff_document(first, second, diffs))
        if diffs:
            raise click.exceptions.Exit(1)
        return
    click.echo(f"--- {first.label}\n+++ {second.label}")
    if not diffs:
        click.echo("no structural differences")
        return
    click.echo(format_diff(diffs, limit=1000))
    raise click.exceptions.Exit(1)


# --- rollback, restore ---------------------------------------------------------------------


def _remote_targets(config: Config, name: str, family: Family) -> list[Target]:
    targets = [t for t in resolve_targets(config, name).targets if t.family == family.name]
    if not targets:
        raise ConfigError(f"target {name!r} has no database of family {family.name!r}")
    return targets


@cli.command()
@root_option
@click.argument("version")
@click.argument("target")
@yes_option("a remote rollback")
@family_option
def rollback(root: Path, version: str, target: str, yes: bool, family: str | None) -> None:
    """Run the rollback file of VERSION (the last applied) on TARGET and remove its tracking
    row; an audit row records it. Remote targets need ROLLBACK typed, or --yes."""
    config = _config(root)
    fam = _family(config, family)
    if target == "local":
        done = rollback_local(config, fam, version, by=_who())
        click.echo(f"{done.where}: rolled back {done.migration}; now at {done.now_at}")
        return
    factory = default_client_factory(config)
    plans: list[tuple[Target, RollbackPlan]] = []
    for remote in _remote_targets(config, target, fam):
        with factory(remote) as client:
            plans.append((remote, plan_remote(client, fam, remote, version)))
    names = ", ".join(t.name for t, _ in plans)
    confirm(yes, f"Roll back {plans[0][1].migration.name} on {names}?", word="ROLLBACK")
    for remote, plan in plans:
        with factory(remote) as client:
            done = rollback_remote(client, remote, plan, by=_who(), runs_dir=_runs_dir(config))
        click.echo(f"{done.where}: rolled back {done.migration}; now at {done.now_at}")
        click.echo(f"  undo with: d1check restore {done.where} --bookmark {done.bookmark}")


@cli.command()
@root_option
@click.argument("target")
@click.option("--bookmark", required=True, help="The Time Travel bookmark to go back to.")
@yes_option("the restore")
def restore(root: Path, target: str, bookmark: str, yes: bool) -> None:
    """Restore remote TARGET to a Time Travel bookmark (D1 keeps 30 days)."""
    config = _config(root)
    remote = remote_target(config, target)
    confirm(yes, f"Restore {remote.name} ({remote.database_name}) to {bookmark}?", word="RESTORE")
    with default_client_factory(config)(remote) as client:
        db_id = remote.database_id or client.database_id(remote.database_name)
        ctx = RunContext(new_run_id(), _who(), None)
        with (
            journaled(_runs_dir(config), ctx.run_id, "restore", remote),
            locked(client, remote, db_id, ctx),
        ):
            restored = send_restore(client, db_id, bookmark)
    click.echo(f"{remote.name}: restored to {bookmark}")
    if restored.previous_bookmark:
        click.echo(f"  undo with: d1check restore {target} --bookmark {restored.previous_bookmark}")


@cli.command()
@root_option
@click.argument("target")
@yes_option("clearing the lock")
def unlock(root: Path, target: str, yes: bool) -> None:
    """Show the deploy lock of remote TARGET (run, owner, since, until) and clear it.

    Only for a lock whose run is gone: a live run renews its lease, and a killed run's lease runs
    out within a minute by itself. Needs UNLOCK typed, or --yes.
    """
    config = _config(root)
    check_token_env()
    remote = remote_target(config, target)
    with default_client_factory(config)(remote) as client:
        db_id = remote.database_id or client.database_id(remote.database_name)
        holder = read_holder(client, db_id)
        if holder is None:
            click.echo(f"{remote.name}: not locked")
            return
        click.echo(f"{remote.name}: locked by {holder.describe()}")
        confirm(yes, f"Clear the lock of run {holder.run_id} on {remote.name}?", word="UNLOCK")
        cleared = clear_lock(client, db_id, holder.run_id)
    gone = "cleared" if cleared else "was already given back"
    click.echo(f"{remote.name}: the lock of run {holder.run_id} {gone}")


def _show_locks(config: Config, family: str | None, clients: ClientFactory) -> None:
    if not os.environ.get("CLOUDFLARE_API_TOKEN"):
        return
    held, unread = [], []
    for target in remote_targets(config, family):
        try:
            with clients(target) as client:
                db_id = target.database_id or client.database_id(target.database_name)
                holder = read_holder(client, db_id)
        except D1CheckError as error:
            unread.append(f"  {target.name}: lock unreadable: {error}")
            continue
        if holder is not None:
            held.append(f"  {target.name}: locked by {holder.describe()}")
    summary = "none held" if not held else f"{len(held)} held"
    if unread:
        summary += f", {len(unread)} unreadable"
    click.echo(f"\ndeploy locks: {summary}")
    for line in held + unread:
        click.echo(line)


# --- emulate, engine -----------------------------------------------------------------------


@cli.command()
@root_option
@click.option(
    "--dir",
    "directory",
    type=click.Path(path_type=Path),
    default=None,
    show_default=".d1check/emulator under --root",
    help="Where the SQLite files live.",
)
@click.option("--port", type=int, default=8787, help="Port on 127.0.0.1 (0 picks a free one).")
@click.option(
    "--token",
    envvar="CLOUDFLARE_API_TOKEN",
    default="emulator-token",
    help="Bearer token to accept ($CLOUDFLARE_API_TOKEN when set).",
)
def emulate(root: Path, directory: Path | None, port: int, token: str) -> None:
    """Serve the D1 REST API on 127.0.0.1 for tests and dry runs, until Ctrl-C."""
    from d1check.testing import serve

    serve(directory or root.resolve() / ".d1check" / "emulator", port=port, token=token)


@cli.command()
def engine() -> None:
    """Run the real D1 engine (workerd) in a container until Ctrl-C or SIGTERM."""
    from d1check.containers import run_engine_forever

    run_engine_forever()


def main(argv: Sequence[str] | None = None) -> None:
    """The console script `d1check`."""
    cli.main(args=list(argv) if argv is not None else None, prog_name="d1check")
