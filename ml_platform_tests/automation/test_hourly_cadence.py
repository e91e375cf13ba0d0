"""The repository's hourly example (model_specs/origin_hours/) as Dagster definitions: its entity, features and
predictions share daily partitions (one run per day of hours), and its scoring schedule requests the coming day's
hours at 23:00 the evening before, the last moment its features (known 24 hours before each hour) allow."""

from __future__ import annotations

import datetime as dt
import shutil
import warnings
import zoneinfo

import dagster as dg

from ml_platform.build import build_definitions
from ml_platform.features.library import load_catalog
from ml_platform.names import daily_job_name, entity_key, feature_key, scoring_schedule_name, stage_key
from ml_platform.storage.resources import build_resources

from ml_platform_tests.helpers import SPECS, project_at

NEW_YORK = zoneinfo.ZoneInfo("America/New_York")


def test_the_hourly_example_is_scored_by_day_on_the_evening_before(tmp_path):
    root = tmp_path / "project"
    shutil.copytree(SPECS / "sources", root / "model_specs" / "sources")
    (root / "model_specs" / "entities").mkdir()
    shutil.copyfile(SPECS / "entities" / "origin_hours.yaml", root / "model_specs" / "entities" / "origin_hours.yaml")
    shutil.copytree(SPECS / "origin_hours", root / "model_specs" / "origin_hours")
    project = project_at(root)
    catalog = load_catalog(project.specs_dir, project.root)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=dg.BetaWarning)
        definitions = build_definitions(catalog, project.storage)
        dg.Definitions.validate_loadable(definitions)

    job = definitions.resolve_job_def(daily_job_name("origin_departures"))
    assert isinstance(job.partitions_def, dg.DailyPartitionsDefinition)
    graph = definitions.resolve_asset_graph()
    for key in (entity_key("origin_hours"), feature_key("origin_hour_schedule"),
                stage_key("predictions", "origin_departures")):
        assert isinstance(graph.get(key).partitions_def, dg.DailyPartitionsDefinition), key
    schedule = definitions.resolve_schedule_def(scoring_schedule_name("origin_departures"))
    assert schedule.cron_schedule == "0 23 * * *" and schedule.execution_timezone == "America/New_York"
    with dg.build_schedule_context(instance=dg.DagsterInstance.ephemeral(),
                                   scheduled_execution_time=dt.datetime(2013, 2, 4, 23, 0, tzinfo=NEW_YORK),
                                   resources=build_resources(project.storage),
                                   repository_def=definitions.get_repository_def()) as context:
        tick = schedule.evaluate_tick(context)
    assert [request.partition_key for request in tick.run_requests] == ["2013-02-05"]
