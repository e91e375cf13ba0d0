"""The batching event log leaves Dagster's records as Dagster's own sqlite storage writes them, one event at a time."""

from __future__ import annotations

import dataclasses
import datetime as dt
import sqlite3
from collections import Counter
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.storage.event_log import SqliteEventLogStorage

from ml_platform.adapters.event_log import BatchingSqliteEventLogStorage
from ml_platform.chain.runner import Chain
from ml_platform.features.library import load_catalog
from ml_platform.names import DAILY_JOB, REFERENCE_JOB, source_key

from ml_platform_tests.helpers import REPO_ROOT

# drives chains of Dagster runs: the full suite only (`pytest -m "not slow"` leaves it out)
pytestmark = pytest.mark.slow

DAYS = (dt.date(2013, 1, 1), dt.date(2013, 1, 6))
PLAIN_CONFIG = "telemetry:\n  enabled: false\n"  # Dagster's default storage


def run_daily(project, home: Path, config: str, monkeypatch: pytest.MonkeyPatch) -> tuple[dg.DagsterInstance, str]:
    """Load six days of sources and features into a fresh instance configured by config; the daily run's id.

    DAGSTER_HOME is unset: the instance, its batching event log included, is opened from its folder alone.
    """
    home.mkdir()
    (home / "dagster.yaml").write_text(config)
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    project = dataclasses.replace(project, dagster_home=home)
    chain = Chain(project, load_catalog(project.specs_dir, project.root), say=lambda line: None)
    assert chain.run(REFERENCE_JOB, "reference").success
    outcome = chain.run(DAILY_JOB, "daily", date_range=DAYS)
    assert outcome.success, outcome.failures
    return chain.instance, outcome.run_id


def index_records(home: Path, run_id: str) -> dict[str, Counter]:
    """What the index database holds, without ids, timestamps and run ids (which differ between instances)."""
    with sqlite3.connect(home / "history" / "runs" / "index.db") as connection:
        def rows(sql: str) -> Counter:
            return Counter(connection.execute(sql, {"run": run_id}).fetchall())
        return {
            "events": rows("SELECT dagster_event_type, asset_key, partition, step_key FROM event_logs "
                           "WHERE run_id = :run"),
            "tags": rows("SELECT asset_key, key FROM asset_event_tags"),
            "checks": rows("SELECT asset_key, check_name, partition, execution_status FROM asset_check_executions "
                           "WHERE run_id = :run"),
            "asset_keys": rows("SELECT asset_key, last_run_id = :run, last_materialization IS NOT NULL, "
                               "last_materialization_timestamp IS NOT NULL FROM asset_keys"),
        }


def run_records(home: Path, run_id: str) -> Counter:
    """The run's own database: every event it recorded, by type, asset and partition."""
    with sqlite3.connect(home / "history" / "runs" / f"{run_id}.db") as connection:
        return Counter(connection.execute("SELECT dagster_event_type, asset_key, partition, step_key FROM event_logs"))


def test_batched_records_match_dagsters_own(make_project, tmp_path, monkeypatch):
    plain_instance, plain_run = run_daily(make_project(name="plain"), tmp_path / "plain_home", PLAIN_CONFIG,
                                          monkeypatch)
    assert type(plain_instance.event_log_storage) is SqliteEventLogStorage
    batched_instance, batched_run = run_daily(make_project(name="batched"), tmp_path / "batched_home",
                                              (REPO_ROOT / "dagster.yaml").read_text(), monkeypatch)
    assert isinstance(batched_instance.event_log_storage, BatchingSqliteEventLogStorage)

    plain, batched = index_records(tmp_path / "plain_home", plain_run), index_records(tmp_path / "batched_home",
                                                                                      batched_run)
    planned = Counter({row: count for row, count in batched["events"].items()
                       if row[0] == "ASSET_MATERIALIZATION_PLANNED"})
    assert sum(planned.values()) >= 6 * 2  # both daily sources, each of the six days (and their feature sets)
    for table in ("events", "tags", "checks", "asset_keys"):
        assert batched[table] == plain[table], table
    assert run_records(tmp_path / "batched_home", batched_run) == run_records(tmp_path / "plain_home", plain_run)

    # and Dagster reads the same answers from them
    for key in plain_instance.get_asset_keys():
        assert batched_instance.get_materialized_partitions(key) == plain_instance.get_materialized_partitions(key)
        plain_latest = plain_instance.get_latest_materialization_event(key)
        batched_latest = batched_instance.get_latest_materialization_event(key)
        assert batched_latest.asset_materialization.partition == plain_latest.asset_materialization.partition
        assert batched_latest.asset_materialization.metadata == plain_latest.asset_materialization.metadata
    flights = source_key("flights")
    latest = batched_instance.event_log_storage.get_asset_records([flights])[0].asset_entry.last_materialization_record
    assert latest.event_log_entry.run_id == batched_run and latest.storage_id == max(
        record.storage_id for record in batched_instance.fetch_materializations(flights, limit=100).records)
    assert latest.event_log_entry.dagster_event.partition == DAYS[1].isoformat()


def test_a_failed_index_write_leaves_each_event_recorded_once(make_project, tmp_path, monkeypatch):
    failures = []
    original = BatchingSqliteEventLogStorage._store_index_batch

    def fail_first(self, events, rows):
        if not failures and any(event.dagster_event.partition for event in events):  # the daily run's first
            failures.append(len(events))
            raise sqlite3.OperationalError("database is locked")
        return original(self, events, rows)

    monkeypatch.setattr(BatchingSqliteEventLogStorage, "_store_index_batch", fail_first)
    _, failed_run = run_daily(make_project(name="failed"), tmp_path / "failed_home",
                              (REPO_ROOT / "dagster.yaml").read_text(), monkeypatch)
    monkeypatch.setattr(BatchingSqliteEventLogStorage, "_store_index_batch", original)
    _, plain_run = run_daily(make_project(name="plain"), tmp_path / "plain_home", PLAIN_CONFIG, monkeypatch)

    assert failures and failures[0] > 1  # a real batch of days failed, and Dagster wrote its events one by one
    assert run_records(tmp_path / "failed_home", failed_run) == run_records(tmp_path / "plain_home", plain_run)
    assert index_records(tmp_path / "failed_home", failed_run) == index_records(tmp_path / "plain_home", plain_run)


def test_without_a_folder_the_storage_says_what_to_set(monkeypatch):
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    with pytest.raises(dg.DagsterInvariantViolationError, match="config.base_dir is not set and DAGSTER_HOME"):
        BatchingSqliteEventLogStorage.from_config_value(None, {})


def test_an_explicit_folder_is_used(tmp_path, monkeypatch):
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    storage = BatchingSqliteEventLogStorage.from_config_value(None, {"base_dir": str(tmp_path / "events")})
    assert (tmp_path / "events" / "index.db").exists()
    storage.dispose()
