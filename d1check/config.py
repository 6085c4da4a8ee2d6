"""Configuration: `[tool.d1check]` in pyproject.toml, the wrangler config and `config/clients.json`.

`load_config(root)` reads all three into one `Config`. Precedence, per family:
`migrations_dir` = the family's key, else `[tool.d1check] migrations_dir`, else the `migrations_dir`
of the family's first top-level wrangler `d1_databases` entry, else `migrations/`;
`tracking_table` likewise, ending at that entry's `migrations_table`, else `d1_migrations`;
`rollbacks_dir` = the family's key, else `[tool.d1check] rollbacks_dir`, else `rollbacks/`.
Without `[tool.d1check.families]` there is one family, `default`, holding every top-level wrangler
database and, when the client registry exists, its clients.
"""

from __future__ import annotations

import difflib
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import json5

from d1check.errors import ConfigError

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

DEFAULT_FAMILY = "default"
DEFAULT_MIGRATIONS_DIR = "migrations"
DEFAULT_ROLLBACKS_DIR = "rollbacks"
DEFAULT_TRACKING_TABLE = "d1_migrations"
DEFAULT_CLIENTS_FILE = "config/clients.json"
WRANGLER_FILES = ("wrangler.json", "wrangler.jsonc", "wrangler.toml")
RESERVED_NAMES = ("local", "staging", "production")

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
class WranglerDatabase:
    """One `d1_databases` entry; `environment` is None at the top level, else the env name."""

    binding: str
    database_name: str
    database_id: str | None
    preview_database_id: str | None = None
    migrations_dir: str | None = None
    migrations_table: str | None = None
    environment: str | None = None


@dataclass(frozen=True)
class WranglerConfig:
    """What d1check reads from wrangler.toml / wrangler.json / wrangler.jsonc."""

    path: Path
    account_id: str | None
    databases: tuple[WranglerDatabase, ...]
    environments: Mapping[str, tuple[WranglerDatabase, ...]]
    environment_account_ids: Mapping[str, str]


@dataclass(frozen=True)
class Client:
    """One client database of the registry."""

    id: str
    name: str
    database_name: str
    database_id: str
    active: bool


@dataclass(frozen=True)
class StagingDatabase:
    """The `"staging"` entry of the client registry."""

    database_name: str
    database_id: str


@dataclass(frozen=True)
class ClientRegistry:
    """`config/clients.json`: one database per client, plus an optional staging database."""

    path: Path
    clients: tuple[Client, ...]
    staging: StagingDatabase | None


@dataclass(frozen=True)
class Family:
    """Databases that share one migrations directory and tracking table."""

    name: str
    migrations_dir: Path
    rollbacks_dir: Path
    tracking_table: str
    tracking_table_configured: bool
    binding: str | None
    clients: bool
    databases: tuple[WranglerDatabase, ...]
    all_bindings: bool = False  # the implicit `default` family holds every wrangler database

    @property
    def local_database(self) -> WranglerDatabase | None:
        """The wrangler entry whose local (miniflare) file is the family's local database."""
        return self.databases[0] if self.databases else None

    def tracking_table_for(self, database: WranglerDatabase | None) -> str:
        """The tracking table of `database`: configured, else its `migrations_table`, else
        `d1_migrations`; for a database with no wrangler entry (a client), the family's."""
        if self.tracking_table_configured or database is None:
            return self.tracking_table
        return database.migrations_table or DEFAULT_TRACKING_TABLE

    def owns(self, database: WranglerDatabase) -> bool:
        """Whether a wrangler entry (top level or env) belongs to this family."""
        return self.all_bindings or (self.binding is not None and database.binding == self.binding)


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
    wrangler: WranglerConfig | None = None
    clients: ClientRegistry | None = None
    pyproject: Path | None = None

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


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}; fix the file") from exc


def _read_json(path: Path) -> Any:
    try:
        return json5.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid JSON: {exc}; fix the file") from exc


def _type_name(value: object) -> str:
    """The TOML/JSON name of `value`'s type, with its article: "an integer"."""
    names = {
        str: "a string",
        bool: "a boolean",
        int: "an integer",
        float: "a float",
        list: "a list",
    }
    return names.get(type(value), "a table" if isinstance(value, dict) else "a null")


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
            f"{where}: expected a {expected}, got {_type_name(value)} ({value!r}); fix its value"
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
    tool = _read_toml(path).get("tool", {})
    table = tool.get("d1check", {}) if isinstance(tool, dict) else {}
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [tool.d1check] must be a table, got {_type_name(table)}")
    _check_keys(table, _KEYS, f"{path}: [tool.d1check]")
    return path, table


# -- wrangler -------------------------------------------------------------------------------


def _optional_str(entry: Mapping[str, Any], key: str, where: str) -> str | None:
    value = entry.get(key)
    if value is not None and not isinstance(value, str):
        raise ConfigError(f"{where} {key}: expected a string, got {_type_name(value)}")
    return value


