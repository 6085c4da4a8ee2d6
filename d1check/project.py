"""Project-level checks of a migrations directory: the sequence of names, the checksums file."""

from __future__ import annotations

import base64
import hashlib
import itertools
import re
from dataclasses import dataclass
from pathlib import Path

from d1check.checks import CheckResult, failed, passed, skipped
from d1check.discovery import SUM_FILE, MigrationSet

_GOOD_NAME = re.compile(r"^(?P<number>[0-9]+)_[A-Za-z0-9][A-Za-z0-9_\-]*\.sql$")


def check_sequence(migrations: MigrationSet) -> CheckResult:
    """Gaps, duplicate versions, mixed widths, bad names, and rollbacks without a migration."""
    problems = _bad_names(migrations) + _numbering(migrations) + _orphans(migrations)
    if problems:
        return failed("sequence", f"{migrations.migrations_dir}:\n" + "\n".join(problems))
    count = len(migrations.migrations)
    return passed("sequence", f"{count} migrations in order")


def _bad_names(migrations: MigrationSet) -> list[str]:
    return [
        f"  {m.file_name}: not named NNNN_descriptive_name.sql (wrangler orders files by the "
        "number before the first `_`; files without one are applied last)\n"
        "    fix: rename it with the next free number, e.g. "
        f"{_next_number(migrations)}_{_slug(m.name)}.sql"
        for m in migrations.migrations
        if not _GOOD_NAME.match(_named_part(m.file_name))
    ]


def _named_part(file_name: str) -> str:
    """What carries the number: the file name, or a nested path's first folder (`0003_x/…`)."""
    head, nested, _ = file_name.partition("/")
    return f"{head}.sql" if nested else file_name


def _numbering(migrations: MigrationSet) -> list[str]:
    numbered = [m for m in migrations.migrations if m.number is not None and m.version]
    if not numbered:
        return []
    problems: list[str] = []
    widths = {len(m.version) for m in numbered}
    if len(widths) > 1:
        odd = [m.file_name for m in numbered if len(m.version) != max(widths)]
        problems.append(
            f"  mixed number widths ({', '.join(map(str, sorted(widths)))} digits): "
            + ", ".join(odd[:5])
            + "\n    fix: use one width (wrangler orders numerically, but people read by name)"
        )
    seen: dict[int, str] = {}
    for m in numbered:
        assert m.number is not None
        if m.number in seen:
            problems.append(
                f"  duplicate version {m.version}: {seen[m.number]} and {m.file_name} "
                "(a merge of two branches?)\n    fix: renumber the newer one to "
                f"{_next_number(migrations)}"
            )
        seen.setdefault(m.number, m.file_name)
    numbers = sorted(seen)
    for low, high in itertools.pairwise(numbers):
        if high != low + 1:
            missing = f"{low + 1}" if high == low + 2 else f"{low + 1} to {high - 1}"
            problems.append(
                f"  gap: no migration numbered {missing} (between {seen[low]} and {seen[high]})"
            )
    return problems


def _orphans(migrations: MigrationSet) -> list[str]:
    return [
        f"  {path}: a rollback without a migration of the same number\n"
        "    fix: rename it NNNN_rollback.sql after its migration, or delete it"
        for path in migrations.orphan_rollbacks
    ]


def _next_number(migrations: MigrationSet) -> str:
    numbered = [m for m in migrations.migrations if m.number is not None]
    width = max((len(m.version) for m in numbered), default=4)
    top = max((m.number or 0 for m in numbered), default=0)
    return str(top + 1).zfill(width)


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


def compute_sums(migrations: MigrationSet) -> SumFile:
    """Checksums of every migration and rollback file, in wrangler's order."""
    entries = {}
    for m in migrations.migrations:
        entries[m.file_name] = file_hash(m.path.read_bytes())
        if m.rollback is not None:
            entries[_rollback_key(migrations, m.rollback.path)] = file_hash(
                m.rollback.path.read_bytes()
            )
    return SumFile(_total(entries), entries)


def _rollback_key(migrations: MigrationSet, path: Path) -> str:
    try:
        rel = path.resolve().relative_to(migrations.migrations_dir.resolve().parent)
    except ValueError:
        return str(path)
    return rel.as_posix()


def render_sums(sums: SumFile) -> str:
    """The text of `d1check.sum`."""
    return sums.total + "\n" + "".join(f"{n} {d}\n" for n, d in sums.files.items())


def write_sums(migrations: MigrationSet) -> Path:
    """Write `d1check.sum` in the migrations directory (what `d1check hash` does)."""
    path = migrations.migrations_dir / SUM_FILE
    path.write_text(render_sums(compute_sums(migrations)), encoding="utf-8")
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
    """Applied migrations must not change: compare the files with the committed `d1check.sum`."""
    path = migrations.migrations_dir / SUM_FILE
    if not path.exists():
        return skipped("checksums", f"no {SUM_FILE} yet; run `d1check hash` to lock the migrations")
    recorded = read_sums(path)
    current = compute_sums(migrations)
    problems = [
        f"  {name}: changed since `d1check hash` (an applied migration must not be edited; "
        "write a new migration instead)"
        for name, digest in recorded.files.items()
        if name in current.files and current.files[name] != digest
    ]
    problems += [
        f"  {name}: listed in {SUM_FILE} but missing"
        for name in recorded.files
        if name not in current.files
    ]
    problems += [
        f"  {name}: new, not in {SUM_FILE} yet (run `d1check hash` and commit it)"
        for name in current.files
        if name not in recorded.files
    ]
    if not problems and recorded.total != _total(recorded.files):
        problems.append(f"  {SUM_FILE} was edited by hand or merged: its total hash does not match")
    if problems:
        return failed("checksums", f"{path}:\n" + "\n".join(problems))
    return passed("checksums")
