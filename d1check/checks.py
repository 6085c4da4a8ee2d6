"""The per-migration checks: each a function over a migration applied to the state before it."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import apsw

from d1check.discovery import Migration, SqlFile
from d1check.engine import D1Database
from d1check.errors import SQLError
from d1check.rows import (
    SEED_FIX,
    Coverage,
    TableRows,
    count_rows,
    quote_ident,
    rows_over,
    table_rows,
)
from d1check.schema import (
    Catalog,
    Difference,
    Schema,
    changed_names,
    diff_schemas,
    format_diff,
    read_schema,
    read_schema_and_catalog,
    same_catalog,
)
from d1check.sqlfacts import (
    TRANSACTION_WORDS,
    Effect,
    created,
    drops_if_exists,
    effects,
    guards_conflicts,
    touched_tables,
    words,
)
from d1check.statements import (
    Statement,
    Token,
    first_keywords,
    has_unterminated_comment,
    tokenize,
)
from d1check.tracking import TrackingStyle, records_itself

CHECK_NAMES = ("applies", "rows", "rollback", "idempotent", "d1", "destructive")
D1_FILE_WARNING_BYTES = 100_000
_IRREVERSIBLE_HINT = "write {path}, or declare `-- d1check: irreversible <reason>` in the migration"
SHIPPED_REASON = (
    "shipped (recorded in d1check.sum by `d1check baseline`): asked of new migrations only"
)
BASELINE_HINT = (
    "\nexisting history? `d1check baseline` records the migrations already applied as shipped "
    "(migrations/d1check.sum): they are then checked for facts only, and new ones for the policy"
)


def _baseline_hint(policy: Policy) -> str:
    return BASELINE_HINT if policy.suggest_baseline else ""


@dataclass(frozen=True)
class Policy:
    """What the checks require; from `[tool.d1check]`."""

    require_rollbacks: bool = True
    check_idempotency: bool = True
    allow_destructive: bool = False
    tracking_table: str = "d1_migrations"
    suggest_baseline: bool = False
    """An existing history without a baseline: policy failures say how to adopt d1check."""


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check on one migration: passed, failed or skipped, with the reason."""

    check: str
    outcome: str
    message: str = ""
    warnings: tuple[str, ...] = ()
    note: str = ""
    """Something a passing check wants the user to know (listed in the terminal summary)."""
    coverage: Coverage | None = None  # the tables that held rows at the previous version

    @property
    def failed(self) -> bool:
        """True when the check failed."""
        return self.outcome == "failed"


def passed(check: str, message: str = "", warnings: Sequence[str] = ()) -> CheckResult:
    """A passing result."""
    return CheckResult(check, "passed", message, tuple(warnings))


def noted(check: str, note: str) -> CheckResult:
    """A passing result with a note for the summary."""
    return CheckResult(check, "passed", note, note=note)


def failed(check: str, message: str, warnings: Sequence[str] = ()) -> CheckResult:
    """A failing result whose message says what, where and the fix."""
    return CheckResult(check, "failed", message, tuple(warnings))


def skipped(check: str, reason: str) -> CheckResult:
    """A skipped result with its reason."""
    return CheckResult(check, "skipped", reason)


@dataclass
class State:
    """A database at one version, with its schema model and row fingerprints."""

    db: D1Database
    schema: Schema
    rows: dict[str, TableRows]
    catalog: Catalog | None = None  # the catalog `schema` was read from
    coverage: Coverage | None = None  # set by the pass: which tables hold rows, which stayed empty


@dataclass
class Applied:
    """A migration applied (or not) to a copy of the state before it."""

    migration: Migration
    before: State
    after: State | None
    error: SQLError | None
    policy: Policy = field(default_factory=Policy)
    changed: frozenset[str] | None = None  # tables (lower case) whose rows may differ; None: any
    previous: Previous | None = None  # kept when applied in place (else `before.db` is intact)
    empty_error: SQLError | None = None  # applying to the database built from empty failed
    empty_checked: bool = False  # whether it was applied to the database built from empty

    def previous_rows(self, table: str, columns: Sequence[str]) -> TableRows | None:
        """The previous version's rows of `table` over `columns` (None when they were not kept)."""
        if self.previous is None:
            with self.before.db.internal() as conn:
                return table_rows(conn, table, columns)
        kept = self.previous.rows.get(table.lower())
        return None if kept is None else rows_over(*kept, columns)

    def previous_tracking_count(self) -> int:
        """How many rows the tracking table held at the previous version."""
        if self.previous is not None:
            return self.previous.tracking_count
        with self.before.db.internal() as conn:
            return count_rows(conn, self.policy.tracking_table)


@dataclass(frozen=True)
class Previous:
    """What the checks read of the previous version's database beyond its `State`, kept before a
    migration runs in place: the rows of the tables the migration drops, renames or drops columns
    of (by lower-case name: their columns and rows), and the tracking table's row count."""

    rows: Mapping[str, tuple[tuple[str, ...], list[tuple[object, ...]]]]
    tracking_count: int


def keep_previous(before: State, migration: Migration, policy: Policy) -> Previous:
    """What `needs_previous_database` says the checks of `migration` read of `before.db`."""
    reshaped = {
        name.lower()
        for s in migration.file.statements
        for e in effects(s)
        if e.action in _RESHAPING
        for name in (e.table, e.detail if e.action == "rename-table" else e.table)
    }
    kept: dict[str, tuple[tuple[str, ...], list[tuple[object, ...]]]] = {}
    with before.db.internal() as conn:
        for name, rows in before.rows.items():
            if name.lower() in reshaped and rows.columns:
                select = ", ".join(quote_ident(c) for c in rows.columns)
                data = conn.execute(f"SELECT {select} FROM {quote_ident(name)}").fetchall()
                kept[name.lower()] = (rows.columns, data)
        count = 0
        if records_itself(migration.file.statements, policy.tracking_table):
            count = count_rows(conn, policy.tracking_table)
    return Previous(kept, count)


_RESHAPING = frozenset({"drop-table", "drop-column", "rename-table", "rename-column"})


def state_of(
    db: D1Database,
    ignore: Sequence[str] = (),
    *,
    previous: State | None = None,
    changed: frozenset[str] | None = None,
    same_schema: bool = False,
) -> State:
    """Read the schema model and row fingerprints of `db`.

    With `previous` (a state `db` was derived from) and `changed` (lower-case names of the tables
    whose rows may have changed since), the fingerprints of the other tables whose structure is
    the same are carried forward instead of read again; `same_schema` says the catalog has not
    changed since `previous` (its model is reused).
    """
    if same_schema and previous is not None:
        schema, catalog = previous.schema, previous.catalog
    else:
        base = None
        if previous is not None and previous.catalog is not None:
            base = (previous.catalog, previous.schema)
        schema, catalog = read_schema_and_catalog(db, ignore=ignore, base=base)
    carried = _carried_rows(previous, changed, schema)
    with db.internal() as conn:
        rows = {
            name: carried.get(name) or table_rows(conn, name, rowid=not table.without_rowid)
            for name, table in schema.tables.items()
        }
    return State(db, schema, rows, catalog)


