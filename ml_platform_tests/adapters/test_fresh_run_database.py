"""A new run's event database is a copy of one Dagster initialised once in the process: the same schema, Alembic
stamp and write-ahead-log mode as Dagster's own, never put over a file that exists, and read by the stock log."""

import shutil  # no `from __future__ import annotations`: Dagster reads the asset's context annotation
import sqlite3
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.storage.event_log import SqliteEventLogStorage

from ml_platform.adapters import event_log
from ml_platform.adapters.event_log import BatchingSqliteEventLogStorage, events_folder
from ml_platform.adapters.instance import open_instance
from ml_platform_tests.helpers import REPO_ROOT


@dg.asset(partitions_def=dg.DailyPartitionsDefinition(start_date="2013-01-01"))
def counted(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata={"day": context.partition_key})


def home_with(tmp_path: Path, name: str, configured: bool = True) -> Path:
    home = tmp_path / name
    home.mkdir()
    if configured:
        shutil.copyfile(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
    return home


def describe(path: Path) -> dict:
    """What a database is, apart from its rows: its schema, its Alembic stamp and its journal mode."""
    with sqlite3.connect(path) as connection:
        schema = sorted(connection.execute("SELECT type, name, tbl_name, sql FROM sqlite_master").fetchall())
        stamp = connection.execute("SELECT version_num FROM alembic_version").fetchall()
        mode = connection.execute("PRAGMA journal_mode").fetchone()[0]
        version = connection.execute("PRAGMA user_version").fetchone()[0]
    return {"schema": schema, "stamp": stamp, "journal_mode": mode, "user_version": version}


def run_database(home: Path, run_id: str) -> Path:
    return Path(events_folder(str(home))) / f"{run_id}.db"


def test_a_copied_run_database_is_the_one_dagster_makes(tmp_path):
    ours = open_instance(home_with(tmp_path, "ours"))
    (tmp_path / "stock").mkdir()
    stock = dg.DagsterInstance.local_temp(str(tmp_path / "stock"))
    assert isinstance(ours.event_log_storage, BatchingSqliteEventLogStorage)
    assert type(stock.event_log_storage) is SqliteEventLogStorage
    ran = dg.materialize([counted], instance=ours, partition_key="2013-01-01")
    reference = dg.materialize([counted], instance=stock, partition_key="2013-01-01")
    assert ran.success and reference.success
    copied, made = run_database(Path(ours.root_directory), ran.run_id), \
        Path(stock.event_log_storage._base_dir) / f"{reference.run_id}.db"
    assert describe(copied) == describe(made)
    assert describe(copied)["journal_mode"] == "wal" and describe(copied)["stamp"]
    ours.dispose()
    stock.dispose()


def test_dagster_initialises_a_run_database_once_per_process(tmp_path, monkeypatch):
    """The first new run database of the process is Dagster's own initialisation; later ones are copies of it."""
    calls = []
    original = SqliteEventLogStorage._initdb

    def counting(self, engine, for_index_shard=False):
        calls.append(engine.url.database)
        return original(self, engine, for_index_shard=for_index_shard)

    monkeypatch.setattr(SqliteEventLogStorage, "_initdb", counting)
    monkeypatch.setattr(event_log, "_fresh", {})
    instance = open_instance(home_with(tmp_path, "home"))
    calls.clear()  # the index's, when the instance was opened
    results = [dg.materialize([counted], instance=instance, partition_key=f"2013-01-0{day}") for day in (1, 2, 3)]
    assert all(result.success for result in results)
    assert len(calls) == 1 and Path(calls[0]).name == "run.db"  # the fresh one, in a folder of its own
    stock = dg.DagsterInstance.from_ref(instance.get_ref())
    # the stock read of the copies (with the batching log, as dagster.yaml configures it, from another instance)
    assert sorted(record.partition_key for record in stock.fetch_materializations(
        dg.AssetKey("counted"), limit=10).records) == ["2013-01-01", "2013-01-02", "2013-01-03"]
    assert all(stock.get_run_stats(result.run_id).steps_succeeded == 1 for result in results)
    instance.dispose()
    stock.dispose()


def test_a_database_that_exists_is_never_replaced(tmp_path):
    """A file (or a log) already at a run database's name is Dagster's to open, as it is: nothing is copied over."""
    home = home_with(tmp_path, "home")
    instance = open_instance(home)
    folder = Path(events_folder(str(home)))
    kept = folder / "taken.db"
    with sqlite3.connect(kept) as connection:
        connection.execute("CREATE TABLE kept (x)")
        connection.execute("INSERT INTO kept VALUES (1)")
    storage = instance.event_log_storage
    with storage.run_connection("taken") as connection:  # Dagster's own initialisation adds its tables
        connection.exec_driver_sql("SELECT count(*) FROM event_logs")
    with sqlite3.connect(kept) as connection:
        assert connection.execute("SELECT x FROM kept").fetchall() == [(1,)]
    stale = folder / "orphan.db-wal"
    stale.write_bytes(b"")
    assert not event_log._place_fresh_database(str(folder / "orphan.db"), storage._initdb)
    assert not (folder / "orphan.db").exists()
    assert not list(folder.glob("*.incoming"))
    instance.dispose()


def test_a_name_taken_meanwhile_is_left_to_its_maker(tmp_path, monkeypatch):
    """Another process creating the same database between the check and the copy wins: its file stays."""
    folder = tmp_path / "runs"
    folder.mkdir()
    target = folder / "raced.db"
    real_link = event_log.os.link

    def raced(source, destination):
        Path(destination).write_bytes(b"the other process's database")
        return real_link(source, destination)

    monkeypatch.setattr(event_log.os, "link", raced)
    storage = BatchingSqliteEventLogStorage(base_dir=str(folder))
    assert not event_log._place_fresh_database(str(target), storage._initdb)
    assert target.read_bytes() == b"the other process's database"
    assert not list(folder.glob("*.incoming"))
    storage.dispose()


def test_an_initialisation_that_leaves_a_log_behind_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setattr(event_log, "_fresh", {})

    def leaves_a_log(engine):
        Path(engine.url.database + "-wal").write_bytes(b"x")

    with pytest.raises(dg.DagsterInvariantViolationError, match="kept run.db-wal"):
        event_log._place_fresh_database(str(tmp_path / "new.db"), leaves_a_log)
    assert not (tmp_path / "new.db").exists()
