"""wrangler's own configuration: `wrangler.json`, `wrangler.jsonc` or `wrangler.toml`, their
`d1_databases` entries, and finding the configs of a repository whose root holds none.

Files are read as wrangler reads them: UTF-8 with or without a byte-order mark, JSON with
comments and trailing commas, and at one folder `wrangler.json` before `wrangler.jsonc` before
`wrangler.toml`.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from d1check.errors import ConfigError

__all__ = [
    "DEFAULT_NORECURSEDIRS",
    "SEARCH_DEPTH",
    "WRANGLER_FILES",
    "WranglerConfig",
    "WranglerDatabase",
    "find_wrangler_configs",
    "find_wrangler_file",
    "load_wrangler_config",
    "read_json",
    "read_toml",
    "type_name",
]

WRANGLER_FILES = ("wrangler.json", "wrangler.jsonc", "wrangler.toml")
"""wrangler's order of preference at one folder (`findWranglerConfig` in wrangler 4)."""
SEARCH_DEPTH = 3
DEFAULT_NORECURSEDIRS = ("*.egg", ".*", "_darcs", "build", "CVS", "dist", "node_modules", "venv")
_BOM = "\ufeff"


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
    migrations_pattern: str | None = None

    def same_database(self, name: str, database_id: str | None) -> bool:
        """Whether this entry names the database called `name` or with id `database_id`."""
        same_id = database_id is not None and self.database_id == database_id
        return same_id or self.database_name == name


@dataclass(frozen=True)
class WranglerConfig:
    """What d1check reads from wrangler.toml / wrangler.json / wrangler.jsonc."""

    path: Path
    account_id: str | None
    databases: tuple[WranglerDatabase, ...]
    environments: Mapping[str, tuple[WranglerDatabase, ...]]
    environment_account_ids: Mapping[str, str]
    ignored: tuple[Path, ...] = ()
    """Other wrangler config files beside this one, which wrangler does not read."""

    @property
    def folder(self) -> Path:
        """The folder wrangler resolves the config's relative paths against."""
        return self.path.parent

    def account_for(self, environment: str | None) -> str | None:
        """The account of `environment` (its own `account_id`, else the top-level one)."""
        if environment is not None and environment in self.environment_account_ids:
            return self.environment_account_ids[environment]
        return self.account_id

    def every_database(self) -> tuple[WranglerDatabase, ...]:
        """The top-level entries, then those of every `[env.*]`."""
        return self.databases + tuple(d for e in self.environments.values() for d in e)


# -- reading files --------------------------------------------------------------------------


def _text(path: Path, kind: str) -> str:
    try:
        return path.read_text(encoding="utf-8").removeprefix(_BOM)
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not valid {kind}: not UTF-8 ({exc}); save it as UTF-8") from exc


