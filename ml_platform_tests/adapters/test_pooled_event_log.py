"""The replay's event log: the batching sqlite event log with its databases kept open, read back by the stock one."""

import shutil  # no `from __future__ import annotations`: Dagster reads the asset's context annotation

import dagster as dg
import yaml

from ml_platform.adapters import daemons
from ml_platform.adapters.event_log import events_folder
from ml_platform.adapters.instance import open_instance
from ml_platform.adapters.pooled_event_log import MAX_OPEN_RUNS, PooledSqliteEventLogStorage, pooled_event_log
from ml_platform_tests.helpers import REPO_ROOT


@dg.asset(partitions_def=dg.DailyPartitionsDefinition(start_date="2013-01-01"))
def daily_number(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata={"day": context.partition_key})


def materializations(instance: dg.DagsterInstance) -> list[tuple[str, str]]:
    records = instance.fetch_materializations(dg.AssetKey("daily_number"), limit=100).records
    return sorted((record.partition_key, record.asset_materialization.metadata["day"].value) for record in records)


def test_runs_recorded_with_open_databases_read_back_in_the_stock_event_log(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    shutil.copyfile(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
    instance = daemons.in_process_instance(home)
    storage = instance.event_log_storage
    assert isinstance(storage, PooledSqliteEventLogStorage)
    days = [f"2013-01-{day:02d}" for day in range(1, 8)]
    for day in days:
        assert dg.materialize([daily_number], instance=instance, partition_key=day).success
    open_runs = [name for name in storage._engines if name != "index"]
    assert len(open_runs) == MAX_OPEN_RUNS and "index" in storage._engines  # the oldest runs' databases closed
    assert materializations(instance) == [(day, day) for day in days]
    instance.dispose()
    assert not storage._engines

    stock = open_instance(home)  # dagster.yaml's own batching event log, a new engine per statement
    assert not isinstance(stock.event_log_storage, PooledSqliteEventLogStorage)
    assert materializations(stock) == [(day, day) for day in days]
    assert len(stock.get_runs()) == 7
    assert all(stock.get_run_stats(run.run_id).steps_succeeded == 1 for run in stock.get_runs())


def test_a_wiped_event_log_closes_its_databases_first(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    shutil.copyfile(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
    instance = daemons.in_process_instance(home)
    assert dg.materialize([daily_number], instance=instance, partition_key="2013-01-01").success
    instance.event_log_storage.wipe()
    assert materializations(instance) == []
    assert dg.materialize([daily_number], instance=instance, partition_key="2013-01-02").success
    assert materializations(instance) == [("2013-01-02", "2013-01-02")]
    instance.dispose()


def test_only_the_batching_sqlite_event_log_is_replaced(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    shutil.copyfile(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
    override = pooled_event_log(home)["event_log_storage"]
    assert override["class"] == "PooledSqliteEventLogStorage"
    assert override["config"] == {"base_dir": events_folder(str(home))}  # the instance's own, not DAGSTER_HOME's
    settings = yaml.safe_load((home / "dagster.yaml").read_text())
    settings["event_log_storage"] = {"module": "dagster.core.storage.event_log", "class": "SqliteEventLogStorage",
                                     "config": {"base_dir": str(tmp_path / "events")}}
    (home / "dagster.yaml").write_text(yaml.safe_dump(settings))
    assert pooled_event_log(home) == {}
    (home / "dagster.yaml").unlink()
    assert pooled_event_log(home) == {}
    assert not isinstance(daemons.in_process_instance(home, pooled=False).event_log_storage,
                          PooledSqliteEventLogStorage)
