"""The gate for remote targets: `pytest --apply=TARGET` and `d1check apply` enter here.

Every apply goes through the one deploy engine (`d1check.fleet`): a single database is a fleet
of one, with the same read-only plan and refusals, lock, apply request, verification, journal
and report. The names of `d1check.plan` are re-exported for callers that know them from here.
"""

from __future__ import annotations

from d1check.config import Config
from d1check.errors import D1CheckError
from d1check.fleet import run_fleet
from d1check.interrupts import Interrupted
from d1check.plan import (
    DeployOptions,
    Expected,
    FleetOptions,
    Outcome,
    Plan,
    RunContext,
    Write,
    account_for,
    confirm,
    make_client,
    markdown_summary,
    migration_request,
    owner,
    plan_from_state,
    plan_target,
    require_credentials,
    staged_names,
    staging_refusal,
    summary_lines,
    write_reports,
)
from d1check.targets import describe, resolve_targets

__all__ = [
    "Expected",
    "Interrupted",
    "Outcome",
    "Plan",
    "RunContext",
    "account_for",
    "apply_remote",
    "confirm",
    "make_client",
    "markdown_summary",
    "migration_request",
    "owner",
    "plan_from_state",
    "plan_target",
    "require_credentials",
    "staged_names",
    "staging_refusal",
    "summary_lines",
    "write_reports",
]


def apply_remote(
    config: Config,
    *,
    target: str,
    options: DeployOptions,
    write: Write,
    fleet: FleetOptions | None = None,
) -> bool:
    """Apply pending migrations to every database of `target`; False when anything failed or
    was refused.

    `fleet` (else `options.fleet`, else the defaults) sets concurrency, canary, failure limit
    and `--resume`; each database is planned, refused or applied on its own. Raises
    `Interrupted` after a Ctrl-C or SIGTERM, once the run has ended cleanly and said how to
    resume (pytest then exits 2).
    """
    chosen = fleet or options.fleet or FleetOptions()
    try:
        resolution = resolve_targets(config, target)
        write(f"d1check: {target} → {describe(resolution.targets)}")
        for s in resolution.skipped:
            write(f"d1check: skipped {s.target.name}: {s.reason}")
        return run_fleet(config, target, resolution.targets, options, chosen, write)
    except Interrupted:
        raise
    except D1CheckError as error:
        write(f"d1check: apply to {target} refused: {error}")
        return False
