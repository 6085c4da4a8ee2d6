"""Project-level checks of a migrations directory: the sequence of names, the checksums file."""

from __future__ import annotations

import base64
import hashlib
import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from d1check.checks import CheckResult, failed, noted, passed, skipped
from d1check.discovery import SUM_FILE, Migration, MigrationSet, is_migration_entry

_GOOD_NAME = re.compile(r"^(?P<number>[0-9]+)_[A-Za-z0-9][A-Za-z0-9_\-]*\.sql$")


STAMP_DIGITS = 8
"""Numbers of this many digits or more are dates or time stamps (`20251215`, `20251215050001`):
no gaps are looked for between them, nor between such a number and a short one."""


def check_sequence(migrations: MigrationSet) -> CheckResult:
    """Names, numbers and rollbacks of the history: what a new migration must respect, and never
    a rename of a shipped one (wrangler tracks migrations by name and would apply it again).

    New migrations fail on a bad name, a number another migration has, a gap before them or a
    number width unlike the history's; duplicates, gaps and widths within shipped history are
    accepted and reported once, as information.
    """
    problems = _bad_names(migrations) + _new_duplicates(migrations) + _new_gaps(migrations)
    problems += _new_widths(migrations) + _orphans(migrations)
    if problems:
        return failed("sequence", f"{migrations.migrations_dir}:\n" + "\n".join(problems))
    notes = _shipped_duplicates(migrations)
    if notes:
        return noted("sequence", "\n".join(notes))
    return passed("sequence", f"{len(migrations.migrations)} migrations in order")


def _bad_names(migrations: MigrationSet) -> list[str]:
    return [
        f"  {m.file_name}: not named NNNN_descriptive_name.sql (wrangler orders files by the "
        "number before the first `_`; files without one are applied last)\n"
        "    fix: rename it (it is new, not applied anywhere yet) with the next free number, "
        f"e.g. {_next_number(migrations)}_{_slug(m.name)}.sql"
        for m in migrations.migrations
        if not m.shipped and not _GOOD_NAME.match(_named_part(m.file_name))
    ]


def _named_part(file_name: str) -> str:
    """What carries the number: the file name, or a nested path's first folder (`0003_x/…`)."""
    head, nested, _ = file_name.partition("/")
    return f"{head}.sql" if nested else file_name


def _numbered(migrations: MigrationSet) -> list[Migration]:
    return [m for m in migrations.migrations if m.number is not None and m.version]


def _duplicate_groups(migrations: MigrationSet) -> list[list[Migration]]:
    groups: dict[int, list[Migration]] = {}
    for m in _numbered(migrations):
        assert m.number is not None
        groups.setdefault(m.number, []).append(m)
    return [group for group in groups.values() if len(group) > 1]


def _new_duplicates(migrations: MigrationSet) -> list[str]:
    problems = []
    free = _free_numbers(migrations)
    for group in _duplicate_groups(migrations):
        first = next((m for m in group if m.shipped), group[0])
        for m in group:
            if m is first or m.shipped:
                continue
            problems.append(
                f"  {m.file_name}: version {m.version} is taken by {first.file_name} (a merge of "
                f"two branches?)\n    fix: {m.file_name} is new: rename it to "
                f"{next(free)}_{_slug(m.name)}.sql before it is applied anywhere"
            )
    return problems


def _shipped_duplicates(migrations: MigrationSet) -> list[str]:
    notes = []
    for group in _duplicate_groups(migrations):
        shipped = [m.file_name for m in group if m.shipped]
        if len(shipped) > 1:
            notes.append(
                f"shipped migrations share version {group[0].version}: {', '.join(shipped)} — "
                "fine: wrangler applies them in name order and records each by name (never "
                "rename a shipped migration: wrangler would apply it again)"
            )
    return notes


def _new_gaps(migrations: MigrationSet) -> list[str]:
    numbered = sorted(_numbered(migrations), key=lambda m: (m.number or 0, m.file_name))
    problems = []
    for low, high in itertools.pairwise(numbered):
        assert low.number is not None and high.number is not None
        if high.shipped or high.number <= low.number + 1 or _stamp(low) or _stamp(high):
            continue
        missing = (
            f"{low.number + 1}"
            if high.number == low.number + 2
            else (f"{low.number + 1} to {high.number - 1}")
        )
        problems.append(
            f"  gap: no migration numbered {missing} (between {low.file_name} and "
            f"{high.file_name})\n    fix: {high.file_name} is new: number it "
            f"{str(low.number + 1).zfill(len(high.version))}"
        )
    return problems


def _stamp(migration: Migration) -> bool:
    return len(migration.version) >= STAMP_DIGITS