def _carried_rows(
    previous: State | None, changed: frozenset[str] | None, schema: Schema
) -> dict[str, TableRows]:
    """The fingerprints of `previous` still valid in `schema`: tables not in `changed` whose
    structure is the same."""
    if previous is None or changed is None:
        return {}
    if previous.schema is schema:
        return {name: r for name, r in previous.rows.items() if name.lower() not in changed}
    before = previous.schema.tables
    return {
        name: previous.rows[name]
        for name, table in schema.tables.items()
        if name in previous.rows
        and name.lower() not in changed
        and (before.get(name) is table or before.get(name) == table)
    }


@dataclass(frozen=True)
class Ran:
    """What running a file did: the tables whose rows it may have changed (lower case), and
    whether it changed the catalog."""

    changed: frozenset[str]
    restructured: bool


def run_tracked(db: D1Database, statements: Sequence[Statement], source: str) -> Ran:
    """Run `statements` on `db` (as `D1Database.run`) and say what they may have changed."""
    db.track_changes()
    db.take_changes()
    version = _schema_version(db)
    db.run(statements, source=source)
    changed = (db.take_changes() or frozenset()) | touched_tables(statements)
    return Ran(changed, _schema_version(db) != version)


def _schema_version(db: D1Database) -> int:
    """SQLite's schema cookie: every committed catalog change increments it."""
    with db.internal() as conn:
        version = conn.execute("PRAGMA schema_version").fetchall()[0][0]
    assert isinstance(version, int)
    return version


def state_after(db: D1Database, ignore: Sequence[str], previous: State, ran: Ran) -> State:
    """The state of `db` after `ran`, from the state it started at."""
    return state_of(
        db, ignore, previous=previous, changed=ran.changed, same_schema=not ran.restructured
    )


def needs_previous_database(migration: Migration, policy: Policy) -> bool:
    """Whether the checks read the previous version's database itself, beyond its schema and row
    fingerprints: a rollback of a declared destructive change (rows over the kept columns), or of a
    migration that records itself in the tracking table (its row count)."""
    if migration.rollback is None:
        return False
    declared = policy.allow_destructive or migration.directive("allow-destructive") is not None
    return declared or records_itself(migration.file.statements, policy.tracking_table)


def apply_in_place(
    before: State,
    migration: Migration,
    policy: Policy,
    *,
    keep: bool = False,
    empty_error: SQLError | None = None,
    empty_checked: bool = False,
) -> Applied:
    """Apply `migration` to `before.db` itself (on failure it is left as it was).

    `before` keeps the previous version's schema and row fingerprints, which is all the checks
    read unless `needs_previous_database` says otherwise: then `keep` keeps what they read of it
    first (`keep_previous`). The caller must not use `before.db` as the previous version
    afterwards.
    """
    previous = keep_previous(before, migration, policy) if keep else None
    try:
        ran = run_tracked(before.db, migration.file.statements, str(migration.path))
    except SQLError as error:
        return Applied(
            migration,
            before,
            None,
            error,
            policy,
            empty_error=empty_error,
            empty_checked=empty_checked,
        )
    after = state_after(before.db, [policy.tracking_table], before, ran)
    return Applied(
        migration, before, after, None, policy, ran.changed, previous, empty_error, empty_checked
    )


def apply_migration(before: State, migration: Migration, policy: Policy) -> Applied:
    """Apply `migration` to a copy of `before` (which is left as it was)."""
    work = before.db.copy()
    try:
        ran = run_tracked(work, migration.file.statements, str(migration.path))
    except SQLError as error:
        work.close()
        return Applied(migration, before, None, error, policy)
    after = state_after(work, [policy.tracking_table], before, ran)
    return Applied(migration, before, after, None, policy, ran.changed)


# --- applies -------------------------------------------------------------------------------


def check_applies(applied: Applied) -> CheckResult:
    """The migration applies on the database built from empty (as every new database starts) and
    on the database at the previous version with rows in its tables (as production has them)."""
    if applied.empty_error is not None:
        return failed("applies", _empty_failure(applied, applied.empty_error))
    if applied.error is None:
        return passed("applies")
    message = f"{applied.error}{_rows_context(applied)}"
    if applied.migration.shipped:
        return noted(
            "applies",
            f"{applied.migration.file_name} (shipped) fails on a database with rows, but "
            "production has already run it; the checks after it go on with rows made "
            f"again:\n{message}",
        )
    return failed("applies", message)


def _rows_context(applied: Applied) -> str:
    tables = len(applied.before.rows)
    filled = sum(1 for rows in applied.before.rows.values() if rows.count)
    if not tables:
        return ""
    empty = "; it applies on an empty database" if applied.empty_checked else ""
    return (
        f"\n(applied to the database at the previous version, with rows in {filled} of {tables} "
        f"tables, as a production database has{empty})"
    )


def _empty_failure(applied: Applied, error: SQLError) -> str:
    also = "" if applied.error is not None else " (it applies on the database with rows)"
    return (
        f"{error}\n(applied to a database built from empty by the migrations before it, as "
        f"every new database starts: a new tenant, CI, `wrangler d1 migrations apply --local`)"
        f"{also}"
    )


# --- rows survive --------------------------------------------------------------------------


def _all_effects(statements: Sequence[Statement]) -> list[tuple[Statement, Effect]]:
    return [(s, e) for s in statements for e in effects(s)]


def check_rows(applied: Applied) -> CheckResult:
    """Rows in tables the migration does not drop or delete from are still there afterwards.

    A table the migration drops (and may create again under the same name) is its own business
    (`::destructive` covers it); so is one it deletes from.

    The result carries the coverage of the previous version (which tables held rows) and warns
    about each table the migration changes that held none: its rows were not checked."""
    result = _rows_survive(applied)
    if result.outcome != "skipped":
        warnings = result.warnings + tuple(_unchecked_tables(applied, "rows"))
        result = replace(result, warnings=warnings)
    return replace(result, coverage=applied.before.coverage)


def _unchecked_tables(applied: Applied, check: str) -> list[str]:
    """A warning for each table the migration changes that held no rows at the previous version
    (the data part of `check` did not run for it)."""
    if applied.after is None:
        return []
    changed = applied.changed
    reshaped = changed_names(applied.before.schema.tables, applied.after.schema.tables)
    coverage = applied.before.coverage
    reasons = dict(coverage.empty) if coverage is not None else {}
    found: list[str] = []
    kept = applied.after.schema.tables if check == "rows" else applied.before.rows
    for table, rows in applied.before.rows.items():
        if rows.count or table not in kept:
            continue
        if changed is not None and table.lower() not in changed and table not in reshaped:
            continue
        why = f" (d1check could not make one: {reasons[table]})" if table in reasons else ""
        found.append(
            f"{applied.migration.path}: {check}: the rows of {table} were not checked: it held "
            f"no rows at the previous version{why}\nfix: {SEED_FIX}"
        )
    return found


def _rows_survive(applied: Applied) -> CheckResult:
    if applied.after is None:
        return skipped("rows", "the migration does not apply (see ::applies)")
    found = _all_effects(applied.migration.file.statements)
    own = {e.table.lower() for _, e in found if e.action in ("delete", "drop-table")}
    renames = {e.table.lower(): e.detail for _, e in found if e.action == "rename-table"}
    after_tables = {name.lower(): name for name in applied.after.schema.tables}
    lost: dict[str, str] = {}
    for table, rows in applied.before.rows.items():
        now = renames.get(table.lower(), table)
        if table.lower() in own or now.lower() not in after_tables or not rows.count:
            continue
        count = applied.after.rows[after_tables[now.lower()]].count
        if count < rows.count:
            lost[table] = f"{table}: {_rows(rows.count)} before, {count} after"
    if not lost:
        return passed("rows")
    if applied.migration.shipped:
        note = _rows_lost_message(applied, lost)
        return noted("rows", f"(shipped; production has already run it) {note}")
    return failed("rows", _rows_lost_message(applied, lost))


