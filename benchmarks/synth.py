"""Deterministic generator of realistic synthetic D1 migration histories with symmetric rollbacks.

Usage: ``python benchmarks/synth.py N OUTDIR [--seed S]`` writes ``OUTDIR/migrations``,
``OUTDIR/rollbacks`` and ``OUTDIR/pyproject.toml``.
"""

from __future__ import annotations

import argparse
import random
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

WORDS = tuple(
    [
        "users",
        "accounts",
        "orders",
        "products",
        "invoices",
        "payments",
        "shipments",
        "reviews",
        "tags",
        "projects",
        "tasks",
        "comments",
        "teams",
        "events",
        "sessions",
        "devices",
        "articles",
        "coupons",
        "carts",
        "addresses",
    ]
)
COLUMN_WORDS = tuple(
    [
        "status",
        "note",
        "score",
        "priority",
        "region",
        "email",
        "phone",
        "title",
        "amount",
        "currency",
        "flag",
        "rank",
        "label",
        "source",
        "owner",
        "locale",
        "timezone",
        "color",
        "weight",
        "ref",
    ]
)
ADDED_KINDS: tuple[tuple[str, bool, str | None], ...] = (
    ("TEXT", False, None),
    ("INTEGER", False, "0"),
    ("TEXT", True, "'n/a'"),
    ("REAL", False, None),
    ("INTEGER", True, "1"),
)
ON_DELETE = ("CASCADE", "SET NULL", "NO ACTION")
MAX_COLUMNS = 60
DESTRUCTIVE = re.compile(r"(DROP|ALTER TABLE \S+ (DROP|RENAME))\b")


@dataclass(frozen=True)
class GeneratedMigration:
    """One migration of a synthetic history: its name, its SQL and its rollback's SQL."""

    number: int
    name: str
    sql: str
    rollback_sql: str


@dataclass
class _Column:
    name: str
    type: str
    notnull: bool = False
    default: str | None = None
    base: bool = False
    parent: str | None = None
    on_delete: str = "NO ACTION"

    def sql(self) -> str:
        parts = [self.name, self.type]
        if self.name == "id":
            parts.append("PRIMARY KEY")
        if self.notnull:
            parts.append("NOT NULL")
        if self.default is not None:
            parts.append(f"DEFAULT {self.default}")
        if self.parent is not None:
            parts.append(f"REFERENCES {self.parent}(id) ON DELETE {self.on_delete}")
        return " ".join(parts)


@dataclass
class _Index:
    name: str
    table: str
    columns: tuple[str, ...]
    partial: bool

    def sql(self) -> str:
        where = f" WHERE {self.columns[0]} IS NOT NULL" if self.partial else ""
        cols = ", ".join(self.columns)
        return f"CREATE INDEX IF NOT EXISTS {self.name} ON {self.table}({cols}){where};"


@dataclass
class _View:
    name: str
    table: str
    columns: tuple[str, ...]

    def sql(self) -> str:
        cols = ", ".join(self.columns)
        return f"CREATE VIEW IF NOT EXISTS {self.name} AS SELECT {cols} FROM {self.table};"


@dataclass
class _Trigger:
    name: str
    table: str
    on_insert: bool

    def sql(self) -> str:
        event = "INSERT" if self.on_insert else "UPDATE OF name"
        return (
            f"CREATE TRIGGER IF NOT EXISTS {self.name} AFTER {event} ON {self.table} "
            f"FOR EACH ROW BEGIN UPDATE {self.table} SET updated_at = CURRENT_TIMESTAMP "
            f"WHERE id = NEW.id; END;"
        )


@dataclass
class _Table:
    name: str
    columns: list[_Column]


@dataclass
class _State:
    """The generator's model of the schema after the migrations generated so far."""

    tables: dict[str, _Table] = field(default_factory=dict)
    indexes: dict[str, _Index] = field(default_factory=dict)
    views: dict[str, _View] = field(default_factory=dict)
    triggers: dict[str, _Trigger] = field(default_factory=dict)

    def pinned(self, table: str) -> set[str]:
        used: set[str] = set()
        for index in self.indexes.values():
            if index.table == table:
                used.update(index.columns)
        for view in self.views.values():
            if view.table == table:
                used.update(view.columns)
        return used

    def children(self, table: str) -> list[_Column]:
        return [c for t in self.tables.values() for c in t.columns if c.parent == table]

    def added_columns(self, table: str) -> list[_Column]:
        return [c for c in self.tables[table].columns if not c.base]


@dataclass(frozen=True)
class _Step:
    slug: str
    up: list[str]
    down: list[str]
    directives: tuple[str, ...] = ()


