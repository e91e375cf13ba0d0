"""Money: what a model's decisions are worth under the spec's per-outcome values."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ml_platform.errors import PlatformError

OUTCOMES = ("true_positive", "false_positive", "false_negative", "true_negative")
RESAMPLES = 1000
LEVEL = 0.95
# rows drawn per block of the vectorised bootstrap: bounds memory at about 40 MB of indices
_BLOCK_CELLS = 5_000_000


class MoneyError(PlatformError, ValueError):
    """The money values of some rows are missing, so no total can be reported."""


@dataclass(frozen=True)
class OutcomeValues:
    """Per-row money of flagging and of not flagging, given each row's true label."""

    if_flagged: np.ndarray
    if_not_flagged: np.ndarray

    @classmethod
    def from_frame(cls, frame: pd.DataFrame) -> "OutcomeValues":
        """Read the snapshot's money columns; a missing value (SQL NULL) in a column the rows use is an error."""
        label = frame["label"].astype(bool).to_numpy()
        columns = {name: frame[f"money_{name}"].to_numpy(dtype="float64", na_value=np.nan) for name in OUTCOMES}
        used = {"true_positive": label, "false_negative": label, "false_positive": ~label, "true_negative": ~label}
        missing = {name: int(np.sum(~np.isfinite(columns[name]) & used[name])) for name in OUTCOMES}
        if any(missing.values()):
            details = ", ".join(f"money.outcomes.{name} for {count} row(s)" for name, count in missing.items() if count)
            raise MoneyError(f"the spec's money expressions give no value (NULL or infinite): {details}")
        flagged = np.where(label, columns["true_positive"], columns["false_positive"])
        not_flagged = np.where(label, columns["false_negative"], columns["true_negative"])
        return cls(flagged, not_flagged)

    def per_row(self, flags: np.ndarray) -> np.ndarray:
        """Money of each row under a set of decisions."""
        return np.where(flags, self.if_flagged, self.if_not_flagged)

    def money(self, flags: np.ndarray) -> float:
        """Total money of a set of decisions."""
        return float(self.per_row(flags).sum())

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
    flagged_counts = np.searchsorted(-sorted_scores, -np.asarray(thresholds, dtype=float), side="right")
    return values.do_nothing() + cumulative[flagged_counts]


def candidate_thresholds(scores: np.ndarray) -> np.ndarray:
    """Thresholds worth trying: a fine grid plus the scores' quantiles, and one above every score."""
    grid = np.linspace(0.0, 1.0, 201)
    quantiles = np.quantile(scores, np.linspace(0.0, 1.0, 401)) if len(scores) else np.array([])
    return np.unique(np.concatenate([grid, quantiles, [np.nextafter(1.0, 2.0)]]))


def best_threshold(scores: np.ndarray, values: OutcomeValues) -> tuple[float, float]:
    """The threshold that makes the most money on these rows (ties go to the higher threshold), and that money.

    Call it on validation rows only: a threshold chosen on the test rows would overstate the test money.
    """
    thresholds = candidate_thresholds(scores)
    curve = money_curve(scores, values, thresholds)
    best = np.flatnonzero(curve == curve.max())[-1]
    return float(thresholds[best]), float(curve[best])


def bootstrap_totals(per_row: np.ndarray, seed: int, resamples: int = RESAMPLES,
                     groups: np.ndarray | None = None) -> np.ndarray:
    """Totals of `resamples` bootstrap resamples, drawn with replacement and of the original size.

    With `groups` (one label per row, e.g. its day) whole groups are resampled instead of rows: rows of one day
    share its weather and operations, so resampling rows alone would understate how much the total can vary.
    """
    values = np.asarray(per_row, dtype=float)
    if groups is not None:
        codes, _ = pd.factorize(pd.Series(groups), sort=True)
        values = np.bincount(codes, weights=values) if len(values) else values
    units = len(values)
    if units == 0:
        return np.zeros(resamples)
    generator = np.random.default_rng(seed)
    block = max(1, _BLOCK_CELLS // units)
    totals = np.empty(resamples)
    for start in range(0, resamples, block):
        count = min(block, resamples - start)
        totals[start:start + count] = values[generator.integers(0, units, (count, units))].sum(axis=1)
    return totals


def percentile_interval(totals: np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    """The central `level` percentile interval of bootstrap totals."""
    tail = (1 - level) / 2
    return float(np.quantile(totals, tail)), float(np.quantile(totals, 1 - tail))


def bootstrap_interval(flags: np.ndarray, values: OutcomeValues, seed: int, groups: np.ndarray | None = None,
                       resamples: int = RESAMPLES, level: float = LEVEL) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of the money of fixed decisions (resampling groups if given)."""
    return percentile_interval(bootstrap_totals(values.per_row(flags), seed, resamples, groups), level)


def paired_bootstrap_interval(per_row_first: np.ndarray, per_row_second: np.ndarray, seed: int,
                              groups: np.ndarray | None = None, resamples: int = RESAMPLES,
                              level: float = LEVEL) -> tuple[float, float]:
    """Percentile interval of (first - second) total money, resampling the same rows (or groups) for both."""
    if len(per_row_first) != len(per_row_second):
        raise ValueError(f"paired rows differ in number: {len(per_row_first)} and {len(per_row_second)}")
    difference = np.asarray(per_row_first, dtype=float) - np.asarray(per_row_second, dtype=float)
    return percentile_interval(bootstrap_totals(difference, seed, resamples, groups), level)