def _rows(count: int) -> str:
    return f"{count} row" if count == 1 else f"{count} rows"


def _rows_lost_message(applied: Applied, lost: Mapping[str, str]) -> str:
    lines = [
        f"{applied.migration.path}: rows lost in tables this migration does not drop or "
        "delete from:",
        *(f"  {item}" for item in lost.values()),
    ]
    cause = _cascade_cause(applied.before.schema, applied.migration.file.statements, set(lost))
    if cause:
        lines.append(cause)
    return "\n".join(lines)


def _cascading_children(schema: Schema, parent: str) -> list[tuple[str, str]]:
    """The tables whose foreign keys to `parent` act on delete: (child, action)."""
    children = []
    for table in schema.tables.values():
        if table.name.lower() == parent.lower():
            continue
        for fk in table.foreign_keys:
            action = fk.on_delete.upper()
            if fk.table.lower() == parent.lower() and action in (
                "CASCADE",
                "SET NULL",
                "SET DEFAULT",
            ):
                children.append((table.name, action))
    return children


def _cascade_reach(schema: Schema, parent: str, gone: set[str]) -> dict[str, str]:
    """The tables (lower case) whose rows a delete of every row of `parent` deletes, through
    chains of ON DELETE CASCADE, each with the chain's description; tables in `gone` (dropped
    already) are not reached."""
    reached: dict[str, str] = {}
    pending = [(parent, "")]
    while pending:
        table, via = pending.pop()
        for child, action in _cascading_children(schema, table):
            key = child.lower()
            if action != "CASCADE" or key in gone or key in reached or key == parent.lower():
                continue
            reached[key] = f"{child} (ON DELETE CASCADE{via})"
            pending.append((child, f" via {child}"))
    return reached


def _cascade_cause(schema: Schema, statements: Sequence[Statement], lost: set[str]) -> str:
    """The drops and deletes whose ON DELETE CASCADE reaches a table of `lost` (as named in
    `schema`), as a cause line and a fix; "" when none does."""
    lost_lower = {name.lower() for name in lost}
    gone: set[str] = set()
    causes = []
    for statement, effect in _all_effects(statements):
        if effect.action in ("drop-table", "delete"):
            reached = _cascade_reach(schema, effect.table, gone)
            named = [text for key, text in reached.items() if key in lost_lower]
            if named:
                verb = "DROP TABLE" if effect.action == "drop-table" else "DELETE FROM"
                causes.append(
                    f"cause: line {statement.line}: {verb} {effect.table} fires the foreign-key "
                    f"actions of {', '.join(sorted(named))}"
                )
        if effect.action == "drop-table":
            gone.add(effect.table.lower())
    if not causes:
        return ""
    return "\n".join(
        [
            *causes,
            "D1 enforces foreign keys always, even under PRAGMA defer_foreign_keys or "
            "foreign_keys=OFF.",
            "fix: rebuild the child tables first (or copy their rows aside and restore them), "
            "or use ALTER TABLE where SQLite allows it instead of a table rebuild",
        ]
    )


# --- idempotent ----------------------------------------------------------------------------


def _tracking_statement(statement: Statement, tracking_table: str) -> bool:
    return any(
        e.table.lower() == tracking_table.lower() and e.action in ("insert", "delete")
        for e in effects(statement)
    )


def check_idempotent(applied: Applied) -> CheckResult:
    """Applying the migration a second time succeeds and changes neither schema nor rows.

    The second run goes statement by statement, so that each error or difference is laid at
    the door of one statement, with its idempotent form as the fix. Statements that SQLite
    offers no idempotent form of (`ALTER TABLE … ADD COLUMN`, `RENAME TO`, `RENAME COLUMN`,
    `DROP COLUMN`) are passed over, and the result passes with a note that the file is safe
    only under atomic tracking (the migration and its tracking row commit together).
    """
    migration, policy = applied.migration, applied.policy
    declared = migration.directive("not-idempotent")
    if declared:
        return skipped("idempotent", f"declared not-idempotent: {declared.reason}")
    if migration.shipped:
        return skipped("idempotent", SHIPPED_REASON)
    if not policy.check_idempotency:
        return skipped("idempotent", "check_idempotency = false in [tool.d1check]")
    if applied.after is None:
        return skipped("idempotent", "the migration does not apply (see ::applies)")
    statements = [
        s for s in migration.file.statements if not _tracking_statement(s, policy.tracking_table)
    ]
    if all(creates_only_if_missing(s) for s in statements):
        return passed("idempotent")
    db = applied.after.db
    with db.trial():
        reruns = _run_again(db, statements, str(migration.path))
        ran = Ran(
            frozenset().union(*(r.rows for r in reruns)) | touched_tables(statements),
            any(r.restructured for r in reruns),
        )
        second = state_after(db, [policy.tracking_table], applied.after, ran)
        pending = _deferred_violations(db)
    return _judge_second_run(applied.after, second, reruns, migration, pending, policy)


_NO_IDEMPOTENT_FORM = {
    "add-column": "ADD COLUMN",
    "rename-table": "RENAME TO",
    "rename-column": "RENAME COLUMN",
    "drop-column": "DROP COLUMN",
}


@dataclass(frozen=True)
class _Rerun:
    """One statement in the second run: passed over, failed, or what it changed."""

    statement: Statement
    passed_over: str = ""  # what SQLite has no idempotent form of (e.g. "ADD COLUMN")
    error: SQLError | None = None
    rows: frozenset[str] = frozenset()  # tables (lower case) whose rows it changed
    restructured: bool = False


def _no_idempotent_form(statement: Statement) -> str:
    """ "ADD COLUMN", "RENAME TO", … for a statement SQLite offers no idempotent form of."""
    return next(
        (
            _NO_IDEMPOTENT_FORM[e.action]
            for e in effects(statement)
            if e.action in _NO_IDEMPOTENT_FORM
        ),
        "",
    )


def _run_again(db: D1Database, statements: Sequence[Statement], source: str) -> list[_Rerun]:
    """Run `statements` again in order, inside `db.trial()`, saying what each did. A statement
    that fails leaves nothing (SQLite undoes a failed statement) and the next one still runs;
    one that ends the transaction itself (`OR ROLLBACK`, `RAISE(ROLLBACK)`) ends the run. A
    statement that SQLite offers no idempotent form of (`ADD COLUMN`, `RENAME`, `DROP COLUMN`)
    runs too (the RENAME of a table rebuild succeeds again); when it fails, it is passed over."""
    db.track_changes()
    db.take_changes()
    reruns = []
    for statement in statements:
        rerun = _run_one_again(db, statement, source)
        passed_over = _no_idempotent_form(statement)
        if rerun.error is not None and passed_over:
            rerun = _Rerun(statement, passed_over=passed_over)
        reruns.append(rerun)
        if db.connection.getautocommit():
            break
    return reruns


# A statement that may change the catalog starts with one of these words (after comments).
_DDL_HEAD = re.compile(r"(?:\s+|--[^\n]*(?:\n|$)|/\*.*?\*/)*(?:CREATE|DROP|ALTER)\b", re.I | re.S)


