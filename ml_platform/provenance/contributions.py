"""Why a past prediction came out as it did: each feature's contribution, read from the predictions table when
scoring stored them (`scoring: {contributions: true}`, scoring/contributions.py), else recomputed from the
prediction's stored inputs and the model's verified artifact (training/attributions.py's methods), so that any past
prediction can be explained, whichever model is live today."""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd

from ml_platform import names
from ml_platform.errors import PlatformError
from ml_platform.records.registry import ModelRecord
from ml_platform.snapshots.columns import sample_split
from ml_platform.storage import registry
from ml_platform.storage.artifacts import ArtifactStore
from ml_platform.training.algorithms import LightGBMPredictor
from ml_platform.training.attributions import Attributions, attributions, probability
from ml_platform.training.fit import load_model

BACKGROUND_ROWS = 200  # training rows a model-agnostic method compares the row with
BACKGROUND_SEED = 7
DEFAULT_TOP = 5
STORED = "stored by scoring"
RECOMPUTED = "recomputed from the stored inputs and the model's artifact"


class ContributionsError(PlatformError, ValueError):
    """A prediction's stored contributions do not fit its model."""


@dataclass(frozen=True)
class Contribution:
    """One feature's part in a prediction: its value, its contribution on the method's scale, and for log-odds
    the probability the row would have without it (expected value in its place)."""

    feature: str
    value: object
    contribution: float
    probability_without: float | None = None


@dataclass(frozen=True)
class PredictionContributions:
    """The contributions of one prediction, largest first, and what they add up to."""

    method: str
    scale: str  # "log-odds", "probability" or "value"
    base: float
    output: float  # base + every contribution: the raw score (LightGBM) or the reported prediction
    reported: float  # the prediction as the model reports it today (probability or value)
    stored: float | None  # the prediction as stored when it was made
    contributions: tuple[Contribution, ...]
    explained_class: str | None = None  # the decided class of a multiclass model
    threshold: float | None = None  # a binary decision's threshold
    origin: str = RECOMPUTED  # STORED when read from the predictions table, RECOMPUTED otherwise


def _stored_prediction(row: dict) -> float | None:
    if "score" in row:
        return float(row["score"])
    value = row.get(names.PREDICTION_COLUMN)
    return None if value is None or isinstance(value, str) else float(value)


def _background(connection: duckdb.DuckDBPyConnection, artifacts: ArtifactStore, model: ModelRecord,
                columns: list[str]) -> pd.DataFrame:
    """A seeded sample of the model's training rows, read from its verified snapshot."""
    snapshot = registry.snapshots.get(connection, model.model, model.training_run)
    path = artifacts.verify(snapshot.path, snapshot.sha256)
    frame, _ = sample_split(connection, path, "train", columns, BACKGROUND_ROWS, BACKGROUND_SEED)
    return frame


def prediction_contributions(connection: duckdb.DuckDBPyConnection, artifacts: ArtifactStore, model: ModelRecord,
                             inputs: dict, row: dict, label: dict) -> PredictionContributions:
    """Each feature's contribution to one stored prediction of `model`, from its stored inputs (`inputs`), its
    stored row (`row`, for the stored score and decision) and the spec's label (`label`, recorded payload)."""
    predictor = load_model(artifacts, model)
    columns = list(predictor.layout.columns)
    frame = pd.DataFrame({name: pd.Series([inputs.get(name)], dtype=object) for name in columns})
    for name in columns:
        if name not in predictor.layout.categories:
            frame[name] = pd.to_numeric(frame[name], errors="raise").astype("float64")
    classes = label.get("classes") or None
    explained_class = str(row[names.DECISION_COLUMN]) if classes and names.DECISION_COLUMN in row else None
    class_index = classes.index(explained_class) if explained_class in (classes or []) else None
    stored = row.get(names.CONTRIBUTIONS_COLUMN)
    if stored is not None:
        result = _stored(stored, columns)
    elif isinstance(predictor, LightGBMPredictor):
        result = attributions(predictor, frame, class_index=class_index)
    else:
        result = attributions(predictor, frame, _background(connection, artifacts, model, columns))
    reported = predictor.predict(frame)
    reported = float(reported[0, class_index] if np.ndim(reported) == 2 and class_index is not None
                      else np.ravel(reported)[0])
    return _summary(result, frame, reported, _stored_prediction(row), explained_class,
                    float(row["threshold"]) if "threshold" in row else None,
                    STORED if stored is not None else RECOMPUTED)


