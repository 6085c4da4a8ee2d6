"""Configuration: `[tool.d1check]` in pyproject.toml, the wrangler config and `config/clients.json`.

`load_config(root)` reads all three into one `Config`.

Without `[tool.d1check.families]`, each `d1_databases` entry of the wrangler config (by binding)
is a family of its own, with its own `migrations_dir` (relative to the wrangler config's folder)
and `migrations_table`; entries sharing a directory share a family, `[env.*]` entries join the
family of their binding (`d1check.families`). A single family is called `default`; several are
named after their binding, lower-cased. Their rollbacks are in `rollbacks/` (one family) or
`rollbacks/<family>/` (several) beside the wrangler config. The client registry belongs to the
only family, or to the family whose wrangler entries name the clients' databases.

When the root has no wrangler config, no `[tool.d1check]` and no `migrations/`, the wrangler
configs of its subfolders are read instead (`d1check.wrangler.find_wrangler_configs`).

With `[tool.d1check.families]`, per family: `migrations_dir` = the family's key, else
`[tool.d1check] migrations_dir`, else the `migrations_dir` of the family's first top-level wrangler
entry, else `migrations/`; `tracking_table` likewise, ending at that entry's `migrations_table`,
else `d1_migrations`; `rollbacks_dir` = the family's key, else `[tool.d1check] rollbacks_dir`,
else `rollbacks/`.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from d1check.clients import Client, ClientRegistry, StagingDatabase, load_clients
from d1check.errors import ConfigError
from d1check.families import (
    DEFAULT_FAMILY,
    DEFAULT_MIGRATIONS_DIR,
    DEFAULT_ROLLBACKS_DIR,
    DEFAULT_TRACKING_TABLE,
    Family,
    check_nested_migrations,
    database_groups,
    implicit_families,
)
from d1check.wrangler import (
    DEFAULT_NORECURSEDIRS,
    WRANGLER_FILES,
    WranglerConfig,
    WranglerDatabase,
    find_wrangler_configs,
    find_wrangler_file,
    load_wrangler_config,
    read_toml,
    type_name,
)

__all__ = [
    "DEFAULT_FAMILY",
    "Client",
    "ClientRegistry",
    "Config",
    "Family",
    "StagingDatabase",
    "WranglerConfig",
    "WranglerDatabase",
    "find_wrangler_file",
    "load_clients",
    "load_config",
    "load_wrangler_config",
]

DEFAULT_CLIENTS_FILE = "config/clients.json"
RESERVED_NAMES = ("local", "staging", "production")
DECLARABLE_NAMES = ("staging", "production")
"""Built-in names that `[tool.d1check.environments]` may declare itself (overriding the rule)."""

_STR, _BOOL, _PATTERNS, _TABLE = "string", "boolean", "string or list of strings", "table"
_KEYS: dict[str, str] = {
    "migrations_dir": _STR,
    "rollbacks_dir": _STR,
    "tracking_table": _STR,
    "require_rollbacks": _BOOL,
    "check_idempotency": _BOOL,
    "allow_destructive": _BOOL,
    "production_schema": _PATTERNS,
    "seed_files": _PATTERNS,
    "clients_file": _STR,
    "families": _TABLE,
    "environments": _TABLE,
}
_FAMILY_KEYS: dict[str, str] = {
    "migrations_dir": _STR,
    "rollbacks_dir": _STR,
    "tracking_table": _STR,
    "binding": _STR,
    "clients": _BOOL,
}


@dataclass(frozen=True)
class Config:
    """The resolved configuration of one project."""

    root: Path
    families: Mapping[str, Family]
    environments: Mapping[str, tuple[str, ...]]
    require_rollbacks: bool = True
    check_idempotency: bool = True
    allow_destructive: bool = False
    production_schema: tuple[str, ...] = ()
    seed_files: tuple[str, ...] = ()
    clients_file: Path | None = None
    wranglers: tuple[WranglerConfig, ...] = ()
    """The wrangler configs read: the root's, or those found in its subfolders."""
    clients: ClientRegistry | None = None
    pyproject: Path | None = None
    found_below: bool = False
    """True when the wrangler configs were found in subfolders of the root."""

    @property
    def wrangler(self) -> WranglerConfig | None:
        """The project's wrangler config, when there is exactly one."""
        return self.wranglers[0] if len(self.wranglers) == 1 else None

    def environment_names(self) -> list[str]:
        """The `[env.*]` names of every wrangler config, each once, in order."""
        names: dict[str, None] = {}
        for wrangler in self.wranglers:
            names.update(dict.fromkeys(wrangler.environments))
        return list(names)

    @property
    def default_family(self) -> Family:
        """The first family (the only one without `[tool.d1check.families]`)."""
        return next(iter(self.families.values()))

    @property
    def migrations_dir(self) -> Path:
        """The first family's migrations directory."""
        return self.default_family.migrations_dir

    @property
    def rollbacks_dir(self) -> Path:
        """The first family's rollbacks directory."""
        return self.default_family.rollbacks_dir

    @property
    def tracking_table(self) -> str:
        """The first family's tracking table."""
        return self.default_family.tracking_table

    def family(self, name: str) -> Family:
        """The family called `name`; ConfigError listing the families otherwise."""
        if name not in self.families:
            known = ", ".join(self.families)
            raise ConfigError(f"no family {name!r} in [tool.d1check.families]; families: {known}")
        return self.families[name]

    def local_database(self, family: str = DEFAULT_FAMILY) -> WranglerDatabase | None:
        """The wrangler entry used for the family's local database (first top-level entry)."""
        if family == DEFAULT_FAMILY and family not in self.families:
            return self.default_family.local_database
        return self.family(family).local_database

    def production_schema_paths(self) -> list[Path]:
        """The files named by `production_schema` (files, directories of *.sql, or globs)."""
        return _resolve_patterns(self.root, self.production_schema, "production_schema")

    def seed_paths(self) -> list[Path]:
        """The files named by `seed_files`, in the order given."""
        return _resolve_patterns(self.root, self.seed_files, "seed_files")


