"""Configuration: [tool.d1check], the wrangler config, the client registry, families."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from d1check.config import Config, WranglerDatabase, load_config
from d1check.errors import ConfigError


def project(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def pyproject(body: str) -> dict[str, str]:
    return {"pyproject.toml": f"[project]\nname = 'x'\n\n[tool.d1check]\n{body}\n"}


WRANGLER_TOML = """
account_id = "acc-top"

[[d1_databases]]
binding = "DB"
database_name = "app-dev"
database_id = "id-dev"
preview_database_id = "preview-1"
migrations_dir = "db/migrations"
migrations_table = "schema_history"

[env.staging]
account_id = "acc-staging"
[[env.staging.d1_databases]]
binding = "DB"
database_name = "app-staging"
database_id = "id-staging"
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
    ],
    "staging": {"database_name": "clients-staging", "database_id": "id-cstaging"},
}


def load(root: Path, files: dict[str, str]) -> Config:
    return load_config(project(root, files))


# -- defaults and precedence ---------------------------------------------------------------------


def test_defaults_without_any_config(tmp_path: Path) -> None:
    config = load_config(tmp_path)
    assert list(config.families) == ["default"]
    assert config.migrations_dir == tmp_path / "migrations"
    assert config.rollbacks_dir == tmp_path / "rollbacks"
    assert config.tracking_table == "d1_migrations"
    assert (config.require_rollbacks, config.check_idempotency) == (True, True)
    assert config.allow_destructive is False
    assert config.wrangler is None and config.clients is None
    assert config.local_database() is None


def test_tool_keys_are_read(tmp_path: Path) -> None:
    body = (
        'migrations_dir = "sql/up"\nrollbacks_dir = "sql/down"\ntracking_table = "mig"\n'
        "require_rollbacks = false\ncheck_idempotency = false\nallow_destructive = true\n"
        'production_schema = "prod.sql"\nseed_files = ["seeds/*.sql"]\n'
    )
    config = load(tmp_path, pyproject(body))
    assert config.migrations_dir == tmp_path / "sql/up"
    assert config.rollbacks_dir == tmp_path / "sql/down"
    assert config.tracking_table == "mig"
    assert (config.require_rollbacks, config.check_idempotency) == (False, False)
    assert config.allow_destructive is True
    assert config.production_schema == ("prod.sql",)
    assert config.seed_files == ("seeds/*.sql",)


def test_wrangler_entry_supplies_migrations_dir_and_table(tmp_path: Path) -> None:
    config = load(tmp_path, {"wrangler.toml": WRANGLER_TOML})
    assert config.migrations_dir == tmp_path / "db/migrations"
    assert config.tracking_table == "schema_history"
    assert config.default_family.tracking_table_configured is False


def test_tool_d1check_wins_over_wrangler(tmp_path: Path) -> None:
    files = {
        "wrangler.toml": WRANGLER_TOML,
        **pyproject('migrations_dir = "m"\ntracking_table = "t"'),
    }
    config = load(tmp_path, files)
    assert config.migrations_dir == tmp_path / "m"
    assert config.tracking_table == "t"
    assert config.default_family.tracking_table_configured is True


def test_pyproject_without_tool_table_uses_defaults(tmp_path: Path) -> None:
    config = load(tmp_path, {"pyproject.toml": "[project]\nname = 'x'\n"})
    assert config.migrations_dir == tmp_path / "migrations"


# -- errors in [tool.d1check] --------------------------------------------------------------------


def test_unknown_key_names_it_and_lists_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, pyproject('migration_dir = "m"'))
    message = str(info.value)
    assert "unknown key 'migration_dir'" in message and "did you mean 'migrations_dir'" in message
    assert "known keys: allow_destructive, check_idempotency, clients_file" in message
    assert "pyproject.toml" in message


@pytest.mark.parametrize(
    ("line", "expected", "actual"),
    [
        ('require_rollbacks = "yes"', "boolean", "a string"),
        ("migrations_dir = 3", "string", "an integer"),
        ("seed_files = [1, 2]", "string or list of strings", "a list"),
        ("families = 1", "table", "an integer"),
    ],
)
def test_wrong_type_names_key_expected_and_actual(
    tmp_path: Path, line: str, expected: str, actual: str
) -> None:
    key = line.split(" ")[0]
    with pytest.raises(ConfigError) as info:
        load(tmp_path, pyproject(line))
    message = str(info.value)
    assert key in message and f"expected a {expected}, got {actual}" in message


