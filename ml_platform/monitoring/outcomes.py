"""Realized money: what the champion's production decisions of a day made, once the day's labels are known, against
what its evaluation promised.

The promise is the evaluation's test money per test day (and per scored row). Its uncertainty is the day-resampled
bootstrap interval of the test total, scaled to the k judged days (see `ml_platform.evaluation.realized`): the
`realized_money` check gives the trailing k (at most 7) judged days a verdict, `on track`, `above the expected
range`, `below the interval` or `losing money`, and warns when it is below the interval or losing money (a model
that performs as evaluated falls below the interval's low end about 2.5 % of the time). The retraining sensor
reads the same verdict.

Served predictions (the online server's log) are judged beside the batch's as a channel of their own
(`monitoring.served`), stored in `<model>__served_outcomes`; the verdict and the batch figures stay the batch's.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import duckdb
import pandas as pd

from ml_platform import grains, names
from ml_platform.partitions import days as days_of
from ml_platform.errors import PlatformError
from ml_platform.evaluation.realized_rows import outcomes_sql, realized_per_row
from ml_platform.evaluation.realized import JUDGED, Verdict, verdict_of_rows
from ml_platform.features.labels import (horizon_days, labels_known_through, local_today, matures_on,
                                         window_offset)
from ml_platform.monitoring.served import SERVED_VIEW, load_served, served_day, served_frame, served_marks
from ml_platform.monitoring.store import read_days, record_days_versions, replace_days
from ml_platform.names import quote
from ml_platform.scoring.score import uses_task_scoring
from ml_platform.specs.catalog import Catalog
from ml_platform.specs.models import ModelSpec
from ml_platform.storage import registry
from ml_platform.records.versions import PartitionVersion
from ml_platform.storage.versions import partition_version, partition_versions
from ml_platform.storage.warehouse import date_literal, table_exists

TRAILING_DAYS = 7
HISTORY_DAYS = 90  # stored days read back before a range, for the trailing days of the check


class OutcomesError(PlatformError, LookupError):
    """A scored model version lacks the recorded spec or evaluation its outcomes are judged against."""


@dataclass(frozen=True)
class Promise:
    """What an evaluation promised: money per test day and per scored row, with the day-bootstrap bounds per day."""

    test_days: int
    per_day: float
    per_row: float
    per_day_low: float
    per_day_high: float
    currency: str


def recorded_spec(connection: duckdb.DuckDBPyConnection, model_version: str) -> ModelSpec:
    """The spec a model version was trained with (its label and money are the ones its promise was measured with)."""
    trained = registry.models.by_version(connection, model_version)
    recorded = trained and registry.specs.get(connection, trained.spec_hash)
    if not recorded:
        raise OutcomesError(f"{model_version} has no recorded spec")
    return ModelSpec.model_validate(recorded.payload["model"])


def promise(connection: duckdb.DuckDBPyConnection, model_version: str, grain: str = "daily") -> Promise:
    """The evaluation's promise per entity partition (a day, or a weekly entity's week, ...) and per row, with the
    per-partition bounds of its bootstrap interval."""
    evaluation = registry.evaluations.find(connection, model_version=model_version)
    if evaluation is None:
        task = registry.task_evaluations.find(connection, model_version=model_version)
        if task is None:
            raise OutcomesError(f"{model_version} has no evaluation")
        start, end = (dt.date.fromisoformat(day) for day in task.test_window)
        days = len(grains.partition_days(grain, start, end))  # the partitions of the test window
        low, high = task.test_money_interval_95
        return Promise(test_days=days, per_day=task.test_money / days, per_row=task.test_money / max(task.test_rows, 1),
                       per_day_low=low / days, per_day_high=high / days, currency=task.currency)
    test = evaluation.summary.test
    start, end = (dt.date.fromisoformat(day) for day in test.window)
    days = len(grains.partition_days(grain, start, end))  # the partitions of the test window
    low, high = test.money_interval_95
    return Promise(test_days=days, per_day=test.money / days, per_row=test.money / max(test.rows, 1),
                   per_day_low=low / days, per_day_high=high / days, currency=evaluation.summary.currency)


def day_outcomes(connection: duckdb.DuckDBPyConnection, catalog: Catalog, model: ModelSpec,
                 day: dt.date) -> dict:
    """The day's realized money and counts, or a dict with `status` saying why there is nothing to report yet (not
    scored, labels not mature: only mature labels over fully stored windows are judged)."""
    if not table_exists(connection, "predictions", model.name):
        return {"status": f"not scored: {names.table_label('predictions', model.name)} does not exist yet"}
    rows_of = catalog.entity_rows(model.entity)
    keys = ", ".join([*(quote(key) for key in rows_of.keys), *(["partition_date"] if rows_of.is_population else [])])
    latest = names.latest_view(model.name)
    versions = connection.execute(f"SELECT model_version, count(*) FROM {latest} WHERE partition_date = "
                                  f"{date_literal(day)} GROUP BY 1 ORDER BY 2 DESC").fetchall()
    if not versions:
        return {"status": f"not scored: no production predictions of {day}"}
    version = versions[0][0]
    spec = recorded_spec(connection, version)
    if labels_known_through(connection, catalog, spec, day, local_today(catalog, spec)) is None:
        reads = ", ".join(sorted({spec.entity, *spec.label.label_sources()}))
        return {"status": f"labels not mature: the labels of {day} are mature on {matures_on(catalog, spec, day)} "
                          f"once every day of their window is stored in {reads}",
                "model_version": version, "rows_scored": int(versions[0][1])}
    task = uses_task_scoring(spec)
    stored = (f"{quote(names.PREDICTION_COLUMN)}, {quote(names.DECISION_COLUMN)}" if task else "score, flagged")
    frame = connection.execute(
        f"WITH production AS (SELECT {keys}, {stored} FROM {latest} WHERE partition_date = "
        f"{date_literal(day)} AND model_version = ?), outcomes AS ({outcomes_sql(catalog, spec, day, day)}) "
        f"SELECT * FROM production LEFT JOIN outcomes USING ({keys})", [version]).df()
    labelled = frame[frame["label"].notna()].reset_index(drop=True)
    if labelled.empty:
        return {"status": f"no labels yet: none of the {len(frame)} rows scored on {day} has a known label",
                "model_version": version, "rows_scored": len(frame)}
    if task:
        money = float(realized_per_row(spec, labelled, names.PREDICTION_COLUMN, names.DECISION_COLUMN).sum())
        counts = {}
        if spec.money.decision.kind in ("top", "threshold"):
            counts = {"flagged": int(labelled[names.DECISION_COLUMN].astype(bool).sum())}
    else:
        flags = labelled["flagged"].to_numpy(dtype=bool)
        label = labelled["label"].to_numpy(dtype=bool)
        money = float(realized_per_row(spec, labelled, "score", "flagged").sum())
        counts = {"flagged": int(flags.sum()), "true_positives": int((flags & label).sum()),
                  "false_positives": int((flags & ~label).sum())}
    promised = promise(connection, version, catalog.entity_rows(model.entity).grain)
    return {"status": JUDGED[0] if len(labelled) == len(frame) else JUDGED[1], "model_version": version,
            "rows_scored": len(frame), "labelled_rows": len(labelled), **counts, "realized_money": money, "promised_money": promised.per_day,
            "promised_money_by_rows": promised.per_row * len(labelled), "promised_low": promised.per_day_low,
            "promised_high": promised.per_day_high, "test_days": promised.test_days,
            "currency": promised.currency}


def trailing_verdict(days: pd.DataFrame, trailing: int = TRAILING_DAYS, grain: str = "daily") -> Verdict | None:
    """The verdict of the trailing (at most 7) judged days of the model version judged last (see
    `ml_platform.evaluation.realized` for the interval and the states); None when no judged day is stored.

    `days` holds the stored outcome rows, oldest first.
    """
    judged = days[days["status"].isin(JUDGED)] if len(days) else days
    if not len(judged):
        return None
    judged = judged.sort_values("day")
    return verdict_of_rows(judged[judged["model_version"] == judged["model_version"].iloc[-1]].tail(trailing), grain)


def _partition_days(catalog: Catalog, model: ModelSpec, start: dt.date, end: dt.date) -> list[dt.date]:
    """The first days of the model's entity partitions in [start, end]: every day, or a weekly entity's Mondays."""
    return [day for day, _ in grains.partition_days(catalog.entity_rows(model.entity).grain, start, end)]


def judged_versions(connection: duckdb.DuckDBPyConnection, catalog: Catalog, model: ModelSpec, start: dt.date,
                    end: dt.date) -> dict[str, PartitionVersion]:
    """{day: version} of the outcomes of [start, end] if judged now: the version of the day's production predictions
    (model and feature data, see scoring.score.scored_versions) and the data version of the entity's day, where
    the labels come from (with the label window's days of the sources a forward-looking label aggregates, and a
    mark while the labels are not mature). A day stored at this version was judged from the same predictions and
    labels."""
    predictions = partition_versions(connection, names.stage_asset("predictions", model.name))
    rows = catalog.entity_rows(model.entity)
    labels = partition_versions(connection, names.population_asset(model.entity) if rows.is_population
                                else names.source_asset(model.entity))
    windows = {name: partition_versions(connection, names.source_asset(name)) for name in model.label.label_sources()}
    horizon, today = horizon_days(model), local_today(catalog, model)
    offset = window_offset(catalog, model)  # a source's row: its window starts the day after; a population's: that day
    served = served_marks(connection, catalog, model, start, end)  # empty without a log: versions unchanged
    result = {}
    for day in _partition_days(catalog, model, start, end):
        key = day.isoformat()
        components = {
            "predictions": predictions[key].version if key in predictions else "absent",
            "labels": labels[key].version if key in labels else "absent"}
        if key in served:
            components["served"] = served[key]
        if windows:
            components["label_window"] = {
                name: [stored[later.isoformat()].version if later.isoformat() in stored else "absent"
                       for later in days_of(day + dt.timedelta(days=offset),
                                            day + dt.timedelta(days=offset + horizon - 1))]
                for name, stored in windows.items()}
        if labels_known_through(connection, catalog, model, day, today) is None:
            components["labels_not_mature"] = True  # judged again once they are
        result[key] = partition_version(components)
    return result


@dataclass(frozen=True)
class JudgedDays:
    """The outcomes of a range of days as stored, and the trailing days judged against the promise."""

    frame: pd.DataFrame  # one row per day of the range (day_outcomes' fields), as stored
    labelled: pd.DataFrame  # the rows of days whose labels are known
    not_judged: str  # "<day>: <status>" of each day not judged, "; "-separated; empty when every day was
    judged: Verdict | None  # the trailing days' verdict; None before any labelled day is stored
    served: pd.DataFrame = field(default_factory=pd.DataFrame)  # the served channel's days (served.served_frame)


def judge_days(connection: duckdb.DuckDBPyConnection, catalog: Catalog, model: ModelSpec, start: dt.date,
               end: dt.date, run_id: str) -> JudgedDays:
    """Value each day of [start, end] in money, store it (replacing those days), and judge the trailing days."""
    versions = judged_versions(connection, catalog, model, start, end)
    partitions = _partition_days(catalog, model, start, end)
    rows = [{"day": day, **day_outcomes(connection, catalog, model, day)} for day in partitions]
    frame = pd.DataFrame(rows)
    computed_at = registry.now()
    frame["computed_at"], frame["run_id"] = computed_at, run_id
    served = served_frame(_served_days(connection, catalog, model, partitions), computed_at, run_id)
    replace_days(connection, model.name, "outcomes", frame, partitions)
    if len(served) or table_exists(connection, "monitoring", names.monitoring_table_name(model.name,
                                                                                          "served_outcomes")):
        replace_days(connection, model.name, "served_outcomes", served, partitions)
    record_days_versions(connection, model.name, "outcomes", versions)
    history = read_days(connection, model.name, "outcomes", start - dt.timedelta(days=HISTORY_DAYS), end)
    notes = "; ".join(f"{row['day']}: {row['status']}" for row in rows if row["status"] not in JUDGED)
    grain = catalog.entity_rows(model.entity).grain
    return JudgedDays(frame, frame[frame["status"].isin(JUDGED)], notes,
                      trailing_verdict(history, TRAILING_DAYS, grain), served)


def _served_days(connection: duckdb.DuckDBPyConnection, catalog: Catalog, model: ModelSpec,
                 partitions: list[dt.date]) -> list[dict]:
    """The served channel of each day with served champion rows (none without a served-predictions log)."""
    if not partitions or not load_served(connection, catalog, model, min(partitions), max(partitions)):
        return []
    grain = catalog.entity_rows(model.entity).grain
    specs, promises = {}, {}

    def spec_of(version: str) -> ModelSpec:
        if version not in specs:
            specs[version] = recorded_spec(connection, version)
        return specs[version]

    def promise_of(version: str) -> Promise:
        if version not in promises:
            promises[version] = promise(connection, version, grain)
        return promises[version]

    try:
        days = [(day, served_day(connection, catalog, model, day, spec_of, promise_of)) for day in partitions]
    finally:
        connection.execute(f"DROP TABLE IF EXISTS {SERVED_VIEW}")
    return [{"day": day, **outcome} for day, outcome in days if outcome is not None]