def _create_table(state: _State, rng: random.Random, k: int) -> _Step | None:
    name = f"{rng.choice(WORDS)}_{k:04d}"
    columns = [
        _Column("id", "INTEGER", base=True),
        _Column("name", "TEXT", notnull=True, default="''", base=True),
        _Column("created_at", "TEXT", notnull=True, default="CURRENT_TIMESTAMP", base=True),
        _Column("updated_at", "TEXT", base=True),
    ]
    parents = rng.sample(sorted(state.tables), min(len(state.tables), rng.choice((0, 1, 1, 2))))
    for parent in parents:
        columns.append(
            _Column(
                f"{parent}_id", "INTEGER", base=True, parent=parent, on_delete=rng.choice(ON_DELETE)
            )
        )
    table = _Table(name, columns)
    state.tables[name] = table
    body = ",\n    ".join(c.sql() for c in columns)
    up = [f"CREATE TABLE IF NOT EXISTS {name} (\n    {body}\n);"]
    fk_cols = [c.name for c in columns if c.parent is not None]
    fk_values = [f"(SELECT min(id) FROM {c.parent})" for c in columns if c.parent is not None]
    for i in range(rng.randint(1, 3)):
        seed = f"seed:{k}:{i}"
        cols = ", ".join(["name", *fk_cols])
        values = ", ".join([f"'{seed}'", *fk_values])
        up.append(
            f"INSERT INTO {name} ({cols}) SELECT {values} "
            f"WHERE NOT EXISTS (SELECT 1 FROM {name} WHERE name = '{seed}');"
        )
    fk_index = _Index(f"ix_{name}_{fk_cols[0]}", name, (fk_cols[0],), False) if fk_cols else None
    if fk_index is not None:
        state.indexes[fk_index.name] = fk_index
        up.append(fk_index.sql())
    down = [f"DROP TABLE IF EXISTS {name};"]
    return _Step(f"create_{name}", up, down)


def _pick_table(state: _State, rng: random.Random, ok: Callable[[str], bool]) -> str | None:
    candidates = [t for t in sorted(state.tables) if ok(t)]
    return rng.choice(candidates) if candidates else None


def _add_column(state: _State, rng: random.Random, k: int) -> _Step | None:
    table = _pick_table(state, rng, lambda t: len(state.tables[t].columns) < MAX_COLUMNS)
    if table is None:
        return None
    col_type, notnull, default = rng.choice(ADDED_KINDS)
    column = _Column(f"{rng.choice(COLUMN_WORDS)}_{k:04d}", col_type, notnull, default)
    state.tables[table].columns.append(column)
    up = [f"ALTER TABLE {table} ADD COLUMN {column.sql()};"]
    down = [f"ALTER TABLE {table} DROP COLUMN {column.name};"]
    directives = ("not-idempotent ADD COLUMN has no IF NOT EXISTS in SQLite",)
    return _Step(f"add_{column.name}_to_{table}", up, down, directives)


def _drop_column(state: _State, rng: random.Random, k: int) -> _Step | None:
    def droppable(t: str) -> bool:
        last = state.tables[t].columns[-1]
        in_views = any(last.name in v.columns for v in state.views.values() if v.table == t)
        return not last.base and not in_views

    table = _pick_table(state, rng, droppable)
    if table is None:
        return None
    column = state.tables[table].columns.pop()
    indexes = [i for i in state.indexes.values() if i.table == table and column.name in i.columns]
    for index in indexes:
        del state.indexes[index.name]
    up = [f"DROP INDEX IF EXISTS {i.name};" for i in indexes]
    up.append(f"ALTER TABLE {table} DROP COLUMN {column.name};")
    down = [f"ALTER TABLE {table} ADD COLUMN {column.sql()};", *(i.sql() for i in indexes)]
    directives = (
        f"allow-destructive {column.name} is no longer used",
        "not-idempotent DROP COLUMN has no IF EXISTS in SQLite",
    )
    return _Step(f"drop_{column.name}_from_{table}", up, down, directives)


def _rename_column(state: _State, rng: random.Random, k: int) -> _Step | None:
    def renamable(t: str) -> bool:
        pinned = state.pinned(t)
        return any(c.name not in pinned for c in state.added_columns(t))

    table = _pick_table(state, rng, renamable)
    if table is None:
        return None
    pinned = state.pinned(table)
    column = rng.choice([c for c in state.added_columns(table) if c.name not in pinned])
    old, new = column.name, f"{column.name.rsplit('_', 1)[0]}_r{k:04d}"
    column.name = new
    up = [f"ALTER TABLE {table} RENAME COLUMN {old} TO {new};"]
    down = [f"ALTER TABLE {table} RENAME COLUMN {new} TO {old};"]
    directives = (
        f"allow-destructive renames {old}: readers switch to {new}",
        "not-idempotent RENAME COLUMN fails once renamed",
    )
    return _Step(f"rename_{old}", up, down, directives)