def test_bad_toml_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"pyproject.toml: not valid TOML"):
        load(tmp_path, {"pyproject.toml": "[tool.d1check\n"})


# -- wrangler config formats ---------------------------------------------------------------------


def test_wrangler_toml_databases_envs_and_account(tmp_path: Path) -> None:
    wrangler = load(tmp_path, {"wrangler.toml": WRANGLER_TOML}).wrangler
    assert wrangler is not None
    assert wrangler.account_id == "acc-top"
    assert wrangler.databases == (
        WranglerDatabase(
            "DB", "app-dev", "id-dev", "preview-1", "db/migrations", "schema_history", None
        ),
    )
    staging = wrangler.environments["staging"]
    assert [(d.database_name, d.environment) for d in staging] == [("app-staging", "staging")]
    assert wrangler.environment_account_ids == {"staging": "acc-staging"}


def test_wrangler_jsonc_with_comments_and_trailing_commas(tmp_path: Path) -> None:
    text = """{
      // the app
      "account_id": "acc",
      "d1_databases": [
        {"binding": "DB", "database_name": "app", "database_id": "id-1",
         "migrations_dir": "sql",},  /* trailing comma */
      ],
    }"""
    config = load(tmp_path, {"wrangler.jsonc": text})
    assert config.wrangler is not None and config.wrangler.path.name == "wrangler.jsonc"
    assert config.migrations_dir == tmp_path / "sql"


def test_wrangler_json_is_preferred_over_toml(tmp_path: Path) -> None:
    data = {"d1_databases": [{"binding": "DB", "database_name": "j", "database_id": "x"}]}
    config = load(tmp_path, {"wrangler.json": json.dumps(data), "wrangler.toml": WRANGLER_TOML})
    assert config.wrangler is not None and config.wrangler.path.name == "wrangler.json"
    local = config.local_database()
    assert local is not None and local.database_name == "j"


def test_wrangler_entry_without_binding_is_an_error(tmp_path: Path) -> None:
    text = '[[d1_databases]]\ndatabase_name = "x"\n'
    with pytest.raises(ConfigError, match=r"wrangler.toml: d1_databases\[0\].*needs a `binding`"):
        load(tmp_path, {"wrangler.toml": text})


def test_wrangler_wrong_type_is_an_error(tmp_path: Path) -> None:
    text = '[[d1_databases]]\nbinding = "DB"\ndatabase_id = 5\n'
    with pytest.raises(ConfigError, match=r"database_id: expected a string, got an integer"):
        load(tmp_path, {"wrangler.toml": text})


# -- client registry -----------------------------------------------------------------------------


def test_clients_json_is_read(tmp_path: Path) -> None:
    config = load(tmp_path, {"config/clients.json": json.dumps(CLIENTS)})
    assert config.clients is not None
    assert [(c.id, c.active) for c in config.clients.clients] == [("acme", True), ("globex", False)]
    assert config.clients.staging is not None
    assert config.clients.staging.database_id == "id-cstaging"
    assert config.default_family.clients is True


def test_clients_file_setting_and_missing_file(tmp_path: Path) -> None:
    files = {"ops/fleet.json": json.dumps(CLIENTS), **pyproject('clients_file = "ops/fleet.json"')}
    assert load(tmp_path, files).clients is not None
    with pytest.raises(ConfigError, match=r"clients_file: .*nope.json does not exist"):
        load(tmp_path / "other", pyproject('clients_file = "nope.json"'))


