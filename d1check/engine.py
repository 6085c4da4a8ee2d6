"""`D1Database`: SQLite 3.54.1 through apsw, with D1's limits, authorizer and refusals."""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import apsw

from d1check.errors import SQLError
from d1check.statements import Statement, Token, first_keywords, split_statements, tokenize

SQLITE_VERSION = "3.54.1"
APSW_VERSION = "3.54.1.0"

if apsw.sqlite_lib_version() != SQLITE_VERSION:  # pragma: no cover - depends on the install
    raise ImportError(
        f"d1check needs SQLite {SQLITE_VERSION} (the version D1's engine runs), but apsw "
        f"{apsw.apsw_version()} bundles SQLite {apsw.sqlite_lib_version()}: "
        f"run `pip install apsw=={APSW_VERSION}`"
    )

STATEMENT_LIMIT = 100_000
STRING_LIMIT = 2_000_000
COLUMN_LIMIT = 100
VARIABLE_LIMIT = 100
FUNCTION_ARG_LIMIT = 32
LIKE_PATTERN_LIMIT = 50
EXPR_DEPTH_LIMIT = 100
COMPOUND_SELECT_LIMIT = 5
TRIGGER_DEPTH_LIMIT = 10
# Virtual table modules workerd has; apsw's build has more (dbstat), which workerd lacks.
_WORKERD_MODULES = ["fts5", "fts5vocab", "rtree", "rtree_i32", "json_each", "json_tree"]

D1_LIMITS: dict[int, int] = {
    # The statement limit counts the text wrangler sends, without the `;` d1check's statements
    # keep: `run` checks `Statement.sent_bytes` itself, SQLite's check only backs it up.
    apsw.SQLITE_LIMIT_SQL_LENGTH: STATEMENT_LIMIT + 1,
    apsw.SQLITE_LIMIT_LENGTH: STRING_LIMIT,
    apsw.SQLITE_LIMIT_COLUMN: COLUMN_LIMIT,
    apsw.SQLITE_LIMIT_VARIABLE_NUMBER: VARIABLE_LIMIT,
    apsw.SQLITE_LIMIT_FUNCTION_ARG: FUNCTION_ARG_LIMIT,
    apsw.SQLITE_LIMIT_LIKE_PATTERN_LENGTH: LIKE_PATTERN_LIMIT,
    apsw.SQLITE_LIMIT_EXPR_DEPTH: EXPR_DEPTH_LIMIT,
    apsw.SQLITE_LIMIT_COMPOUND_SELECT: COMPOUND_SELECT_LIMIT,
    apsw.SQLITE_LIMIT_TRIGGER_DEPTH: TRIGGER_DEPTH_LIMIT,
}
# Limits lifted inside `internal()`: they bound a statement's text, not the data it leaves behind
# (d1check's own reads of a 100-column table select its rowid too: 101 result columns).
_INTERNAL_LIMITS: dict[int, int] = {
    apsw.SQLITE_LIMIT_SQL_LENGTH: 1_000_000_000,
    apsw.SQLITE_LIMIT_COLUMN: 2000,
    apsw.SQLITE_LIMIT_VARIABLE_NUMBER: 32_766,
    apsw.SQLITE_LIMIT_FUNCTION_ARG: 1000,
    apsw.SQLITE_LIMIT_LIKE_PATTERN_LENGTH: 50_000,
    apsw.SQLITE_LIMIT_EXPR_DEPTH: 1000,
    apsw.SQLITE_LIMIT_COMPOUND_SELECT: 500,
}

TRANSACTION_MESSAGE = (
    "To execute a transaction, please use the state.storage.transaction() or "
    "state.storage.transactionSync() APIs instead of the SQL BEGIN TRANSACTION or SAVEPOINT "
    "statements. The JavaScript API is safer because it will automatically roll back on "
    "exceptions, and because it interacts correctly with Durable Objects' automatic atomic "
    "write coalescing."
)
_TRANSACTION_WORDS = frozenset({"BEGIN", "COMMIT", "END", "ROLLBACK", "SAVEPOINT", "RELEASE"})

