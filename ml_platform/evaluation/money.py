"""Money: what a model's decisions are worth under the spec's per-outcome values."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

OUTCOMES = ("true_positive", "false_positive", "false_negative", "true_negative")


@dataclass(frozen=True)
class OutcomeValues:
    """Per-row money of flagging and of not flagging, given each row's true label."""

    if_flagged: np.ndarray
    if_not_flagged: np.ndarray

    @classmethod
    def from_frame(cls, frame: pd.DataFrame) -> "OutcomeValues":
        """Read the snapshot's money columns."""
        label = frame["label"].astype(bool).to_numpy()
        flagged = np.where(label, frame["money_true_positive"], frame["money_false_positive"]).astype(float)
        not_flagged = np.where(label, frame["money_false_negative"], frame["money_true_negative"]).astype(float)
        return cls(flagged, not_flagged)

    def money(self, flags: np.ndarray) -> float:
        """Total money of a set of decisions."""
        return float(np.where(flags, self.if_flagged, self.if_not_flagged).sum())

    def do_nothing(self) -> float:
        """Money when nothing is flagged."""
        return float(self.if_not_flagged.sum())

    def perfect(self) -> float:
        """Money of a model that knows every outcome."""
        return float(np.maximum(self.if_flagged, self.if_not_flagged).sum())


def money_curve(scores: np.ndarray, values: OutcomeValues, thresholds: np.ndarray) -> np.ndarray:
    """Money at each threshold (a row is flagged when its score is at least the threshold)."""
    order = np.argsort(-scores, kind="stable")
    sorted_scores = scores[order]
    gain = (values.if_flagged - values.if_not_flagged)[order]
    cumulative = np.concatenate([[0.0], np.cumsum(gain)])
    flagged_counts = np.searchsorted(-sorted_scores, -thresholds, side="right")
    return values.do_nothing() + cumulative[flagged_counts]


def candidate_thresholds(scores: np.ndarray) -> np.ndarray:
    """Thresholds worth trying: a fine grid plus the scores' quantiles, and one above every score."""
    grid = np.linspace(0.0, 1.0, 201)
    quantiles = np.quantile(scores, np.linspace(0.0, 1.0, 401)) if len(scores) else np.array([])
    return np.unique(np.concatenate([grid, quantiles, [np.nextafter(1.0, 2.0)]]))


def best_threshold(scores: np.ndarray, values: OutcomeValues) -> tuple[float, float]:
    """The threshold that makes the most money on these rows (ties go to the higher threshold), and that money."""
    thresholds = candidate_thresholds(scores)
    curve = money_curve(scores, values, thresholds)
    best = np.flatnonzero(curve == curve.max())[-1]
    return float(thresholds[best]), float(curve[best])


def bootstrap_interval(flags: np.ndarray, values: OutcomeValues, seed: int, resamples: int = 1000,
                       level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of the money of fixed decisions."""
    per_row = np.where(flags, values.if_flagged, values.if_not_flagged)
    generator = np.random.default_rng(seed)
    totals = np.empty(resamples)
    for index in range(resamples):
        totals[index] = per_row[generator.integers(0, len(per_row), len(per_row))].sum()
    tail = (1 - level) / 2
    return float(np.quantile(totals, tail)), float(np.quantile(totals, 1 - tail))
