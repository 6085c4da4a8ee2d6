"""The `--json` documents of `d1check status` and `d1check diff`: stable keys (documented in
docs/cli.md), `null` for a value that is not known, no text meant only for people."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import click

from d1check.fleet import DriftReport
from d1check.schema import Difference
from d1check.status import (
    EMPTY,
    NO_DATABASE,
    UNKNOWN,
    ProjectStatus,
    ResolvedName,
    SchemaSource,
    StatusRow,
)

__all__ = ["diff_document", "echo_json", "status_document"]


def echo_json(document: dict[str, Any]) -> None:
    """Print one JSON document on stdout."""
    click.echo(json.dumps(document, indent=2, ensure_ascii=False))


def status_document(
    status: ProjectStatus, fleet: tuple[str, DriftReport] | None = None
) -> dict[str, Any]:
    """`d1check status --json`: the resolved target names, every database, and the fleet."""
    document: dict[str, Any] = {
        "targets": [_resolved(name) for name in status.resolved],
        "databases": [_row(row) for row in status.rows],
    }
    if fleet is not None:
        document["fleet"] = _fleet(*fleet)
    return document


def _resolved(name: ResolvedName) -> dict[str, Any]:
    return {
        "name": name.name,
        "databases": list(name.targets),
        "skipped": list(name.skipped),
        "problem": name.problem or None,
    }


def _row(row: StatusRow) -> dict[str, Any]:
    read = row.applied not in (UNKNOWN, NO_DATABASE)
    return {
        "family": row.family,
        "environment": row.environment,
        "target": row.target,
        "database": row.database,
        "exists": _exists(row, read),
        "read": read,
        "applied": row.applied if read and row.applied != EMPTY else None,
        "pending": row.pending,
        "drift": row.drift,
        "last_applied": None if row.last_applied == UNKNOWN else row.last_applied,
        "detail": row.detail or None,
    }


def _exists(row: StatusRow, read: bool) -> bool | None:
    """False for a local database without its file, True once read, None when not known."""
    if row.applied == NO_DATABASE:
        return False
    return True if read else None


def _fleet(target: str, report: DriftReport) -> dict[str, Any]:
    return {
        "target": target,
        "groups": [
            {
                "count": group.count,
                "applied": group.version,
                "fingerprint": group.fingerprint,
                "databases": list(group.targets),
                "differences": list(group.differences),
            }
            for group in report.groups
        ],
        "errors": dict(report.errors),
    }


def diff_document(
    first: SchemaSource, second: SchemaSource, diffs: Sequence[Difference]
) -> dict[str, Any]:
    """`d1check diff --json`: both sides, whether they are equal, and each difference."""
    return {
        "from": first.label,
        "to": second.label,
        "equal": not diffs,
        "differences": [_difference(d) for d in diffs],
    }


def _difference(diff: Difference) -> dict[str, Any]:
    return {
        "kind": diff.kind,
        "name": diff.name,
        "property": diff.property or None,
        "change": _change(diff),
        "before": _plain(diff.before),
        "after": _plain(diff.after),
        "text": str(diff),
    }


def _change(diff: Difference) -> str:
    if diff.before is None:
        return "added"
    if diff.after is None:
        return "removed"
    return "changed"


def _plain(value: object) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return str(value)
