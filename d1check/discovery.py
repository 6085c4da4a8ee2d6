"""Migration and rollback files: reading them (UTF-8), wrangler's order, `d1check:` directives."""

from __future__ import annotations

import fnmatch
import functools
import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from d1check.errors import MigrationFileError
from d1check.statements import Statement, split_statements, tokenize

__all__ = [
    "DIRECTIVE_KINDS",
    "SUM_FILE",
    "Directive",
    "DirectiveProblem",
    "Migration",
    "MigrationSet",
    "SqlFile",
    "check_inside",
    "discover",
    "is_migration_entry",
    "migration_paths",
    "parse_directives",
    "read_directives",
    "read_shipped",
    "read_sql_file",
    "repository_root",
    "wrangler_order_key",
]

DIRECTIVE_KINDS = ("allow-destructive", "not-idempotent", "irreversible")
_DIRECTIVE = re.compile(r"^d1check\s*:\s*(?P<kind>\S*)\s*(?P<reason>.*?)\s*$")
_LEADING_NUMBER = re.compile(r"^[0-9]+")
_BOM = "\ufeff"
SUM_FILE = "d1check.sum"
"""The committed record of shipped migrations (and their checksums), in the migrations directory."""


@dataclass(frozen=True)
class Directive:
    """A `-- d1check: <kind> <reason>` comment in a migration."""

    kind: str
    reason: str
    line: int


@dataclass(frozen=True)
class DirectiveProblem:
    """A `d1check:` comment that is not a valid directive (no reason, unknown kind): the
    directive is ignored and the migration's `d1` check fails on it."""

    path: Path
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


@dataclass(frozen=True)
class SqlFile:
    """A SQL file as read: its text (UTF-8, BOM removed), sha256 of the raw bytes, and its
    statements (split on first use: a rerun whose results are cached never needs them)."""

    path: Path
    text: str
    sha256: str

    @functools.cached_property
    def statements(self) -> tuple[Statement, ...]:
        """The file's statements, cut exactly where SQLite cuts them."""
        return tuple(split_statements(self.text))


@dataclass(frozen=True)
class Migration:
    """One migration file, its rollback (if any) and its directives."""

    file: SqlFile
    name: str
    version: str
    number: int | None
    rollback: SqlFile | None
    directives: tuple[Directive, ...]
    shipped: bool = False
    """Recorded as shipped by `d1check baseline` (listed in `d1check.sum`): applied somewhere
    already, so held to facts (it builds a database, D1 accepts it, it is unchanged), not policy."""
    relative_name: str = ""
    """With a `migrations_pattern`, the path relative to the migrations directory as wrangler
    records it (`0000_init/migration.sql`); empty for a file directly in the directory."""
    directive_problems: tuple[DirectiveProblem, ...] = ()
    """`d1check:` comments that are not valid directives: ignored, reported by the `d1` check."""

    @property
    def path(self) -> Path:
        """The migration file's path."""
        return self.file.path

    @property
    def file_name(self) -> str:
        """What wrangler records: the file name with `.sql` (`0003_add_review_fields.sql`), or
        with a `migrations_pattern` the path under the directory (`0000_init/migration.sql`)."""
        return self.relative_name or self.file.path.name

    def directive(self, kind: str) -> Directive | None:
        """The first directive of `kind`, or None."""
        return next((d for d in self.directives if d.kind == kind), None)


@dataclass(frozen=True)
class MigrationSet:
    """The migrations of one directory in wrangler's order, with their rollbacks."""

    migrations_dir: Path
    rollbacks_dir: Path
    migrations: tuple[Migration, ...]
    orphan_rollbacks: tuple[Path, ...]

    def find(self, version_or_name: str) -> Migration:
        """The migration named by its version ("0003"), its number ("3") or its name (with or
        without `.sql`); MigrationFileError when none or several match."""
        key = version_or_name.removesuffix(".sql")
        if key.isdigit():
            found = [m for m in self.migrations if m.number == int(key)]
        else:
            found = [m for m in self.migrations if m.name == key]
        if len(found) == 1:
            return found[0]
        known = ", ".join(m.name for m in self.migrations) or "none"
        problem = "several migrations match" if found else "no migration matches"
        raise MigrationFileError(
            self.migrations_dir,
            f"{problem} {version_or_name!r}; migrations: {known}. "
            "Name one by its full name, e.g. 0003_add_review_fields.",
        )


