"""The replay's run and schedule storages: a stamped database is opened by reading its stamp, not Alembic's scripts,
in the instance and in every instance built from its reference; anything else is opened Dagster's way."""

import shutil  # no `from __future__ import annotations`: Dagster reads the asset's context annotation
import sqlite3

import dagster as dg
import pytest
import yaml
from dagster._core.storage.runs.sqlite import sqlite_run_storage
from dagster._core.storage.schedules.sqlite import sqlite_schedule_storage

from ml_platform.adapters import daemons
from ml_platform.adapters.stamped_storage import (StampedSqliteRunStorage, StampedSqliteScheduleStorage, is_stamped,
                                                  stamped_storages)
from ml_platform_tests.helpers import REPO_ROOT


@dg.asset
def number() -> int:
    return 1


@pytest.fixture
def home(tmp_path):
    folder = tmp_path / "home"
    folder.mkdir()
    shutil.copyfile(REPO_ROOT / "dagster.yaml", folder / "dagster.yaml")
    return folder


@pytest.fixture
def alembic_reads(monkeypatch):
    """How often the run and schedule storages read Alembic's scripts (Dagster's own opening)."""
    counted = []
    for module in (sqlite_run_storage, sqlite_schedule_storage):
        original = module.check_alembic_revision

        def counting(config, connection, original=original, name=module.__name__.rsplit(".", 1)[-1]):
            counted.append(name)
            return original(config, connection)

        monkeypatch.setattr(module, "check_alembic_revision", counting)
    return counted


def test_a_new_folder_is_created_dagster_s_way_then_opened_by_its_stamp(home, alembic_reads):
    instance = daemons.in_process_instance(home)
    assert isinstance(instance.run_storage, StampedSqliteRunStorage)
    assert isinstance(instance.schedule_storage, StampedSqliteScheduleStorage)
    assert sorted(alembic_reads) == ["sqlite_run_storage", "sqlite_schedule_storage"]  # created and stamped
    assert is_stamped(str(home / "history" / "runs.db"), "runs", "instance_info")
    assert is_stamped(str(home / "schedules" / "schedules.db"), "jobs", "job_ticks")
    assert dg.materialize([number], instance=instance).success
    alembic_reads.clear()
    for _ in range(3):  # what a tick builds from the instance's reference, each time it reads its instance
        built = dg.DagsterInstance.from_ref(instance.get_ref())
        assert isinstance(built.run_storage, StampedSqliteRunStorage)
        assert len(built.get_runs()) == 1 and built.get_run_stats(built.get_runs()[0].run_id).steps_succeeded == 1
        assert built.schedule_storage.all_instigator_state() == []
        built.dispose()
    assert alembic_reads == []
    instance.dispose()


def test_a_database_without_one_stamp_is_not_taken_as_stamped(tmp_path):
    missing = tmp_path / "missing.db"
    assert not is_stamped(str(missing))
    unstamped = tmp_path / "unstamped.db"
    with sqlite3.connect(unstamped) as connection:
        connection.execute("CREATE TABLE runs (x)")
    assert not is_stamped(str(unstamped), "runs")
    twice = tmp_path / "twice.db"
    with sqlite3.connect(twice) as connection:
        connection.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)")
        connection.execute("INSERT INTO alembic_version VALUES ('a'), ('b')")
    assert not is_stamped(str(twice))
    with sqlite3.connect(twice) as connection:
        connection.execute("DELETE FROM alembic_version WHERE version_num = 'b'")
    assert is_stamped(str(twice)) and not is_stamped(str(twice), "runs")
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not a database" * 100)
    assert not is_stamped(str(garbage))


def test_an_unstamped_runs_database_is_left_to_dagster(home, alembic_reads):
    """Tables without a stamp (a database older than Dagster's stamping): Dagster's opening stamps it."""
    (home / "history").mkdir()
    instance = daemons.in_process_instance(home)  # creates and stamps both
    instance.dispose()
    with sqlite3.connect(home / "history" / "runs.db") as connection:
        connection.execute("DELETE FROM alembic_version")
    alembic_reads.clear()
    reopened = daemons.in_process_instance(home)
    assert alembic_reads == ["sqlite_run_storage"]
    assert is_stamped(str(home / "history" / "runs.db"), "runs", "instance_info")
    reopened.dispose()


def test_an_instance_with_its_own_storage_keeps_it(home):
    settings = yaml.safe_load((home / "dagster.yaml").read_text())
    assert set(stamped_storages(home)) == {"run_storage", "schedule_storage"}
    for key in ("storage", "run_storage", "schedule_storage"):
        custom = {**settings, key: {"sqlite": {"base_dir": str(home / "elsewhere")}} if key == "storage" else
                  {"module": "dagster._core.storage.runs", "class": "SqliteRunStorage",
                   "config": {"base_dir": str(home / "elsewhere")}}}
        (home / "dagster.yaml").write_text(yaml.safe_dump(custom))
        assert stamped_storages(home) == {}, key
