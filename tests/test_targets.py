"""Target resolution: local, staging, production, environments, wrangler envs, client ids."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from d1check.config import Config, load_config
from d1check.errors import ConfigError
from d1check.targets import Target, resolve_targets, target_names

WRANGLER = """
account_id = "acc"

[[d1_databases]]
binding = "DB"
database_name = "app"
database_id = "id-app"
migrations_table = "app_migrations"

[[d1_databases]]
binding = "CACHE"
database_name = "cache"
database_id = "id-cache"

[env.staging]
[[env.staging.d1_databases]]
binding = "DB"
database_name = "app-staging"
database_id = "id-app-staging"

[env.preview]
account_id = "acc-preview"
[[env.preview.d1_databases]]
binding = "DB"
database_name = "app-preview"
database_id = "id-app-preview"
"""

CLIENTS = {
    "clients": [
        {
            "id": "acme",
            "name": "Acme",
            "database_name": "acme-db",
            "database_id": "id-acme",
            "active": True,
        },
        {
            "id": "globex",
            "name": "Globex",
            "database_name": "globex-db",
            "database_id": "id-globex",
            "active": False,
        },
        {
            "id": "initech",
            "name": "Initech",
            "database_name": "initech-db",
            "database_id": "id-initech",
        },
    ],
    "staging": {"database_name": "tenant-staging", "database_id": "id-tstaging"},
}

FAMILIES = """
[tool.d1check]
tracking_table = "d1_migrations"

[tool.d1check.families.app]
binding = "DB"
rollbacks_dir = "rollbacks/app"

[tool.d1check.families.tenant]
migrations_dir = "tenant/migrations"
rollbacks_dir = "tenant/rollbacks"
clients = true