def _run_one_again(db: D1Database, statement: Statement, source: str) -> _Rerun:
    ddl = _DDL_HEAD.match(statement.sql) is not None
    version = _schema_version(db) if ddl else 0
    try:
        db.run_statement(statement, source=source)
    except SQLError as error:
        db.take_changes()
        return _Rerun(statement, error=error)
    return _Rerun(
        statement,
        rows=db.take_changes() or frozenset(),
        restructured=ddl and _schema_version(db) != version,
    )


def _deferred_violations(db: D1Database) -> bool:
    """Whether foreign-key violations are pending (deferred) in the open transaction: D1 would
    refuse the migration at its end."""
    return bool(db.connection.status(apsw.SQLITE_DBSTATUS_DEFERRED_FKS)[0])


def _judge_second_run(
    first: State,
    second: State,
    reruns: Sequence[_Rerun],
    migration: Migration,
    pending: bool,
    policy: Policy,
) -> CheckResult:
    diffs = diff_schemas(first.schema, second.schema)
    changed = [t for t, rows in first.rows.items() if second.rows.get(t) != rows]
    changed += [t for t, rows in second.rows.items() if t not in first.rows and rows.count]
    findings = [_failed_again(r, migration) for r in reruns if r.error is not None]
    findings += _schema_changed_again(diffs, reruns, migration)
    findings += _rows_changed_again(changed, first, second, reruns, migration)
    if pending:
        findings.append(
            f"  {migration.path}: the second run leaves rows that violate foreign keys (D1 "
            "refuses the migration at its end)\n"
            "    fix: guard the statements that insert or delete rows so that a second run "
            "changes nothing"
        )
    note = _passed_over_note(reruns, migration)
    if not findings:
        return noted("idempotent", note.removeprefix("note: ")) if note else passed("idempotent")
    head = f"{migration.path}: applying the migration a second time fails or changes the database:"
    hint = _baseline_hint(policy)
    return failed("idempotent", "\n".join([head, *findings, *([note] if note else [])]) + hint)


def _first_words(statement: Statement, width: int = 60) -> str:
    text = " ".join(statement.sql.split())
    return text if len(text) <= width else text[: width - 1].rstrip() + "…"


def _where(statement: Statement, migration: Migration) -> str:
    return f"  {migration.path}:{statement.line}: {_first_words(statement)}"


def _failed_again(rerun: _Rerun, migration: Migration) -> str:
    assert rerun.error is not None
    return (
        f"{_where(rerun.statement, migration)}\n"
        f"    fails the second time: {rerun.error.message}\n"
        f"    fix: {_idempotent_fix(rerun.statement)}"
    )


def _schema_changed_again(
    diffs: Sequence[Difference], reruns: Sequence[_Rerun], migration: Migration
) -> list[str]:
    """Each schema difference under the statement that made it (its object's name), else under
    every statement that changed the schema."""
    restructuring = [r for r in reruns if r.restructured]
    by_statement: dict[int, list[Difference]] = {}
    for diff in diffs:
        owners = [r for r in restructuring if _names_object(r.statement, diff.name)]
        for rerun in owners or restructuring[-1:]:
            by_statement.setdefault(rerun.statement.offset, []).append(diff)
    return [
        f"{_where(r.statement, migration)}\n"
        f"    changes the schema the second time:\n"
        + "\n".join(f"    {d}" for d in by_statement[r.statement.offset])
        + f"\n    fix: {_idempotent_fix(r.statement)}"
        for r in restructuring
        if r.statement.offset in by_statement
    ]


def _names_object(statement: Statement, name: str) -> bool:
    made = created(statement)
    if made is not None:
        return made.name.lower() == name.lower()
    return any(name.lower() in (e.table.lower(), e.detail.lower()) for e in effects(statement))


def _rows_changed_again(
    changed: Sequence[str],
    first: State,
    second: State,
    reruns: Sequence[_Rerun],
    migration: Migration,
) -> list[str]:
    """Each table whose rows differ after the second run, under the statements that wrote it."""
    findings = []
    for table in changed:
        before, after = first.rows.get(table), second.rows.get(table)
        first_count, second_count = before.count if before else 0, after.count if after else 0
        counts = (
            f"rows of {table}: {first_count} after the first run, {second_count} after the second"
            + (" (values differ)" if first_count == second_count else "")
        )
        writers = [r for r in reruns if table.lower() in r.rows]
        if not writers:
            findings.append(f"  {migration.path}: {counts}")
        findings.extend(
            f"{_where(r.statement, migration)}\n"
            f"    changes rows the second time: {counts}\n"
            f"    fix: {_idempotent_fix(r.statement)}"
            for r in writers
        )
    return findings


def _idempotent_fix(statement: Statement) -> str:
    """The idempotent form of `statement`, or how to guard it."""
    head = first_keywords(statement.sql, 4)
    made = created(statement)
    if made is not None and not made.if_not_exists:
        words = " ".join(head[: head.index(made.kind) + 1]) if made.kind in head else "CREATE"
        return f"write {words} IF NOT EXISTS {made.name}"
    dropped = [e for e in effects(statement) if e.action.startswith("drop-")]
    if head[:1] == ("DROP",) and dropped and not drops_if_exists(statement):
        return f"write DROP {head[1]} IF EXISTS {dropped[0].table}"
    if "REPLACE" in head[:3]:
        return (
            "OR REPLACE deletes the row it conflicts with and inserts it anew (ON DELETE actions "
            "fire, defaults and rowids come again): use INSERT OR IGNORE or ON CONFLICT DO "
            "NOTHING"
        )
    if head[:1] == ("INSERT",):
        if not guards_conflicts(statement):
            return (
                "write INSERT OR IGNORE (or add ON CONFLICT DO NOTHING); it keeps out rows whose "
                "PRIMARY KEY or UNIQUE key is already there, so the rows need such a key (else "
                "guard with WHERE NOT EXISTS)"
            )
        return (
            "the rows meet no PRIMARY KEY or UNIQUE key to conflict on: insert them with their "
            "key, add a UNIQUE index over the seeded columns, or guard with WHERE NOT EXISTS"
        )
    return (
        "guard it so that a second run changes nothing (IF [NOT] EXISTS, WHERE NOT EXISTS …), "
        "or declare `-- d1check: not-idempotent <reason>`"
    )


def _passed_over_note(reruns: Sequence[_Rerun], migration: Migration) -> str:
    over = [r for r in reruns if r.passed_over]
    if not over:
        return ""
    lines = "\n".join(
        f"{_where(r.statement, migration)} (SQLite has no idempotent {r.passed_over})" for r in over
    )
    return (
        f"note: {migration.path} is safe to apply again only under atomic tracking (the "
        "migration and its tracking row commit together, as wrangler and d1check apply it); "
        "the second run passed over:\n" + lines
    )


_CREATED_KINDS = frozenset({"TABLE", "INDEX", "VIEW", "TRIGGER"})


