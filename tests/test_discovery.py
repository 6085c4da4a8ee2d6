"""Migration files: UTF-8 reading, wrangler's order, rollbacks and directives."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from d1check.discovery import (
    Directive,
    discover,
    parse_directives,
    read_sql_file,
    wrangler_order_key,
)
from d1check.errors import MigrationFileError


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


# -- reading -------------------------------------------------------------------------------------


def test_read_sql_file_splits_and_hashes_the_raw_bytes(tmp_path: Path) -> None:
    data = b"CREATE TABLE a (x);\nINSERT INTO a VALUES ('\xc3\xa9');\n"
    path = write(tmp_path / "0001_a.sql", data)
    file = read_sql_file(path)
    assert file.path == path
    assert file.sha256 == hashlib.sha256(data).hexdigest()
    assert [s.line for s in file.statements] == [1, 2]
    assert "é" in file.text


def test_bom_is_removed_but_hashed(tmp_path: Path) -> None:
    data = b"\xef\xbb\xbfSELECT 1;\n"
    file = read_sql_file(write(tmp_path / "0001_a.sql", data))
    assert file.text == "SELECT 1;\n"
    assert file.statements[0].sql == "SELECT 1;"
    assert file.sha256 == hashlib.sha256(data).hexdigest()


def test_non_utf8_names_the_file_line_and_byte_offset(tmp_path: Path) -> None:
    path = write(tmp_path / "0002_latin1.sql", b"SELECT 1;\nSELECT 'caf\xe9';\n")
    with pytest.raises(MigrationFileError) as info:
        read_sql_file(path)
    message = str(info.value)
    assert str(path) in message and ":2:" in message
    assert "byte offset 21" in message and "0xe9" in message and "UTF-8" in message
    assert info.value.line == 2


def test_missing_file_is_a_migration_file_error(tmp_path: Path) -> None:
    with pytest.raises(MigrationFileError, match=r"cannot read"):
        read_sql_file(tmp_path / "nope.sql")


# -- order ---------------------------------------------------------------------------------------


def test_wrangler_order_is_numeric_then_name_then_unnumbered() -> None:
    names = ["INIT.sql", "0010_d.sql", "0004_b.sql", "02_c.sql", "0002_e.sql", "001_a.sql"]
    expected = ["001_a.sql", "0002_e.sql", "02_c.sql", "0004_b.sql", "0010_d.sql", "INIT.sql"]
    assert sorted(names, key=wrangler_order_key) == expected


def test_plain_name_order_would_differ() -> None:
    names = ["9_a.sql", "10_b.sql"]
    assert sorted(names) == ["10_b.sql", "9_a.sql"]
    assert sorted(names, key=wrangler_order_key) == ["9_a.sql", "10_b.sql"]


def test_unnumbered_files_sort_by_name_after_numbered() -> None:
    names = ["zeta.sql", "alpha.sql", "0001_x.sql"]
    assert sorted(names, key=wrangler_order_key) == ["0001_x.sql", "alpha.sql", "zeta.sql"]


# -- discover ------------------------------------------------------------------------------------


def test_discover_orders_names_and_versions(tmp_path: Path) -> None:
    for name in ["0010_d.sql", "0002_b.sql", "0001_a.sql", "seed.sql"]:
        write(tmp_path / "migrations" / name, "SELECT 1;\n")
    found = discover(tmp_path / "migrations", tmp_path / "rollbacks")
    assert [m.name for m in found.migrations] == ["0001_a", "0002_b", "0010_d", "seed"]
    assert [m.version for m in found.migrations] == ["0001", "0002", "0010", ""]
    assert [m.number for m in found.migrations] == [1, 2, 10, None]
    assert found.migrations[0].file_name == "0001_a.sql"
    assert found.migrations[0].path == tmp_path / "migrations" / "0001_a.sql"


def test_only_sql_files_count(tmp_path: Path) -> None:
    write(tmp_path / "m" / "0001_a.sql", "SELECT 1;")
    write(tmp_path / "m" / "d1check.sum", "0001_a.sql abc\n")
    write(tmp_path / "m" / "README.md", "# notes")
    write(tmp_path / "m" / "0002_b.sql.bak", "SELECT 2;")
    (tmp_path / "m" / "0003_dir.sql").mkdir()
    found = discover(tmp_path / "m", tmp_path / "r")
    assert [m.name for m in found.migrations] == ["0001_a"]


def test_missing_migrations_dir_gives_no_migrations(tmp_path: Path) -> None:
    found = discover(tmp_path / "absent", tmp_path / "rollbacks")
    assert found.migrations == () and found.orphan_rollbacks == ()


def test_rollbacks_match_by_number_and_orphans_are_listed(tmp_path: Path) -> None:
    write(tmp_path / "migrations" / "0001_a.sql", "CREATE TABLE a (x);")
    write(tmp_path / "migrations" / "0003_add_review_fields.sql", "ALTER TABLE a ADD y;")
    write(tmp_path / "rollbacks" / "3_rollback.sql", "ALTER TABLE a DROP COLUMN y;")
    write(tmp_path / "rollbacks" / "0009_rollback.sql", "SELECT 1;")
    write(tmp_path / "rollbacks" / "undo.sql", "SELECT 1;")
    write(tmp_path / "rollbacks" / "notes.txt", "not sql")
    found = discover(tmp_path / "migrations", tmp_path / "rollbacks")
    first, third = found.migrations
    assert first.rollback is None
    assert third.rollback is not None
    assert third.rollback.path.name == "3_rollback.sql"
    assert third.rollback.statements[0].sql == "ALTER TABLE a DROP COLUMN y;"
    assert [p.name for p in found.orphan_rollbacks] == ["0009_rollback.sql", "undo.sql"]


def test_two_rollbacks_for_one_number_is_an_error(tmp_path: Path) -> None:
    write(tmp_path / "migrations" / "0003_a.sql", "SELECT 1;")
    write(tmp_path / "rollbacks" / "0003_rollback.sql", "SELECT 1;")
    write(tmp_path / "rollbacks" / "03_rollback.sql", "SELECT 1;")
    with pytest.raises(MigrationFileError, match=r"two rollbacks for migration number 3"):
        discover(tmp_path / "migrations", tmp_path / "rollbacks")


def test_find_by_version_number_or_name(tmp_path: Path) -> None:
    write(tmp_path / "m" / "0003_add_review_fields.sql", "SELECT 1;")
    write(tmp_path / "m" / "0001_init.sql", "SELECT 1;")
    found = discover(tmp_path / "m", tmp_path / "r")
    for key in ["0003", "3", "0003_add_review_fields", "0003_add_review_fields.sql"]:
        assert found.find(key).name == "0003_add_review_fields"
    with pytest.raises(MigrationFileError, match=r"no migration matches '7'.*0001_init"):
        found.find("7")


def test_find_refuses_an_ambiguous_number(tmp_path: Path) -> None:
    write(tmp_path / "m" / "0003_a.sql", "SELECT 1;")
    write(tmp_path / "m" / "03_b.sql", "SELECT 1;")
    found = discover(tmp_path / "m", tmp_path / "r")
    with pytest.raises(MigrationFileError, match=r"several migrations match"):
        found.find("3")
    assert found.find("03_b").name == "03_b"


# -- directives ----------------------------------------------------------------------------------


def test_directives_are_read_from_comments_anywhere(tmp_path: Path) -> None:
    text = (
        "-- d1check: allow-destructive users asked for it\n"
        "DROP TABLE old;\n"
        "/* notes\n   d1check: irreversible data is gone */\n"
        "SELECT 1; -- d1check:not-idempotent  runs once  \n"
    )
    write(tmp_path / "m" / "0001_a.sql", text)
    migration = discover(tmp_path / "m", tmp_path / "r").migrations[0]
    assert migration.directives == (
        Directive("allow-destructive", "users asked for it", 1),
        Directive("irreversible", "data is gone", 4),
        Directive("not-idempotent", "runs once", 5),
    )
    assert migration.directive("irreversible") == Directive("irreversible", "data is gone", 4)
    assert migration.directive("allow-destructive") is not None


def test_directive_text_inside_a_string_is_not_a_directive(tmp_path: Path) -> None:
    path = write(tmp_path / "0001_a.sql", "SELECT '-- d1check: bogus';\n-- mentions d1check\n")
    assert parse_directives(read_sql_file(path)) == ()


def test_directive_without_reason_is_a_problem_of_its_file_with_line(tmp_path: Path) -> None:
    write(tmp_path / "m" / "0001_a.sql", "SELECT 1;\n-- d1check: allow-destructive\n")
    write(tmp_path / "m" / "0002_b.sql", "SELECT 2;\n")
    first, second = discover(tmp_path / "m", tmp_path / "r").migrations
    assert first.directives == ()
    (problem,) = first.directive_problems
    assert problem.line == 2
    message = str(problem)
    assert "0001_a.sql:2:" in message and "needs a reason" in message
    assert "allow-destructive, not-idempotent, irreversible" in message
    assert second.directive_problems == ()


def test_unknown_directive_is_a_problem_listing_the_known_ones(tmp_path: Path) -> None:
    path = write(tmp_path / "m" / "0001_a.sql", "\n\n/* d1check: allow-destruction oops */")
    (problem,) = discover(tmp_path / "m", tmp_path / "r").migrations[0].directive_problems
    message = str(problem)
    assert "0001_a.sql:3:" in message and "allow-destruction" in message
    assert "known directives: allow-destructive, not-idempotent, irreversible" in message
    with pytest.raises(MigrationFileError) as info:
        parse_directives(read_sql_file(path))
    assert "0001_a.sql:3:" in str(info.value)