@pytest.mark.parametrize(
    ("clients", "message"),
    [
        ({"clients": [{"id": "a", "database_name": "d"}]}, "missing 'database_id'"),
        (
            {"clients": [{"id": "a", "database_name": "d", "database_id": "x", "active": "no"}]},
            "active: expected a boolean",
        ),
        ({"clients": {"a": 1}}, "clients: expected a list"),
        ({"clients": [{"id": "a", "database_name": "d", "database_id": "x"}] * 2}, "twice"),
        (
            {"clients": [{"id": "staging", "database_name": "d", "database_id": "x"}]},
            "built-in target",
        ),
    ],
)
def test_bad_client_registry(tmp_path: Path, clients: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load(tmp_path, {"config/clients.json": json.dumps(clients)})


# -- families and environments -------------------------------------------------------------------


FAMILIES = """
[tool.d1check.families.app]
binding = "DB"
rollbacks_dir = "rollbacks/app"

[tool.d1check.families.tenant]
migrations_dir = "tenant/migrations"
rollbacks_dir = "tenant/rollbacks"
tracking_table = "tenant_migrations"
clients = true
"""

TWO_BINDINGS = (
    WRANGLER_TOML
    + """
[[d1_databases]]
binding = "AUDIT"
database_name = "audit"
database_id = "id-audit"
"""
)


def test_families_have_their_own_dirs_tables_and_databases(tmp_path: Path) -> None:
    files = {
        "wrangler.toml": TWO_BINDINGS,
        "config/clients.json": json.dumps(CLIENTS),
        **pyproject(FAMILIES),
    }
    config = load(tmp_path, files)
    app, tenant = config.family("app"), config.family("tenant")
    assert app.migrations_dir == tmp_path / "db/migrations"
    assert app.rollbacks_dir == tmp_path / "rollbacks/app"
    assert app.tracking_table == "schema_history"
    assert [d.database_name for d in app.databases] == ["app-dev"]
    assert app.clients is False
    assert tenant.migrations_dir == tmp_path / "tenant/migrations"
    assert tenant.tracking_table == "tenant_migrations" and tenant.clients is True
    assert tenant.databases == ()
    local = config.local_database("app")
    assert local is not None and local.preview_database_id == "preview-1"
    assert config.local_database("tenant") is None
    with pytest.raises(ConfigError, match=r"no family 'nope'.*app, tenant"):
        config.family("nope")


def test_each_binding_is_a_family_of_its_own(tmp_path: Path) -> None:
    config = load(tmp_path, {"wrangler.toml": TWO_BINDINGS})
    assert list(config.families) == ["db", "audit"]
    db, audit = config.family("db"), config.family("audit")
    assert [d.database_name for d in db.databases] == ["app-dev"]
    assert [d.database_name for d in db.environment_databases] == ["app-staging"]
    assert (db.migrations_dir, db.tracking_table) == (tmp_path / "db/migrations", "schema_history")
    assert [d.database_name for d in audit.databases] == ["audit"]
    assert (audit.migrations_dir, audit.tracking_table) == (
        tmp_path / "migrations",
        "d1_migrations",
    )
    assert (db.rollbacks_dir, audit.rollbacks_dir) == (
        tmp_path / "rollbacks/db",
        tmp_path / "rollbacks/audit",
    )
    local = config.local_database("audit")
    assert local is not None and local.binding == "AUDIT"


def test_bindings_sharing_a_directory_share_a_family(tmp_path: Path) -> None:
    text = (
        '[[d1_databases]]\nbinding = "A"\ndatabase_name = "a"\n'
        '[[d1_databases]]\nbinding = "B"\ndatabase_name = "b"\nmigrations_dir = "./migrations/"\n'
    )
    config = load(tmp_path, {"wrangler.toml": text})
    assert list(config.families) == ["default"]
    assert [d.binding for d in config.default_family.databases] == ["A", "B"]
    assert config.rollbacks_dir == tmp_path / "rollbacks"


def test_one_database_under_two_families_is_refused(tmp_path: Path) -> None:
    text = (
        '[[d1_databases]]\nbinding = "DB"\ndatabase_name = "app"\ndatabase_id = "id-1"\n'
        '[[d1_databases]]\nbinding = "OTHER"\ndatabase_name = "app-again"\n'
        'database_id = "id-1"\nmigrations_dir = "other"\n'
    )
    with pytest.raises(ConfigError) as info:
        load(tmp_path, {"wrangler.toml": text})
    message = str(info.value)
    assert "database 'app' is both binding 'DB'" in message
    assert "binding 'OTHER'" in message and "(migrations other)" in message
    assert "ambiguous" in message and "[tool.d1check.families.NAME]" in message


def test_one_migrations_dir_for_several_families_is_refused(tmp_path: Path) -> None:
    files = {"wrangler.toml": TWO_BINDINGS, **pyproject('migrations_dir = "sql"')}
    with pytest.raises(ConfigError, match=r"migrations_dir is one directory.*DB → .*db/migrations"):
        load(tmp_path, files)


def test_clients_belong_to_the_family_that_names_their_databases(tmp_path: Path) -> None:
    text = TWO_BINDINGS + '[env.acme]\n[[env.acme.d1_databases]]\nbinding = "AUDIT"\n'
    text += 'database_name = "acme-db"\ndatabase_id = "id-acme"\n'
    files = {"wrangler.toml": text, "config/clients.json": json.dumps(CLIENTS)}
    config = load(tmp_path, files)
    assert [f.name for f in config.families.values() if f.clients] == ["audit"]
    with pytest.raises(ConfigError, match=r"several families \(db, audit\).*match none of them"):
        load(tmp_path / "x", files | {"wrangler.toml": TWO_BINDINGS})


def test_unknown_family_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, pyproject('[tool.d1check.families.app]\nbindings = "DB"'))
    message = str(info.value)
    assert "families.app" in message and "unknown key 'bindings'" in message
    assert "known keys: binding, clients, migrations_dir, rollbacks_dir, tracking_table" in message


