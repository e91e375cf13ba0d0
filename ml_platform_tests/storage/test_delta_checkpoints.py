"""A Delta table the platform creates checkpoints its log every CHECKPOINT_INTERVAL commits, so that opening it
replays at most that many commits however many partitions it took; a write answers the version its own commit made,
also when other writers committed between its open and its commit. A real local Delta table."""

from __future__ import annotations

import datetime as dt
import json

import pyarrow as pa
import pytest

pytest.importorskip("deltalake",
                    reason="the cluster extra is not installed (deltalake missing: pip install -e '.[cluster]')")

from ml_platform.storage import delta_tables  # noqa: E402
from ml_platform.storage.delta_tables import CHECKPOINT_INTERVAL, DeltaStore  # noqa: E402

FIRST = dt.date(2013, 1, 1)


def _rows(day: dt.date, value: int) -> pa.Table:
    return pa.table({"partition_date": pa.array([day] * 2, pa.date32()), "value": pa.array([value] * 2)})


def _day(offset: int) -> dt.date:
    return FIRST + dt.timedelta(days=offset)


def test_a_created_table_checkpoints_every_interval_and_later_commits_carry_no_metadata(tmp_path):
    store = DeltaStore(root=str(tmp_path / "store"))
    commits = 2 * CHECKPOINT_INTERVAL + 3
    versions = [store.replace_days("features/daily", _rows(_day(offset), offset), _day(offset), _day(offset),
                                   "partition_date", {"day": offset}) for offset in range(commits)]
    assert versions == list(range(commits))
    table = store.table("features/daily")
    assert table.metadata().configuration == {"delta.checkpointInterval": str(CHECKPOINT_INTERVAL)}
    log = tmp_path / "store" / "features" / "daily" / "_delta_log"
    assert sorted(path.name for path in log.glob("*.checkpoint.parquet")) == [
        f"{version:020d}.checkpoint.parquet" for version in range(CHECKPOINT_INTERVAL - 1, commits, CHECKPOINT_INTERVAL)]
    # the setting is the creation's: no later commit changes the table's metadata (which would conflict with
    # every concurrent writer's commit)
    for version in range(1, commits):
        actions = [json.loads(line) for line in (log / f"{version:020d}.json").read_text().splitlines()]
        assert not any("metaData" in action or "protocol" in action for action in actions), version
    stored = table.to_pyarrow_table().to_pydict()
    assert sorted(stored["value"]) == sorted(2 * list(range(commits)))


def _overtaken(monkeypatch, store: DeltaStore, path: str, day: dt.date, value: int) -> None:
    """Another writer commits `day` right after each of this process's writes commits (once)."""
    import deltalake

    write = deltalake.write_deltalake
    pending = [True]

    def then_another(*args, **kwargs):
        write(*args, **kwargs)
        if pending.pop() if pending else False:
            write(store.uri(path), _rows(day, value), mode="overwrite", partition_by=["partition_date"],
                  predicate=f"partition_date = '{day.isoformat()}'")

    monkeypatch.setattr(deltalake, "write_deltalake", then_another)


def test_a_write_answers_its_own_commit_s_version_when_another_writer_commits_right_after(tmp_path, monkeypatch):
    store = DeltaStore(root=str(tmp_path / "store"))
    assert store.replace_days("features/shared", _rows(_day(0), 0), _day(0), _day(0), "partition_date", {}) == 0
    _overtaken(monkeypatch, store, "features/shared", _day(1), 1)
    assert store.replace_days("features/shared", _rows(_day(2), 2), _day(2), _day(2), "partition_date", {}) == 1
    table = store.table("features/shared")
    assert table.version() == 2 and sorted(table.to_pyarrow_table().to_pydict()["value"]) == [0, 0, 1, 1, 2, 2]


def test_the_write_that_creates_a_table_answers_version_0_when_another_writer_commits_right_after(
        tmp_path, monkeypatch):
    store = DeltaStore(root=str(tmp_path / "store"))
    _overtaken(monkeypatch, store, "features/new", _day(1), 1)
    assert store.replace_days("features/new", _rows(_day(0), 0), _day(0), _day(0), "partition_date",
                              {"day": 0}) == 0
    assert store.table("features/new").version() == 1
    commits = store.commits("features/new")
    assert [commit["version"] for commit in commits] == [0, 1] and commits[0]["day"] == 0
    assert len(commits[0][delta_tables.WRITE_MARK]) == 32  # the mark it was found by
