"""Feature attributions: how much each feature moved a model's output for one row, from the model artifact alone.

- LightGBM: the booster's own exact TreeSHAP (`Booster.predict(..., pred_contrib=True)`), on the booster's raw
  scale: log-odds for binary models, the predicted value for regression, each class's raw score for multiclass.
  Per row, the contributions plus the expected value add up to the raw score exactly (up to float rounding).
- scikit-learn pipelines: interventional Shapley values estimated by sampling feature orderings (Štrumbelj and
  Kononenko, "Explaining prediction models and individual predictions with feature contributions", 2014; the
  method of `shap.PermutationExplainer`), on the scale the model reports (the probability, or the value). Each
  ordering walks the row from a background sample (training rows) to the row itself, one feature at a time, and
  credits each feature with the change in the mean prediction; the credits of one ordering add up to
  `f(row) - mean f(background)` exactly, so the average over orderings does too. Orderings come in antithetic
  pairs from a seeded generator: the same row, model and background give the same attributions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ml_platform.errors import PlatformError
from ml_platform.training.algorithms import LightGBMPredictor, Predictor, SklearnPredictor

TREE_SHAP = "TreeSHAP (LightGBM pred_contrib, exact)"
SAMPLED_SHAPLEY = "interventional Shapley values, sampled orderings (Štrumbelj and Kononenko 2014)"
ORDERINGS = 8  # antithetic pairs count twice: 8 orderings are 4 drawn and their reverses
SEED = 20


class AttributionError(PlatformError, ValueError):
    """Attributions cannot be computed for these rows or this model."""


@dataclass(frozen=True)
class Attributions:
    """Per-row contributions of each input column (rows x columns) and the value they start from.

    `base + contributions.sum(axis=1)` equals `output` for every row: the raw score (LightGBM) or the reported
    prediction (scikit-learn). `scale` says which: "log-odds", "probability" or "value".
    """

    method: str
    scale: str
    columns: tuple[str, ...]
    contributions: np.ndarray
    base: np.ndarray
    output: np.ndarray

    def mean_absolute(self) -> dict[str, float]:
        """Global importance: each column's mean |contribution| over the rows, largest first."""
        values = np.abs(self.contributions).mean(axis=0) if len(self.contributions) else \
            np.zeros(len(self.columns))
        order = np.argsort(-values, kind="stable")
        return {self.columns[index]: float(values[index]) for index in order}


def lightgbm_attributions(predictor: LightGBMPredictor, frame: pd.DataFrame,
                          class_index: int | None = None) -> Attributions:
    """TreeSHAP contributions of a LightGBM model on its raw scale (one class's raw score for multiclass)."""
    from ml_platform.training.algorithms import THREADS

    matrix = predictor.layout.matrix(frame)
    width = len(predictor.layout.columns) + 1
    classes = predictor.booster.num_model_per_iteration()
    contributions = np.asarray(predictor.booster.predict(matrix, pred_contrib=True, num_threads=THREADS))
    raw = np.asarray(predictor.booster.predict(matrix, raw_score=True, num_threads=THREADS))
    if classes > 1:
        if class_index is None or not 0 <= class_index < classes:
            raise AttributionError(f"a multiclass model has {classes} classes: name the class to explain by its "
                                   f"position 0 to {classes - 1} (given {class_index})")
        contributions = contributions[:, class_index * width:(class_index + 1) * width]
        raw = raw[:, class_index]
    objective = predictor.booster.params.get("objective", "") or ""
    binary = classes == 1 and str(objective).startswith(("binary", "cross_entropy"))
    return Attributions(TREE_SHAP, "log-odds" if binary else "value", predictor.layout.columns,
                        contributions[:, :-1], contributions[:, -1], raw)