def _wrangler_database(entry: object, where: str, env: str | None) -> WranglerDatabase:
    if not isinstance(entry, dict):
        raise ConfigError(f"{where}: expected a table, got {_type_name(entry)}")
    binding = _optional_str(entry, "binding", where)
    if not binding:
        raise ConfigError(f"{where}: a d1_databases entry needs a `binding`; add one")
    return WranglerDatabase(
        binding=binding,
        database_name=_optional_str(entry, "database_name", where) or binding,
        database_id=_optional_str(entry, "database_id", where),
        preview_database_id=_optional_str(entry, "preview_database_id", where),
        migrations_dir=_optional_str(entry, "migrations_dir", where),
        migrations_table=_optional_str(entry, "migrations_table", where),
        environment=env,
    )


def _wrangler_databases(
    table: Mapping[str, Any], path: Path, prefix: str, env: str | None
) -> tuple[WranglerDatabase, ...]:
    entries = table.get("d1_databases", [])
    if not isinstance(entries, list):
        got = _type_name(entries)
        raise ConfigError(f"{path}: {prefix}d1_databases: expected a list, got {got}")
    return tuple(
        _wrangler_database(e, f"{path}: {prefix}d1_databases[{i}]", env)
        for i, e in enumerate(entries)
    )


def find_wrangler_file(root: Path) -> Path | None:
    """The wrangler config at `root`, in wrangler's preference: .json, .jsonc, .toml."""
    return next((root / n for n in WRANGLER_FILES if (root / n).is_file()), None)


def load_wrangler_config(path: Path) -> WranglerConfig:
    """Read the D1 part of a wrangler config (TOML, JSON or JSON with comments)."""
    data = _read_toml(path) if path.suffix == ".toml" else _read_json(path)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected an object at the top level")
    envs = data.get("env", {})
    if not isinstance(envs, dict):
        raise ConfigError(f"{path}: env: expected a table, got {_type_name(envs)}")
    environments: dict[str, tuple[WranglerDatabase, ...]] = {}
    account_ids: dict[str, str] = {}
    for name, table in envs.items():
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: env.{name}: expected a table, got {_type_name(table)}")
        environments[name] = _wrangler_databases(table, path, f"env.{name}.", name)
        account = _optional_str(table, "account_id", f"{path}: env.{name}")
        if account:
            account_ids[name] = account
    return WranglerConfig(
        path=path,
        account_id=_optional_str(data, "account_id", str(path)),
        databases=_wrangler_databases(data, path, "", None),
        environments=environments,
        environment_account_ids=account_ids,
    )


# -- clients --------------------------------------------------------------------------------


def _required_str(entry: Mapping[str, Any], key: str, where: str) -> str:
    value = _optional_str(entry, key, where)
    if not value:
        raise ConfigError(f"{where}: missing {key!r}; every entry needs it")
    return value


def _client(entry: object, where: str) -> Client:
    if not isinstance(entry, dict):
        raise ConfigError(f"{where}: expected an object, got {_type_name(entry)}")
    active = entry.get("active", True)
    if not isinstance(active, bool):
        raise ConfigError(f"{where} active: expected a boolean, got {_type_name(active)}")
    client_id = _required_str(entry, "id", where)
    return Client(
        id=client_id,
        name=_optional_str(entry, "name", where) or client_id,
        database_name=_required_str(entry, "database_name", where),
        database_id=_required_str(entry, "database_id", where),
        active=active,
    )


def load_clients(path: Path) -> ClientRegistry:
    """Read a client registry: `{"clients": [{id, name, database_name, database_id, active}],
    "staging": {database_name, database_id}}`."""
    data = _read_json(path)
    if not isinstance(data, dict):
        raise ConfigError(f'{path}: expected an object with a "clients" list')
    entries = data.get("clients", [])
    if not isinstance(entries, list):
        raise ConfigError(f"{path}: clients: expected a list, got {_type_name(entries)}")
    clients = tuple(_client(e, f"{path}: clients[{i}]") for i, e in enumerate(entries))
    seen: set[str] = set()
    for client in clients:
        if client.id in seen:
            raise ConfigError(f"{path}: client id {client.id!r} appears twice; ids must be unique")
        seen.add(client.id)
    staging = data.get("staging")
    if staging is not None and not isinstance(staging, dict):
        raise ConfigError(f"{path}: staging: expected an object, got {_type_name(staging)}")
    return ClientRegistry(path, clients, _staging(staging, f"{path}: staging"))


def _staging(entry: Mapping[str, Any] | None, where: str) -> StagingDatabase | None:
    if entry is None:
        return None
    name = _required_str(entry, "database_name", where)
    return StagingDatabase(name, _required_str(entry, "database_id", where))


# -- families and environments --------------------------------------------------------------