def creates_only_if_missing(statement: Statement) -> bool:
    """`CREATE [TEMP] [UNIQUE | VIRTUAL] TABLE|INDEX|VIEW|TRIGGER IF NOT EXISTS …`.

    A file of such statements alone is idempotent once it has applied: each object then exists,
    and SQLite returns from these statements before reading anything else (no other statement
    can take the name: it fails on a name in use), so a second run changes nothing and cannot
    fail. The idempotency check passes such a file without running it again.
    """
    found = first_keywords(statement.sql, 7)
    if found[:1] != ("CREATE",):
        return False
    rest = list(found[1:])
    if rest[:1] in (["TEMP"], ["TEMPORARY"]):
        rest = rest[1:]
    if rest[:2] in (["UNIQUE", "INDEX"], ["VIRTUAL", "TABLE"]):
        rest = rest[1:]
    return rest[:1] != [] and rest[0] in _CREATED_KINDS and rest[1:4] == ["IF", "NOT", "EXISTS"]


# --- rollback ------------------------------------------------------------------------------


def check_rollback(applied: Applied) -> CheckResult:
    """The rollback restores the previous schema and rows, and the migration applies again."""
    migration, policy = applied.migration, applied.policy
    rollback = migration.rollback
    if rollback is None:
        return _missing_rollback(migration, policy)
    if applied.after is None:
        return skipped("rollback", "the migration does not apply (see ::applies)")
    work = applied.after.db
    with work.trial():
        result = _run_rollback(applied, applied.after, rollback, work)
    return replace(result, warnings=result.warnings + tuple(_unchecked_tables(applied, "rollback")))


def _missing_rollback(migration: Migration, policy: Policy) -> CheckResult:
    declared = migration.directive("irreversible")
    if declared:
        return skipped("rollback", f"declared irreversible: {declared.reason}")
    if migration.shipped:
        return skipped("rollback", f"no rollback file; {SHIPPED_REASON}")
    if not policy.require_rollbacks:
        return skipped("rollback", "no rollback file (require_rollbacks = false)")
    expected = f"rollbacks/{migration.version or migration.name}_rollback.sql"
    return failed(
        "rollback",
        f"{migration.path}: no rollback file\nfix: "
        + _IRREVERSIBLE_HINT.format(path=expected)
        + _baseline_hint(policy),
    )


def _run_rollback(
    applied: Applied, after: State, rollback: SqlFile, work: D1Database
) -> CheckResult:
    try:
        undone = run_tracked(work, rollback.statements, str(rollback.path))
    except SQLError as error:
        why = [f for f in _lint_drop_column(rollback, after.schema) if f":{error.line}:" in f]
        return failed(
            "rollback",
            f"the rollback fails on the migrated database:\n{error}"
            + "".join(f"\n{finding}" for finding in why),
        )
    ignore = [applied.policy.tracking_table]
    catalog: Catalog | None = after.catalog
    restored = after.schema
    if undone.restructured:
        base = None if catalog is None else (catalog, after.schema)
        restored, catalog = read_schema_and_catalog(work, ignore=ignore, base=base)
    maybe = _maybe_changed(applied, undone.changed, restored)
    problems: list[str] = []
    diffs = diff_schemas(applied.before.schema, restored)
    if diffs:
        problems.append(
            "the schema after the rollback differs from the previous version "
            "(before → after rollback):\n" + format_diff(diffs) + _rollback_fix(diffs)
        )
    problems += _rows_not_restored(applied, after, work, maybe)
    problems += _tracking_left(applied, work)
    if problems:
        return failed("rollback", f"{rollback.path}:\n" + "\n".join(problems))
    if _restored_exactly(applied, rollback, work, catalog, maybe):
        return passed("rollback")
    return _reapply(applied, after, work, restored)


def _restored_exactly(
    applied: Applied,
    rollback: SqlFile,
    work: D1Database,
    catalog: Catalog | None,
    maybe: set[str] | None,
) -> bool:
    """Whether `work` after the rollback is provably the previous version itself: the same
    catalog text and, in every table whose rows may have changed, the same rows under the same
    rowids. Applying the migration again would then repeat its first run exactly, so that run
    is skipped. Anything unproven (a table outside the model, AUTOINCREMENT counters, connection
    pragmas) answers False, and the migration is applied again."""
    before = applied.before
    if maybe is None or before.catalog is None or catalog is None:
        return False
    if not same_catalog(catalog, before.catalog):
        return False
    if _sets_pragmas(applied.migration.file) or _sets_pragmas(rollback):
        return False
    existing = {row[1].lower() for row in catalog if row[0] == "table"}
    names = {name.lower(): name for name in before.rows}
    with work.internal() as conn:
        for lower in maybe & existing:
            name = names.get(lower)
            table = None if name is None else before.schema.tables[name]
            if name is None or table is None or table.autoincrement:
                return False
            kept = before.rows[name].exact
            if not kept or table_rows(conn, name, rowid=not table.without_rowid).exact != kept:
                return False
    return True


_NEUTRAL_PRAGMAS = frozenset({"foreign_keys", "defer_foreign_keys"})


def _sets_pragmas(file: SqlFile) -> bool:
    """Whether `file` sets a connection pragma that could change how later statements run."""
    return any(
        e.action == "pragma" and e.detail and e.table.lower() not in _NEUTRAL_PRAGMAS
        for s in file.statements
        for e in effects(s)
    )


_DROP_WORD = {
    "table": "TABLE",
    "index": "INDEX",
    "trigger": "TRIGGER",
    "view": "VIEW",
    "virtual table": "TABLE",
}


def _rollback_fix(diffs: Sequence[Difference]) -> str:
    """What the rollback should add: drops for objects and columns it leaves, re-creations for
    lost ones."""
    left = [d for d in diffs if not d.property and d.before is None]
    lost = [d for d in diffs if not d.property and d.after is None]
    fixes = [f"DROP {_DROP_WORD.get(d.kind, d.kind.upper())} IF EXISTS {d.name}" for d in left]
    fixes += [_column_fix(d) for d in diffs if _whole_column(d)]
    fixes += [f"recreate {d.kind} {d.name} as the previous version had it" for d in lost]
    if not fixes:
        return "\n  fix: the rollback must undo exactly what the migration changed"
    return "\n  fix: add to the rollback: " + "; ".join(fixes)


def _whole_column(diff: Difference) -> bool:
    """A column the rollback left or lost (not one of its properties)."""
    return diff.kind == "table" and diff.property.startswith("column ") and ":" not in diff.property


def _column_fix(diff: Difference) -> str:
    column = diff.property.removeprefix("column ")
    if diff.before is None:
        return f"ALTER TABLE {diff.name} DROP COLUMN {column}"
    return f"ALTER TABLE {diff.name} ADD COLUMN {column} {diff.before}"


def _declared_destructive(applied: Applied) -> bool:
    return (
        applied.policy.allow_destructive
        or applied.migration.directive("allow-destructive") is not None
    )


def _maybe_changed(applied: Applied, undone: frozenset[str], restored: Schema) -> set[str] | None:
    """Tables whose rows may differ from the previous version after the rollback (None: any)."""
    if applied.changed is None or applied.after is None:
        return None
    before, after = applied.before.schema.tables, applied.after.schema.tables
    restructured = changed_names(before, after) | changed_names(after, restored.tables)
    return {*applied.changed, *undone, *(name.lower() for name in restructured)}