def _stored(stored: dict, columns: list[str]) -> Attributions:
    """The contributions scoring stored for one row (a STRUCT read as a dict), in the model's column order."""
    features = stored["features"]
    missing = [name for name in columns if name not in features]
    if missing:
        raise ContributionsError(f"the stored contributions of this prediction lack the model's columns {missing} "
                                 f"(stored: {sorted(features)}): the predictions table was changed after scoring")
    values = np.array([[features[name] for name in columns]], dtype="float64")
    base = float(stored["expected_value"])
    return Attributions(stored["method"], stored["scale"], tuple(columns), values, np.array([base]),
                        np.array([base + values.sum()]))


def _summary(result: Attributions, frame: pd.DataFrame, reported: float, stored: float | None,
             explained_class: str | None, threshold: float | None, origin: str) -> PredictionContributions:
    values = result.contributions[0]
    output = float(result.output[0])
    order = np.argsort(-np.abs(values), kind="stable")
    contributions = []
    for index in order:
        name = result.columns[index]
        without = float(probability(output - values[index])) if result.scale == "log-odds" else None
        value = frame[name].iloc[0]
        contributions.append(Contribution(name, None if pd.isna(value) else value, float(values[index]), without))
    return PredictionContributions(result.method, result.scale, float(result.base[0]), output, reported, stored,
                                   tuple(contributions), explained_class, threshold, origin)


def _shown(value) -> str:
    if value is None:
        return "missing"
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def contributions_text(result: PredictionContributions, top: int = DEFAULT_TOP) -> list[str]:
    """The lines `ml-platform explain` prints about what moved the prediction, the `top` largest first."""
    scale = {"log-odds": "log-odds (the raw score of a binary LightGBM model)",
             "probability": "probability", "value": "the predicted value"}[result.scale]
    if result.explained_class is not None and result.scale == "value":
        scale = f"the raw score of class '{result.explained_class}' (before softmax across the classes)"
    shown = result.contributions[:top]
    lines = [f"What moved the prediction most ({len(shown)} of {len(result.contributions)} features; "
             f"{result.method}; {result.origin}):",
             f"  on the scale of {scale}: expected value {result.base:+.4f} + contributions "
             f"{result.output - result.base:+.4f} = {result.output:.4f}"]
    if result.scale == "log-odds":
        lines.append(f"  probability {result.reported:.4f} = 1 / (1 + exp({-result.output:.4f}))"
                     + (f"; the stored score {result.stored:.4f}" if result.stored is not None else ""))
        lines.append("  each feature: its value, its contribution in log-odds, and the probability it adds (without "
                     "it: the probability with its contribution taken out)")
    elif result.stored is not None and result.explained_class is None:
        lines.append(f"  recomputed {result.reported:.6g}; stored {result.stored:.6g}")
    if result.stored is not None and result.explained_class is None and abs(result.reported - result.stored) > 1e-9:
        lines.append(f"  WARNING: the model scores these stored inputs {result.reported:.6g}, not the stored "
                     f"{result.stored:.6g}: the contributions explain today's recomputation")
    width = max([len(item.feature) for item in shown] or [0])
    value_width = max([len(_shown(item.value)) for item in shown] or [0])
    for item in shown:
        line = f"  {item.feature:<{width}}  {_shown(item.value):>{value_width}}  {item.contribution:+.4f}"
        if item.probability_without is not None:
            line += (f"  probability {result.reported - item.probability_without:+.4f} "
                     f"(without it {item.probability_without:.4f})")
            if result.threshold is not None and \
                    (item.probability_without >= result.threshold) != (result.reported >= result.threshold):
                line += f"; without it the decision flips at threshold {result.threshold:.4f}"
        elif result.threshold is not None and result.scale == "probability":
            without = result.reported - item.contribution
            if (without >= result.threshold) != (result.reported >= result.threshold):
                line += f"  without it the decision flips at threshold {result.threshold:.4f}"
        lines.append(line)
    return lines