def _family_tables(tool: Mapping[str, Any], where: str) -> dict[str, dict[str, Any]]:
    tables = tool.get("families")
    if tables is None:
        return {DEFAULT_FAMILY: {}}
    if not tables:
        raise ConfigError(f"{where}.families: empty; declare a family or remove the table")
    for name, table in tables.items():
        family_where = f"{where}.families.{name}]"
        if not isinstance(table, dict):
            got = _type_name(table)
            raise ConfigError(f"{family_where}: expected a table, got {got}")
        _check_keys(table, _FAMILY_KEYS, family_where)
    return dict(tables)


def _build_family(
    name: str,
    table: Mapping[str, Any],
    tool: Mapping[str, Any],
    root: Path,
    wrangler: WranglerConfig | None,
    implicit: bool,
    has_clients: bool,
) -> Family:
    binding = table.get("binding")
    databases = _family_databases(name, binding, wrangler, implicit)
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
        clients=table.get("clients", implicit and has_clients),
        databases=databases,
        all_bindings=implicit,
    )


def _family_databases(
    name: str, binding: str | None, wrangler: WranglerConfig | None, implicit: bool
) -> tuple[WranglerDatabase, ...]:
    if wrangler is None:
        if binding is not None:
            raise ConfigError(
                f"[tool.d1check.families.{name}] binding {binding!r}: no wrangler config "
                f"({', '.join(WRANGLER_FILES)}) found; add one or remove `binding`"
            )
        return ()
    if binding is None:
        return wrangler.databases if implicit else ()
    found = tuple(d for d in wrangler.databases if d.binding == binding)
    every = wrangler.databases + tuple(d for e in wrangler.environments.values() for d in e)
    if not any(d.binding == binding for d in every):
        bindings = sorted({d.binding for d in every}) or ["none"]
        raise ConfigError(
            f"[tool.d1check.families.{name}] binding {binding!r} is not a d1_databases binding "
            f"in {wrangler.path.name}; bindings there: {', '.join(bindings)}"
        )
    return found


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


def _environments(tool: Mapping[str, Any], where: str) -> dict[str, tuple[str, ...]]:
    table = tool.get("environments", {})
    result: dict[str, tuple[str, ...]] = {}
    for name, value in table.items():
        key_where = f"{where}.environments] {name}"
        if name in RESERVED_NAMES:
            raise ConfigError(
                f"{key_where}: {name!r} is built in (local, staging, production); "
                "choose another environment name"
            )
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(
                f"{key_where}: expected a list of strings (database names or client ids), "
                f"got {_type_name(value)}"
            )
        result[name] = tuple(value)
    return result


def _check_names(
    environments: Mapping[str, tuple[str, ...]],
    wrangler: WranglerConfig | None,
    clients: ClientRegistry | None,
) -> None:
    named = [("a [tool.d1check.environments] name", n) for n in environments]
    if wrangler is not None:
        named += [(f"a {wrangler.path.name} env", n) for n in wrangler.environments]
    if clients is not None:
        for client in clients.clients:
            if client.id in RESERVED_NAMES:
                raise ConfigError(
                    f"{clients.path}: client id {client.id!r} is the name of a built-in target "
                    f"({', '.join(RESERVED_NAMES)}); rename the client"
                )
        named += [(f"a client id in {clients.path.name}", c.id) for c in clients.clients]
    owners: dict[str, str] = {}
    for source, name in named:
        if name in owners:
            raise ConfigError(
                f"{name!r} is both {owners[name]} and {source}; rename one so a target name "
                "means one thing"
            )
        owners[name] = source


def _clients_file(root: Path, tool: Mapping[str, Any]) -> tuple[Path, bool]:
    configured = tool.get("clients_file")
    return root / (configured or DEFAULT_CLIENTS_FILE), configured is not None


def load_config(root: Path) -> Config:
    """Read the project at `root` into a Config; ConfigError says what is wrong and where."""
    pyproject, tool = _tool_table(root)
    where = f"{pyproject}: [tool.d1check" if pyproject else "[tool.d1check"
    wrangler_path = find_wrangler_file(root)
    wrangler = load_wrangler_config(wrangler_path) if wrangler_path else None
    clients_path, explicit = _clients_file(root, tool)
    if explicit and not clients_path.is_file():
        raise ConfigError(f"{where}] clients_file: {clients_path} does not exist; fix the path")
    clients = load_clients(clients_path) if clients_path.is_file() else None
    tables = _family_tables(tool, where)
    implicit = "families" not in tool
    families = {
        name: _build_family(name, table, tool, root, wrangler, implicit, clients is not None)
        for name, table in tables.items()
    }
    _check_families(families)
    if clients is None and any(f.clients for f in families.values()):
        raise ConfigError(
            f"{where}.families]: a family sets clients = true but {clients_path} does not exist; "
            "create the client registry or set clients = false"
        )
    environments = _environments(tool, where)
    _check_names(environments, wrangler, clients)
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
        wrangler=wrangler,
        clients=clients,
        pyproject=pyproject,
    )