def test_family_binding_must_exist_in_wrangler(tmp_path: Path) -> None:
    files = {
        "wrangler.toml": WRANGLER_TOML,
        **pyproject('[tool.d1check.families.app]\nbinding = "X"'),
    }
    with pytest.raises(ConfigError, match=r"binding 'X' is not a d1_databases binding.*DB"):
        load(tmp_path, files)
    with pytest.raises(ConfigError, match=r"no wrangler config"):
        load(tmp_path / "bare", pyproject('[tool.d1check.families.app]\nbinding = "X"'))


def test_families_sharing_a_migrations_dir_are_refused(tmp_path: Path) -> None:
    body = "[tool.d1check.families.a]\n[tool.d1check.families.b]\n"
    with pytest.raises(ConfigError, match=r"families 'a' and 'b' share migrations_dir"):
        load(tmp_path, pyproject(body))


def test_only_one_family_may_own_the_clients(tmp_path: Path) -> None:
    body = (
        '[tool.d1check.families.a]\nclients = true\nmigrations_dir = "a"\nrollbacks_dir = "ra"\n'
        '[tool.d1check.families.b]\nclients = true\nmigrations_dir = "b"\nrollbacks_dir = "rb"\n'
    )
    files = {"config/clients.json": json.dumps(CLIENTS), **pyproject(body)}
    with pytest.raises(ConfigError, match=r"a, b all set clients = true"):
        load(tmp_path, files)


def test_clients_family_needs_the_registry(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"clients = true but .*clients.json does not exist"):
        load(tmp_path, pyproject("[tool.d1check.families.t]\nclients = true"))


def test_environments_are_lists_of_names(tmp_path: Path) -> None:
    config = load(tmp_path, pyproject('[tool.d1check.environments]\ncanary = ["acme", "db-2"]'))
    assert config.environments == {"canary": ("acme", "db-2")}
    with pytest.raises(ConfigError, match=r"canary: expected a list of strings"):
        load(tmp_path / "x", pyproject('[tool.d1check.environments]\ncanary = "acme"'))
    with pytest.raises(ConfigError, match=r"'local' is built in"):
        load(tmp_path / "y", pyproject('[tool.d1check.environments]\nlocal = ["a"]'))
    declared = load(tmp_path / "z", pyproject('[tool.d1check.environments]\nproduction = ["a"]'))
    assert declared.environments == {"production": ("a",)}


def test_a_name_may_mean_only_one_thing(tmp_path: Path) -> None:
    files = {
        "config/clients.json": json.dumps(CLIENTS),
        **pyproject('[tool.d1check.environments]\nacme = ["globex"]'),
    }
    with pytest.raises(ConfigError, match=r"'acme' is both"):
        load(tmp_path, files)


# -- file patterns -------------------------------------------------------------------------------


