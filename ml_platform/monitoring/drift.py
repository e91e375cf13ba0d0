"""Feature and prediction drift of scored days against the champion's training snapshot, as population stability.

Each feature of a day is binned as the champion's training rows were (see `bins`), and scores at the deciles of the
champion's scores on its evaluation test window; a reference is binned once, for every day measured against it.
Rule of thumb: below 0.1 stable, 0.1 to 0.25 moving, above 0.25 drifted.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

import duckdb
import pandas as pd

from ml_platform.evaluation.store import read_predictions
from ml_platform.monitoring.bins import Bins, feature_psi, psi, score_psi
from ml_platform.partitions import days
from ml_platform.scoring.inputs import COLUMN as INPUTS, STRUCT, stored_type
from ml_platform.scoring.score import latest_view
from ml_platform.specs.models import ModelSpec
from ml_platform.storage import registry
from ml_platform.storage.artifacts import ArtifactStore
from ml_platform.storage.warehouse import date_literal, quote, table, table_exists

__all__ = ["PSI_ALARM", "SCORE", "MonitoringError", "Reference", "champion_reference", "day_drift", "drift_frame",
           "feature_psi", "latest_rows", "psi", "score_psi"]

PSI_ALARM = 0.25  # the feature_drift and prediction_drift checks warn above it; drift_alarm counts days above it
SCORE = "__score__"  # the row of the drift table that holds prediction drift
_FIELD = "input:"  # prefix of the columns of latest_rows that hold a feature's value


class MonitoringError(RuntimeError):
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
    model_row = registry.fetch_one(connection, "models", model_version=model_version)
    if model_row is None:
        raise MonitoringError(f"{model_version} of '{model}' is not in the model registry")
    snapshot = registry.fetch_one(connection, "snapshots", model=model, training_run=model_row["training_run"])
    evaluation = registry.fetch_one(connection, "evaluations", model=model, training_run=model_row["training_run"])
    if snapshot is None or evaluation is None:
        raise MonitoringError(f"{model_version} has no recorded snapshot or evaluation to compare with")
    path = artifacts.verify(snapshot["path"], snapshot["sha256"])  # the snapshot file's hash first
    features = list(snapshot["manifest"]["features"])
    # every row is read, as the whole snapshot would be: pandas types a column by its values (NULLs among them)
    rows = connection.execute(f"SELECT split, {', '.join(quote(name) for name in features)} "
                              f"FROM read_parquet(?)", [str(path)]).df()
    train = rows[rows["split"] == "train"]
    evaluated = read_predictions(connection, artifacts, evaluation["summary"])
    return Reference(model_version, {name: Bins.of(train[name].reset_index(drop=True)) for name in features},
                     Bins.of(pd.Series(evaluated.loc[evaluated["split"] == "test", "score"].to_numpy(dtype=float))))


def latest_rows(connection: duckdb.DuckDBPyConnection, model: ModelSpec, start: dt.date,
                end: dt.date) -> pd.DataFrame:
    """The latest production prediction of each row of [start, end]: day, model_version, score and the inputs the
    model saw (a column `input:<feature>` per stored feature, or the JSON text `inputs` of an older table)."""
    if not table_exists(connection, "predictions", model.name):
        return pd.DataFrame(columns=["day", "model_version", "score"])
    target = table("predictions", model.name)
    kind = stored_type(connection, target)
    names = [name for name, _ in kind.children] if kind.id == STRUCT else [INPUTS]
    # the struct's fields are read in SQL, one column each: no value of them becomes a Python object
    inputs = [f"{INPUTS}.{quote(name)}" for name in names] if kind.id == STRUCT else [INPUTS]
    frame = connection.execute(
        f"SELECT CAST(partition_date AS DATE), model_version, score, {', '.join(inputs)} FROM {latest_view(model)} "
        f"WHERE partition_date BETWEEN {date_literal(start)} AND {date_literal(end)}").df()
    frame.columns = ["day", "model_version", "score", *(f"{_FIELD}{name}" for name in names)] \
        if kind.id == STRUCT else ["day", "model_version", "score", INPUTS]
    frame["day"] = pd.to_datetime(frame["day"]).dt.date
    return frame


def _inputs(rows: pd.DataFrame, features: list[str]) -> pd.DataFrame:
    if INPUTS in rows.columns:  # JSON text, as older tables store it
        return pd.DataFrame([json.loads(text) for text in rows[INPUTS]], columns=features)
    return pd.DataFrame({name: rows[f"{_FIELD}{name}"].reset_index(drop=True) for name in features})


def day_drift(reference: Reference, scored: pd.DataFrame) -> pd.DataFrame:
    """PSI of every feature and of the score, for the rows of one day (of latest_rows) that the reference's version
    scored."""
    rows = scored[scored["model_version"] == reference.model_version]
    inputs = _inputs(rows, list(reference.features))
    measures = [{"feature": name, "psi": bins.psi(inputs[name])} for name, bins in reference.features.items()]
    measures.append({"feature": SCORE, "psi": reference.scores.psi(rows["score"].to_numpy(dtype=float))})
    frame = pd.DataFrame(measures)
    frame["rows"] = len(rows)
    return frame


def drift_frame(connection: duckdb.DuckDBPyConnection, artifacts: ArtifactStore, model: ModelSpec, start: dt.date,
                end: dt.date) -> pd.DataFrame:
    """PSI of every feature and of the score for each day of [start, end], against the version that scored most
    of the day's rows; fails naming what is missing."""
    if registry.champion(connection, model.name) is None:
        raise MonitoringError(f"no version of '{model.name}' has been deployed: nothing is scored, nothing to monitor")
    scored = latest_rows(connection, model, start, end)
    references, frames, unscored = {}, [], []
    for day, rows in ((day, scored[scored["day"] == day]) for day in days(start, end)):
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
                              f"materialize predictions/{model.name} for them first")
    return pd.concat(frames, ignore_index=True)
