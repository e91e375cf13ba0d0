"""Classification metrics on held-out rows: ranking, probability quality and decisions at a threshold."""

from __future__ import annotations

import numpy as np

from ml_platform.records.evaluation import CalibrationBin, RocCurve


def classification_metrics(label: np.ndarray, scores: np.ndarray, threshold: float) -> dict:
    """ROC AUC, log loss, Brier score, and precision/recall of flagging at the threshold."""
    from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score

    label = label.astype(int)
    flags = scores >= threshold
    true_positives = int(np.sum(flags & (label == 1)))
    flagged = int(flags.sum())
    positives = int(label.sum())
    both_classes = 0 < positives < len(label)
    return {
        "rows": int(len(label)),
        "positive_rate": float(label.mean()) if len(label) else float("nan"),
        "roc_auc": float(roc_auc_score(label, scores)) if both_classes else float("nan"),
        "log_loss": float(log_loss(label, np.clip(scores, 1e-7, 1 - 1e-7), labels=[0, 1])),
        "brier": float(brier_score_loss(label, scores)),
        "flagged": flagged,
        "precision": true_positives / flagged if flagged else float("nan"),
        "recall": true_positives / positives if positives else float("nan"),
    }


def calibration_table(label: np.ndarray, scores: np.ndarray, bins: int = 10) -> tuple[CalibrationBin, ...]:
    """Mean predicted versus observed positive rate in equal-width score bins that hold rows."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip(np.digitize(scores, edges[1:-1]), 0, bins - 1)
    table = []
    for position in range(bins):
        mask = index == position
        if mask.any():
            table.append(CalibrationBin(bin=f"{edges[position]:.1f}-{edges[position + 1]:.1f}", rows=int(mask.sum()),
                                        mean_predicted=float(scores[mask].mean()),
                                        observed=float(label[mask].mean())))
    return tuple(table)


def sanity_problems(scores: np.ndarray) -> tuple[str, ...]:
    """What is wrong with a set of predicted probabilities, if anything."""
    problems = []
    if len(scores) == 0:
        return ("no predictions",)
    missing = int(np.sum(~np.isfinite(scores)))
    if missing:
        problems.append(f"{missing} missing or infinite prediction(s)")
    finite = scores[np.isfinite(scores)]
    if len(finite) and (finite.min() < 0 or finite.max() > 1):
        problems.append(f"predictions outside [0, 1]: from {finite.min():.4f} to {finite.max():.4f}")
    if len(finite) and np.ptp(finite) < 1e-9:
        problems.append(f"constant predictions ({finite[0]:.4f} for every row)")
    return tuple(problems)


def roc_points(label: np.ndarray, scores: np.ndarray, max_points: int = 200) -> RocCurve:
    """The ROC curve (false and true positive rates), thinned to at most max_points; empty with one class."""
    from sklearn.metrics import roc_curve

    label = label.astype(int)
    if not 0 < label.sum() < len(label):
        return RocCurve(false_positive_rate=(), true_positive_rate=())
    false_positive_rate, true_positive_rate, _ = roc_curve(label, scores, drop_intermediate=True)
    if len(false_positive_rate) > max_points:
        keep = np.unique(np.linspace(0, len(false_positive_rate) - 1, max_points).round().astype(int))
        false_positive_rate, true_positive_rate = false_positive_rate[keep], true_positive_rate[keep]
    return RocCurve(false_positive_rate=tuple(round(float(value), 5) for value in false_positive_rate),
                    true_positive_rate=tuple(round(float(value), 5) for value in true_positive_rate))
