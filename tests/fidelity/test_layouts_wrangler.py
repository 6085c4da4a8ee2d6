"""Layouts against the real wrangler: what it records and in which order for a
`migrations_pattern`, and which config file it reads when several exist."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from wrangler_driver import Wrangler, miniflare_file_name, recorded_migrations

from d1check.config import load_config
from d1check.discovery import discover

pytestmark = pytest.mark.workerd

EXAMPLES = Path(__file__).parents[1] / "examples"
NESTED = {
    "2_mid/migration.sql": "CREATE TABLE IF NOT EXISTS mid (x);\n",
    "10_later/migration.sql": "CREATE TABLE IF NOT EXISTS later (x);\n",
    "0010_wide/migration.sql": "CREATE TABLE IF NOT EXISTS wide (x);\n",
    "0001_add_tags/extra.sql": "CREATE TABLE never (x);\n",
    "notes/migration.sql": "CREATE TABLE IF NOT EXISTS notes (x);\n",
    ".cache/migration.sql": "CREATE TABLE hidden (x);\n",
}


def apply_locally(wrangler: Wrangler, project: Path) -> tuple[str, ...]:
    persist = project / "state"
    args = ["d1", "migrations", "apply", "DB", "--local", "--persist-to", str(persist)]
    done = wrangler._run(args, project)
    assert done.returncode == 0, done.stdout + done.stderr
    config = load_config(project)
    database = config.default_family.databases[0]
    assert database.database_id is not None
    store = persist / "v3" / "d1" / "miniflare-D1DatabaseObject"
    return recorded_migrations(store / miniflare_file_name(database.database_id))


def test_nested_migrations_are_named_and_ordered_as_wrangler_records_them(
    wrangler: Wrangler, tmp_path: Path
) -> None:
    project = tmp_path / "project"
    shutil.copytree(EXAMPLES / "nested_pattern", project)
    for name, text in NESTED.items():
        (project / "migrations" / name).parent.mkdir(parents=True, exist_ok=True)
        (project / "migrations" / name).write_text(text)
    family = load_config(project).default_family
    ours = discover(family.migrations_dir, family.rollbacks_dir, family.migrations_pattern)
    recorded = apply_locally(wrangler, project)
    assert recorded == tuple(m.file_name for m in ours.migrations)
    assert recorded[0] == "0000_init/migration.sql" and recorded[-1] == "notes/migration.sql"


def test_wrangler_reads_jsonc_before_toml(wrangler: Wrangler, tmp_path: Path) -> None:
    project = tmp_path / "project"
    shutil.copytree(EXAMPLES / "nested_pattern", project)
    (project / "wrangler.jsonc").write_text(
        '{\n  // flat files, unlike wrangler.toml\n  "name": "orm-app",\n'
        '  "compatibility_date": "2025-01-01",\n  "d1_databases": [{"binding": "DB",\n'
        '    "database_name": "orm-app", "database_id": "id-jsonc",\n'
        '    "migrations_dir": "flat"}],\n}\n'
    )
    (project / "flat").mkdir()
    (project / "flat" / "0001_flat.sql").write_text("CREATE TABLE IF NOT EXISTS flat (x);\n")
    config = load_config(project)
    assert config.wrangler is not None and config.wrangler.path.name == "wrangler.jsonc"
    assert apply_locally(wrangler, project) == ("0001_flat.sql",)