def test_production_schema_and_seed_paths(tmp_path: Path) -> None:
    body = 'production_schema = ["exports", "one.sql"]\nseed_files = ["seeds/*.sql", "extra.sql"]'
    files = {
        "exports/b.sql": "",
        "exports/a.sql": "",
        "exports/notes.md": "",
        "one.sql": "",
        "seeds/2.sql": "",
        "seeds/1.sql": "",
        "extra.sql": "",
        **pyproject(body),
    }
    config = load(tmp_path, files)
    names = [p.relative_to(tmp_path).as_posix() for p in config.production_schema_paths()]
    assert names == ["exports/a.sql", "exports/b.sql", "one.sql"]
    seeds = [p.relative_to(tmp_path).as_posix() for p in config.seed_paths()]
    assert seeds == ["seeds/1.sql", "seeds/2.sql", "extra.sql"]


def test_missing_pattern_target_is_an_error(tmp_path: Path) -> None:
    config = load(tmp_path, pyproject('production_schema = "prod.sql"'))
    with pytest.raises(ConfigError, match=r"production_schema: 'prod.sql' does not exist"):
        config.production_schema_paths()


# -- reading wrangler configs as wrangler does; finding them below the root ----------------------


def test_wrangler_toml_with_a_byte_order_mark(tmp_path: Path) -> None:
    (tmp_path / "wrangler.toml").write_bytes(b"\xef\xbb\xbf" + WRANGLER_TOML.encode())
    config = load_config(tmp_path)
    assert config.wrangler is not None and config.wrangler.account_id == "acc-top"


def test_wrangler_configs_below_the_root(tmp_path: Path) -> None:
    one = '[[d1_databases]]\nbinding = "DB"\ndatabase_name = "{}"\n'
    files = {
        "services/api/wrangler.toml": one.format("api"),
        "services/api/nested/wrangler.toml": one.format("inside-a-project"),
        "workers/cron/wrangler.jsonc": '{"d1_databases": [{"binding": "DB"}]}',
        "a/b/c/wrangler.toml": one.format("deep-enough"),
        "a/b/c/d/wrangler.toml": one.format("too-deep"),
        "node_modules/pkg/wrangler.toml": one.format("a-dependency"),
        ".hidden/wrangler.toml": one.format("hidden"),
        "build/wrangler.toml": one.format("norecursedirs"),
    }
    config = load(tmp_path, files)
    assert config.found_below
    found = [w.path.relative_to(tmp_path).as_posix() for w in config.wranglers]
    assert found == [
        "a/b/c/wrangler.toml",
        "services/api/wrangler.toml",
        "workers/cron/wrangler.jsonc",
    ]
    assert list(config.families) == ["a/b/c", "services/api", "workers/cron"]
    api = config.family("services/api")
    assert api.migrations_dir == tmp_path / "services/api/migrations"
    assert api.rollbacks_dir == tmp_path / "services/api/rollbacks"
    assert load_config(tmp_path, norecursedirs=["services"]).family("a/b/c")
    custom = load_config(tmp_path, norecursedirs=["serv*"])
    assert list(custom.families) == ["a/b/c", "build", "workers/cron"]


def test_no_search_when_the_root_has_config_or_migrations(tmp_path: Path) -> None:
    files = {"app/wrangler.toml": '[[d1_databases]]\nbinding = "DB"\n', "migrations/.keep": ""}
    assert load(tmp_path, files).wranglers == ()
    assert load(tmp_path / "t", {**files, "migrations/.keep": "", **pyproject("")}).wranglers == ()


def test_migrations_pattern_is_checked_as_wrangler_checks_it(tmp_path: Path) -> None:
    entry = '[[d1_databases]]\nbinding = "DB"\n'
    with pytest.raises(ConfigError, match=r"migrations_pattern .* without migrations_dir"):
        load(tmp_path / "a", {"wrangler.toml": entry + 'migrations_pattern = "m/*/x.sql"\n'})
    with pytest.raises(ConfigError, match=r"must start with 'db/' to match migrations_dir 'db'"):
        text = entry + 'migrations_dir = "db"\nmigrations_pattern = "m/*/x.sql"\n'
        load(tmp_path / "b", {"wrangler.toml": text})
    text = entry + 'migrations_dir = "./db/"\nmigrations_pattern = "db/*/migration.sql"\n'
    assert load(tmp_path / "c", {"wrangler.toml": text}).default_family.migrations_pattern == (
        "*/migration.sql"
    )