[tool.d1check.environments]
canary = ["acme", "globex-db", "app-preview"]
"""


def make(root: Path, files: dict[str, str]) -> Config:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    return load_config(root)


@pytest.fixture
def fleet(tmp_path: Path) -> Config:
    return make(
        tmp_path,
        {
            "wrangler.toml": WRANGLER,
            "config/clients.json": json.dumps(CLIENTS),
            "pyproject.toml": FAMILIES,
        },
    )


def names(targets: tuple[Target, ...]) -> list[str]:
    return [t.name for t in targets]


# -- a single-family project with a wrangler config only ---------------------------------------


def test_local_is_one_local_target_per_family(fleet: Config) -> None:
    local = resolve_targets(fleet, "local").targets
    assert names(local) == ["local:app", "local:tenant"]
    assert all(not t.remote and t.environment == "local" for t in local)
    assert (local[0].database_name, local[0].binding) == ("app", "DB")
    assert local[1].database_id is None and local[1].database_name == "tenant"


def test_local_without_any_config(tmp_path: Path) -> None:
    (target,) = resolve_targets(load_config(tmp_path), "local").targets
    assert target == Target(
        name="local:default",
        family="default",
        environment="local",
        database_name="default",
        database_id=None,
        tracking_table="d1_migrations",
        remote=False,
    )


def test_production_without_clients_is_every_top_level_database(tmp_path: Path) -> None:
    config = make(tmp_path, {"wrangler.toml": WRANGLER.split("[env.preview]")[0]})
    resolution = resolve_targets(config, "production")
    assert names(resolution.targets) == ["app", "cache"]
    app = resolution.targets[0]
    assert (app.database_id, app.remote, app.environment) == ("id-app", True, "production")
    assert app.tracking_table == "app_migrations"
    assert resolution.targets[1].tracking_table == "d1_migrations"
    assert app.account_id == "acc" and app.client_id is None
    assert resolution.skipped == ()


def test_staging_prefers_wrangler_env_staging(fleet: Config) -> None:
    (target,) = resolve_targets(fleet, "staging").targets
    assert (target.database_name, target.database_id) == ("app-staging", "id-app-staging")
    assert (target.family, target.environment, target.remote) == ("app", "staging", True)


def test_staging_falls_back_to_the_client_registry(tmp_path: Path) -> None:
    config = make(tmp_path, {"config/clients.json": json.dumps(CLIENTS)})
    (target,) = resolve_targets(config, "staging").targets
    assert (target.database_name, target.database_id) == ("tenant-staging", "id-tstaging")
    assert target.environment == "staging" and target.client_id is None


def test_no_staging_anywhere_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no staging database.*\[env.staging\]"):
        resolve_targets(load_config(tmp_path), "staging")


# -- production across families ------------------------------------------------------------------


def test_production_is_active_clients_plus_databases_of_families_without_clients(
    fleet: Config,
) -> None:
    resolution = resolve_targets(fleet, "production")
    assert names(resolution.targets) == ["acme", "initech", "app"]
    acme = resolution.targets[0]
    assert (acme.family, acme.client_id, acme.database_id) == ("tenant", "acme", "id-acme")
    assert resolution.targets[2].family == "app"
    assert "cache" not in names(resolution.targets)  # its binding belongs to no family
    (skipped,) = resolution.skipped
    assert skipped.target.client_id == "globex"
    assert "inactive" in skipped.reason and "clients.json" in skipped.reason


def test_production_without_families_and_with_clients_is_the_clients(tmp_path: Path) -> None:
    config = make(tmp_path, {"wrangler.toml": WRANGLER, "config/clients.json": json.dumps(CLIENTS)})
    resolution = resolve_targets(config, "production")
    assert names(resolution.targets) == ["acme", "initech"]
    assert all(t.family == "default" for t in resolution.targets)


def test_production_with_nothing_configured_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no production databases"):
        resolve_targets(load_config(tmp_path), "production")


def test_remote_database_without_id_is_a_config_error(tmp_path: Path) -> None:
    config = make(tmp_path, {"wrangler.toml": '[[d1_databases]]\nbinding = "DB"\n'})
    with pytest.raises(ConfigError, match=r"'DB' .* has no database_id"):
        resolve_targets(config, "production")
    assert resolve_targets(config, "local").targets[0].database_name == "DB"


# -- other names ---------------------------------------------------------------------------------


def test_client_id(fleet: Config) -> None:
    (target,) = resolve_targets(fleet, "acme").targets
    assert (target.client_id, target.environment) == ("acme", "production")
    inactive = resolve_targets(fleet, "globex")
    assert inactive.targets == () and inactive.skipped[0].target.client_id == "globex"


def test_wrangler_env_name(fleet: Config) -> None:
    (target,) = resolve_targets(fleet, "preview").targets
    assert (target.database_name, target.environment) == ("app-preview", "preview")
    assert target.account_id == "acc-preview"


def test_configured_environment(fleet: Config) -> None:
    resolution = resolve_targets(fleet, "canary")
    assert names(resolution.targets) == ["acme", "app-preview"]
    assert {t.environment for t in resolution.targets} == {"canary"}
    assert [s.target.client_id for s in resolution.skipped] == ["globex"]


def test_environment_entry_that_names_nothing(tmp_path: Path) -> None:
    files = {"pyproject.toml": '[tool.d1check.environments]\nqa = ["ghost"]'}
    with pytest.raises(ConfigError, match=r"qa: 'ghost' is neither a client id"):
        resolve_targets(make(tmp_path, files), "qa")


def test_unknown_name_lists_the_valid_ones(fleet: Config) -> None:
    with pytest.raises(ConfigError) as info:
        resolve_targets(fleet, "prod")
    message = str(info.value)
    assert "unknown target 'prod'" in message
    assert "local, staging, production, canary, staging, preview, acme" not in message
    assert "local, staging, production, canary, preview, acme, globex, initech" in message
    assert target_names(fleet)[:3] == ["local", "staging", "production"]


# -- production in wrangler configs with environments -------------------------------------------

ENV_PRODUCTION = """
[[d1_databases]]
binding = "DB"
database_name = "app-dev"
database_id = "id-dev"

[env.staging]
[[env.staging.d1_databases]]
binding = "DB"
database_name = "app-staging"
database_id = "id-staging"

