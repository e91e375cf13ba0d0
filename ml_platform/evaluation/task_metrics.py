"""The metrics of each task beyond binary classification: regression's errors and multiclass's classes."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ml_platform.records.tasks import ClassConfusion, SliceResiduals
from ml_platform.specs.models import LabelSpec


def regression_metrics(label: np.ndarray, predicted: np.ndarray, alpha: float = 0.5) -> dict[str, float]:
    """RMSE, MAE, WAPE (total absolute error over total absolute label), pinball loss at `alpha` (the objective's
    quantile, 0.5 otherwise: half the MAE), bias (mean predicted minus mean label) and R²; NaN without rows."""
    label, predicted = np.asarray(label, dtype="float64"), np.asarray(predicted, dtype="float64")
    if len(label) == 0:
        return {name: float("nan") for name in ("rmse", "mae", "wape", "pinball", "bias", "r2")}
    error = label - predicted
    total = np.abs(label).sum()
    spread = ((label - label.mean()) ** 2).sum()
    return {
        "rmse": float(np.sqrt(np.mean(error ** 2))),
        "mae": float(np.mean(np.abs(error))),
        "wape": float(np.abs(error).sum() / total) if total else float("nan"),
        "pinball": float(np.mean(np.maximum(alpha * error, (alpha - 1) * error))),
        "bias": float(np.mean(predicted) - np.mean(label)),
        "r2": float(1 - (error ** 2).sum() / spread) if spread else float("nan"),
    }


def multiclass_metrics(label: np.ndarray, probabilities: np.ndarray, classes: list[str]) -> dict[str, float]:
    """Log loss, accuracy and macro-averaged F1 of the most likely class (a class never predicted nor present
    counts as F1 0 only when it is present)."""
    actual = pd.Index(classes).get_indexer(pd.Series(label, dtype=object))
    if len(actual) == 0:
        return {"log_loss": float("nan"), "accuracy": float("nan"), "macro_f1": float("nan")}
    predicted = np.argmax(probabilities, axis=1)
    chosen = np.clip(probabilities[np.arange(len(actual)), actual], 1e-15, 1.0)
    scores = []
    for index in range(len(classes)):
        true_positive = np.sum((predicted == index) & (actual == index))
        predicted_count, actual_count = np.sum(predicted == index), np.sum(actual == index)
        if actual_count == 0 and predicted_count == 0:
            continue
        scores.append(2 * true_positive / (predicted_count + actual_count))
    return {"log_loss": float(-np.mean(np.log(chosen))), "accuracy": float(np.mean(predicted == actual)),
            "macro_f1": float(np.mean(scores))}


def confusion(label: np.ndarray, probabilities: np.ndarray, classes: list[str]) -> ClassConfusion:
    """Rows per (actual class, most likely class), in the spec's order of classes."""
    actual = pd.Index(classes).get_indexer(pd.Series(label, dtype=object))
    predicted = np.argmax(probabilities, axis=1)
    counts = np.zeros((len(classes), len(classes)), dtype=int)
    np.add.at(counts, (actual, predicted), 1)
    return ClassConfusion(classes=tuple(classes), counts=tuple(tuple(int(value) for value in row) for row in counts))


def residuals_by_slice(slices: np.ndarray, label: np.ndarray, predicted: np.ndarray) -> tuple[SliceResiduals, ...]:
    """Per slice: rows, mean residual (label minus prediction) and MAE, largest MAE first."""
    frame = pd.DataFrame({"slice": pd.Series(slices, dtype=object).fillna("(missing)").astype(str),
                          "residual": np.asarray(label, dtype="float64") - np.asarray(predicted, dtype="float64")})
    frame["absolute"] = frame["residual"].abs()
    grouped = frame.groupby("slice").agg(rows=("residual", "size"), mean_residual=("residual", "mean"),
                                         mae=("absolute", "mean")).reset_index()
    grouped = grouped.sort_values(["mae", "slice"], ascending=[False, True])
    return tuple(SliceResiduals(slice=row.slice, rows=int(row.rows), mean_residual=float(row.mean_residual),
                                mae=float(row.mae)) for row in grouped.itertuples())


def task_metrics(label_spec: LabelSpec, label: np.ndarray, predictions: np.ndarray) -> dict[str, float]:
    """The task's own metrics of predictions against labels (regression or multiclass)."""
    if label_spec.task == "regression":
        alpha = label_spec.objective.alpha if label_spec.objective is not None and \
            label_spec.objective.kind == "quantile" else 0.5
        return regression_metrics(label, predictions, alpha)
    if label_spec.task == "multiclass":
        return multiclass_metrics(label, predictions, list(label_spec.classes))
    return binary_metrics(label, predictions)


def binary_metrics(label: np.ndarray, probabilities: np.ndarray) -> dict[str, float]:
    """A binary model judged by a decision other than a threshold: ROC AUC (NaN with one class), log loss, Brier."""
    from sklearn.metrics import roc_auc_score  # here, not at import: loading the definitions stays without sklearn

    actual = np.asarray(label, dtype=bool)
    probability = np.clip(np.asarray(probabilities, dtype="float64"), 1e-15, 1 - 1e-15)
    auc = float(roc_auc_score(actual, probability)) if 0 < actual.sum() < len(actual) else float("nan")
    return {"roc_auc": auc,
            "log_loss": float(-np.mean(np.where(actual, np.log(probability), np.log(1 - probability)))),
            "brier": float(np.mean((probability - actual) ** 2))}


def metric_bound_problems(bounds: dict, metrics: dict[str, float]) -> dict[str, tuple[bool, str]]:
    """Each bounded metric of gate.metrics: passed, and why in words (a NaN metric fails)."""
    results = {}
    for name, bound in sorted(bounds.items()):
        value = metrics[name]
        low_ok = bound.min is None or value >= bound.min
        high_ok = bound.max is None or value <= bound.max
        passed = bool(np.isfinite(value) and low_ok and high_ok)
        limits = " and ".join(part for part in (f"at least {bound.min:g}" if bound.min is not None else "",
                                                f"at most {bound.max:g}" if bound.max is not None else "") if part)
        results[name] = (passed, f"test {name} {value:.4g} {'is' if passed else 'is not'} {limits}")
    return results
