"""The small adapters: Dagster's clock frozen and read, partition-range run tags, an instance opened from its folder."""

from __future__ import annotations

import datetime as dt
import logging
import shutil

import dagster as dg
import pytest

from ml_platform.adapters.clock import current_time, frozen_clock
from ml_platform.adapters.event_log import BatchingSqliteEventLogStorage
from ml_platform.adapters.instance import open_instance
from ml_platform.adapters.run_tags import partition_range_tags

from ml_platform_tests.helpers import REPO_ROOT

MOMENT = dt.datetime(2013, 2, 1, 11, 0, 30, tzinfo=dt.timezone.utc)


def test_the_frozen_clock_is_what_dagster_reads_and_it_runs_again_afterwards():
    from dagster._core import log_manager  # the log manager the freeze replaces, as Dagster's code looks it up

    before = log_manager.DagsterLogManager
    with frozen_clock(MOMENT):
        assert current_time() == MOMENT
        manager = log_manager.DagsterLogManager.create(loggers=[logging.getLogger("frozen")])
        record = manager.makeRecord("frozen", logging.INFO, __file__, 1, "message", (), None)
        assert record.created == MOMENT.timestamp()
    assert log_manager.DagsterLogManager is before
    assert abs(current_time() - dt.datetime.now(dt.timezone.utc)) < dt.timedelta(minutes=1)


def test_the_clock_freezes_only_at_an_aware_moment():
    with pytest.raises(ValueError, match="aware"):
        with frozen_clock(MOMENT.replace(tzinfo=None)):
            pass


def test_partition_range_tags_are_dagsters():
    assert partition_range_tags(dt.date(2013, 1, 1), dt.date(2013, 1, 31)) == {
        "dagster/asset_partition_range_start": "2013-01-01", "dagster/asset_partition_range_end": "2013-01-31"}


def test_an_instance_opens_from_its_folder_without_dagster_home(tmp_path, monkeypatch):
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    home = tmp_path / "home"
    home.mkdir()
    shutil.copyfile(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
    with open_instance(home) as instance:
        assert isinstance(instance.event_log_storage, BatchingSqliteEventLogStorage)
        instance.report_runless_asset_event(dg.AssetMaterialization("a"))
        assert instance.get_latest_materialization_event(dg.AssetKey("a")) is not None
        assert instance.get_concurrency_config().run_queue_config.max_concurrent_runs == 1  # the file's settings
    assert (home / "history" / "runs" / "index.db").is_file()