[env.production]
account_id = "acc-prod"
[[env.production.d1_databases]]
binding = "DB"
database_name = "app-prod"
database_id = "id-prod"
"""


def test_production_is_env_production_and_not_the_top_level_dev_database(tmp_path: Path) -> None:
    config = make(tmp_path, {"wrangler.toml": ENV_PRODUCTION})
    (target,) = resolve_targets(config, "production").targets
    assert (target.database_name, target.database_id) == ("app-prod", "id-prod")
    assert (target.family, target.environment, target.account_id) == (
        "default",
        "production",
        "acc-prod",
    )
    (local,) = resolve_targets(config, "local").targets
    assert local.database_name == "app-dev"


def test_production_with_other_envs_and_no_registry_is_refused(tmp_path: Path) -> None:
    config = make(tmp_path, {"wrangler.toml": WRANGLER})
    with pytest.raises(ConfigError) as info:
        resolve_targets(config, "production")
    message = str(info.value)
    assert "wrangler.toml: which databases are production is not declared" in message
    assert "[env.preview] but no [env.production]" in message
    assert '[tool.d1check.environments] production = ["app-preview"]' in message
    assert names(resolve_targets(config, "staging").targets) == ["app-staging"]


def test_production_declared_in_tool_environments(tmp_path: Path) -> None:
    declared = '[tool.d1check.environments]\nproduction = ["app-preview"]\n'
    config = make(tmp_path, {"wrangler.toml": WRANGLER, "pyproject.toml": declared})
    (target,) = resolve_targets(config, "production").targets
    assert (target.database_name, target.environment) == ("app-preview", "production")
    assert target.account_id == "acc-preview"
    assert target_names(config) == ["local", "staging", "production", "preview"]


# -- the layout of the migration guide our users follow ------------------------------------------

GUIDE = Path(__file__).parent / "examples" / "guide_layout"


def guide(tmp_path: Path, *, registry: bool) -> Config:
    shutil.copytree(GUIDE, tmp_path, dirs_exist_ok=True)
    if not registry:
        (tmp_path / "config" / "clients.json").unlink()
    return load_config(tmp_path)


def test_guide_layout_with_the_client_registry(tmp_path: Path) -> None:
    config = guide(tmp_path, registry=True)
    assert list(config.families) == ["default"]
    (local,) = resolve_targets(config, "local").targets
    assert (local.database_name, local.remote) == ("pulse-local", False)
    (staging,) = resolve_targets(config, "staging").targets
    assert (staging.database_name, staging.database_id) == ("pulse-staging", "your-staging-db-id")
    production = resolve_targets(config, "production")
    assert names(production.targets) == ["client-a", "client-b", "client-c"]
    assert "pulse-local" not in {t.database_name for t in production.targets}
    (client_a,) = resolve_targets(config, "client-a").targets
    assert (client_a.client_id, client_a.database_name) == ("client-a", "pulse-client-a")
    assert client_a.database_id == "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx"
    assert target_names(config).count("client-a") == 1


def test_guide_layout_without_the_client_registry(tmp_path: Path) -> None:
    config = guide(tmp_path, registry=False)
    (client_a,) = resolve_targets(config, "client-a").targets
    assert (client_a.database_name, client_a.database_id) == ("pulse-client-a", "client-a-db-id")
    assert client_a.environment == "client-a" and client_a.client_id is None
    assert names(resolve_targets(config, "staging").targets) == ["pulse-staging"]
    with pytest.raises(ConfigError) as info:
        resolve_targets(config, "production")
    message = str(info.value)
    assert "[env.client-a], [env.client-b], [env.client-c] but no [env.production]" in message
    assert 'production = ["pulse-client-a", "pulse-client-b", "pulse-client-c"]' in message


def test_an_env_and_a_client_id_naming_different_databases_are_refused(tmp_path: Path) -> None:
    shutil.copytree(GUIDE, tmp_path, dirs_exist_ok=True)
    registry = tmp_path / "config" / "clients.json"
    data = json.loads(registry.read_text())
    data["clients"][0]["database_name"] = "pulse-someone-else"
    registry.write_text(json.dumps(data))
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    message = str(info.value)
    assert "'client-a' is both a wrangler config env (databases pulse-client-a)" in message
    assert "client id in clients.json (database pulse-someone-else)" in message
    assert "do not name the same database" in message