def _mixed(row: pd.DataFrame, background: pd.DataFrame, taken: np.ndarray) -> pd.DataFrame:
    """One block of background rows per mask in `taken`, stacked in order, each with the columns its mask marks
    set to the row's values (each column keeps its type)."""
    blocks, size = taken.shape[0], len(background)
    mixed = background.iloc[np.tile(np.arange(size), blocks)].reset_index(drop=True)
    for position, name in enumerate(background.columns):
        mask = np.repeat(taken[:, position], size)
        if mask.any():
            mixed.loc[mask, name] = row[name].iloc[0]
    return mixed


def sampled_shapley(predict, row: pd.DataFrame, background: pd.DataFrame, orderings: int = ORDERINGS,
                    seed: int = SEED) -> tuple[np.ndarray, float, float]:
    """One row's sampled Shapley values under `predict` (frame -> one number per row), the mean prediction on
    the background, and the row's own prediction; the values add up to their difference exactly."""
    columns = list(background.columns)
    width = len(columns)
    generator = np.random.default_rng(seed)
    drawn = [generator.permutation(width) for _ in range((orderings + 1) // 2)]
    walks = [order for pair in drawn for order in (pair, pair[::-1])][:orderings]
    values = np.zeros(width)
    start = end = 0.0
    for order in walks:
        taken = np.zeros((width + 1, width), dtype=bool)
        for step in range(1, width + 1):
            taken[step] = taken[step - 1]
            taken[step, order[step - 1]] = True
        scores = np.asarray(predict(_mixed(row, background, taken)), dtype="float64")
        means = scores.reshape(width + 1, len(background)).mean(axis=1)
        values[order] += np.diff(means)
        start, end = means[0], means[-1]
    return values / len(walks), float(start), float(end)


def sklearn_attributions(predictor: SklearnPredictor, frame: pd.DataFrame, background: pd.DataFrame,
                         orderings: int = ORDERINGS, seed: int = SEED) -> Attributions:
    """Sampled Shapley values of a scikit-learn binary classifier (probability) or regressor (value)."""
    if len(background) == 0:
        raise AttributionError("sampled Shapley values need background rows (training rows); none were given")
    columns = list(predictor.layout.columns)
    missing = [name for name in columns if name not in frame.columns or name not in background.columns]
    if missing:
        raise AttributionError(f"the rows to explain or the background lack the model's columns {missing}")
    estimator = predictor.pipeline.named_steps["estimator"]
    if hasattr(estimator, "classes_") and len(estimator.classes_) > 2:
        raise AttributionError("sampled Shapley values are computed for binary classifiers and regressors; a "
                               "multiclass scikit-learn model has one probability per class")

    def predict(rows: pd.DataFrame) -> np.ndarray:
        return np.asarray(predictor.predict(rows), dtype="float64")

    reference = background[columns].reset_index(drop=True)
    results = [sampled_shapley(predict, frame[columns].iloc[[position]].reset_index(drop=True), reference,
                               orderings, seed) for position in range(len(frame))]
    contributions = np.array([result[0] for result in results]).reshape(len(frame), len(columns))
    base = np.array([result[1] for result in results])
    output = np.array([result[2] for result in results])
    scale = "probability" if hasattr(estimator, "predict_proba") else "value"
    return Attributions(SAMPLED_SHAPLEY, scale, tuple(columns), contributions, base, output)


def attributions(predictor: Predictor, frame: pd.DataFrame, background: pd.DataFrame | None = None,
                 class_index: int | None = None) -> Attributions:
    """Each input column's contribution to the model's output for each row of frame (see the module's methods)."""
    if isinstance(predictor, LightGBMPredictor):
        return lightgbm_attributions(predictor, frame, class_index)
    if isinstance(predictor, SklearnPredictor):
        if background is None:
            raise AttributionError("a scikit-learn model's attributions need background rows (training rows)")
        return sklearn_attributions(predictor, frame, background)
    raise AttributionError(f"no attribution method for artifact format {predictor.format!r}")


def probability(log_odds: np.ndarray | float) -> np.ndarray | float:
    """The probability a log-odds stands for."""
    return 1.0 / (1.0 + np.exp(-np.asarray(log_odds, dtype="float64")))