def _rows_not_restored(
    applied: Applied, after: State, work: D1Database, maybe: set[str] | None = None
) -> list[str]:
    problems: list[str] = []
    destructive = _declared_destructive(applied)
    with work.internal() as conn:
        existing = {r[0] for r in conn.execute("SELECT name FROM sqlite_schema WHERE type='table'")}
        for table, rows in applied.before.rows.items():
            if table not in existing or (maybe is not None and table.lower() not in maybe):
                continue
            columns = list(rows.columns)
            expected: TableRows | None = rows
            if destructive:
                kept = after.rows.get(table)
                if kept is None:
                    continue
                columns = [c for c in columns if c in kept.columns]
                if len(columns) != len(rows.columns):
                    expected = applied.previous_rows(table, columns)
            actual = table_rows(conn, table, columns)
            if expected is None:  # values not kept: compare the counts
                expected = replace(actual, count=rows.count)
            if actual != expected:
                problems.append(
                    f"rows of {table} are not restored: {_rows(expected.count)} at the previous "
                    f"version, {actual.count} after the rollback"
                    + ("" if actual.count != expected.count else " (values differ)")
                )
    return problems


def _tracking_left(applied: Applied, work: D1Database) -> list[str]:
    table = applied.policy.tracking_table
    if not records_itself(applied.migration.file.statements, table):
        return []
    before = applied.previous_tracking_count()
    with work.internal() as conn:
        now = conn.execute(f'SELECT count(*) FROM "{table}"').fetchall()[0][0]
    if now == before:
        return []
    return [
        f"the migration records itself in {table}, and the rollback leaves that row behind "
        f"({before} rows before the migration, {now} after the rollback)\n"
        f"fix: end the rollback with DELETE FROM {table} WHERE version = "
        f"'{applied.migration.version}';"
    ]


def _reapply(applied: Applied, after: State, work: D1Database, restored: Schema) -> CheckResult:
    migration = applied.migration
    try:
        ran = run_tracked(work, migration.file.statements, str(migration.path))
    except SQLError as error:
        return failed("rollback", f"after the rollback, the migration no longer applies:\n{error}")
    if ran.restructured:
        again = read_schema(work, ignore=[applied.policy.tracking_table])
    else:
        again = restored
    diffs = diff_schemas(after.schema, again)
    if diffs:
        return failed(
            "rollback",
            "after the rollback, applying the migration again gives a different schema:\n"
            + format_diff(diffs),
        )
    return passed("rollback")


# --- destructive ---------------------------------------------------------------------------

_DESTRUCTIVE = {
    "drop-table": "DROP TABLE {table}",
    "drop-column": "DROP COLUMN {table}.{detail}",
    "rename-table": "RENAME TABLE {table} TO {detail}",
    "rename-column": "RENAME COLUMN {table}.{detail}",
}


def destructive_steps(statements: Sequence[Statement]) -> list[str]:
    """`line N: DROP TABLE x` for every statement that drops or renames data."""
    return [
        f"line {s.line}: " + _DESTRUCTIVE[e.action].format(table=e.table, detail=e.detail)
        for s, e in _all_effects(statements)
        if e.action in _DESTRUCTIVE
    ]


def check_destructive(applied: Applied) -> CheckResult:
    """DROP TABLE, DROP COLUMN, RENAME and table rebuilds need `allow-destructive` and a reason."""
    return destructive_result(applied.migration, applied.policy)


def destructive_result(migration: Migration, policy: Policy) -> CheckResult:
    """The `destructive` check of `migration`, from its text alone."""
    steps = destructive_steps(migration.file.statements)
    if not steps:
        return passed("destructive")
    declared = migration.directive("allow-destructive")
    if declared:
        return passed("destructive", f"declared allow-destructive: {declared.reason}")
    if policy.allow_destructive:
        return passed("destructive", "allow_destructive = true in [tool.d1check]")
    if migration.shipped:
        return skipped("destructive", SHIPPED_REASON)
    return failed(
        "destructive",
        f"{migration.path}: destructive steps without a declared reason:\n"
        + "\n".join(f"  {s}" for s in steps)
        + "\nfix: declare `-- d1check: allow-destructive <reason>` in the migration "
        "(the reason goes into the report), or make the change additive" + _baseline_hint(policy),
    )


# --- d1 ------------------------------------------------------------------------------------


def check_d1(applied: Applied) -> CheckResult:
    """D1's own rules and wrangler's traps, in the migration and in its rollback."""
    migration = applied.migration
    if not migration.file.statements:
        return _no_statements(migration)
    findings = [str(problem) for problem in migration.directive_problems]
    findings += lint_d1(migration.file, applied.before.schema, hazards=not migration.shipped)
    if migration.rollback is not None and applied.after is not None:
        findings += lint_d1(migration.rollback, applied.after.schema, sent_by_wrangler=False)
    findings += wrangler_tracking_failure(applied)
    error = applied.empty_error or applied.error
    if error is not None and _is_d1_refusal(error):
        where = f"{error.source}:{error.line}" if error.line else error.source
        fix = f"\n  fix: {error.hint}" if error.hint else ""
        findings.append(f"{where}: {error.message} (D1 refuses it; see ::applies){fix}")
    warnings = file_warnings(migration.file) + foreign_keys_warnings(
        migration.file, applied.before.schema
    )
    if findings:
        return failed("d1", "\n".join(findings), warnings)
    if migration.shipped:
        hazards = lint_hazards(migration.file, applied.before.schema)
        if hazards:
            return replace(noted("d1", "(shipped) " + "\n".join(hazards)), warnings=tuple(warnings))
    return passed("d1", warnings=warnings)


def _no_statements(migration: Migration) -> CheckResult:
    """A migration with no SQL statement (nothing, or only comments, as `wrangler d1 migrations
    create` leaves it): wrangler records it as applied and runs nothing."""
    what = (
        f"{migration.path}: no SQL statement (the file is empty or only comments): wrangler "
        "records it as applied and runs nothing"
    )
    if migration.shipped:
        return noted("d1", f"(shipped) {what}")
    return failed(
        "d1",
        f"{what}\n  fix: write the migration's SQL, or delete the file if the change is not "
        "needed (a migration recorded as applied can never be filled in later)",
    )


def wrangler_tracking_failure(applied: Applied) -> list[str]:
    """The failure of the tracking INSERT wrangler sends right after the migration's statements
    (a row the file wrote itself, a tracking table it dropped), as a finding; [] when it lands.

    The hand-written `_migrations` style is not wrangler's: its migrations record themselves.
    """
    style = TrackingStyle(applied.policy.tracking_table)
    if applied.after is None or style.seed_style:
        return []
    migration = applied.migration
    db = applied.after.db
    if not _may_block_tracking(migration, db, style.table):
        return []
    insert = style.insert_sql(migration.file_name, migration.version, migration.file.sha256)
    try:
        with db.trial():
            db.run([Statement(insert, 0, 0, True)], source=style.table)
    except SQLError as error:
        return [
            f"{migration.path}: wrangler records the migration with `{insert}` in the same "
            f"request, after the file's statements, and that fails: {error.message} — so "
            f"wrangler fails the migration\n  fix: {_tracking_fix(migration, style.table)}"
        ]
    return []


def _may_block_tracking(migration: Migration, db: D1Database, table: str) -> bool:
    """Whether wrangler's tracking INSERT could fail after `migration` (cheap: the file names the
    tracking table, or the table is gone or already holds the migration's row); else it lands."""
    if table.lower() in migration.file.text.lower():
        return True
    with db.internal() as conn:
        try:
            found = conn.execute(
                f"SELECT 1 FROM {quote_ident(table)} WHERE name = ? LIMIT 1", (migration.file_name,)
            ).fetchall()
        except apsw.SQLError:
            return True
    return bool(found)