def _create_index(state: _State, rng: random.Random, k: int) -> _Step | None:
    def unindexed(t: str) -> list[_Column]:
        indexed = {i.columns[0] for i in state.indexes.values() if i.table == t}
        return [c for c in state.added_columns(t) if c.name not in indexed]

    table = _pick_table(state, rng, lambda t: bool(unindexed(t)))
    if table is None:
        return None
    column = rng.choice(unindexed(table))
    columns = (column.name, "name") if rng.random() < 0.3 else (column.name,)
    index = _Index(f"ix_{table}_{k:04d}", table, columns, rng.random() < 0.25)
    state.indexes[index.name] = index
    return _Step(f"index_{table}", [index.sql()], [f"DROP INDEX IF EXISTS {index.name};"])


def _drop_index(state: _State, rng: random.Random, k: int) -> _Step | None:
    if not state.indexes:
        return None
    index = state.indexes.pop(rng.choice(sorted(state.indexes)))
    directives = (f"allow-destructive {index.name} is unused",)
    return _Step(
        f"drop_{index.name}", [f"DROP INDEX IF EXISTS {index.name};"], [index.sql()], directives
    )


def _create_view(state: _State, rng: random.Random, k: int) -> _Step | None:
    table = _pick_table(state, rng, lambda t: True)
    if table is None:
        return None
    added = state.added_columns(table)
    extra = (rng.choice(added).name,) if added and rng.random() < 0.7 else ()
    view = _View(f"v_{table}_{k:04d}", table, ("id", "name", *extra))
    state.views[view.name] = view
    return _Step(f"view_{table}", [view.sql()], [f"DROP VIEW IF EXISTS {view.name};"])


def _create_trigger(state: _State, rng: random.Random, k: int) -> _Step | None:
    table = _pick_table(state, rng, lambda t: True)
    if table is None:
        return None
    trigger = _Trigger(f"tr_{table}_{k:04d}", table, rng.random() < 0.5)
    state.triggers[trigger.name] = trigger
    return _Step(f"trigger_{table}", [trigger.sql()], [f"DROP TRIGGER IF EXISTS {trigger.name};"])


def _seed_rows(state: _State, rng: random.Random, k: int) -> _Step | None:
    table = _pick_table(state, rng, lambda t: True)
    if table is None:
        return None
    up, down = [], []
    for i in range(rng.randint(1, 4)):
        seed = f"seed:{k}:{i}"
        up.append(
            f"INSERT INTO {table} (name) SELECT '{seed}' "
            f"WHERE NOT EXISTS (SELECT 1 FROM {table} WHERE name = '{seed}');"
        )
        down.append(f"DELETE FROM {table} WHERE name = '{seed}';")
    return _Step(f"seed_{table}", up, down)


def _backfill(state: _State, rng: random.Random, k: int) -> _Step | None:
    def nullable(t: str) -> list[_Column]:
        return [c for c in state.added_columns(t) if not c.notnull and c.type == "TEXT"]

    table = _pick_table(state, rng, lambda t: bool(nullable(t)))
    if table is None:
        return None
    column = rng.choice(nullable(table))
    value = f"'backfill:{k}'"
    up = [f"UPDATE {table} SET {column.name} = {value} WHERE {column.name} IS NULL;"]
    down = [f"UPDATE {table} SET {column.name} = NULL WHERE {column.name} = {value};"]
    return _Step(f"backfill_{column.name}", up, down)


def _rebuild_sql(state: _State, table: str, target: list[_Column], copy: list[str]) -> list[str]:
    tmp = f"{table}__new"
    sql: list[str] = []
    views = [v for v in state.views.values() if v.table == table]
    sql += [f"DROP VIEW IF EXISTS {v.name};" for v in views]
    body = ",\n    ".join(c.sql() for c in target)
    sql.append(f"CREATE TABLE IF NOT EXISTS {tmp} (\n    {body}\n);")
    names = ", ".join(c.name for c in target)
    sql.append(f"INSERT INTO {tmp} ({names}) SELECT {', '.join(copy)} FROM {table};")
    sql.append(f"DROP TABLE {table};")
    sql.append(f"ALTER TABLE {tmp} RENAME TO {table};")
    sql += [i.sql() for i in state.indexes.values() if i.table == table]
    sql += [t.sql() for t in state.triggers.values() if t.table == table]
    sql += [v.sql() for v in views]
    return sql


