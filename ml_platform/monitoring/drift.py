"""Feature and prediction drift of scored days against the champion's training snapshot, as population stability.

Each feature of a day is binned as the champion's training rows were (see `bins`), and scores at the deciles of the
champion's scores on its evaluation test window; a reference is binned once, for every day measured against it.
Rule of thumb: below 0.1 stable, 0.1 to 0.25 moving, above 0.25 drifted.
"""

from __future__ import annotations

import datetime as dt
from contextlib import closing
from dataclasses import dataclass
from typing import Iterator

import duckdb
import pandas as pd

from ml_platform import names
from ml_platform.errors import PlatformError
from ml_platform.evaluation.predictions_file import read_predictions
from ml_platform.monitoring.bins import Bins, feature_psi, psi, score_psi
from ml_platform.monitoring.store import replace_days
from ml_platform.names import quote
from ml_platform.partitions import days
from ml_platform.scoring.inputs import COLUMN as INPUTS, stored_fields
from ml_platform.specs.models import ModelSpec
from ml_platform.storage import registry
from ml_platform.storage.artifacts import ArtifactStore
from ml_platform.storage.warehouse import date_literal, table_exists

__all__ = ["PSI_ALARM", "SCORE", "DriftMeasure", "MonitoringError", "Reference", "champion_reference", "day_drift",
           "drift_frame", "feature_psi", "measure_drift", "psi", "score_psi", "scored_days"]

PSI_ALARM = 0.25  # the feature_drift and prediction_drift checks warn above it; drift_alarm counts days above it
SCORE = "__score__"  # the row of the drift table that holds prediction drift
_FIELD = "input:"  # prefix of the columns of scored_days' frames that hold a feature's value
_STAGED = "monitored_rows"  # temporary table of the latest predictions of the days being measured


class MonitoringError(PlatformError, RuntimeError):
    """What monitoring needs is missing: no champion, a day not scored, or a reference that cannot be read."""


@dataclass
class Reference:
    """A version's reference populations, binned: each feature's training rows, and its test-window scores."""

    model_version: str
    features: dict[str, Bins]
    scores: Bins


def champion_reference(connection: duckdb.DuckDBPyConnection, artifacts: ArtifactStore, model: str,
                       model_version: str) -> Reference:
    """A model version's training rows (from its verified snapshot) and test-window scores (from its evaluation),
    binned."""
    trained = registry.models.by_version(connection, model_version)
    if trained is None:
        raise MonitoringError(f"{model_version} of '{model}' is not in the model registry")
    snapshot = registry.snapshots.get(connection, model, trained.training_run)
    evaluation = registry.evaluations.get(connection, model, trained.training_run)
    if snapshot is None or evaluation is None:
        raise MonitoringError(f"{model_version} has no recorded snapshot or evaluation to compare with")
    if evaluation.summary.artifacts is None:
        raise MonitoringError(f"the evaluation of {model_version} kept no per-row predictions")
    path = artifacts.verify(snapshot.path, snapshot.sha256)  # the snapshot file's hash first
    features = list(snapshot.manifest.features)
    # every row is read, as the whole snapshot would be: pandas types a column by its values (NULLs among them)
    rows = connection.execute(f"SELECT split, {', '.join(quote(name) for name in features)} "
                              f"FROM read_parquet(?)", [str(path)]).df()
    train = rows[rows["split"] == "train"]
    evaluated = read_predictions(connection, artifacts, evaluation.summary)
    return Reference(model_version, {name: Bins.of(train[name].reset_index(drop=True)) for name in features},
                     Bins.of(pd.Series(evaluated.loc[evaluated["split"] == "test", "score"].to_numpy(dtype=float))))


