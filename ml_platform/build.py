"""Turn a validated catalog into Dagster definitions: assets, gate checks, jobs, schedules, sensors and resources."""

from __future__ import annotations

import warnings

import dagster as dg

from ml_platform.adapters.executor import platform_executor_for
from ml_platform.automation.factory import (build_automation_jobs, build_outcomes_schedule, build_retraining_sensor,
                                            build_scoring_schedule, build_source_loading)
from ml_platform.deployment.factory import build_deployment_asset
from ml_platform.entities.factory import build_entity_asset
from ml_platform.evaluation.factory import build_evaluation_asset
from ml_platform.evaluation.search_objective import search_judge
from ml_platform.features.factory import build_feature_asset
from ml_platform.monitoring.alarms import drift_alarm
from ml_platform.monitoring.factory import build_monitoring_assets
from ml_platform.names import (DAILY_JOB, REFERENCE_JOB, TRAINING_STAGES, feature_key, scoring_job_name,
                               source_key, stage_key, training_job_name)
from ml_platform.scoring.factory import build_predictions_asset
from ml_platform.snapshots.factory import build_snapshot_asset
from ml_platform.sources.factory import build_source_asset
from ml_platform.specs.catalog import Catalog
from ml_platform.storage.resources import StoragePaths, build_resources
from ml_platform.storage.warehouse import holding
from ml_platform.training.factory import build_model_asset


def build_assets(catalog: Catalog) -> list[dg.AssetsDefinition]:
    """Every asset the catalog defines."""
    assets = [build_source_asset(catalog, source) for source in catalog.sources.values()]
    assets += [build_entity_asset(catalog, entity) for entity in catalog.entities.values()]
    assets += [build_feature_asset(catalog, feature_set) for feature_set in catalog.feature_sets.values()]
    for model in catalog.models.values():
        assets += [
            build_snapshot_asset(catalog, model),
            build_model_asset(catalog, model, judge=search_judge),
            build_evaluation_asset(catalog, model),
            build_deployment_asset(catalog, model),
            build_predictions_asset(catalog, model),
            *build_monitoring_assets(catalog, model),
        ]
    return assets


def build_jobs(catalog: Catalog) -> list[dg.UnresolvedAssetJobDefinition]:
    """Jobs whose assets share one partitioning, so that one run can materialize each of them."""
    reference = [source_key(name) for name, source in catalog.sources.items() if not source.is_daily]
    daily = [source_key(name) for name, source in catalog.sources.items() if source.is_daily]
    # a feature set over an entity spec is partitioned by the entity's grain: its model's own job runs it
    daily += [feature_key(name) for name, feature_set in catalog.feature_sets.items()
              if not catalog.entity_rows(feature_set.entity).is_population]
    jobs = []
    if reference:
        jobs.append(dg.define_asset_job(REFERENCE_JOB, selection=reference,
                                        description="Load the reference (unpartitioned) sources."))
    if daily:
        jobs.append(dg.define_asset_job(DAILY_JOB, selection=daily,
                                        description="Load daily source partitions and compute their features."))
    for model in catalog.models.values():
        jobs.append(dg.define_asset_job(
            training_job_name(model.name),
            selection=[stage_key(stage, model.name) for stage in TRAINING_STAGES],
            description=f"One training run of {model.name}: snapshot, train, evaluate, gate, deploy."))
        jobs.append(dg.define_asset_job(
            scoring_job_name(model.name),
            selection=[stage_key("predictions", model.name), stage_key("monitoring", model.name)],
            description=f"Score days with the {model.name} champion and measure their drift."))
        jobs += build_automation_jobs(catalog, model, monitoring=[stage_key("monitoring", model.name)],
                                      outcomes=[stage_key("outcomes", model.name)])
        jobs += build_source_loading(catalog, model)[0]
    return jobs


def build_schedules(catalog: Catalog) -> list[dg.ScheduleDefinition]:
    """Each model's daily scoring schedule and its outcomes schedule."""
    schedules = []
    for model in catalog.models.values():
        schedules += [build_scoring_schedule(catalog, model, monitoring=[stage_key("monitoring", model.name)]),
                      build_outcomes_schedule(catalog, model), *build_source_loading(catalog, model)[1]]
    return schedules


def build_sensors(catalog: Catalog) -> list[dg.SensorDefinition]:
    """Each model's retraining sensor."""
    return [build_retraining_sensor(catalog, model, drift_alarm=drift_alarm) for model in catalog.models.values()]


# In this process (`threads`: independent steps at once while this process holds the warehouse open, as the chain
# and the replay do; one after another otherwise), unless a run asks for `in_process` (Dagster's, one step after
# another), `multiprocess` or `dask` (the cluster extra, docs/scale-out.md): the warehouse admits one writer process
# at a time (parallel step processes wait for its lock) and every extra process re-imports the code location.
EXECUTOR = platform_executor_for(holding)


def build_definitions(catalog: Catalog, storage: StoragePaths) -> dg.Definitions:
    """The project's Dagster definitions, run in-process by default (see EXECUTOR)."""
    with warnings.catch_warnings():
        # single-run backfills and mappings that tolerate days before a source's first day are beta in 1.13
        warnings.filterwarnings("ignore", category=dg.BetaWarning)
        assets = build_assets(catalog)
    return dg.Definitions(
        assets=assets,
        jobs=build_jobs(catalog),
        schedules=build_schedules(catalog),
        sensors=build_sensors(catalog),
        resources=build_resources(storage),
        executor=EXECUTOR,
    )