def _rebuild(state: _State, rng: random.Random, k: int) -> _Step | None:
    def safe(t: str) -> bool:
        return not state.children(t) and bool(state.added_columns(t))

    table = _pick_table(state, rng, safe)
    if table is None:
        return None
    before = [_Column(**vars(c)) for c in state.tables[table].columns]
    column = rng.choice(state.added_columns(table))
    old_copy = [c.name for c in before]
    if column.notnull and rng.random() < 0.5:
        column.notnull = False
        change = f"{column.name} becomes nullable"
    else:
        column.default = f"'v{k}'" if column.type == "TEXT" else str(k)
        change = f"{column.name} gets DEFAULT {column.default}"
    new_copy = list(old_copy)
    after = state.tables[table].columns
    up = _rebuild_sql(state, table, after, new_copy)
    down = _rebuild_sql(state, table, before, [c.name for c in after])
    directives = (f"allow-destructive D1-safe rebuild of {table} (no child tables): {change}",)
    return _Step(f"rebuild_{table}", up, down, directives)


_Op = Callable[[_State, random.Random, int], "_Step | None"]
OPERATIONS: tuple[tuple[_Op, float], ...] = (
    (_create_table, 0.13),
    (_add_column, 0.20),
    (_drop_column, 0.06),
    (_rename_column, 0.05),
    (_create_index, 0.12),
    (_drop_index, 0.04),
    (_create_view, 0.07),
    (_create_trigger, 0.07),
    (_seed_rows, 0.10),
    (_backfill, 0.08),
    (_rebuild, 0.08),
)


def _render(step: _Step, number: int, header: str) -> str:
    lines = [f"-- {header} {number:04d}: {step.slug.replace('_', ' ')}"]
    lines += [f"-- d1check: {d}" for d in step.directives]
    return "\n".join([*lines, *step.up, ""])


def _render_rollback(step: _Step, number: int) -> str:
    lines = [f"-- Rollback of {number:04d}: {step.slug.replace('_', ' ')}"]
    if any(DESTRUCTIVE.match(sql) for sql in step.down):
        lines.append(f"-- d1check: allow-destructive undoes migration {number:04d}")
    return "\n".join([*lines, *step.down, ""])


def _next_step(state: _State, rng: random.Random, k: int) -> _Step:
    if not state.tables:
        step = _create_table(state, rng, k)
    else:
        ops, weights = zip(*OPERATIONS, strict=True)
        step = rng.choices(ops, weights)[0](state, rng, k)
        if step is None:
            step = _add_column(state, rng, k) or _create_table(state, rng, k)
    assert step is not None
    return step


def generate(n: int, seed: int = 0) -> list[GeneratedMigration]:
    """A history of ``n`` migrations with their rollbacks; the same seed gives the same files."""
    rng = random.Random(seed)
    state = _State()
    history: list[GeneratedMigration] = []
    for k in range(1, n + 1):
        step = _next_step(state, rng, k)
        name = f"{k:04d}_{step.slug}"[:80]
        history.append(
            GeneratedMigration(k, name, _render(step, k, "Migration"), _render_rollback(step, k))
        )
    return history


PYPROJECT = """[tool.d1check]
migrations_dir = "migrations"
rollbacks_dir = "rollbacks"
"""


def write_project(history: Sequence[GeneratedMigration], outdir: Path) -> None:
    """Write ``history`` as ``migrations/``, ``rollbacks/`` and ``pyproject.toml`` in ``outdir``."""
    migrations, rollbacks = outdir / "migrations", outdir / "rollbacks"
    migrations.mkdir(parents=True, exist_ok=True)
    rollbacks.mkdir(parents=True, exist_ok=True)
    for m in history:
        (migrations / f"{m.name}.sql").write_text(m.sql, encoding="utf-8")
        (rollbacks / f"{m.number:04d}_rollback.sql").write_text(m.rollback_sql, encoding="utf-8")
    (outdir / "pyproject.toml").write_text(PYPROJECT, encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``synth.py N OUTDIR [--seed S]``."""
    parser = argparse.ArgumentParser(description="Write a synthetic D1 migration history.")
    parser.add_argument("n", type=int, help="number of migrations (10 to 2000)")
    parser.add_argument("outdir", type=Path)
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    args = parser.parse_args(argv)
    if not 1 <= args.n <= 9999:
        parser.error(f"N must be between 1 and 9999, got {args.n}")
    write_project(generate(args.n, args.seed), args.outdir)
    print(f"wrote {args.n} migrations and rollbacks to {args.outdir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