_BOOLEAN_PRAGMAS = frozenset(
    {
        "foreign_keys",
        "defer_foreign_keys",
        "legacy_alter_table",
        "recursive_triggers",
        "case_sensitive_like",
        "ignore_check_constraints",
        "reverse_unordered_selects",
    }
)
# Pragmas that name a table or index: D1 refuses them on its internal `_cf_` objects
# (`table_list` takes a name too, and D1 answers it).
_OBJECT_PRAGMAS = frozenset(
    {
        "table_info",
        "table_xinfo",
        "index_list",
        "index_info",
        "index_xinfo",
        "foreign_key_list",
        "foreign_key_check",
        "quick_check",
    }
)
ALLOWED_PRAGMAS = (
    _BOOLEAN_PRAGMAS
    | _OBJECT_PRAGMAS
    | frozenset({"table_list", "optimize", "data_version", "page_size"})
)
_BOOLEAN_VALUES = frozenset({"0", "1", "on", "off", "yes", "no", "true", "false"})
REFUSED_FUNCTIONS = frozenset(
    {
        "sqlite_version",
        "sqlite_source_id",
        "sqlite_compileoption_used",
        "sqlite_compileoption_get",
        "if",
        "unistr",
        "json_pretty",
        "json_error_position",
        "load_extension",
    }
)
# Compiled into apsw's SQLite but not into D1's: D1 answers "no such function".
MISSING_FUNCTIONS = frozenset(
    {"median", "percentile", "percentile_cont", "percentile_disc", "sqlite_offset", "soundex"}
)
ALLOWED_MODULES = frozenset({"fts5", "fts5vocab", "rtree"})
INTERNAL_PREFIX = "_cf_"
TOO_LONG_MESSAGE = "statement too long: SQLITE_TOOBIG"
_CHANGE_HOOK = "d1check-changes"
_RUN_SAVEPOINT = "d1check_run"

_NAME_ARGS: dict[int, tuple[int, ...]] = {
    apsw.SQLITE_CREATE_INDEX: (0, 1),
    apsw.SQLITE_CREATE_TABLE: (0,),
    apsw.SQLITE_CREATE_TRIGGER: (0, 1),
    apsw.SQLITE_CREATE_VIEW: (0,),
    apsw.SQLITE_CREATE_VTABLE: (0,),
    apsw.SQLITE_DROP_INDEX: (0, 1),
    apsw.SQLITE_DROP_TABLE: (0,),
    apsw.SQLITE_DROP_TRIGGER: (0, 1),
    apsw.SQLITE_DROP_VIEW: (0,),
    apsw.SQLITE_DROP_VTABLE: (0,),
    apsw.SQLITE_ALTER_TABLE: (1,),
    apsw.SQLITE_INSERT: (0,),
    apsw.SQLITE_UPDATE: (0,),
    apsw.SQLITE_DELETE: (0,),
    apsw.SQLITE_READ: (0,),
}
# Reading and writing rows: refused only on D1's own tables (the authorizer's most frequent calls).
_DATA_ACTIONS = frozenset(
    {
        apsw.SQLITE_READ,
        apsw.SQLITE_SELECT,
        apsw.SQLITE_INSERT,
        apsw.SQLITE_UPDATE,
        apsw.SQLITE_DELETE,
        apsw.SQLITE_RECURSIVE,
    }
)
_CREATE_ACTIONS = frozenset(
    {
        apsw.SQLITE_CREATE_INDEX,
        apsw.SQLITE_CREATE_TABLE,
        apsw.SQLITE_CREATE_TRIGGER,
        apsw.SQLITE_CREATE_VIEW,
        apsw.SQLITE_CREATE_VTABLE,
    }
)
_TEMP_ACTIONS = frozenset(
    {
        apsw.SQLITE_CREATE_TEMP_INDEX,
        apsw.SQLITE_CREATE_TEMP_TABLE,
        apsw.SQLITE_CREATE_TEMP_TRIGGER,
        apsw.SQLITE_CREATE_TEMP_VIEW,
    }
)


@dataclass(frozen=True)
class IgnoredPragma:
    """A `PRAGMA foreign_keys = …` write that D1 (and so the engine) silently ignored."""

    sql_value: str
    source: str
    line: int | None

    def __str__(self) -> str:
        where = f"{self.source}:{self.line}" if self.line else self.source
        return f"{where}: PRAGMA foreign_keys = {self.sql_value} is ignored on D1"


def engine_description() -> str:
    """One line for report headers: the engine's SQLite and the rules it applies."""
    return f"SQLite {apsw.sqlite_lib_version()} (apsw {apsw.apsw_version()}), D1 rules"