def _tracking_fix(migration: Migration, table: str) -> str:
    for statement, effect in _all_effects(migration.file.statements):
        if effect.table.lower() != table.lower():
            continue
        where = f"{migration.path}:{statement.line}"
        if effect.action in ("insert", "insert-or-replace"):
            return f"remove the INSERT into {table} at {where}: wrangler records each migration"
        if effect.action in ("drop-table", "rename-table", "drop-column", "rename-column"):
            return (
                f"keep {table} as wrangler created it (changed at {where}): wrangler records "
                "every migration in it"
            )
    return (
        f"{table} already holds a row for {migration.file_name}, written by an earlier "
        f"migration: remove that INSERT and leave {table} to wrangler"
    )


def _is_d1_refusal(error: SQLError) -> bool:
    words = ("SQLITE_AUTH", "SQLITE_TOOBIG", "too many columns", "state.storage.transaction")
    return any(w in error.message for w in words)


def file_warnings(file: SqlFile) -> list[str]:
    """Warnings that do not fail the check (a file too large for one remote request)."""
    size = len(file.text.encode())
    if size > D1_FILE_WARNING_BYTES:
        return [
            f"{file.path}: {size:,} bytes; remote `migrations apply` sends a file as one request "
            "(D1 refuses statements over 100 KB; split large data loads)"
        ]
    return []


_Lint = Callable[[SqlFile, Schema], list[str]]


def lint_d1(
    file: SqlFile, schema: Schema, *, hazards: bool = True, sent_by_wrangler: bool = True
) -> list[str]:
    """Every D1 rule `file` breaks, as `path:line: what — fix`; `schema` is the state before.

    The refusals (what D1 or wrangler refuses) always; with `hazards`, also the rules about rows
    that D1 loses silently (`lint_hazards`), which matter for migrations yet to run.
    `sent_by_wrangler=False` (a rollback: d1check sends it, each statement ended with its `;`)
    leaves out the traps of wrangler's own handling of a file's text.
    """
    rules: tuple[_Lint, ...] = (
        _lint_transactions,
        _lint_unterminated,
        _lint_several_transactions,
        _lint_drop_column,
    )
    wrangler_only = () if sent_by_wrangler else (_lint_unterminated, _lint_several_transactions)
    found = [f for rule in rules if rule not in wrangler_only for f in rule(file, schema)]
    return found + lint_hazards(file, schema) if hazards else found


def lint_hazards(file: SqlFile, schema: Schema) -> list[str]:
    """Table rebuilds that lose child rows on D1 (whose DROP TABLE fires foreign-key actions,
    `PRAGMA foreign_keys = OFF` or not)."""
    rules: tuple[_Lint, ...] = (_lint_foreign_keys_pragma, _lint_rebuild_with_cascading_children)
    return [finding for rule in rules for finding in rule(file, schema)]


def _lint_transactions(file: SqlFile, schema: Schema) -> list[str]:
    return [
        f"{file.path}:{s.line}: {e.detail} — D1 refuses transaction statements in remote SQL "
        "(wrangler's local mode strips them, so they fail first in production)\n"
        "  fix: remove it; D1 runs every migration in a transaction of its own"
        for s in file.statements
        for e in effects(s)
        if e.action == "transaction" and e.detail in TRANSACTION_WORDS
    ]


_OFF_VALUES = frozenset({"OFF", "0", "FALSE", "NO"})


def _foreign_keys_off(file: SqlFile) -> list[Statement]:
    """The statements `PRAGMA foreign_keys = OFF` (or 0, false, no) of `file`."""
    return [
        s
        for s in file.statements
        for e in effects(s)
        if e.action == "pragma" and e.table == "foreign_keys" and e.detail.upper() in _OFF_VALUES
    ]


def _cascading_drops(file: SqlFile, schema: Schema) -> list[str]:
    """`DROP TABLE x at line N still deletes the rows of y (ON DELETE CASCADE)` for every drop
    of `file` whose foreign-key actions reach a table not dropped before it."""
    gone: set[str] = set()
    found = []
    for statement, effect in _all_effects(file.statements):
        if effect.action != "drop-table":
            continue
        children = [
            (t, a) for t, a in _cascading_children(schema, effect.table) if t.lower() not in gone
        ]
        if children:
            named = ", ".join(
                _FK_ACTION_WORDS[a].format(t) + f" (ON DELETE {a})" for t, a in children
            )
            found.append(f"DROP TABLE {effect.table} at line {statement.line} still {named}")
        gone.add(effect.table.lower())
    return found


_FK_ACTION_WORDS = {
    "CASCADE": "deletes the rows of {}",
    "SET NULL": "sets the keys of {} to NULL",
    "SET DEFAULT": "sets the keys of {} to their default",
}


def _lint_foreign_keys_pragma(file: SqlFile, schema: Schema) -> list[str]:
    """`PRAGMA foreign_keys = OFF` in a file whose DROP TABLE fires foreign-key actions: D1
    ignores the PRAGMA and the actions fire. Elsewhere it is harmless (`foreign_keys_warnings`)."""
    drops = _cascading_drops(file, schema)
    if not drops:
        return []
    return [
        f"{file.path}:{s.line}: PRAGMA foreign_keys = OFF does nothing on D1: "
        + "; ".join(drops)
        + " (D1 enforces foreign keys always)\n"
        "  fix: rebuild the child tables before their parent (or copy their rows aside and "
        "restore them), and remove the PRAGMA"
        for s in _foreign_keys_off(file)
    ]


def foreign_keys_warnings(file: SqlFile, schema: Schema) -> list[str]:
    """Warnings for `PRAGMA foreign_keys = OFF` in a file where it changes nothing that matters:
    no DROP TABLE of the file fires foreign-key actions (`_lint_foreign_keys_pragma` fails the
    other files)."""
    if _cascading_drops(file, schema):
        return []
    return [
        f"{file.path}:{s.line}: PRAGMA foreign_keys = OFF does nothing on D1 (foreign keys are "
        "always enforced); remove it, or use PRAGMA defer_foreign_keys = true to defer the "
        "checks to the end of the migration"
        for s in _foreign_keys_off(file)
    ]


def _lint_unterminated(file: SqlFile, schema: Schema) -> list[str]:
    findings = []
    last = file.statements[-1] if file.statements else None
    if last is not None and not last.terminated:
        findings.append(
            f"{file.path}:{last.line}: the last statement has no `;` — wrangler appends its "
            "tracking INSERT to the file, so the apply fails\n  fix: end the statement with `;`"
        )
    if has_unterminated_comment(file.text):
        findings.append(
            f"{file.path}: a `/*` comment is never closed — it swallows wrangler's tracking "
            "INSERT: "
            "the migration's changes land but it is not recorded, and the next apply runs it "
            "again\n  fix: close the comment with `*/`"
        )
    return findings


_WRANGLER_BEGIN = "BEGIN TRANSACTION"


