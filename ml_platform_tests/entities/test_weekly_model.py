"""A model whose entity is a weekly population: features, snapshot, training and evaluation through Dagster on
real 2013 flights (January to May)."""

from __future__ import annotations

import datetime as dt
import shutil
import warnings
import zoneinfo

import dagster as dg
import pytest

from ml_platform.entities.factory import build_entity_asset
from ml_platform.build import build_definitions
from ml_platform.deployment.factory import build_deployment_asset
from ml_platform.evaluation.factory import build_evaluation_asset
from ml_platform.monitoring.factory import build_monitoring_assets
from ml_platform.names import daily_job_name, scoring_schedule_name
from ml_platform.scoring.factory import build_predictions_asset
from ml_platform.features.factory import build_feature_asset
from ml_platform.snapshots.factory import build_snapshot_asset
from ml_platform.sources.factory import build_source_asset
from ml_platform.training.factory import build_model_asset
from ml_platform.features.library import load_catalog
from ml_platform.names import entity_key, feature_key, source_key, stage_key
from ml_platform.partitions import training_run_key
from ml_platform.storage import registry
from ml_platform.storage.resources import build_resources
from ml_platform.storage.warehouse import open_warehouse
from ml_platform_tests.helpers import SPECS, asset_runner, project_at

ENTITY = """\
spec_version: 1
kind: entity
name: busy_routes
description: Each route flown from New York in the week before a Monday, at that Monday.
owner: team:flight-ops-ds
keys: [origin, dest]
grain: weekly
time: week_start
reads: [flights]
lookback: {days: 7}
population: |
  SELECT origin, dest, CAST(b.partition_start AS DATE) AS week_start, count(*) AS departures_last_week
  FROM flights, bounds AS b
  GROUP BY ALL
start: 2013-01-14
end: 2013-05-26
timezone: America/New_York
"""

FEATURES = """\
spec_version: 1
kind: feature_set
name: route_week_history
description: What the week before says about a route, from the published schedule.
owner: team:flight-ops-ds
entity: busy_routes
reads: [flights]
lookback_days: 7
known_by: {days_before: 1, time: "00:00"}
sql: |
  SELECT e.origin, e.dest,
         any_value(e.departures_last_week)                       AS route_departures_last_week,
         count(DISTINCT f.carrier)                               AS route_carriers_last_week,
         avg(f.distance)                                         AS route_distance,
         avg(f.hour)                                             AS route_mean_hour
  FROM entity AS e
  LEFT JOIN flights AS f ON f.origin = e.origin AND f.dest = e.dest
       AND f.partition_date >= e.week_start - 7 AND f.partition_date < e.week_start
  GROUP BY e.origin, e.dest
features:
  route_departures_last_week: {type: number, description: departures on the route in the week before}
  route_carriers_last_week: {type: number, description: airlines flying the route in the week before}
  route_distance: {type: number, description: the route's distance in miles}
  route_mean_hour: {type: number, description: mean scheduled departure hour in the week before}
"""