def d1_refusal(statement: Statement) -> str | None:
    """D1's message for a statement refused before SQLite sees it, else None."""
    return _refusal_of(statement.sql)


@functools.lru_cache(maxsize=16_384)
def _refusal_of(sql: str) -> str | None:
    words = first_keywords(sql, 1)
    if not words:
        return None
    if words[0] in _TRANSACTION_WORDS:
        return TRANSACTION_MESSAGE
    if words[0] == "VACUUM":
        return "cannot VACUUM from within a transaction: SQLITE_ERROR"
    if _calls_carray(sql):
        return "no such table: carray: SQLITE_ERROR"
    return None


@functools.lru_cache(maxsize=256)
def _significant_tokens(sql: str) -> tuple[Token, ...]:
    return tuple(t for t in tokenize(sql) if t.kind not in ("ws", "comment"))


def _calls_carray(sql: str) -> bool:
    """workerd has no `carray` table-valued function; apsw's SQLite has it built in."""
    if "carray" not in sql.lower():
        return False
    tokens = _significant_tokens(sql)
    return any(
        t.kind == "word" and t.text.lower() == "carray" and n.text == "("
        for t, n in itertools.pairwise(tokens)
    )


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] in "\"'`[":
        return text[1:-1]
    return text


@functools.lru_cache(maxsize=16_384)
def _rename_target(sql: str) -> str | None:
    """The new name of `ALTER TABLE … RENAME TO name`, else None."""
    if "rename" not in sql.lower():
        return None
    words = [t.text for t in _significant_tokens(sql)]
    upper = [w.upper() for w in words]
    if upper[:2] != ["ALTER", "TABLE"]:
        return None
    for i in range(len(upper) - 2):
        if upper[i] == "RENAME" and upper[i + 1] == "TO":
            return _unquote(words[i + 2])
    return None


def _is_internal_name(name: str | None) -> bool:
    return name is not None and name.lower().startswith(INTERNAL_PREFIX)


_HINTS: tuple[tuple[str, str], ...] = (
    (
        "FOREIGN KEY constraint failed",
        "a row points at a parent row that does not exist (or a parent was deleted under its "
        "children): insert parents first, or set PRAGMA defer_foreign_keys = true for a rebuild",
    ),
    ("too many columns", f"D1 allows at most {COLUMN_LIMIT} columns per table and result set"),
    (
        "Cannot add a NOT NULL column with default value NULL",
        "give the new column a DEFAULT, or add it nullable and backfill it",
    ),
    (
        "too many SQL variables",
        f"D1 allows at most {VARIABLE_LIMIT} bound parameters per statement",
    ),
    (
        "too many terms in compound SELECT",
        f"D1 allows at most {COMPOUND_SELECT_LIMIT} terms in a compound SELECT: "
        "seed rows with one multi-row VALUES list instead of UNION ALL",
    ),
    (
        "Expression tree is too large",
        f"D1 limits expression depth to {EXPR_DEPTH_LIMIT}: use IN (…) instead of long OR chains",
    ),
    (
        "LIKE or GLOB pattern too complex",
        f"D1 limits LIKE/GLOB patterns to {LIKE_PATTERN_LIMIT} bytes",
    ),
    (
        "too many arguments on function",
        f"D1 allows {FUNCTION_ARG_LIMIT} arguments per function (Cloudflare's documented "
        "limit; local workerd accepts up to 127): split the call",
    ),
    (
        "string or blob too big",
        f"D1 limits a string, BLOB or row to {STRING_LIMIT:,} bytes (Cloudflare's documented "
        "limit; local workerd accepts about 8 MB)",
    ),
    (
        "triggers nested too deep",
        f"D1 nests triggers at most {TRIGGER_DEPTH_LIMIT} deep",
    ),
)


def _function_reason(name: str) -> str | None:
    if name in REFUSED_FUNCTIONS:
        return f"D1 does not allow the function {name}()"
    if name in MISSING_FUNCTIONS:
        return f"D1's SQLite is built without {name}()"
    return None


def _hint_for(message: str) -> str:
    for needle, hint in _HINTS:
        if needle in message:
            return hint
    return ""


def _readable(image: bytes) -> bytes:
    """A database image that opens in memory: WAL mode marked as rollback-journal mode."""
    if len(image) > 19 and image[18:20] == b"\x02\x02":
        return image[:18] + b"\x01\x01" + image[20:]
    return image