def read_toml(path: Path) -> dict[str, Any]:
    """A TOML file (a leading byte-order mark is allowed, as wrangler allows it)."""
    try:
        return tomllib.loads(_text(path, "TOML"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}; fix the file") from exc


def read_json(path: Path) -> Any:
    """A JSON file, with comments and trailing commas allowed (JSONC). Plain JSON is read by the
    standard library (fast for a registry of thousands of clients); JSONC by `json5`."""
    text = _text(path, "JSON")
    try:
        return json.loads(text)
    except ValueError:
        pass
    import json5  # JSONC only: not loaded where there is none

    try:
        return json5.loads(text)
    except ValueError as exc:
        raise ConfigError(f"{path}: not valid JSON: {exc}; fix the file") from exc


def type_name(value: object) -> str:
    """The TOML/JSON name of `value`'s type, with its article: "an integer"."""
    names = {
        str: "a string",
        bool: "a boolean",
        int: "an integer",
        float: "a float",
        list: "a list",
    }
    return names.get(type(value), "a table" if isinstance(value, dict) else "a null")


def optional_str(entry: Mapping[str, Any], key: str, where: str) -> str | None:
    """`entry[key]` when it is a string, None when absent; ConfigError for another type."""
    value = entry.get(key)
    if value is not None and not isinstance(value, str):
        raise ConfigError(f"{where} {key}: expected a string, got {type_name(value)}")
    return value


# -- d1_databases ---------------------------------------------------------------------------


def _wrangler_database(entry: object, where: str, env: str | None) -> WranglerDatabase:
    if not isinstance(entry, dict):
        raise ConfigError(f"{where}: expected a table, got {type_name(entry)}")
    binding = optional_str(entry, "binding", where)
    if not binding:
        raise ConfigError(f"{where}: a d1_databases entry needs a `binding`; add one")
    return WranglerDatabase(
        binding=binding,
        database_name=optional_str(entry, "database_name", where) or binding,
        database_id=optional_str(entry, "database_id", where),
        preview_database_id=optional_str(entry, "preview_database_id", where),
        migrations_dir=optional_str(entry, "migrations_dir", where),
        migrations_table=optional_str(entry, "migrations_table", where),
        environment=env,
        migrations_pattern=optional_str(entry, "migrations_pattern", where),
    )


def _wrangler_databases(
    table: Mapping[str, Any], path: Path, prefix: str, env: str | None
) -> tuple[WranglerDatabase, ...]:
    entries = table.get("d1_databases", [])
    if not isinstance(entries, list):
        got = type_name(entries)
        raise ConfigError(f"{path}: {prefix}d1_databases: expected a list, got {got}")
    return tuple(
        _wrangler_database(e, f"{path}: {prefix}d1_databases[{i}]", env)
        for i, e in enumerate(entries)
    )


def find_wrangler_file(folder: Path) -> Path | None:
    """The wrangler config wrangler reads in `folder`: .json, else .jsonc, else .toml."""
    return next((folder / n for n in WRANGLER_FILES if (folder / n).is_file()), None)


def load_wrangler_config(path: Path) -> WranglerConfig:
    """Read the D1 part of a wrangler config (TOML, JSON or JSON with comments)."""
    data = read_toml(path) if path.suffix == ".toml" else read_json(path)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected an object at the top level")
    envs = data.get("env", {})
    if not isinstance(envs, dict):
        raise ConfigError(f"{path}: env: expected a table, got {type_name(envs)}")
    environments: dict[str, tuple[WranglerDatabase, ...]] = {}
    account_ids: dict[str, str] = {}
    for name, table in envs.items():
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: env.{name}: expected a table, got {type_name(table)}")
        environments[name] = _wrangler_databases(table, path, f"env.{name}.", name)
        account = optional_str(table, "account_id", f"{path}: env.{name}")
        if account:
            account_ids[name] = account
    ignored = tuple(
        path.parent / n for n in WRANGLER_FILES if n != path.name and (path.parent / n).is_file()
    )
    return WranglerConfig(
        path=path,
        account_id=optional_str(data, "account_id", str(path)),
        databases=_wrangler_databases(data, path, "", None),
        environments=environments,
        environment_account_ids=account_ids,
        ignored=ignored,
    )


# -- finding configs below a folder ---------------------------------------------------------


def _skip_pattern(norecursedirs: Iterable[str]) -> re.Pattern[str]:
    """One regular expression for hidden folders, `node_modules` and `norecursedirs`."""
    patterns = [".*", "node_modules", *norecursedirs]
    return re.compile("|".join(fnmatch.translate(p) for p in patterns))


def find_wrangler_configs(
    root: Path,
    *,
    depth: int = SEARCH_DEPTH,
    norecursedirs: Iterable[str] = DEFAULT_NORECURSEDIRS,
) -> list[Path]:
    """The wrangler configs in the subfolders of `root`, at most `depth` levels down, sorted.

    Hidden folders, `node_modules` and folders matching `norecursedirs` are not entered, nor the
    subfolders of a folder that holds a wrangler config (they are that project's own). One
    `os.scandir` per folder above the deepest level, three `stat`s per folder at it; nothing is
    read but folder listings.
    """
    patterns = _skip_pattern(norecursedirs)
    found: list[Path] = []
    level = _subfolders(root, patterns)[0]
    for remaining in range(depth, 0, -1):
        below: list[Path] = []
        for folder in level:
            if remaining == 1:
                config = find_wrangler_file(folder)
            else:
                subfolders, config = _subfolders(folder, patterns)
                below.extend(subfolders if config is None else ())
            found.extend([config] if config is not None else [])
        level = below
    return sorted(found)


def _subfolders(folder: Path, patterns: re.Pattern[str]) -> tuple[list[Path], Path | None]:
    """The subfolders of `folder` worth entering, and the wrangler config it holds."""
    subfolders: list[Path] = []
    files: set[str] = set()
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.name in WRANGLER_FILES and entry.is_file():
                    files.add(entry.name)
                elif entry.is_dir(follow_symlinks=False) and not patterns.match(entry.name):
                    subfolders.append(Path(entry.path))
    except OSError:
        return [], None
    config = next((folder / n for n in WRANGLER_FILES if n in files), None)
    return subfolders, config
