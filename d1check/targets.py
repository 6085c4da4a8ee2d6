"""Concrete databases: resolving a target name (`--apply=NAME`) into the databases it means.

A name resolves, in this order:

- ``local``: one local database per family (not remote); its wrangler entry is the family's first
  top-level ``d1_databases`` entry, whose miniflare file the local module opens.
- ``staging``: the ``[env.staging]`` databases of the wrangler config if there are any, else the
  ``"staging"`` entry of the client registry (``config/clients.json``).
- ``production``: every active client of the registry (inactive ones are skipped, with the
  reason), plus, per wrangler config, its ``[env.production]`` databases where it has that
  section (its top-level databases are then the development ones), else the top-level databases
  of the families that have no clients. A wrangler config with other ``[env.*]`` sections (besides
  staging), no ``[env.production]`` and no client registry does not say which databases are
  production: ``production`` is refused with how to declare it.
- a name of ``[tool.d1check.environments]``: its list of client ids and database names.
- a wrangler environment (``[env.NAME]``): that environment's databases; when ``NAME`` is also a
  client id naming one of them, that database is the client's.
- a client id: that client's database (skipped when inactive).

Each database belongs to the family whose wrangler entries hold it (client databases to the
family with the clients); wrangler databases of no family are not d1check's and are left out.
Anything else is a ConfigError that lists the valid names.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from d1check.config import Client, Config, Family, WranglerConfig, WranglerDatabase
from d1check.errors import ConfigError

__all__ = ["Resolution", "Skipped", "Target", "describe", "resolve_targets", "target_names"]

LOCAL, STAGING, PRODUCTION = "local", "staging", "production"


@dataclass(frozen=True)
class Target:
    """One database that migrations are applied to."""

    name: str
    family: str
    environment: str
    database_name: str
    database_id: str | None
    tracking_table: str
    remote: bool
    client_id: str | None = None
    account_id: str | None = None
    binding: str | None = None


@dataclass(frozen=True)
class Skipped:
    """A database a name covers that is left out, and why."""

    target: Target
    reason: str


@dataclass(frozen=True)
class Resolution:
    """The databases a name resolves to, in order, and the ones it leaves out."""

    name: str
    targets: tuple[Target, ...]
    skipped: tuple[Skipped, ...] = ()


def target_names(config: Config) -> list[str]:
    """Every name `resolve_targets` accepts, built-in names first."""
    names = [LOCAL, STAGING, PRODUCTION, *config.environments, *config.environment_names()]
    if config.clients is not None:
        names += [c.id for c in config.clients.clients]
    return list(dict.fromkeys(names))


def resolve_targets(config: Config, name: str) -> Resolution:
    """The databases `name` means (see the module docstring for the rules)."""
    if name == LOCAL:
        return Resolution(name, tuple(_local(f) for f in config.families.values()))
    if name in config.environments:
        return _environment(config, name)
    if name == STAGING:
        return Resolution(name, _staging(config))
    if name == PRODUCTION:
        return _production(config)
    client = _client_by_id(config, name)
    if name in config.environment_names():
        return _wrangler_env_with_client(config, name, client)
    if client is not None:
        return _clients(config, name, [client])
    raise ConfigError(
        f"unknown target {name!r}; valid targets: {', '.join(target_names(config))}. "
        "Targets come from [tool.d1check.environments], the wrangler config's [env.*] "
        "and the client ids of the client registry."
    )


def describe(targets: Iterable[Target]) -> str:
    """Targets per family: `family db: app, app-eu; family analytics: analytics`."""
    by_family: dict[str, list[str]] = {}
    for target in targets:
        by_family.setdefault(target.family, []).append(target.name)
    parts = [f"family {f}: {', '.join(names)}" for f, names in by_family.items()]
    return "; ".join(parts) or "no databases"


def _local(family: Family) -> Target:
    db = family.local_database
    return Target(
        name=f"local:{family.name}",
        family=family.name,
        environment=LOCAL,
        database_name=db.database_name if db else family.name,
        database_id=db.database_id if db else None,
        tracking_table=family.tracking_table_for(db),
        remote=False,
        binding=db.binding if db else None,
    )


def _owner(config: Config, db: WranglerDatabase) -> Family | None:
    return next((f for f in config.families.values() if f.owns(db)), None)


def _clients_family(config: Config) -> Family:
    families = config.families.values()
    return next((f for f in families if f.clients), config.default_family)


def _account_id(family: Family, environment: str | None) -> str | None:
    return family.wrangler.account_for(environment) if family.wrangler is not None else None


def _remote_id(family: Family, db: WranglerDatabase) -> str:
    if db.database_id:
        return db.database_id
    path = family.wrangler.path if family.wrangler else "the wrangler config"
    section = f"[env.{db.environment}] " if db.environment else ""
    raise ConfigError(
        f"{path}: {section}d1_databases entry {db.binding!r} ({db.database_name}) has no "
        "database_id; add it (wrangler d1 info <name> shows it) to reach the remote database"
    )


def _wrangler_target(config: Config, db: WranglerDatabase, environment: str) -> Target | None:
    family = _owner(config, db)
    if family is None:
        return None
    return Target(
        name=db.database_name,
        family=family.name,
        environment=environment,
        database_name=db.database_name,
        database_id=_remote_id(family, db),
        tracking_table=family.tracking_table_for(db),
        remote=True,
        account_id=_account_id(family, db.environment),
        binding=db.binding,
    )


def _wrangler_targets(
    config: Config, dbs: Iterable[WranglerDatabase], environment: str
) -> tuple[Target, ...]:
    found = (_wrangler_target(config, db, environment) for db in dbs)
    return tuple(t for t in found if t is not None)


def _env_databases(config: Config, name: str) -> list[WranglerDatabase]:
    return [db for w in config.wranglers for db in w.environments.get(name, ())]


def _wrangler_env(config: Config, name: str) -> tuple[Target, ...]:
    return _wrangler_targets(config, _env_databases(config, name), name)


def _wrangler_env_with_client(config: Config, name: str, client: Client | None) -> Resolution:
    """A wrangler env's databases; when `name` is also a client id, the env database that is
    the client's is the client target (one database, one target)."""
    targets = _wrangler_env(config, name)
    if client is None:
        return Resolution(name, targets)
    part = _clients(config, name, [client], PRODUCTION)
    same = [t for t in targets if _same_database(t, client.database_name, client.database_id)]
    account = same[0].account_id if same else None
    merged = tuple(replace(t, account_id=account or t.account_id) for t in part.targets)
    skipped = tuple(replace(s, target=replace(s.target, account_id=account)) for s in part.skipped)
    others = tuple(t for t in targets if t not in same)
    return Resolution(name, merged + others, skipped)