def _code_name(code: int) -> str:
    name = apsw.mapping_result_codes.get(code & 0xFF, "SQLITE_ERROR")
    return str(name)


def _may_be_too_long(chars: int) -> bool:
    """Whether a text of `chars` characters can exceed D1's statement limit in UTF-8 bytes."""
    return chars * 4 > STATEMENT_LIMIT


def d1_error_message(exc: apsw.Error, sql: str) -> str:
    """An apsw error in D1's words: `<message>[ at offset N]: SQLITE_<CODE>`."""
    text = str(exc).split(": ", 1)[1] if str(exc).startswith(type(exc).__name__) else str(exc)
    if isinstance(exc, apsw.TooBigError) and len(sql.encode("utf-8")) > STATEMENT_LIMIT:
        return TOO_LONG_MESSAGE
    prefix = "not authorized to use function: "
    if text.startswith(prefix) and text[len(prefix) :].lower() in MISSING_FUNCTIONS:
        text = "no such function: " + text[len(prefix) :]
    offset = getattr(exc, "error_offset", -1)
    if isinstance(offset, int) and offset >= 0:
        text += f" at offset {offset}"
    result = int(getattr(exc, "result", apsw.SQLITE_ERROR))
    message = f"{text}: {_code_name(result)}"
    extended = int(getattr(exc, "extendedresult", result))
    if extended != result:
        name = apsw.mapping_extended_result_codes.get(extended)
        if name:
            message += f" (extended: {name})"
    return message