def read_sql_file(path: Path) -> SqlFile:
    """Read a SQL file as UTF-8 (a leading BOM is removed) and split it into statements."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise MigrationFileError(path, f"cannot read the file: {exc.strerror}") from exc
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise MigrationFileError(
            path,
            f"not valid UTF-8: byte offset {exc.start} (0x{data[exc.start]:02x}) cannot be "
            "decoded. D1 reads migrations as UTF-8: save the file as UTF-8.",
            line=line,
        ) from exc
    return SqlFile(path, text.removeprefix(_BOM), hashlib.sha256(data).hexdigest())


def _leading_number(name: str) -> str:
    """The digits that start `name` before its first `_` ("" when there are none)."""
    match = _LEADING_NUMBER.match(name.split("_", 1)[0])
    return match.group(0) if match else ""


def wrangler_order_key(file_name: str) -> tuple[int, int, str]:
    """Sort key of wrangler's order: the number before the first `_` numerically, ties by name,
    files without a leading number last."""
    digits = _leading_number(file_name)
    if not digits:
        return (1, 0, file_name)
    return (0, int(digits), file_name)


def parse_directives(file: SqlFile) -> tuple[Directive, ...]:
    """The `d1check:` directives in the comments of `file`; MigrationFileError for a bad one."""
    directives, problems = read_directives(file)
    if problems:
        raise MigrationFileError(file.path, problems[0].message, line=problems[0].line)
    return directives


def read_directives(file: SqlFile) -> tuple[tuple[Directive, ...], tuple[DirectiveProblem, ...]]:
    """The valid `d1check:` directives in the comments of `file`, and the invalid ones."""
    found: list[Directive] = []
    problems: list[DirectiveProblem] = []
    if "d1check" not in file.text:
        return (), ()
    for token in tokenize(file.text):
        if token.kind != "comment":
            continue
        first_line = file.text.count("\n", 0, token.offset) + 1
        for i, body in enumerate(_comment_lines(token.text)):
            parsed = _parse_directive(body, file.path, first_line + i)
            if isinstance(parsed, Directive):
                found.append(parsed)
            elif parsed is not None:
                problems.append(parsed)
    return tuple(found), tuple(problems)


def _comment_lines(comment: str) -> list[str]:
    if comment.startswith("--"):
        return [comment[2:]]
    body = comment[2:].removesuffix("*/")
    return [line.strip().lstrip("*") for line in body.split("\n")]


def _parse_directive(body: str, path: Path, line: int) -> Directive | DirectiveProblem | None:
    match = _DIRECTIVE.match(body.strip())
    if match is None:
        return None
    kind, reason = match.group("kind"), match.group("reason")
    known = ", ".join(DIRECTIVE_KINDS)
    usage = "write `-- d1check: <directive> <reason>`"
    if kind not in DIRECTIVE_KINDS:
        return DirectiveProblem(
            path,
            line,
            f"unknown directive `d1check: {kind}` (ignored); known directives: {known}\n"
            f"  fix: {usage}",
        )
    if not reason:
        return DirectiveProblem(
            path,
            line,
            f"directive `d1check: {kind}` needs a reason (ignored until it has one)\n"
            f"  fix: {usage}, e.g. `-- d1check: {kind} <why>` (known: {known})",
        )
    return Directive(kind, reason, line)


def _sql_files(directory: Path) -> list[Path]:
    if not directory.is_dir():
        return []
    files = [p for p in directory.iterdir() if p.suffix == ".sql" and p.is_file()]
    return sorted(files, key=lambda p: wrangler_order_key(p.name))


def _segment_matches(name: str, pattern: str) -> bool:
    """One path segment against one glob segment; `*` and `?` do not match a leading dot."""
    if name.startswith(".") and not pattern.startswith("."):
        return False
    return fnmatch.fnmatchcase(name, pattern)


def _path_matches(parts: Sequence[str], patterns: Sequence[str]) -> bool:
    if not patterns:
        return not parts
    head, rest = patterns[0], patterns[1:]
    if head == "**":
        return _path_matches(parts, rest) or (
            bool(parts) and not parts[0].startswith(".") and _path_matches(parts[1:], patterns)
        )
    return bool(parts) and _segment_matches(parts[0], head) and _path_matches(parts[1:], rest)


def pattern_order_key(relative: str) -> tuple[tuple[int, int, str], ...]:
    """wrangler's order of nested migration paths: segment by segment (each by its number, then
    by name), a path before the longer paths it starts."""
    return tuple(wrangler_order_key(segment) for segment in relative.split("/"))


def migration_paths(migrations_dir: Path, pattern: str | None = None) -> list[tuple[Path, str]]:
    """The migration files of `migrations_dir` in wrangler's order, each with the name wrangler
    records: `*.sql` in the directory itself; with `pattern` (wrangler's `migrations_pattern`
    relative to the directory, e.g. `*/migration.sql`), every file whose path matches it."""
    if pattern is None:
        return [(p, p.name) for p in _sql_files(migrations_dir)]
    if not migrations_dir.is_dir():
        return []
    globs = pattern.split("/")
    found = [
        (path, rel)
        for path in migrations_dir.rglob("*")
        if path.is_file()
        and _path_matches((rel := path.relative_to(migrations_dir).as_posix()).split("/"), globs)
    ]
    return sorted(found, key=lambda item: pattern_order_key(item[1]))


def _rollbacks_by_number(rollbacks_dir: Path) -> tuple[dict[int, Path], list[Path]]:
    by_number: dict[int, Path] = {}
    unnumbered: list[Path] = []
    for path in _sql_files(rollbacks_dir):
        digits = _leading_number(path.name)
        if not digits:
            unnumbered.append(path)
            continue
        number = int(digits)
        if number in by_number:
            raise MigrationFileError(
                path,
                f"two rollbacks for migration number {number}: {by_number[number].name} and "
                f"{path.name}; keep one rollback per migration (NNNN_rollback.sql)",
            )
        by_number[number] = path
    return by_number, unnumbered


def _migration(
    path: Path, rollbacks: dict[int, Path], shipped: frozenset[str], relative: str
) -> Migration:
    file = read_sql_file(path)
    digits = _leading_number(relative.split("/", 1)[0])
    number = int(digits) if digits else None
    rollback_path = rollbacks.get(number) if number is not None else None
    rollback = read_sql_file(rollback_path) if rollback_path is not None else None
    directives, problems = read_directives(file)
    nested = relative if "/" in relative else ""
    name = relative.removesuffix(".sql") if nested else path.stem
    return Migration(
        file, name, digits, number, rollback, directives, relative in shipped, nested, problems
    )


def read_shipped(migrations_dir: Path) -> frozenset[str]:
    """The migration file names `d1check.sum` records as shipped (none without the file)."""
    try:
        text = (migrations_dir / SUM_FILE).read_text(encoding="utf-8")
    except OSError:
        return frozenset()
    lines = [line for line in text.splitlines() if line.strip()][1:]
    names = (line.rpartition(" ")[0] for line in lines)
    return frozenset(name for name in names if is_migration_entry(name))


def is_migration_entry(name: str) -> bool:
    """Whether a name in `d1check.sum` is a migration's (`0003_x.sql`, or a nested
    `0003_x/migration.sql`); files written before baselines also listed rollbacks, by their
    path from the migrations directory's parent (`rollbacks/0003_rollback.sql`)."""
    return bool(name) and ("/" not in name or name[:1].isdigit())