def _new_widths(migrations: MigrationSet) -> list[str]:
    short = [m for m in _numbered(migrations) if not _stamp(m)]
    widths = {len(m.version) for m in short}
    if len(widths) < 2:
        return []
    usual = max(widths, key=lambda w: sum(len(m.version) == w for m in short))
    odd = [m.file_name for m in short if not m.shipped and len(m.version) != usual]
    if not odd:
        return []
    return [
        f"  {', '.join(odd[:5])}: numbered with a width unlike the history's {usual} digits\n"
        "    fix: these are new: use the same width (wrangler orders numerically, but people "
        "read by name)"
    ]


def _orphans(migrations: MigrationSet) -> list[str]:
    return [
        f"  {path}: a rollback without a migration of the same number\n"
        "    fix: rename it NNNN_rollback.sql after its migration, or delete it"
        for path in migrations.orphan_rollbacks
    ]


def _free_numbers(migrations: MigrationSet) -> Iterator[str]:
    """The numbers after the highest one, in the history's usual width."""
    numbered = [m for m in _numbered(migrations) if not _stamp(m)] or _numbered(migrations)
    width = max((len(m.version) for m in numbered), default=4)
    top = max((m.number or 0 for m in numbered), default=0)
    return (str(n).zfill(width) for n in itertools.count(top + 1))


def _next_number(migrations: MigrationSet) -> str:
    return next(_free_numbers(migrations))


def _slug(name: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9]+", "_", name.split("_", 1)[-1]).strip("_").lower()
    return slug or "migration"


# --- checksums -----------------------------------------------------------------------------


@dataclass(frozen=True)
class SumFile:
    """The committed checksums: a total hash over all lines, then one hash per file."""

    total: str
    files: dict[str, str]


def file_hash(data: bytes) -> str:
    """`h1:` + base64 sha256 of a file's bytes."""
    return "h1:" + base64.b64encode(hashlib.sha256(data).digest()).decode()


def _total(entries: dict[str, str]) -> str:
    body = "".join(f"{name} {digest}\n" for name, digest in entries.items())
    return file_hash(body.encode())


def compute_sums(migrations: MigrationSet, upto: str | None = None) -> SumFile:
    """Checksums of the migration files up to `upto` (a version or name; default: every one), in
    wrangler's order: the record of what is shipped."""
    chosen = list(migrations.migrations)
    if upto is not None:
        last = migrations.find(upto)
        chosen = chosen[: chosen.index(last) + 1]
    entries = {m.file_name: file_hash(m.path.read_bytes()) for m in chosen}
    return SumFile(_total(entries), entries)


def render_sums(sums: SumFile) -> str:
    """The text of `d1check.sum`."""
    return sums.total + "\n" + "".join(f"{n} {d}\n" for n, d in sums.files.items())


def write_sums(migrations: MigrationSet, upto: str | None = None) -> Path:
    """Record the migrations up to `upto` (default: every one) as shipped, with their checksums,
    in `d1check.sum` in the migrations directory (what `d1check baseline` does)."""
    path = migrations.migrations_dir / SUM_FILE
    path.write_text(render_sums(compute_sums(migrations, upto)), encoding="utf-8")
    return path


def read_sums(path: Path) -> SumFile:
    """Parse a `d1check.sum` file."""
    lines = [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
    total = lines[0].strip() if lines else ""
    files = {}
    for line in lines[1:]:
        name, _, digest = line.rpartition(" ")
        files[name] = digest
    return SumFile(total, files)


def check_checksums(migrations: MigrationSet) -> CheckResult:
    """Shipped migrations must not change: compare the files with the committed `d1check.sum`
    (rollback lines of older files are ignored: a rollback may be mended at any time)."""
    path = migrations.migrations_dir / SUM_FILE
    if not path.exists():
        return skipped(
            "checksums",
            f"no {SUM_FILE} yet: every migration is new; once migrations are applied in "
            "production, run `d1check baseline` and commit the file",
        )
    recorded = read_sums(path)
    shipped = {name: digest for name, digest in recorded.files.items() if is_migration_entry(name)}
    present = {m.file_name: m for m in migrations.migrations}
    problems = [
        f"  {name}: changed since `d1check baseline` recorded it as shipped (an applied "
        "migration must not be edited: wrangler will not apply it again; restore it with "
        f"`git checkout -- {present[name].path}` and write a new migration)"
        for name, digest in shipped.items()
        if name in present and file_hash(present[name].path.read_bytes()) != digest
    ]
    problems += [
        f"  {name}: recorded as shipped in {SUM_FILE} but missing (restore it: databases that "
        "applied it still list it)"
        for name in shipped
        if name not in present
    ]
    if not problems and recorded.total != _total(recorded.files):
        problems.append(
            f"  {SUM_FILE} was edited by hand or merged: its total hash does not match\n"
            "    fix: run `d1check baseline VERSION` with the last shipped migration"
        )
    if problems:
        return failed("checksums", f"{path}:\n" + "\n".join(problems))
    new = len(present) - len(shipped.keys() & present.keys())
    return passed("checksums", f"{len(shipped)} shipped migrations unchanged; {new} new")
