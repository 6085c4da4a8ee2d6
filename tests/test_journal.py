"""The run journal: durable lines, a crash-cut last line, resuming, in-flight clients."""

from __future__ import annotations

from pathlib import Path

import pytest

from d1check.errors import ConfigError
from d1check.journal import (
    BOOKMARKED,
    MIGRATED,
    SENDING,
    STARTED,
    Journal,
    journal_path,
    new_run_id,
    read_journal,
)


def test_states_are_read_back_with_what_was_recorded_along_the_way(tmp_path: Path) -> None:
    with Journal.create(tmp_path, "r1", "production", ["a", "b", "c"]) as journal:
        journal.write("a", STARTED)
        journal.write("a", BOOKMARKED, bookmark="bm-a")
        journal.write("a", MIGRATED, version="0003_x")
        journal.write("b", STARTED)
        journal.write("b", BOOKMARKED, bookmark="bm-b")
        journal.write("b", SENDING, migration="0002_y")
    record = read_journal(tmp_path / "r1.jsonl")
    assert (record.run_id, record.target, record.clients) == ("r1", "production", ("a", "b", "c"))
    assert record.state("a").state == MIGRATED and record.state("a").bookmark == "bm-a"
    assert record.state("a").version == "0003_x"
    assert record.state("b").bookmark == "bm-b" and record.state("b").migration == "0002_y"
    assert record.in_flight() == ["b"]
    assert record.finished() == ["a"]
    assert record.state("c").state == ""


def test_every_line_is_on_disk_when_write_returns(tmp_path: Path) -> None:
    journal = Journal.create(tmp_path, "r1", "production", ["a"])
    journal.write("a", STARTED)
    assert read_journal(journal.path).in_flight() == ["a"]
    journal.close()


def test_a_last_line_cut_by_a_crash_is_ignored(tmp_path: Path) -> None:
    with Journal.create(tmp_path, "r1", "production", ["a"]) as journal:
        journal.write("a", STARTED)
    with journal.path.open("a", encoding="utf-8") as fh:
        fh.write('{"event": "state", "client": "a", "sta')
    assert read_journal(journal.path).state("a").state == STARTED


def test_a_damaged_line_in_the_middle_is_reported_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "r1.jsonl"
    path.write_text(
        '{"event": "run", "run_id": "r1", "target": "t", "clients": []}\nnot json\n{}\n', "utf-8"
    )
    with pytest.raises(ConfigError, match=r"r1.jsonl:2: not JSON"):
        read_journal(path)


def test_resume_appends_to_the_same_file(tmp_path: Path) -> None:
    with Journal.create(tmp_path, "r1", "production", ["a"]) as journal:
        journal.write("a", STARTED)
    with Journal.resume(tmp_path, "r1") as again:
        assert again.record.in_flight() == ["a"]
        again.write("a", MIGRATED)
    assert read_journal(tmp_path / "r1.jsonl").finished() == ["a"]


def test_resuming_an_unknown_run_and_reusing_a_run_id_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="nothing to resume"):
        Journal.resume(tmp_path, "nope")
    Journal.create(tmp_path, "r1", "production", []).close()
    with pytest.raises(ConfigError, match="--resume r1"):
        Journal.create(tmp_path, "r1", "production", [])
    with pytest.raises(ConfigError, match="not a run id"):
        journal_path(tmp_path, "../etc")


def test_run_ids_sort_by_time_and_are_unique() -> None:
    ids = {new_run_id() for _ in range(50)}
    assert len(ids) == 50
    assert all(len(i) == len("20261126T140200Z-3fa9c1") for i in ids)