def _lint_several_transactions(file: SqlFile, schema: Schema) -> list[str]:
    """wrangler's local apply (`trimSqlQuery`) removes the first `BEGIN TRANSACTION;` and the
    first `COMMIT;` of the text, and refuses the file if `BEGIN TRANSACTION` (case-sensitive,
    anywhere: comments and strings too) is still in it."""
    if not _wrangler_refuses_transactions(file.text):
        return []
    left = _transaction_text_left(file.text)
    places = "; ".join(f"line {line}: {where}" for line, where in left) or "text the trim joined"
    first = f":{left[0][0]}" if left else ""
    return [
        f"{file.path}{first}: wrangler's local apply refuses the file (\"contains several "
        'transactions"): it removes the first `BEGIN TRANSACTION;` (exactly that text) and '
        f"refuses any `BEGIN TRANSACTION` left ({places})\n"
        "  fix: remove BEGIN TRANSACTION / COMMIT (D1 runs each migration in a transaction of "
        "its own), and reword comments and strings that hold the words BEGIN TRANSACTION"
    ]


def _wrangler_refuses_transactions(text: str) -> bool:
    """wrangler 4.164's `trimSqlQuery` refusal, to the letter."""
    if _WRANGLER_BEGIN not in text:
        return False
    trimmed = text.replace(_WRANGLER_BEGIN + ";", "", 1).replace("COMMIT;", "", 1)
    return _WRANGLER_BEGIN in trimmed


def _transaction_text_left(text: str) -> list[tuple[int, str]]:
    """Each `BEGIN TRANSACTION` wrangler's trim leaves in `text`: (line, where it is)."""
    removed = text.find(_WRANGLER_BEGIN + ";")
    tokens = list(tokenize(text))
    left = []
    at = text.find(_WRANGLER_BEGIN)
    while at != -1:
        if at != removed:
            left.append((text.count("\n", 0, at) + 1, _transaction_text_place(text, at, tokens)))
        at = text.find(_WRANGLER_BEGIN, at + 1)
    return left


def _transaction_text_place(text: str, at: int, tokens: Sequence[Token]) -> str:
    token = next((t for t in tokens if t.offset <= at < t.offset + len(t.text)), None)
    if token is not None and token.kind == "comment":
        return "in a comment"
    if token is not None and token.kind == "string":
        return "in a string"
    if token is not None and token.kind == "ident":
        return "in a quoted name"
    if text.startswith(_WRANGLER_BEGIN + ";", at):
        return "a second `BEGIN TRANSACTION;`"
    return "not written exactly `BEGIN TRANSACTION;`"


def _lint_rebuild_with_cascading_children(file: SqlFile, schema: Schema) -> list[str]:
    found = _all_effects(file.statements)
    renamed_to = {e.detail.lower() for _, e in found if e.action == "rename-table"}
    dropped_children: set[str] = set()
    findings = []
    for statement, effect in found:
        if effect.action != "drop-table":
            continue
        if effect.table.lower() in renamed_to:
            children = [
                (t, a)
                for t, a in _cascading_children(schema, effect.table)
                if t.lower() not in dropped_children
            ]
            if children:
                named = ", ".join(f"{t} (ON DELETE {a})" for t, a in children)
                findings.append(
                    f"{file.path}:{statement.line}: rebuilds {effect.table}, whose children "
                    f"{named} lose their rows (or keys) when it is dropped — D1 enforces foreign "
                    "keys always, PRAGMA defer_foreign_keys defers checks, not actions\n"
                    "  fix: copy the child rows aside and restore them after the rename, or "
                    "rebuild the children too"
                )
        dropped_children.add(effect.table.lower())
    return findings


def _lint_drop_column(file: SqlFile, schema: Schema) -> list[str]:
    findings = []
    dropped: set[str] = set()
    for statement, effect in _all_effects(file.statements):
        if effect.action in ("drop-index", "drop-view", "drop-trigger"):
            dropped.add(effect.table.lower())
        if effect.action != "drop-column":
            continue
        reason = drop_column_refusal(schema, effect.table, effect.detail, dropped)
        if reason:
            findings.append(
                f"{file.path}:{statement.line}: SQLite refuses to drop "
                f"{effect.table}.{effect.detail}: "
                f"{reason}"
            )
    return findings


def drop_column_refusal(
    schema: Schema, table_name: str, column: str, dropped: set[str] | None = None
) -> str:
    """Why SQLite would refuse `ALTER TABLE table DROP COLUMN column`, or "" if it would not.

    `dropped` names indexes, views and triggers (lower case) already dropped before the statement.
    """
    gone = dropped or set()
    table = next((t for n, t in schema.tables.items() if n.lower() == table_name.lower()), None)
    if table is None:
        return ""
    col = column.lower()
    for c in table.columns:
        if c.name.lower() == col and c.pk:
            return "it is part of the PRIMARY KEY\n  fix: rebuild the table instead"
    for index in schema.indexes.values():
        if index.name.lower() in gone:
            continue
        if index.table.lower() == table_name.lower() and col in (
            str(x).lower() for x in index.columns
        ):
            kind = "a UNIQUE constraint" if index.origin == "u" else f"index {index.name}"
            return f"{kind} uses it\n  fix: drop {kind} first (and recreate it in the rollback)"
    for fk in table.foreign_keys:
        if col in (c.lower() for c in fk.columns):
            return f"it is in a foreign key to {fk.table}\n  fix: rebuild the table instead"
    for check in table.checks:
        if col in _identifiers(check):
            return "a CHECK constraint uses it\n  fix: rebuild the table instead"
    for kind, objects in (("view", schema.views), ("trigger", schema.triggers)):
        for name, obj in objects.items():
            if name.lower() not in gone and col in _identifiers(obj.sql):
                return (
                    f"{kind} {name} uses it\n  fix: drop {kind} {name} first and recreate it after"
                )
    return ""


@functools.lru_cache(maxsize=16_384)
def _identifiers(sql: str) -> frozenset[str]:
    return frozenset(w.value.lower() for w in words(sql) if w.kind in ("word", "ident"))


CHECKS: dict[str, Callable[[Applied], CheckResult]] = {
    "applies": check_applies,
    "rows": check_rows,
    "rollback": check_rollback,
    "idempotent": check_idempotent,
    "d1": check_d1,
    "destructive": check_destructive,
}


def run_checks(applied: Applied) -> dict[str, CheckResult]:
    """Every check on one applied migration."""
    return {name: check(applied) for name, check in CHECKS.items()}


def waiting_results(
    migration: Migration, broken: Migration, policy: Policy
) -> dict[str, CheckResult]:
    """The checks of `migration` while an earlier migration, `broken`, does not apply: what can
    be judged from the file alone runs (`destructive`, the statement-level rules of `d1`); the
    others are skipped naming the migration they wait for."""
    blocker = f"{broken.file_name}, which does not apply (see its ::applies)"
    results = {name: skipped(name, f"waits for {blocker}") for name in CHECK_NAMES}
    results["destructive"] = destructive_result(migration, policy)
    findings = [str(problem) for problem in migration.directive_problems]
    findings += lint_d1(migration.file, Schema())
    if migration.rollback is not None:
        findings += lint_d1(migration.rollback, Schema(), sent_by_wrangler=False)
    if findings:
        note = f"\n(the rules that need the schema wait for {blocker})"
        results["d1"] = failed("d1", "\n".join(findings) + note, file_warnings(migration.file))
    return results


def check_migration(
    before: D1Database, migration: Migration, policy: Policy | None = None
) -> dict[str, CheckResult]:
    """Apply `migration` to a copy of `before` and run every check (a plain-Python entry point)."""
    policy = policy or Policy()
    state = state_of(before, [policy.tracking_table])
    applied = apply_migration(state, migration, policy)
    try:
        return run_checks(applied)
    finally:
        if applied.after is not None:
            applied.after.db.close()