def _orphans(
    rollbacks: dict[int, Path], unnumbered: Iterable[Path], migrations: Iterable[Migration]
) -> tuple[Path, ...]:
    numbers = {m.number for m in migrations}
    orphans = [p for n, p in rollbacks.items() if n not in numbers] + list(unnumbered)
    return tuple(sorted(orphans, key=lambda p: wrangler_order_key(p.name)))


def discover(migrations_dir: Path, rollbacks_dir: Path, pattern: str | None = None) -> MigrationSet:
    """The `*.sql` migrations of `migrations_dir` in wrangler's order, each with the rollback of
    `rollbacks_dir` that has its number (`0003_rollback.sql` belongs to migration number 3).

    With `pattern` (wrangler's `migrations_pattern`, relative to the directory), the files whose
    paths match it; their number is that of the first path segment (`0003_x/migration.sql`).
    A missing migrations directory gives a set with no migrations.
    """
    rollbacks, unnumbered = _rollbacks_by_number(rollbacks_dir)
    shipped = read_shipped(migrations_dir)
    migrations = tuple(
        _migration(path, rollbacks, shipped, relative)
        for path, relative in migration_paths(migrations_dir, pattern)
    )
    orphans = _orphans(rollbacks, unnumbered, migrations)
    return MigrationSet(migrations_dir, rollbacks_dir, migrations, orphans)


def repository_root(start: Path) -> Path:
    """The git work tree holding `start` (the folder with `.git`), else `start` itself."""
    here = start.resolve()
    return next((p for p in (here, *here.parents) if (p / ".git").exists()), here)


def check_inside(migrations: MigrationSet, root: Path) -> None:
    """MigrationFileError for a migration or rollback that a symbolic link takes outside
    `root` (the repository): d1check checks, and the gate applies, only the repository's
    files."""
    inside = root.resolve()
    files = [m.file for m in migrations.migrations]
    files += [m.rollback for m in migrations.migrations if m.rollback is not None]
    for file in files:
        target = file.path.resolve()
        if target != inside and inside not in target.parents:
            raise MigrationFileError(
                file.path,
                f"a symbolic link to {target}, outside the repository ({inside}); d1check checks "
                "and applies only the repository's own files: copy the file into the repository",
            )