class D1Database:
    """A SQLite database (apsw, 3.54.1) that behaves like D1.

    Foreign keys are always on; `PRAGMA foreign_keys = …` is ignored (and recorded in
    `ignored_pragmas`); the authorizer refuses what D1 refuses; limits are D1's.
    """

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self.connection: apsw.Connection = apsw.Connection(
            ":memory:" if path is None else str(path)
        )
        self._ignored: list[IgnoredPragma] = []
        self._where: tuple[str, int | None] = ("<sql>", None)
        self._denial = ""
        self._internal_depth = 0
        self._changed: set[str] | None = None
        self._pragmas: dict[str, str] = {}
        self._trials = 0
        self._configure()

    def _configure(self) -> None:
        conn = self.connection
        conn.drop_modules(_WORKERD_MODULES)
        for limit, value in D1_LIMITS.items():
            conn.limit(limit, value)
        conn.execute("PRAGMA foreign_keys = ON; PRAGMA recursive_triggers = OFF")
        conn.authorizer = self._authorize

    @classmethod
    def from_bytes(cls, data: bytes) -> D1Database:
        """An in-memory database holding `data` (a serialized SQLite file, WAL or not)."""
        db = cls()
        if data:
            with db.internal() as conn:
                conn.deserialize("main", _readable(data))
        return db

    def to_bytes(self) -> bytes:
        """The database serialized as a SQLite file image."""
        with self.internal() as conn:
            return bytes(conn.serialize("main") or b"")

    def copy(self) -> D1Database:
        """An independent in-memory copy (its `ignored_pragmas` start empty)."""
        return D1Database.from_bytes(self.to_bytes())

    def track_changes(self) -> None:
        """Record, from now on, every table whose rows an INSERT, UPDATE or DELETE touches.

        The preupdate hook sees every row change (triggers, foreign-key actions, WITHOUT ROWID
        tables) and, while set, SQLite does not truncate a table without visiting its rows.
        """
        if self._changed is None:
            self._changed = set()
            self.connection.preupdate_hook(self._record_change, id=_CHANGE_HOOK)

    def _record_change(self, update: apsw.PreUpdate) -> None:
        assert self._changed is not None
        self._changed.add(update.table_name.lower())

    def take_changes(self) -> frozenset[str] | None:
        """Tables (lower-case) whose rows changed since the last call; None when not tracking."""
        if self._changed is None:
            return None
        taken = frozenset(self._changed)
        self._changed.clear()
        return taken

    @property
    def ignored_pragmas(self) -> tuple[IgnoredPragma, ...]:
        """Every `PRAGMA foreign_keys = …` write this database ignored, in order."""
        return tuple(self._ignored)

    def _authorize(
        self, action: int, arg1: str | None, arg2: str | None, db: str | None, _trig: str | None
    ) -> int:
        if action in _DATA_ACTIONS and not _is_internal_name(arg1):
            return apsw.SQLITE_OK
        if db == "temp" and action in _CREATE_ACTIONS:
            action = apsw.SQLITE_CREATE_TEMP_TABLE
        reason = self._refusal_reason(action, arg1, arg2)
        if reason is None:
            return apsw.SQLITE_OK
        if reason == "ignore":
            return apsw.SQLITE_IGNORE
        self._denial = reason
        return apsw.SQLITE_DENY

    def _refusal_reason(self, action: int, arg1: str | None, arg2: str | None) -> str | None:
        args = (arg1, arg2)
        if any(_is_internal_name(args[i]) for i in _NAME_ARGS.get(action, ())):
            return f"names starting with {INTERNAL_PREFIX} are reserved for D1: rename the object"
        if action == apsw.SQLITE_PRAGMA:
            return self._pragma_reason((arg1 or "").lower(), arg2)
        if action == apsw.SQLITE_FUNCTION:
            return _function_reason((arg2 or "").lower())
        if action in (apsw.SQLITE_CREATE_VTABLE, apsw.SQLITE_DROP_VTABLE):
            module = (arg2 or "").lower()
            if module not in ALLOWED_MODULES:
                return f"D1 allows only the fts5, fts5vocab and rtree modules, not {module}"
            return None
        if action in _TEMP_ACTIONS:
            return "D1 does not allow TEMP tables, views, indexes or triggers: drop TEMP"
        if action in (apsw.SQLITE_ATTACH, apsw.SQLITE_DETACH):
            return "D1 does not allow ATTACH or DETACH: a D1 database is one file"
        if action in (apsw.SQLITE_TRANSACTION, apsw.SQLITE_SAVEPOINT):
            return "D1 runs each migration in its own transaction: remove the statement"
        return None

    def _pragma_reason(self, name: str, value: str | None) -> str | None:
        if name not in ALLOWED_PRAGMAS:
            return f"D1 does not allow PRAGMA {name}"
        if name in _OBJECT_PRAGMAS and _is_internal_name(value):
            return (
                f"D1 does not let SQL read its internal {INTERNAL_PREFIX} objects: remove "
                f"PRAGMA {name}({value})"
            )
        if value is None or name not in _BOOLEAN_PRAGMAS:
            return None
        if value.lower() not in _BOOLEAN_VALUES:
            return f"PRAGMA {name} takes a boolean (ON/OFF), not {value}"
        if name != "foreign_keys" and name != "defer_foreign_keys":
            self._pragmas[name] = value
        if name == "foreign_keys":
            source, line = self._where
            self._ignored.append(IgnoredPragma(value, source, line))
            return "ignore"
        return None

    def run(self, statements: Sequence[Statement], *, source: str) -> None:
        """Run one migration file's statements in ONE transaction, as D1 does.

        On any failure nothing of the file remains and `SQLError` names the file, the failing
        statement's line, D1's message and, where obvious, the fix. Inside `trial()` the
        transaction is a savepoint whose end checks foreign keys as COMMIT does.
        """
        nested = self._trials > 0
        with self.internal() as conn:
            conn.execute(f"SAVEPOINT {_RUN_SAVEPOINT}" if nested else "BEGIN")
        try:
            for statement in statements:
                self._run_one(statement, source)
            if nested:
                self._release(source)
            else:
                self._commit(source)
        except BaseException:
            with self.internal() as conn:
                if nested:
                    conn.execute(f"ROLLBACK TO {_RUN_SAVEPOINT}; RELEASE {_RUN_SAVEPOINT}")
                elif not conn.getautocommit():
                    conn.execute("ROLLBACK")
            raise
        finally:
            self._where = ("<sql>", None)

    def run_statement(self, statement: Statement, *, source: str) -> None:
        """Run one statement of a migration file in the transaction already open, as `run` runs
        each of its statements (D1's refusals; `SQLError` with the file and line). A statement
        that fails leaves nothing; the transaction stays open unless the statement ended it."""
        try:
            self._run_one(statement, source)
        finally:
            self._where = ("<sql>", None)

    def _release(self, source: str) -> None:
        """End a run inside `trial()` as COMMIT would end it, keeping the outer transaction."""
        if self.connection.status(apsw.SQLITE_DBSTATUS_DEFERRED_FKS)[0]:
            self._commit(source)
            raise AssertionError("COMMIT succeeded with foreign-key violations pending")
        with self.internal() as conn:
            conn.execute(f"RELEASE {_RUN_SAVEPOINT}; PRAGMA defer_foreign_keys = OFF")

    @contextmanager
    def trial(self) -> Iterator[None]:
        """A block whose runs are undone when it ends, each run as on a fresh `copy()`.

        Inside, `run` behaves as on a copy (the connection settings a fresh copy has, D1's
        end-of-migration foreign-key check, a failed run leaves nothing); afterwards the
        database, its connection settings, recorded changes and `ignored_pragmas` are as they
        were.
        """
        if self._trials or not self.connection.getautocommit():
            raise RuntimeError("trial() needs a database outside any transaction")
        changed = None if self._changed is None else set(self._changed)
        ignored, pragmas = len(self._ignored), dict(self._pragmas)
        self._set_pragmas(dict.fromkeys(pragmas, "OFF"))
        with self.internal() as conn:
            conn.execute("BEGIN")
        self._trials += 1
        try:
            yield
        finally:
            self._trials -= 1
            with self.internal() as conn:
                if not conn.getautocommit():
                    conn.execute("ROLLBACK")
            self._set_pragmas({name: pragmas.get(name, "OFF") for name in self._pragmas})
            self._pragmas = pragmas
            del self._ignored[ignored:]
            if self._changed is not None and changed is not None:
                self._changed.clear()
                self._changed.update(changed)

    def _set_pragmas(self, values: dict[str, str]) -> None:
        with self.internal() as conn:
            for name, value in values.items():
                conn.execute(f"PRAGMA {name} = {value}")

    def run_script(self, text: str, *, source: str = "<sql>") -> None:
        """Split `text` into statements and `run` them."""
        self.run(split_statements(text), source=source)

    def _statement_refusal(self, statement: Statement) -> str | None:
        refusal = d1_refusal(statement)
        if refusal is None and _is_internal_name(_rename_target(statement.sql)):
            self._denial = f"names starting with {INTERNAL_PREFIX} are reserved for D1"
            refusal = "not authorized: SQLITE_AUTH"
        return refusal

    def _run_one(self, statement: Statement, source: str) -> None:
        if _may_be_too_long(statement.lead + len(statement.sql)):
            self._check_sent_size(statement, source)
        refusal = self._statement_refusal(statement)
        if refusal is not None:
            raise SQLError(
                refusal,
                source=source,
                line=statement.line,
                statement=statement.sql,
                hint=self._refusal_hint(refusal),
            )
        self._where = (source, statement.line)
        try:
            for _row in self._execute(statement.sql, ()):
                pass
        except apsw.Error as exc:
            raise self._error(exc, statement.sql, source, statement.line) from None

    def _check_sent_size(self, statement: Statement, source: str) -> None:
        """D1's `statement too long`, counted on the text wrangler sends (`sent_bytes`)."""
        size = statement.sent_bytes
        if size <= STATEMENT_LIMIT:
            return
        comments = (
            f", with the {statement.lead:,} bytes of comments before it" if statement.lead else ""
        )
        fits_alone = statement.lead and size - statement.lead <= STATEMENT_LIMIT
        raise SQLError(
            TOO_LONG_MESSAGE,
            source=source,
            line=statement.line,
            statement=statement.sql,
            hint=f"wrangler sends the statement as {size:,} bytes (without its `;`{comments}); "
            f"D1 allows {STATEMENT_LIMIT:,}: split it (for example into several INSERTs)"
            + (" or move the comments above the previous statement" if fits_alone else ""),
        )

    def _refusal_hint(self, refusal: str) -> str:
        if refusal == TRANSACTION_MESSAGE:
            return (
                "remove BEGIN/COMMIT/SAVEPOINT: D1 runs each migration file in one transaction "
                "(use PRAGMA defer_foreign_keys = true for table rebuilds)"
            )
        if "VACUUM" in refusal:
            return "remove VACUUM: D1 manages its storage itself"
        return self._denial

    def _commit(self, source: str) -> None:
        try:
            with self.internal() as conn:
                conn.execute("COMMIT")
        except apsw.ConstraintError as exc:
            violations = self._violations() or (
                "none left, but SQLite counted a violation while the migration ran (a parent "
                "table dropped while children pointed at it): workerd refuses that too"
            )
            raise SQLError(
                d1_error_message(exc, "COMMIT") + " (deferred, at the end of the migration)",
                source=source,
                hint=f"rows violate foreign keys: {violations}; fix them in the migration before "
                "it ends, and rebuild child tables before their parents",
            ) from None

    def _violations(self) -> str:
        with self.internal() as conn:
            rows = conn.execute("PRAGMA foreign_key_check").fetchall()
        parts = [f"{row[0]} rowid {row[1]} → {row[2]}" for row in rows[:5]]
        more = f" and {len(rows) - 5} more" if len(rows) > 5 else ""
        return ", ".join(parts) + more

    def _error(self, exc: apsw.Error, sql: str, source: str, line: int | None) -> SQLError:
        message = d1_error_message(exc, sql)
        if message.startswith("statement too long"):
            hint = (
                f"the statement has {len(sql.encode('utf-8')):,} bytes; D1 allows "
                f"{STATEMENT_LIMIT:,}: split it (for example into several INSERTs)"
            )
        elif isinstance(exc, apsw.AuthError) or message.startswith("not authorized"):
            hint = self._denial
        else:
            hint = _hint_for(message)
        self._denial = ""
        return SQLError(message, source=source, line=line, statement=sql, hint=hint)

    def _execute(self, sql: str, params: Sequence[object]) -> apsw.Cursor:
        cursor = self.connection.cursor()
        cursor.execute(sql, tuple(params))
        return cursor

    def _guarded(self, sql: str, params: Sequence[object]) -> apsw.Cursor:
        if _may_be_too_long(len(sql)) and len(sql.encode("utf-8")) > STATEMENT_LIMIT:
            raise SQLError(
                TOO_LONG_MESSAGE,
                statement=sql[:200],
                hint=f"the SQL has {len(sql.encode('utf-8')):,} bytes; D1 allows "
                f"{STATEMENT_LIMIT:,} per statement",
            )
        for statement in split_statements(sql):
            refusal = self._statement_refusal(statement)
            if refusal is not None:
                raise SQLError(refusal, statement=statement.sql, hint=self._refusal_hint(refusal))
        try:
            return self._execute(sql, params)
        except apsw.Error as exc:
            raise self._error(exc, sql, "<sql>", None) from None

    def query(self, sql: str, params: Sequence[object] = ()) -> list[dict[str, object]]:
        """Rows as dicts, under D1's rules."""
        cursor = self._guarded(sql, params)
        try:
            names = [d[0] for d in cursor.get_description()]
        except apsw.ExecutionCompleteError:
            return []
        try:
            return [dict(zip(names, row, strict=True)) for row in cursor]
        except apsw.Error as exc:
            raise self._error(exc, sql, "<sql>", None) from None

    def execute(self, sql: str, params: Sequence[object] = ()) -> list[tuple[object, ...]]:
        """Rows as tuples, under D1's rules."""
        cursor = self._guarded(sql, params)
        try:
            return [tuple(row) for row in cursor]
        except apsw.Error as exc:
            raise self._error(exc, sql, "<sql>", None) from None

    def internal(self) -> _Internal:
        """The connection for d1check's own bookkeeping: no D1 authorizer, statement limits lifted
        (a context manager giving the connection; blocks may nest).

        Foreign keys stay on; data limits (string/row size) stay D1's.
        """
        return _Internal(self)

    def close(self) -> None:
        """Close the connection."""
        self.connection.close()

    def __enter__(self) -> D1Database:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class _Internal:
    """`D1Database.internal()`: lifts D1's authorizer and statement limits while inside."""

    __slots__ = ("db",)

    def __init__(self, db: D1Database) -> None:
        self.db = db

    def __enter__(self) -> apsw.Connection:
        db = self.db
        conn = db.connection
        db._internal_depth += 1
        if db._internal_depth == 1:
            conn.authorizer = None
            for limit, value in _INTERNAL_LIMITS.items():
                conn.limit(limit, value)
        return conn

    def __exit__(self, *exc: object) -> None:
        db = self.db
        conn = db.connection
        db._internal_depth -= 1
        if db._internal_depth == 0:
            for limit in _INTERNAL_LIMITS:
                conn.limit(limit, D1_LIMITS[limit])
            conn.authorizer = db._authorize
