"""Build each model's automation: its daily and outcome jobs, their schedules, and the retraining sensor.

- `<model>__daily_scoring` ticks at the spec's `cadence.predict_at` (local time of the entity) and runs
  `<model>__daily` for the day being predicted: that day's source partitions (blocking data checks), its
  features, and, once a champion is deployed, its predictions and their monitoring. A source partition that fails
  a blocking check stops the run, so a broken day is never scored.
- `<model>__outcomes` ticks each morning and judges the day whose labels matured last (see
  ml_platform.features.labels: the morning after, for a label without a horizon) in money against what the
  champion's evaluation promised.
- `<model>__retraining` (sensor) requests a training run on the spec's cadence, on a new spec revision, or on a
  drift alarm; the run's deployment step promotes the model only when every gate check passed.
Everything starts running with the daemon (`dagster dev`); `ml-platform replay` drives the same schedules and
sensor through Dagster's daemon code on a simulated clock.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo

import dagster as dg

from ml_platform.adapters.clock import current_time
from ml_platform.automation.cadence import Retraining, decide_retraining, has_champion
from ml_platform import grains
from ml_platform.features.labels import label_lag_days
from ml_platform.names import (REASON_TAG, TICK_TAG, daily_job_name, entity_key, feature_key, outcomes_job_name,
                               outcomes_run_key, outcomes_schedule_name, retraining_sensor_name, scoring_run_key,
                               scoring_schedule_name, source_key, sources_job_name, sources_schedule_name, stage_key,
                               training_job_name)
from ml_platform.partitions import training_runs
from ml_platform.storage.resources import Warehouse
from ml_platform.specs.catalog import Catalog
from ml_platform.specs.models import ModelSpec

OUTCOMES_TIME = dt.time(6, 0)  # local time at which the previous day's outcomes are judged
RETRAINING_INTERVAL_SECONDS = 3600  # the daemon evaluates the retraining sensor at most hourly
# runs keep every event in the instance (the UI's event log); the run worker's console stays quiet: a gate that
# blocks a model fails a step by design, and `ml-platform replay` prints its own line for every run
RUN_CONFIG = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


def data_keys(catalog: Catalog, model: ModelSpec) -> list[dg.AssetKey]:
    """The daily sources and feature sets a model's day needs, in graph order; for an entity spec, its population
    and feature sets (one run holds assets of one partitioning: its daily sources are loaded by their own runs)."""
    features = [feature_key(feature_set.name) for feature_set in catalog.feature_sets_of(model)]
    if catalog.entity_rows(model.entity).is_population:
        return [entity_key(model.entity)] + features
    keys = [source_key(source.name) for source in catalog.sources_of(model) if source.is_daily]
    return keys + features


def _timezone(catalog: Catalog, model: ModelSpec) -> str:
    return catalog.entity_rows(model.entity).timezone


def _local_date(tick: dt.datetime, timezone: str) -> dt.date:
    return tick.astimezone(zoneinfo.ZoneInfo(timezone)).date()


def _outside(catalog: Catalog, model: ModelSpec, day: dt.date) -> str | None:
    """Why a day has no partition of the model's entity, or None (Dagster's own test depends on the wall clock)."""
    partitioning = catalog.entity_rows(model.entity)
    if day < partitioning.start or (partitioning.end is not None and day > partitioning.end):
        return (f"{day} is outside the {model.entity} partitions ({partitioning.start} to "
                f"{partitioning.end or 'open-ended'})")
    if partitioning.is_population and not grains.is_aligned(partitioning.grain, dt.datetime.combine(day, dt.time())):
        return f"{day} starts no {grains.PERIOD_NOUN[partitioning.grain]} of entity '{model.entity}'"
    return None


def build_automation_jobs(catalog: Catalog, model: ModelSpec, monitoring: list[dg.AssetKey],
                          outcomes: list[dg.AssetKey]) -> list[dg.UnresolvedAssetJobDefinition]:
    """The daily job (data, predictions, monitoring of one day) and the outcomes job of a model."""
    jobs = [dg.define_asset_job(
        daily_job_name(model.name), selection=data_keys(catalog, model) + [stage_key("predictions", model.name)]
        + monitoring,
        description=f"One day of {model.name}: load the day's source partitions (blocking data checks), compute "
                    f"its features, score it with the champion and monitor the scores.")]
    if outcomes:
        jobs.append(dg.define_asset_job(
            outcomes_job_name(model.name), selection=outcomes,
            description=f"Judge one scored day of {model.name} in money once its labels are known."))
    return jobs


def build_scoring_schedule(catalog: Catalog, model: ModelSpec,
                           monitoring: list[dg.AssetKey]) -> dg.ScheduleDefinition:
    """The schedule that loads and scores each day at the spec's prediction time."""
    predict_at = model.cadence.predict_at
    hour, minute = (int(part) for part in predict_at.time.split(":"))
    timezone = _timezone(catalog, model)
    data = data_keys(catalog, model)
    scoring = [stage_key("predictions", model.name)] + monitoring

    @dg.schedule(
        name=scoring_schedule_name(model.name), job_name=daily_job_name(model.name),
        cron_schedule=f"{minute} {hour} * * *", execution_timezone=timezone,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=f"Every day at {predict_at.time} ({timezone}), load the {model.entity} day "
                    f"{predict_at.days_before} day(s) ahead, compute its features and score it with the "
                    f"{model.name} champion (data only while no model is deployed).",
    )
    def daily_scoring(context: dg.ScheduleEvaluationContext, warehouse: Warehouse):
        tick = context.scheduled_execution_time
        day = _local_date(tick, timezone) + dt.timedelta(days=predict_at.days_before)
        outside = _outside(catalog, model, day)
        if outside:
            return dg.SkipReason(outside)
        with warehouse.get_connection() as connection:
            deployed = has_champion(connection, model)
        return dg.RunRequest(
            run_key=scoring_run_key(model.name, day), partition_key=day.isoformat(),
            asset_selection=data + scoring if deployed else data, run_config=RUN_CONFIG,
            tags={TICK_TAG: tick.isoformat(),
                  REASON_TAG: "score" if deployed else "load data only: no model is deployed yet"})

    return daily_scoring