MODEL = """\
spec_version: 1
kind: model
name: route_growth
description: Flags the routes whose departures in the week exceed the week before's.
owner: team:flight-ops-ds
entity: busy_routes
label:
  task: binary_classification
  expression: "departures > departures_last_week"
  horizon: {days: 7}
  aggregates:
    departures: {source: flights, match: {origin: origin, dest: dest}, expression: "count(*)", default: 0}
features: [route_departures_last_week, route_carriers_last_week, route_distance, route_mean_hour]
split:
  train: {start: 2013-01-14, end: 2013-03-31}
  validation: {start: 2013-04-01, end: 2013-04-28}
  test: {start: 2013-04-29, end: 2013-05-26}
algorithm: {kind: lightgbm, seed: 3, params: {n_estimators: 50, min_child_samples: 20}}
money:
  currency: USD
  outcomes: {true_positive: "100", false_positive: "-50", false_negative: "0", true_negative: "0"}
gate: {min_money: -1000000, min_roc_auc: 0.0}
cadence:
  predict_at: {days_before: 1, time: "18:00"}
"""


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("weekly") / "project"
    shutil.copytree(SPECS / "sources", root / "model_specs" / "sources")
    for folder, name, text in (("entities", "busy_routes", ENTITY), ("features", "route_week_history", FEATURES),
                               ("models", "route_growth", MODEL)):
        (root / "model_specs" / folder).mkdir(exist_ok=True)
        (root / "model_specs" / folder / f"{name}.yaml").write_text(text)
    project = project_at(root)
    catalog = load_catalog(project.specs_dir, project.root)
    model = catalog.models["route_growth"]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=dg.BetaWarning)
        built = [build_source_asset(catalog, catalog.sources["flights"]),
                 build_entity_asset(catalog, catalog.entities["busy_routes"]),
                 build_feature_asset(catalog, catalog.feature_sets["route_week_history"]),
                 build_snapshot_asset(catalog, model), build_model_asset(catalog, model),
                 build_evaluation_asset(catalog, model), build_deployment_asset(catalog, model),
                 build_predictions_asset(catalog, model), *build_monitoring_assets(catalog, model)]
        assets = {asset.key: asset for asset in built}
    instance = dg.DagsterInstance.ephemeral()
    run = asset_runner(assets, build_resources(project.storage), instance)

    run([source_key("flights")], "2013-01-07", "2013-06-02")
    run([entity_key("busy_routes")], "2013-01-14", "2013-05-20")
    run([feature_key("route_week_history")], "2013-01-14", "2013-05-20")
    training_run = training_run_key(model, catalog.spec_hash(model))
    instance.add_dynamic_partitions(f"{model.name}__training_runs", [training_run])
    run([stage_key(stage, model.name) for stage in ("snapshot", "model", "evaluation", "deployment")],
        partition=training_run)
    run([stage_key("predictions", model.name), stage_key("monitoring", model.name)], partition="2013-05-20")
    return project, catalog, model, training_run, assets, run


def test_a_weekly_entity_gives_weekly_feature_partitions(trained):
    _, _, _, _, assets, _ = trained
    features = assets[feature_key("route_week_history")]
    assert isinstance(features.partitions_def, dg.WeeklyPartitionsDefinition)
    assert features.partitions_def.get_partition_keys()[:2] == ["2013-01-14", "2013-01-21"]
    assert entity_key("busy_routes") in features.dependency_keys


def test_the_snapshot_holds_one_row_per_route_and_week_split_by_week(trained):
    project, catalog, model, training_run, _, _ = trained
    with open_warehouse(project.storage.warehouse) as connection:
        snapshot = registry.snapshots.get(connection, model.name, training_run)
        population = dict(connection.execute(
            "SELECT CASE WHEN partition_date <= DATE '2013-03-31' THEN 'train' WHEN partition_date <= "
            "DATE '2013-04-28' THEN 'validation' ELSE 'test' END, count(*) FROM population.busy_routes "
            "GROUP BY 1").fetchall())
        weeks = connection.execute(
            f"SELECT split, count(DISTINCT partition_date), min(isodow(partition_date)), "
            f"max(isodow(partition_date)) FROM read_parquet('{project.storage.artifacts / snapshot.path}') "
            f"GROUP BY split ORDER BY split").fetchall()

    manifest = snapshot.manifest
    assert manifest.entity == "busy_routes" and manifest.keys == ("origin", "dest")
    assert manifest.rows == population  # every population row, none dropped or duplicated by the feature joins
    assert weeks == [("test", 4, 1, 1), ("train", 11, 1, 1), ("validation", 4, 1, 1)]
    pinned = manifest.feature_data_versions["route_week_history"]
    assert pinned.days == 19 and pinned.first == "2013-01-14" and pinned.last == "2013-05-20"


