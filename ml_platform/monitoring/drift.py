"""Feature and prediction drift of a scored day against the champion's training snapshot, as population stability.

PSI = sum over bins of (day share - reference share) * ln(day share / reference share). Numeric features are binned at
the training rows' deciles, categories by their training values (unseen ones share one bin), and a missing value
is a bin of its own, so a feature that stops arriving drifts too. Scores are binned at the deciles of the champion's
scores on its evaluation test window. Rule of thumb: below 0.1 stable, 0.1 to 0.25 moving, above 0.25 drifted.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd

from ml_platform.evaluation.store import read_predictions
from ml_platform.scoring.score import latest_view
from ml_platform.snapshots.build import read_snapshot
from ml_platform.specs.models import ModelSpec
from ml_platform.storage import registry
from ml_platform.storage.artifacts import ArtifactStore
from ml_platform.storage.warehouse import date_literal, table_exists

PSI_ALARM = 0.25  # the feature_drift and prediction_drift checks warn above it; drift_alarm counts days above it
SCORE = "__score__"  # the row of the drift table that holds prediction drift
_FLOOR = 1e-4  # share given to an empty bin, so that PSI stays finite
_BINS = 10


class MonitoringError(RuntimeError):
    """What monitoring needs is missing: no champion, a day not scored, or a reference that cannot be read."""


@dataclass
class Reference:
    """The champion's reference populations: its training rows and its scores on the evaluation test window."""

    model_version: str
    features: pd.DataFrame
    scores: np.ndarray


def psi(reference: np.ndarray, current: np.ndarray) -> float:
    """Population stability index of two vectors of bin shares."""
    expected = np.maximum(np.asarray(reference, dtype=float), _FLOOR)
    actual = np.maximum(np.asarray(current, dtype=float), _FLOOR)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def _shares(codes: np.ndarray, bins: int) -> np.ndarray:
    counts = np.bincount(codes, minlength=bins).astype(float)
    return counts / max(counts.sum(), 1.0)


def _is_category(values: pd.Series) -> bool:
    return values.dtype == object or isinstance(values.dtype, pd.StringDtype) or values.dtype == bool


def feature_psi(reference: pd.Series, current: pd.Series) -> float:
    """PSI of one feature: training deciles (or categories) as bins, missing values as a bin of their own."""
    if _is_category(reference):  # the day's values come from JSON: the training column says what they are
        categories = {value: index for index, value in enumerate(sorted(reference.dropna().astype(str).unique()))}
        unseen, missing = len(categories), len(categories) + 1

        def codes(values: pd.Series) -> np.ndarray:
            return np.array([missing if pd.isna(value) else categories.get(str(value), unseen) for value in values],
                            dtype=int)

        return psi(_shares(codes(reference), missing + 1), _shares(codes(current), missing + 1))
    known = pd.to_numeric(reference, errors="coerce").to_numpy(dtype=float)
    present = known[np.isfinite(known)]
    edges = np.unique(np.quantile(present, np.linspace(0, 1, _BINS + 1)[1:-1])) if len(present) else np.array([])
    missing = len(edges) + 1

    def numeric_codes(values) -> np.ndarray:
        numbers = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=float)
        return np.where(np.isfinite(numbers), np.searchsorted(edges, numbers, side="right"), missing)

    return psi(_shares(numeric_codes(known), missing + 1), _shares(numeric_codes(current), missing + 1))


def score_psi(reference: np.ndarray, current: np.ndarray) -> float:
    """PSI of scores, binned at the reference scores' deciles."""
    return feature_psi(pd.Series(reference, dtype=float), pd.Series(current, dtype=float))


def champion_reference(connection: duckdb.DuckDBPyConnection, artifacts: ArtifactStore, model: str,
                       model_version: str) -> Reference:
    """A model version's training rows (from its verified snapshot) and test-window scores (from its evaluation)."""
    model_row = registry.fetch_one(connection, "models", model_version=model_version)
    if model_row is None:
        raise MonitoringError(f"{model_version} of '{model}' is not in the model registry")
    snapshot = registry.fetch_one(connection, "snapshots", model=model, training_run=model_row["training_run"])
    evaluation = registry.fetch_one(connection, "evaluations", model=model, training_run=model_row["training_run"])
    if snapshot is None or evaluation is None:
        raise MonitoringError(f"{model_version} has no recorded snapshot or evaluation to compare with")
    rows = read_snapshot(connection, artifacts, snapshot)  # verifies the snapshot file's hash first
    evaluated = read_predictions(connection, artifacts, evaluation["summary"])
    features = list(snapshot["manifest"]["features"])
    return Reference(model_version, rows.loc[rows["split"] == "train", features].reset_index(drop=True),
                     evaluated.loc[evaluated["split"] == "test", "score"].to_numpy(dtype=float))


def scored_rows(connection: duckdb.DuckDBPyConnection, model: ModelSpec, day: dt.date) -> pd.DataFrame:
    """The latest production prediction of each row of the day: model_version, score and the inputs the model saw."""
    if not table_exists(connection, "predictions", model.name):
        return pd.DataFrame(columns=["model_version", "score", "inputs"])
    return connection.execute(f"SELECT model_version, score, inputs FROM {latest_view(model)} "
                              f"WHERE partition_date = {date_literal(day)}").df()


def day_drift(reference: Reference, scored: pd.DataFrame) -> pd.DataFrame:
    """PSI of every feature and of the score, for the rows of one day that the reference's version scored."""
    rows = scored[scored["model_version"] == reference.model_version]
    inputs = pd.DataFrame([json.loads(text) for text in rows["inputs"]], columns=list(reference.features.columns))
    measures = [{"feature": name, "psi": feature_psi(reference.features[name], inputs[name])}
                for name in reference.features.columns]
    measures.append({"feature": SCORE, "psi": score_psi(reference.scores, rows["score"].to_numpy(dtype=float))})
    frame = pd.DataFrame(measures)
    frame["rows"] = len(rows)
    return frame
