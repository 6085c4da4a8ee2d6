"""The client registry, `config/clients.json`: one database per client, and a staging one."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from d1check.errors import ConfigError
from d1check.wrangler import optional_str, read_json, type_name

__all__ = ["Client", "ClientRegistry", "StagingDatabase", "load_clients", "safe_name"]


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


def _required_str(entry: Mapping[str, Any], key: str, where: str) -> str:
    value = optional_str(entry, key, where)
    if not value:
        raise ConfigError(f"{where}: missing {key!r}; every entry needs it")
    return value


def safe_name(value: str, key: str, where: str) -> str:
    """`value` when it can name a database or a file safely: no control character (it would
    forge lines of the progress and the report) and no path separator (backup files are named
    after it); else a ConfigError that says which character and where."""
    for position, char in enumerate(value, 1):
        if char < " " or char == "\x7f":
            problem = f"a control character ({char!r}) at position {position}"
        elif char in "/\\":
            problem = f"a path separator ({char!r}) at position {position}"
        else:
            continue
        raise ConfigError(f"{where}: {key} {value!r} holds {problem}; use a plain name")
    return value


def _client(entry: object, where: str) -> Client:
    if not isinstance(entry, dict):
        raise ConfigError(f"{where}: expected an object, got {type_name(entry)}")
    active = entry.get("active", True)
    if not isinstance(active, bool):
        raise ConfigError(f"{where} active: expected a boolean, got {type_name(active)}")
    client_id = safe_name(_required_str(entry, "id", where), "id", where)
    return Client(
        id=client_id,
        name=optional_str(entry, "name", where) or client_id,
        database_name=safe_name(
            _required_str(entry, "database_name", where), "database_name", where
        ),
        database_id=safe_name(_required_str(entry, "database_id", where), "database_id", where),
        active=active,
    )


def load_clients(path: Path) -> ClientRegistry:
    """Read a client registry: `{"clients": [{id, name, database_name, database_id, active}],
    "staging": {database_name, database_id}}`."""
    data = read_json(path)
    if not isinstance(data, dict):
        raise ConfigError(f'{path}: expected an object with a "clients" list')
    entries = data.get("clients", [])
    if not isinstance(entries, list):
        raise ConfigError(f"{path}: clients: expected a list, got {type_name(entries)}")
    clients = tuple(_client(e, f"{path}: clients[{i}]") for i, e in enumerate(entries))
    seen: set[str] = set()
    for client in clients:
        if client.id in seen:
            raise ConfigError(f"{path}: client id {client.id!r} appears twice; ids must be unique")
        seen.add(client.id)
    staging = data.get("staging")
    if staging is not None and not isinstance(staging, dict):
        raise ConfigError(f"{path}: staging: expected an object, got {type_name(staging)}")
    return ClientRegistry(path, clients, _staging(staging, f"{path}: staging"))


def _staging(entry: Mapping[str, Any] | None, where: str) -> StagingDatabase | None:
    if entry is None:
        return None
    name = _required_str(entry, "database_name", where)
    return StagingDatabase(name, _required_str(entry, "database_id", where))