def scored_days(connection: duckdb.DuckDBPyConnection, model: ModelSpec, start: dt.date,
                end: dt.date) -> Iterator[tuple[dt.date, pd.DataFrame]]:
    """Each day of [start, end] and the latest production prediction of each of its rows: model_version, score and
    the inputs the model saw (a column `input:<feature>` per stored field). Close it when done: the range's rows
    are staged once (one pass over the latest-per-row view), then read a day at a time, so pandas holds one day's
    rows at a time."""
    if not table_exists(connection, "predictions", model.name):
        for day in days(start, end):
            yield day, pd.DataFrame(columns=["model_version", "score"])
        return
    fields = list(stored_fields(connection, names.predictions_table(model.name)))
    # the struct's fields are split into columns in SQL: no row's inputs become a Python dict to unpack
    inputs = ", ".join(f"{INPUTS}.{quote(name)}" for name in fields)
    columns = ["model_version", "score", *(f"{_FIELD}{name}" for name in fields)]
    connection.execute(
        f"CREATE OR REPLACE TEMP TABLE {_STAGED} AS SELECT CAST(partition_date AS DATE) AS day, model_version, "
        f"score, {INPUTS} FROM {names.latest_view(model.name)} "
        f"WHERE partition_date BETWEEN {date_literal(start)} AND {date_literal(end)}")
    try:
        for day in days(start, end):
            frame = connection.execute(f"SELECT model_version, score, {inputs} FROM {_STAGED} WHERE day = ?",
                                       [day]).df()
            frame.columns = columns
            yield day, frame
    finally:
        connection.execute(f"DROP TABLE IF EXISTS {_STAGED}")


def day_drift(reference: Reference, scored: pd.DataFrame) -> pd.DataFrame:
    """PSI of every feature and of the score, for the rows of one day (of scored_days) that the reference's version
    scored."""
    rows = scored[scored["model_version"] == reference.model_version]
    measures = [{"feature": name, "psi": bins.psi(rows[f"{_FIELD}{name}"].reset_index(drop=True))}
                for name, bins in reference.features.items()]
    measures.append({"feature": SCORE, "psi": reference.scores.psi(rows["score"].to_numpy(dtype=float))})
    frame = pd.DataFrame(measures)
    frame["rows"] = len(rows)
    return frame


def drift_frame(connection: duckdb.DuckDBPyConnection, artifacts: ArtifactStore, model: ModelSpec, start: dt.date,
                end: dt.date) -> pd.DataFrame:
    """PSI of every feature and of the score for each day of [start, end], against the version that scored most
    of the day's rows; fails naming what is missing."""
    if registry.promotions.champion(connection, model.name) is None:
        raise MonitoringError(f"no version of '{model.name}' has been deployed: nothing is scored, nothing to monitor")
    references, frames, unscored = {}, [], []
    with closing(scored_days(connection, model, start, end)) as scored:
        for day, rows in scored:
            if rows.empty:
                unscored.append(day.isoformat())
                continue
            version = rows["model_version"].mode().iloc[0]  # the version that scored most of the day's rows
            if version not in references:
                references[version] = champion_reference(connection, artifacts, model.name, version)
            drift = day_drift(references[version], rows)
            drift["day"], drift["model_version"] = day, version
            frames.append(drift)
    if unscored:
        raise MonitoringError(f"{len(unscored)} day(s) of '{model.name}' not scored yet ({', '.join(unscored[:5])}): "
                              f"materialize {model.name}/predictions for them first")
    return pd.concat(frames, ignore_index=True)


@dataclass(frozen=True)
class DriftMeasure:
    """The drift of a range of days as stored, with the largest PSI of a feature and of the score, and where."""

    frame: pd.DataFrame  # one row per day and feature (SCORE for the score): psi, rows, model_version, day
    feature_psi: float
    feature_where: str  # "<feature> on <day>"
    score_psi: float
    score_where: str  # "the score on <day>"


def _worst(frame: pd.DataFrame) -> tuple[float, str]:
    row = frame.loc[frame["psi"].idxmax()]
    return float(row["psi"]), f"{row['feature']} on {pd.Timestamp(row['day']).date()}"


def measure_drift(connection: duckdb.DuckDBPyConnection, artifacts: ArtifactStore, model: ModelSpec,
                  start: dt.date, end: dt.date, run_id: str) -> DriftMeasure:
    """Measure the drift of each day of [start, end] and store it (replacing those days), stamped with the run."""
    frame = drift_frame(connection, artifacts, model, start, end)
    frame["computed_at"], frame["run_id"] = registry.now(), run_id
    replace_days(connection, model.name, "drift", frame, days(start, end))
    largest_feature, feature_where = _worst(frame[frame["feature"] != SCORE])
    largest_score, score_where = _worst(frame[frame["feature"] == SCORE])
    return DriftMeasure(frame, largest_feature, feature_where, largest_score, score_where.replace(SCORE, "the score"))
