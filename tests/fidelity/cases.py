"""The fidelity corpus: migration directories, single statements and generated limit cases."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

CORPUS = Path(__file__).parent / "corpus"
STATEMENTS = CORPUS / "statements"

_CLASSES: tuple[tuple[str, str], ...] = (
    ("several_transactions", r"contains several transactions"),
    ("transaction", r"state\.storage\.transaction|cannot (start|commit) a transaction|\bBEGIN\b"),
    ("auth", r"not authorized"),
    ("too_long", r"statement too long|SQLITE_TOOBIG|string or blob too big"),
    ("too_many_columns", r"too many columns"),
    ("expr_depth", r"Expression tree is too large"),
    ("compound_select", r"too many terms in compound SELECT"),
    ("like_pattern", r"LIKE or GLOB pattern too complex"),
    ("too_many_args", r"too many arguments on function"),
    ("trigger_depth", r"too many levels of trigger recursion|triggers nested too deep"),
    ("constraint_fk", r"FOREIGN KEY constraint failed|foreign key mismatch"),
    ("not_null", r"NOT NULL"),
    ("datatype", r"cannot store .* value in .* column"),
    ("add_column", r"Cannot add a"),
    ("constraint", r"constraint failed"),
    ("vacuum", r"cannot VACUUM"),
    ("no_such_function", r"no such function"),
    ("no_such_module", r"no such module"),
    ("no_such_table", r"no such table"),
    ("drop_column", r"after drop column|cannot drop"),
    ("internal", r"internal error"),
    ("syntax", r"syntax error|incomplete input|unrecognized token"),
    ("pragma", r"PRAGMA|pragma"),
)


def classify(message: str) -> str:
    """The class of an error message; the same rules for workerd's and d1check's words."""
    for name, pattern in _CLASSES:
        if re.search(pattern, message):
            return name
    return "other"


@dataclass(frozen=True)
class Verdict:
    """Applied, or failed at a migration with a class of error."""

    migration: str | None = None
    error: str = ""

    def __str__(self) -> str:
        return "applied" if self.migration is None else f"failed at {self.migration}: {self.error}"


APPLIED = Verdict()


@dataclass(frozen=True)
class Case:
    """One differential case: a directory of migrations (for a statement: one file)."""

    name: str
    migrations: Path
    expect: Verdict
    difference: str = ""
    d1check: Verdict | None = None
    statement: bool = False

    def expected_for_d1check(self) -> Verdict:
        """What d1check must answer: workerd's verdict unless a documented difference says else."""
        return self.d1check if self.d1check is not None else self.expect


def _verdict(table: dict[str, object]) -> Verdict:
    if table.get("expect", "applied") == "applied":
        return APPLIED
    return Verdict(str(table["migration"]), str(table["error"]))


def read_case(directory: Path) -> Case:
    """A corpus directory: `case.toml` plus `migrations/`."""
    meta = tomllib.loads((directory / "case.toml").read_text())
    own = meta.get("d1check")
    return Case(
        name=directory.name,
        migrations=directory / "migrations",
        expect=_verdict(meta),
        difference=str(meta.get("difference", "")),
        d1check=_verdict(own) if isinstance(own, dict) else None,
    )


_HEADER = re.compile(r"--\s*(expect|difference|d1check):\s*(\S+)")


def read_statement(path: Path) -> Case:
    """A single-statement file headed `-- expect: <class>|applied` (`-- difference:`/`d1check:`)."""
    header = dict(_HEADER.findall(path.read_text(encoding="utf-8")[:400]))
    expect = header.get("expect", "applied")
    own = header.get("d1check")
    return Case(
        name=path.stem,
        migrations=path,
        expect=APPLIED if expect == "applied" else Verdict(path.name, expect),
        difference=header.get("difference", ""),
        d1check=None if own is None else (APPLIED if own == "applied" else Verdict(path.name, own)),
        statement=True,
    )


def directory_cases() -> list[Case]:
    """Every migration-directory case of the corpus, by name."""
    return [read_case(d) for d in sorted(CORPUS.iterdir()) if (d / "case.toml").is_file()]


