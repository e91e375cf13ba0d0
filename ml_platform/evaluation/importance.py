"""Global feature importance on the test rows: each feature's mean |contribution|, and the points of a dependence
plot (value against contribution) for the top features, for the evaluation report and `ml-platform compare`."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd

from ml_platform.records.evaluation import DependencePoints, FeatureImportance, GlobalImportance
from ml_platform.records.registry import SnapshotRecord
from ml_platform.snapshots.columns import sample_split
from ml_platform.storage.artifacts import ArtifactStore
from ml_platform.training.algorithms import LightGBMPredictor, Predictor
from ml_platform.training.attributions import Attributions, attributions

# TreeSHAP costs far more than a prediction (measured here: >70x predict with 578 trees of 31 leaves): a seeded
# sample of the test rows, enough for a stable mean |contribution|
TREE_ROWS = 1_000
SAMPLED_ROWS = 100  # a sampled Shapley row costs (features + 1) x orderings x background predictions
BACKGROUND_ROWS = 100
DEPENDENCE_FEATURES = 3
DEPENDENCE_POINTS = 400
SEED = 11


def _sample(frame: pd.DataFrame, size: int, seed: int) -> pd.DataFrame:
    if len(frame) <= size:
        return frame.reset_index(drop=True)
    positions = np.sort(np.random.default_rng(seed).choice(len(frame), size=size, replace=False))
    return frame.iloc[positions].reset_index(drop=True)


def _point(value) -> float | str | None:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    return value if isinstance(value, str) else float(value)


def global_importance(predictor: Predictor, test: pd.DataFrame, background: pd.DataFrame | None,
                      class_index: int | None = None) -> GlobalImportance:
    """Mean |contribution| of each feature over (a seeded sample of) the test rows, largest first, with the
    dependence points of the top features. `background` (training rows) serves the model-agnostic method."""
    tree = isinstance(predictor, LightGBMPredictor)
    rows = _sample(test, TREE_ROWS if tree else SAMPLED_ROWS, SEED)
    reference = None if tree or background is None else _sample(background, BACKGROUND_ROWS, SEED)
    result = attributions(predictor, rows, reference, class_index=class_index)
    importance = result.mean_absolute()
    total = sum(importance.values())
    features = tuple(FeatureImportance(feature=name, mean_absolute=value,
                                       share=value / total if total > 0 else float("nan"))
                     for name, value in importance.items())
    dependence = tuple(dependence_points(predictor, rows, result, item.feature)
                       for item in features[:DEPENDENCE_FEATURES])
    return GlobalImportance(method=result.method, scale=result.scale, rows=len(rows), features=features,
                            dependence=dependence)


def dependence_points(predictor: Predictor, rows: pd.DataFrame, result: Attributions, feature: str,
                      label_class: str | None = None) -> DependencePoints:
    """A seeded sample of the rows' values of one feature beside its contributions in `result` (rows' order)."""
    shown = _sample(pd.DataFrame({"position": np.arange(len(rows))}), DEPENDENCE_POINTS, SEED)["position"]
    column = result.columns.index(feature)
    category = feature in predictor.layout.categories
    points = tuple(None if _point(value) is None else (str(value) if category else _point(value))
                   for value in rows[feature].iloc[shown])
    return DependencePoints(feature=feature, kind="category" if category else "number", values=points,
                            contributions=tuple(float(x) for x in result.contributions[shown, column]),
                            label_class=label_class)


def snapshot_importance(connection: duckdb.DuckDBPyConnection, artifacts: ArtifactStore, snapshot: SnapshotRecord,
                        predictor: Predictor, test: pd.DataFrame) -> GlobalImportance:
    """Global importance of a training run's model on its test rows; the model-agnostic method compares them
    with a seeded sample of the run's training rows (its snapshot's file, verified)."""
    background = None
    if not isinstance(predictor, LightGBMPredictor):
        path = artifacts.verify(snapshot.path, snapshot.sha256)
        background, _ = sample_split(connection, path, "train", list(predictor.layout.columns), BACKGROUND_ROWS,
                                     SEED)
    return global_importance(predictor, test, background)


def importance_shift(first: GlobalImportance, second: GlobalImportance) -> list[tuple[str, float | None,
                                                                                     float | None]]:
    """(feature, share in first, share in second) for every feature of either, by the larger share first; a
    share is None where the model does not use the feature. Shares compare models whose scales differ."""
    one = {item.feature: item.share for item in first.features}
    two = {item.feature: item.share for item in second.features}
    names = list(dict.fromkeys([*one, *two]))
    return sorted(((name, one.get(name), two.get(name)) for name in names),
                  key=lambda row: -max(value for value in row[1:] if value is not None))