def test_the_model_is_trained_and_judged_on_the_weekly_rows(trained):
    project, _, model, training_run, _, _ = trained
    with open_warehouse(project.storage.warehouse) as connection:
        evaluation = registry.evaluations.get(connection, model.name, training_run)
        snapshot = registry.snapshots.get(connection, model.name, training_run)

    summary = evaluation.summary
    assert (summary.validation.rows, summary.test.rows) == (snapshot.manifest.rows["validation"],
                                                            snapshot.manifest.rows["test"])
    assert summary.test.window == ("2013-04-29", "2013-05-26")
    assert 0.5 < summary.test.roc_auc < 1.0  # the schedule of the week before tells growing routes apart
    assert summary.threshold_chosen_on == "validation" and 0 <= summary.test.flagged <= summary.test.rows


def test_a_deployed_weekly_model_scores_a_week_and_monitoring_counts_weeks(trained):
    project, _, model, training_run, assets, run = trained
    with open_warehouse(project.storage.warehouse) as connection:
        champion = registry.promotions.champion(connection, model.name)
        scored = connection.execute(
            "SELECT count(*), count(DISTINCT (origin, dest)), min(partition_date), max(partition_date) "
            "FROM predictions.route_growth").fetchall()[0]
        population = connection.execute(
            "SELECT count(*) FROM population.busy_routes WHERE partition_date = DATE '2013-05-20'").fetchall()[0][0]
        drift_days = connection.execute("SELECT DISTINCT day FROM monitoring.route_growth__drift").fetchall()

    assert champion is not None and champion.training_run == training_run
    assert scored[0] == scored[1] == population > 100
    assert str(scored[2])[:10] == str(scored[3])[:10] == "2013-05-20"
    assert [str(row[0])[:10] for row in drift_days] == ["2013-05-20"]
    # the week before was never scored: monitoring names the week, not its six days without rows
    result = dg.materialize([assets[stage_key("monitoring", model.name)]], resources=build_resources(
        project.storage), instance=dg.DagsterInstance.ephemeral(), raise_on_error=False, tags={
        "dagster/asset_partition_range_start": "2013-05-13", "dagster/asset_partition_range_end": "2013-05-20"})
    failure = next(event for event in result.all_events if event.is_step_failure)
    assert "1 week(s) of 'route_growth' not scored yet (2013-05-13)" in str(
        failure.step_failure_data.error.message), failure.step_failure_data.error.message


def test_the_definitions_of_a_weekly_model_load_with_a_schedule_that_follows_its_weeks(trained):
    project, catalog, model, _, _, _ = trained
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=dg.BetaWarning)
        definitions = build_definitions(catalog, project.storage)
        dg.Definitions.validate_loadable(definitions)
    job = definitions.resolve_job_def(daily_job_name(model.name))
    assert isinstance(job.partitions_def, dg.WeeklyPartitionsDefinition)
    schedule = definitions.resolve_schedule_def(scoring_schedule_name(model.name))
    instance = dg.DagsterInstance.ephemeral()
    with dg.build_schedule_context(instance=instance, scheduled_execution_time=dt.datetime(
            2013, 5, 19, 18, 0, tzinfo=zoneinfo.ZoneInfo("America/New_York")),
            resources=build_resources(project.storage),
            repository_def=definitions.get_repository_def()) as context:
        monday = schedule.evaluate_tick(context)
    with dg.build_schedule_context(instance=instance, scheduled_execution_time=dt.datetime(
            2013, 5, 21, 18, 0, tzinfo=zoneinfo.ZoneInfo("America/New_York")),
            resources=build_resources(project.storage),
            repository_def=definitions.get_repository_def()) as context:
        wednesday = schedule.evaluate_tick(context)

    assert [request.partition_key for request in monday.run_requests] == ["2013-05-20"]
    assert not wednesday.run_requests and "2013-05-22 starts no week of entity 'busy_routes'" in \
        wednesday.skip_message
