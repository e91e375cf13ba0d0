"""Global feature importance of a regression or multiclass run on its test rows, for the task report.

Regression: as for binary models (evaluation.importance): mean |contribution| to the predicted value, TreeSHAP for
LightGBM, sampled Shapley values for scikit-learn. Multiclass (LightGBM): TreeSHAP of each class's raw score (before
softmax); a feature's importance is its mean |contribution| summed over the classes (the stacked bars of SHAP's
multiclass summary), and each top feature's dependence plot shows its contributions to the class it moves most.
A multiclass scikit-learn model has one probability per class, which the sampled method does not explain: its
report says so instead of showing a section.
"""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd

from ml_platform.evaluation.importance import (
    DEPENDENCE_FEATURES, SEED, TREE_ROWS, _sample, dependence_points, snapshot_importance)
from ml_platform.evaluation.importance_report import CLASS_SCALE
from ml_platform.records.evaluation import FeatureImportance, GlobalImportance
from ml_platform.records.registry import SnapshotRecord
from ml_platform.specs.models import ModelSpec
from ml_platform.storage.artifacts import ArtifactStore
from ml_platform.training.algorithms import LightGBMPredictor, Predictor
from ml_platform.training.attributions import lightgbm_attributions

NOT_MEASURED = ("Feature importance is not measured for a multiclass scikit-learn model: it reports one "
                "probability per class, which the sampled Shapley method does not explain (a LightGBM model's "
                "classes are explained with TreeSHAP).")


def multiclass_importance(predictor: LightGBMPredictor, test: pd.DataFrame, classes: list[str]) -> GlobalImportance:
    """Each feature's mean |contribution| summed over the classes' raw scores, largest first, and the dependence
    points of the top features on the class each moves most."""
    rows = _sample(test, TREE_ROWS, SEED)
    results = [lightgbm_attributions(predictor, rows, position) for position in range(len(classes))]
    columns = results[0].columns
    per_class = np.array([np.abs(result.contributions).mean(axis=0) if len(rows) else np.zeros(len(columns))
                          for result in results])  # classes x features
    totals = per_class.sum(axis=0)
    order = np.argsort(-totals, kind="stable")
    grand = float(totals.sum())
    features = tuple(FeatureImportance(feature=columns[index], mean_absolute=float(totals[index]),
                                       share=float(totals[index]) / grand if grand > 0 else float("nan"))
                     for index in order)
    dependence = []
    for index in order[:DEPENDENCE_FEATURES]:
        strongest = int(np.argmax(per_class[:, index]))
        dependence.append(dependence_points(predictor, rows, results[strongest], columns[index],
                                            label_class=classes[strongest]))
    return GlobalImportance(method=results[0].method, scale=CLASS_SCALE, rows=len(rows), features=features,
                            dependence=tuple(dependence))


def task_importance(connection: duckdb.DuckDBPyConnection, artifacts: ArtifactStore, snapshot: SnapshotRecord,
                    model: ModelSpec, predictor: Predictor, test: pd.DataFrame) -> GlobalImportance | None:
    """The run's global importance on its test rows; None for a multiclass scikit-learn model (NOT_MEASURED)."""
    if model.label.task != "multiclass":
        return snapshot_importance(connection, artifacts, snapshot, predictor, test)
    if not isinstance(predictor, LightGBMPredictor):
        return None
    return multiclass_importance(predictor, test, list(model.label.classes))