def _resolve_patterns(root: Path, patterns: tuple[str, ...], key: str) -> list[Path]:
    paths: list[Path] = []
    for pattern in patterns:
        path = root / pattern
        if any(c in pattern for c in "*?["):
            paths.extend(sorted(p for p in root.glob(pattern) if p.is_file()))
        elif path.is_dir():
            paths.extend(sorted(p for p in path.iterdir() if p.suffix == ".sql" and p.is_file()))
        elif path.is_file():
            paths.append(path)
        else:
            raise ConfigError(
                f"[tool.d1check] {key}: {pattern!r} does not exist under {root}; "
                "fix the path or remove the entry"
            )
    return paths


# -- reading files --------------------------------------------------------------------------


def _check_type(value: object, expected: str, where: str) -> None:
    ok = {
        _STR: isinstance(value, str),
        _BOOL: isinstance(value, bool),
        _TABLE: isinstance(value, dict),
        _PATTERNS: isinstance(value, str)
        or (isinstance(value, list) and all(isinstance(v, str) for v in value)),
    }[expected]
    if not ok:
        raise ConfigError(
            f"{where}: expected a {expected}, got {type_name(value)} ({value!r}); fix its value"
        )


def _check_keys(table: Mapping[str, object], known: Mapping[str, str], where: str) -> None:
    for key, value in table.items():
        if key not in known:
            hint = difflib.get_close_matches(key, known, n=1)
            did_you_mean = f" (did you mean {hint[0]!r}?)" if hint else ""
            known_keys = ", ".join(sorted(known))
            raise ConfigError(
                f"{where}: unknown key {key!r}{did_you_mean}; known keys: {known_keys}"
            )
        _check_type(value, known[key], f"{where} {key}")