def _same_database(target: Target, name: str, database_id: str | None) -> bool:
    same_id = database_id is not None and target.database_id == database_id
    return same_id or target.database_name == name


def _staging(config: Config) -> tuple[Target, ...]:
    targets = _wrangler_env(config, STAGING)
    if targets:
        return targets
    registry = config.clients
    if registry is not None and registry.staging is not None:
        family = _clients_family(config)
        staging = registry.staging
        target = Target(
            name=staging.database_name,
            family=family.name,
            environment=STAGING,
            database_name=staging.database_name,
            database_id=staging.database_id,
            tracking_table=family.tracking_table,
            remote=True,
            account_id=_account_id(family, None),
        )
        return (target,)
    raise ConfigError(
        "no staging database: add [env.staging] d1_databases to the wrangler config or a "
        '"staging" entry to the client registry (config/clients.json)'
    )


def _client_target(config: Config, client: Client, environment: str) -> Target:
    family = _clients_family(config)
    return Target(
        name=client.id,
        family=family.name,
        environment=environment,
        database_name=client.database_name,
        database_id=client.database_id,
        tracking_table=family.tracking_table,
        remote=True,
        client_id=client.id,
        account_id=_account_id(family, None),
    )


def _clients(
    config: Config, name: str, clients: list[Client], environment: str = PRODUCTION
) -> Resolution:
    targets: list[Target] = []
    skipped: list[Skipped] = []
    where = config.clients.path.name if config.clients else "the client registry"
    for client in clients:
        target = _client_target(config, client, environment)
        if client.active:
            targets.append(target)
        else:
            skipped.append(Skipped(target, f"client {client.id!r} is inactive in {where}"))
    return Resolution(name, tuple(targets), tuple(skipped))