def build_source_loading(catalog: Catalog, model: ModelSpec) -> tuple[list[dg.UnresolvedAssetJobDefinition],
                                                                     list[dg.ScheduleDefinition]]:
    """For a model over an entity spec: the job and the daily schedule loading its daily sources a day at a time
    (its own daily job holds its entity's periods, and one run holds assets of one partitioning). At the
    prediction time it loads the day being predicted, as a source model's daily job does, so that the days before
    a period are stored when the scoring schedule requests the period. None for a model over a source's rows."""
    if not catalog.entity_rows(model.entity).is_population:
        return [], []
    selection = [source_key(source.name) for source in catalog.sources_of(model) if source.is_daily]
    job = dg.define_asset_job(sources_job_name(model.name), selection=selection,
                              description=f"One day of the daily sources {model.name} reads, with their blocking "
                                          f"data checks.")
    predict_at = model.cadence.predict_at
    hour, minute = (int(part) for part in predict_at.time.split(":"))
    timezone = _timezone(catalog, model)
    sources = [catalog.sources[key.path[-1]].partitioning for key in selection]

    @dg.schedule(
        name=sources_schedule_name(model.name), job_name=sources_job_name(model.name),
        cron_schedule=f"{minute} {hour} * * *", execution_timezone=timezone,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=f"Every day at {predict_at.time} ({timezone}), load the day {predict_at.days_before} day(s) "
                    f"ahead of the daily sources {model.name} reads.")
    def daily_sources(context: dg.ScheduleEvaluationContext):
        tick = context.scheduled_execution_time
        day = _local_date(tick, timezone) + dt.timedelta(days=predict_at.days_before)
        if any(day < source.start or (source.end is not None and day > source.end) for source in sources):
            return dg.SkipReason(f"{day} is outside the days of the sources {model.name} reads")
        return dg.RunRequest(run_key=f"{sources_job_name(model.name)}:{day.isoformat()}",
                             partition_key=day.isoformat(), run_config=RUN_CONFIG,
                             tags={TICK_TAG: tick.isoformat(), REASON_TAG: "load the day's sources"})

    return [job], [daily_sources]


def build_outcomes_schedule(catalog: Catalog, model: ModelSpec) -> dg.ScheduleDefinition:
    """The schedule that judges each scored day the morning its labels are known."""
    timezone = _timezone(catalog, model)
    lag = label_lag_days(catalog, model)

    @dg.schedule(
        name=outcomes_schedule_name(model.name), job_name=outcomes_job_name(model.name),
        cron_schedule=f"{OUTCOMES_TIME.minute} {OUTCOMES_TIME.hour} * * *", execution_timezone=timezone,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=f"Every day at {OUTCOMES_TIME:%H:%M} ({timezone}), judge the predictions of the day "
                    f"{lag} day(s) before, now that its labels are mature, against what the "
                    f"champion's evaluation promised.",
    )
    def outcomes(context: dg.ScheduleEvaluationContext):
        tick = context.scheduled_execution_time
        day = _local_date(tick, timezone) - dt.timedelta(days=lag)
        outside = _outside(catalog, model, day)
        if outside:
            return dg.SkipReason(outside)
        return dg.RunRequest(run_key=outcomes_run_key(model.name, day), partition_key=day.isoformat(),
                             run_config=RUN_CONFIG,
                             tags={TICK_TAG: tick.isoformat(), REASON_TAG: "labels known"})

    return outcomes


def build_retraining_sensor(catalog: Catalog, model: ModelSpec, drift_alarm=None) -> dg.SensorDefinition:
    """The sensor that requests a new training run when the cadence, the spec or drift calls for one."""
    runs = training_runs(model)
    timezone = _timezone(catalog, model)

    @dg.sensor(
        name=retraining_sensor_name(model.name), job_name=training_job_name(model.name),
        minimum_interval_seconds=RETRAINING_INTERVAL_SECONDS, default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Requests a training run of {model.name} {model.cadence.retraining} (cut off at the end of "
                    f"the last complete period with known labels), on a new spec revision, or on a drift alarm. "
                    f"The run promotes its model only when every gate check passed.",
    )
    def retraining(context: dg.SensorEvaluationContext, warehouse: Warehouse):
        now = current_time()  # the simulated moment while `ml-platform replay` ticks
        today = _local_date(now, timezone)
        requested = context.instance.get_dynamic_partitions(runs.name)
        with warehouse.get_connection() as connection:
            decision = decide_retraining(connection, catalog, model, today, requested, drift_alarm)
        if not isinstance(decision, Retraining):
            return dg.SkipReason(f"{today}: {decision}")
        return dg.SensorResult(
            run_requests=[dg.RunRequest(run_key=decision.training_run, partition_key=decision.training_run,
                                        run_config=RUN_CONFIG,
                                        tags={TICK_TAG: now.isoformat(), REASON_TAG: decision.reason})],
            dynamic_partitions_requests=[runs.build_add_request([decision.training_run])],
        )

    return retraining