def _patterns(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    return tuple(str(v) for v in value) if isinstance(value, list) else ()


def _tool_table(root: Path) -> tuple[Path | None, dict[str, Any]]:
    path = root / "pyproject.toml"
    if not path.is_file():
        return None, {}
    tool = read_toml(path).get("tool", {})
    table = tool.get("d1check", {}) if isinstance(tool, dict) else {}
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [tool.d1check] must be a table, got {type_name(table)}")
    _check_keys(table, _KEYS, f"{path}: [tool.d1check]")
    return path, table


# -- families declared in [tool.d1check.families] -------------------------------------------


def _family_tables(tool: Mapping[str, Any], where: str) -> dict[str, dict[str, Any]]:
    tables = tool["families"]
    if not tables:
        raise ConfigError(f"{where}.families: empty; declare a family or remove the table")
    for name, table in tables.items():
        family_where = f"{where}.families.{name}]"
        if not isinstance(table, dict):
            got = type_name(table)
            raise ConfigError(f"{family_where}: expected a table, got {got}")
        _check_keys(table, _FAMILY_KEYS, family_where)
    return dict(tables)


def _declared_family(
    name: str,
    table: Mapping[str, Any],
    tool: Mapping[str, Any],
    root: Path,
    wrangler: WranglerConfig | None,
) -> Family:
    binding = table.get("binding")
    databases, in_envs = _family_databases(name, binding, wrangler)
    first = databases[0] if databases else None
    migrations = (
        table.get("migrations_dir")
        or tool.get("migrations_dir")
        or (first.migrations_dir if first else None)
        or DEFAULT_MIGRATIONS_DIR
    )
    rollbacks = table.get("rollbacks_dir") or tool.get("rollbacks_dir") or DEFAULT_ROLLBACKS_DIR
    configured = table.get("tracking_table") or tool.get("tracking_table")
    tracking = configured or (first.migrations_table if first else None) or DEFAULT_TRACKING_TABLE
    return Family(
        name=name,
        migrations_dir=root / migrations,
        rollbacks_dir=root / rollbacks,
        tracking_table=tracking,
        tracking_table_configured=bool(configured),
        binding=binding,
        clients=table.get("clients", False),
        databases=databases,
        environment_databases=in_envs,
        migrations_pattern=_declared_pattern(root / migrations, first, wrangler),
        wrangler=wrangler if binding is not None else None,
    )


def _declared_pattern(
    directory: Path, first: WranglerDatabase | None, wrangler: WranglerConfig | None
) -> str | None:
    """The wrangler entry's `migrations_pattern`, when the entry reads the family's directory."""
    if first is None or wrangler is None or first.migrations_pattern is None:
        return None
    group = next(g for g in database_groups(wrangler) if first in g.databases)
    same = group.migrations_dir == Path(os.path.normpath(directory))
    return group.migrations_pattern if same else None


def _family_databases(
    name: str, binding: str | None, wrangler: WranglerConfig | None
) -> tuple[tuple[WranglerDatabase, ...], tuple[WranglerDatabase, ...]]:
    if wrangler is None:
        if binding is not None:
            raise ConfigError(
                f"[tool.d1check.families.{name}] binding {binding!r}: no wrangler config "
                f"({', '.join(WRANGLER_FILES)}) found; add one or remove `binding`"
            )
        return (), ()
    if binding is None:
        return (), ()
    every = wrangler.every_database()
    if not any(d.binding == binding for d in every):
        bindings = sorted({d.binding for d in every}) or ["none"]
        raise ConfigError(
            f"[tool.d1check.families.{name}] binding {binding!r} is not a d1_databases binding "
            f"in {wrangler.path.name}; bindings there: {', '.join(bindings)}"
        )
    top = tuple(d for d in wrangler.databases if d.binding == binding)
    return top, tuple(d for d in every if d.binding == binding and d.environment is not None)


def _check_families(families: Mapping[str, Family]) -> None:
    for attr in ("migrations_dir", "rollbacks_dir"):
        owners: dict[Path, str] = {}
        for family in families.values():
            path = getattr(family, attr)
            if path in owners:
                raise ConfigError(
                    f"[tool.d1check.families]: families {owners[path]!r} and {family.name!r} "
                    f"share {attr} {path}; give each family its own {attr}"
                )
            owners[path] = family.name
    with_clients = [f.name for f in families.values() if f.clients]
    if len(with_clients) > 1:
        raise ConfigError(
            f"[tool.d1check.families]: families {', '.join(with_clients)} all set clients = true; "
            "the client registry belongs to one family"
        )


# -- environments and names -----------------------------------------------------------------


def _environments(tool: Mapping[str, Any], where: str) -> dict[str, tuple[str, ...]]:
    table = tool.get("environments", {})
    result: dict[str, tuple[str, ...]] = {}
    for name, value in table.items():
        key_where = f"{where}.environments] {name}"
        if name in RESERVED_NAMES and name not in DECLARABLE_NAMES:
            raise ConfigError(
                f"{key_where}: {name!r} is built in (one local database per family); "
                "choose another environment name"
            )
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(
                f"{key_where}: expected a list of strings (database names or client ids), "
                f"got {type_name(value)}"
            )
        result[name] = tuple(value)
    return result


def _env_databases(wranglers: Iterable[WranglerConfig], name: str) -> list[WranglerDatabase]:
    return [db for w in wranglers for db in w.environments.get(name, ())]


def _check_names(
    environments: Mapping[str, tuple[str, ...]],
    wranglers: Sequence[WranglerConfig],
    clients: ClientRegistry | None,
) -> None:
    """A target name means one thing. A wrangler env and a client id of the same name are one
    target when the env holds the client's database (by database_name or database_id)."""
    env_names = {n for w in wranglers for n in w.environments}
    named = [("a [tool.d1check.environments] name", n) for n in environments]
    named += [("a wrangler config env", n) for n in sorted(env_names)]
    owners: dict[str, str] = {}
    for source, name in named:
        if name in owners:
            raise ConfigError(
                f"{name!r} is both {owners[name]} and {source}; rename one so a target name "
                "means one thing"
            )
        owners[name] = source
    if clients is not None:
        _check_client_ids(owners, wranglers, clients)


def _check_client_ids(
    owners: Mapping[str, str], wranglers: Sequence[WranglerConfig], clients: ClientRegistry
) -> None:
    for client in clients.clients:
        if client.id in RESERVED_NAMES:
            raise ConfigError(
                f"{clients.path}: client id {client.id!r} is the name of a built-in target "
                f"({', '.join(RESERVED_NAMES)}); rename the client"
            )
        source = owners.get(client.id)
        if source is None:
            continue
        dbs = _env_databases(wranglers, client.id)
        if source.startswith("a wrangler") and any(
            db.same_database(client.database_name, client.database_id) for db in dbs
        ):
            continue
        found = ", ".join(db.database_name for db in dbs)
        what = f" (databases {found})" if found else ""
        raise ConfigError(
            f"{client.id!r} is both {source}{what} and a client id in {clients.path.name} "
            f"(database {client.database_name}), and they do not name the same database; "
            "rename one so a target name means one thing"
        )


# -- loading --------------------------------------------------------------------------------


def _clients_file(root: Path, tool: Mapping[str, Any]) -> tuple[Path, bool]:
    configured = tool.get("clients_file")
    return root / (configured or DEFAULT_CLIENTS_FILE), configured is not None


def _wrangler_configs(
    root: Path, tool: Mapping[str, Any], norecursedirs: Iterable[str]
) -> tuple[tuple[WranglerConfig, ...], bool]:
    """The root's wrangler config; else, when the root has no `[tool.d1check]` and no
    `migrations/` either, the configs of its subfolders (True: found below)."""
    path = find_wrangler_file(root)
    if path is not None:
        return (load_wrangler_config(path),), False
    if tool or (root / DEFAULT_MIGRATIONS_DIR).is_dir():
        return (), False
    found = find_wrangler_configs(root, norecursedirs=norecursedirs)
    return tuple(load_wrangler_config(p) for p in found), bool(found)


def _families(
    root: Path,
    tool: Mapping[str, Any],
    wranglers: Sequence[WranglerConfig],
    clients: ClientRegistry | None,
    where: str,
) -> dict[str, Family]:
    if "families" not in tool:
        return implicit_families(root, tool, wranglers, clients, where)
    wrangler = wranglers[0] if wranglers else None
    tables = _family_tables(tool, where)
    return {n: _declared_family(n, t, tool, root, wrangler) for n, t in tables.items()}


def load_config(root: Path, *, norecursedirs: Iterable[str] = DEFAULT_NORECURSEDIRS) -> Config:
    """Read the project at `root` into a Config; ConfigError says what is wrong and where.

    `norecursedirs`: folder name patterns not searched for wrangler configs (pytest's option).
    """
    pyproject, tool = _tool_table(root)
    where = f"{pyproject}: [tool.d1check" if pyproject else "[tool.d1check"
    wranglers, found_below = _wrangler_configs(root, tool, norecursedirs)
    clients_path, explicit = _clients_file(root, tool)
    if explicit and not clients_path.is_file():
        raise ConfigError(f"{where}] clients_file: {clients_path} does not exist; fix the path")
    clients = load_clients(clients_path) if clients_path.is_file() else None
    families = _families(root, tool, wranglers, clients, where)
    _check_families(families)
    if clients is None and any(f.clients for f in families.values()):
        raise ConfigError(
            f"{where}.families]: a family sets clients = true but {clients_path} does not exist; "
            "create the client registry or set clients = false"
        )
    check_nested_migrations(families, root)
    environments = _environments(tool, where)
    _check_names(environments, wranglers, clients)
    return Config(
        root=root,
        families=families,
        environments=environments,
        require_rollbacks=tool.get("require_rollbacks", True),
        check_idempotency=tool.get("check_idempotency", True),
        allow_destructive=tool.get("allow_destructive", False),
        production_schema=_patterns(tool.get("production_schema")),
        seed_files=_patterns(tool.get("seed_files")),
        clients_file=clients_path,
        wranglers=wranglers,
        clients=clients,
        pyproject=pyproject,
        found_below=found_below,
    )