def statement_cases(generated: Path) -> list[Case]:
    """Every single-statement case: the corpus files and the generated limit cases."""
    return [*map(read_statement, sorted(STATEMENTS.glob("*.sql"))), *limit_cases(generated)]


def _padded(size: int) -> str:
    head, tail = "SELECT '", "';"
    return head + "x" * (size - len(head) - len(tail)) + tail


def _table(n: int) -> str:
    return f"CREATE TABLE wide_{n} (" + ", ".join(f"c{i} INTEGER" for i in range(n)) + ");"


def _like(n: int) -> str:
    return f"SELECT 'a' LIKE '{'%' * n}';"


def _depth(n: int) -> str:
    return "SELECT " + " + ".join(["1"] * n) + ";"


def _compound(n: int) -> str:
    return " UNION ALL ".join(f"SELECT {i}" for i in range(n)) + ";"


def _args(n: int) -> str:
    return "SELECT max(" + ", ".join(str(i) for i in range(n)) + ");"


def _result_columns(n: int) -> str:
    return "SELECT " + ", ".join(str(i) for i in range(n)) + ";"


_ARGS_DIFFERENCE = ("function-arguments", "too_many_args")
_LIMITS: dict[str, tuple[str, str, tuple[str, str] | None]] = {
    "limit_columns_100": ("applied", _table(100), None),
    "limit_columns_101": ("too_many_columns", _table(101), None),
    "limit_result_columns_100": ("applied", _result_columns(100), None),
    "limit_result_columns_101": ("too_many_columns", _result_columns(101), None),
    "limit_like_50": ("applied", _like(50), None),
    "limit_like_51": ("like_pattern", _like(51), None),
    "limit_depth_100": ("applied", _depth(100), None),
    "limit_depth_101": ("expr_depth", _depth(101), None),
    "limit_compound_5": ("applied", _compound(5), None),
    "limit_compound_6": ("compound_select", _compound(6), None),
    "limit_args_32": ("applied", _args(32), None),
    "limit_args_33": ("applied", _args(33), _ARGS_DIFFERENCE),
    "limit_args_127": ("applied", _args(127), _ARGS_DIFFERENCE),
    "limit_args_128": ("too_many_args", _args(128), None),
}


# The statement limit counts what `migrations apply` sends: the text after the previous `;`
# (comments included, leading whitespace trimmed), without the statement's own `;`.
_LENGTHS: dict[str, tuple[str, str]] = {
    "limit_sent_100000": ("applied", _padded(100_001) + "\n"),
    "limit_sent_100001": ("too_long", _padded(100_002) + "\n"),
    "limit_sent_comment_100000": ("applied", "-- load\n" + _padded(99_993) + "\n"),
    "limit_sent_comment_100001": ("too_long", "-- load\n" + _padded(99_994) + "\n"),
    "limit_sent_second_crlf_100001": (
        "too_long",
        "CREATE TABLE t (a);\r\n-- load\r\n" + _padded(99_993) + "\r\n",
    ),
}


def length_cases(directory: Path) -> list[Case]:
    """The statement-length edge cases as migration directories (one file each) under
    `directory`: the limit depends on what surrounds the statement in its file."""
    cases = []
    for name, (expect, text) in _LENGTHS.items():
        migrations = directory / name / "migrations"
        migrations.mkdir(parents=True, exist_ok=True)
        path = migrations / f"0001_{name}.sql"
        path.write_bytes(text.encode("utf-8"))
        verdict = APPLIED if expect == "applied" else Verdict(path.name, expect)
        cases.append(Case(name=name, migrations=migrations, expect=verdict))
    return cases


def limit_cases(directory: Path) -> list[Case]:
    """The generated edge / one-past-the-edge cases, written under `directory` (no header:
    a comment would count towards the statement's length)."""
    directory.mkdir(parents=True, exist_ok=True)
    cases = []
    for name, (expect, sql, difference) in _LIMITS.items():
        path = directory / f"{name}.sql"
        path.write_text(sql)
        cases.append(
            Case(
                name=name,
                migrations=path,
                expect=APPLIED if expect == "applied" else Verdict(path.name, expect),
                difference=difference[0] if difference else "",
                d1check=Verdict(path.name, difference[1]) if difference else None,
                statement=True,
            )
        )
    return cases