def _client_by_id(config: Config, client_id: str) -> Client | None:
    if config.clients is None:
        return None
    return next((c for c in config.clients.clients if c.id == client_id), None)


def _production(config: Config) -> Resolution:
    registry = config.clients
    clients = list(registry.clients) if registry is not None else []
    resolution = _clients(config, PRODUCTION, clients) if clients else Resolution(PRODUCTION, ())
    targets = list(resolution.targets)
    known = targets + [s.target for s in resolution.skipped]
    for wrangler in config.wranglers:
        for target in _production_databases(config, wrangler):
            if not any(_same_database(k, target.database_name, target.database_id) for k in known):
                targets.append(target)
                known.append(target)
    if not targets and not resolution.skipped:
        raise ConfigError(
            "no production databases: add [env.production] or top-level d1_databases (with "
            "database_id) to the wrangler config, or clients to the client registry "
            "(config/clients.json)"
        )
    return Resolution(PRODUCTION, tuple(targets), resolution.skipped)


def _production_databases(config: Config, wrangler: WranglerConfig) -> tuple[Target, ...]:
    """One wrangler config's production databases: `[env.production]` if it has that section,
    else the top-level databases of its families without clients."""
    if PRODUCTION in wrangler.environments:
        return _wrangler_targets(config, wrangler.environments[PRODUCTION], PRODUCTION)
    others = [n for n in wrangler.environments if n != STAGING]
    if others and config.clients is None:
        raise ConfigError(_undeclared_production(config, wrangler, others))
    families = (f for f in config.families.values() if not f.clients and f.wrangler is wrangler)
    return _wrangler_targets(config, (db for f in families for db in f.databases), PRODUCTION)


def _undeclared_production(config: Config, wrangler: WranglerConfig, others: list[str]) -> str:
    envs = ", ".join(f"[env.{n}]" for n in others)
    names = [db.database_name for n in others for db in wrangler.environments[n]]
    example = ", ".join(f'"{n}"' for n in dict.fromkeys(names)) or '"<database_name>"'
    registry = config.clients_file or "config/clients.json"
    return (
        f"{wrangler.path}: which databases are production is not declared: the config has "
        f"{envs} but no [env.production], and there is no client registry ({registry}), so its "
        "top-level databases may be the development ones. Declare production in pyproject.toml "
        f"([tool.d1check.environments] production = [{example}]: database names or client "
        "ids), add an [env.production] section, or list the production databases in the "
        "client registry"
    )


def _client_for(config: Config, entry: str) -> Client | None:
    if config.clients is None:
        return None
    by_id = _client_by_id(config, entry)
    by_name = (c for c in config.clients.clients if c.database_name == entry)
    return by_id or next(by_name, None)


def _wrangler_database_named(config: Config, entry: str) -> WranglerDatabase | None:
    every = [db for w in config.wranglers for db in w.every_database()]
    return next((db for db in every if db.database_name == entry and _owner(config, db)), None)


def _environment(config: Config, name: str) -> Resolution:
    targets: list[Target] = []
    skipped: list[Skipped] = []
    for entry in config.environments[name]:
        client = _client_for(config, entry)
        db = _wrangler_database_named(config, entry) if client is None else None
        if client is not None:
            part = _clients(config, name, [client], name)
            targets += part.targets
            skipped += part.skipped
        elif db is not None:
            targets += _wrangler_targets(config, (db,), name)
        else:
            raise ConfigError(
                f"[tool.d1check.environments] {name}: {entry!r} is neither a client id nor the "
                "database name of a client or of a wrangler d1_databases entry of a family; "
                "fix the entry"
            )
    return Resolution(name, tuple(targets), tuple(skipped))
