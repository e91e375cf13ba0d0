"""Leakage guard: how well each feature alone predicts the label on the training rows.

A feature computed from the outcome (a delay that is only known after departure, say) ranks the labels almost
perfectly on its own; no honest feature of a hard problem does. Each feature gets one ROC AUC, taken in whichever
direction is stronger, so 0.5 means no signal and 1.0 a perfect separation:

- numbers: the AUC of the raw value, with missing values placed lowest and then highest (a value that is missing
  exactly when the outcome happened leaks too); and, to catch relations that are not monotonic, the AUC of the
  out-of-fold positive rate of the value's quantile bin;
- categories: the AUC of the out-of-fold positive rate of each category (missing is a category of its own).

Out-of-fold rates stop an identifier-like category from "predicting" its own rows: a value seen in no other fold
gets the overall rate, which carries no signal.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ml_platform.records.gate import FeatureAuc, GateCheck, LeakageDetails

FOLDS = 5
QUANTILE_BINS = 20
SMOOTHING = 10.0  # pseudo-rows at the overall positive rate added to every category's rate
# beyond this many training rows the guard measures a fixed-seed sample of them: a million rows pin each AUC to
# about 0.001, far finer than any sensible limit, at a tenth of the memory and time of ten million
LEAKAGE_ROWS = 1_000_000


def roc_auc(label: np.ndarray, scores: np.ndarray) -> float:
    """ROC AUC of scores for a 0/1 label: the chance that a positive row outranks a negative one, ties counting half.

    The same figure as sklearn's roc_auc_score (the area under the ROC curve is this Mann-Whitney statistic),
    counted per distinct score: the leakage guard scores every feature of every training row two to four times.
    """
    values, inverse = np.unique(scores, return_inverse=True)
    positives = np.bincount(inverse, weights=label, minlength=len(values))
    negatives = np.bincount(inverse, minlength=len(values)) - positives
    total_positive, total_negative = positives.sum(), negatives.sum()
    if total_positive == 0 or total_negative == 0:
        raise ValueError("ROC AUC needs both classes among the rows")
    below = np.cumsum(negatives) - negatives  # negatives with a lower score than each distinct value
    return float(np.sum(positives * (below + 0.5 * negatives)) / (total_positive * total_negative))


def _auc(label: np.ndarray, scores: np.ndarray) -> float:
    """ROC AUC in the stronger direction (at least 0.5)."""
    if np.ptp(scores) == 0:
        return 0.5
    auc = roc_auc(label, scores)
    return max(auc, 1.0 - auc)


def _out_of_fold_rate(codes: np.ndarray, label: np.ndarray, folds: np.ndarray) -> np.ndarray:
    """Each row's category positive rate, learned on the other folds and smoothed towards the overall rate."""
    encoded = np.empty(len(codes))
    size = int(codes.max()) + 1 if len(codes) else 0
    for fold in range(FOLDS):
        held = folds == fold
        rest = ~held
        prior = label[rest].mean() if rest.any() else 0.5
        positives = np.bincount(codes[rest], weights=label[rest], minlength=size)
        counts = np.bincount(codes[rest], minlength=size)
        rate = (positives + SMOOTHING * prior) / (counts + SMOOTHING)
        encoded[held] = rate[codes[held]]
    return encoded


def _category_codes(values: pd.Series) -> np.ndarray:
    """Integer codes of a column's values as text, missing values as a code of their own."""
    text = values.astype("string").fillna("\x00missing")
    return pd.factorize(text, sort=True)[0].astype(np.int64)


def _bin_codes(numbers: np.ndarray) -> np.ndarray:
    """Bin codes of numbers (each value its own bin when there are few, else quantile bins), missing apart."""
    codes = np.full(len(numbers), -1, dtype=np.int64)
    present = np.isfinite(numbers)
    if present.any():
        distinct = np.unique(numbers[present])
        if len(distinct) <= QUANTILE_BINS:
            codes[present] = np.searchsorted(distinct, numbers[present])
        else:
            codes[present] = np.asarray(pd.qcut(numbers[present], QUANTILE_BINS, labels=False, duplicates="drop"),
                                        dtype=np.int64)
    return codes + 1


def feature_auc(values: pd.Series, kind: str, label: np.ndarray, folds: np.ndarray) -> float:
    """The feature's ROC AUC alone, in the stronger direction (0.5 means no signal)."""
    if values.nunique(dropna=False) <= 1:
        return 0.5  # one value for every row carries no signal (out-of-fold rates would still wobble by fold)
    if kind == "category":
        return _auc(label, _out_of_fold_rate(_category_codes(values), label, folds))
    numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    missing = ~np.isfinite(numbers)
    best = _auc(label, _out_of_fold_rate(_bin_codes(numbers), label, folds))
    if (~missing).any():
        low, high = np.nanmin(numbers[~missing]), np.nanmax(numbers[~missing])
        for fill in (low - 1.0, high + 1.0):  # missing values ranked below, then above, every value
            best = max(best, _auc(label, np.where(missing, fill, numbers)))
    return best


def single_feature_aucs(frame: pd.DataFrame, kinds: dict[str, str], label: np.ndarray,
                        seed: int) -> tuple[FeatureAuc, ...]:
    """Every feature's ROC AUC alone on these rows, strongest first."""
    label = np.asarray(label).astype(int)
    folds = np.random.default_rng(seed).permutation(len(label)) % FOLDS
    rows = [FeatureAuc(feature=name, type=kind, roc_auc=round(feature_auc(frame[name], kind, label, folds), 6))
            for name, kind in kinds.items()]
    return tuple(sorted(rows, key=lambda row: (-row.roc_auc, row.feature)))


def leakage_result(aucs: Sequence[FeatureAuc], limit: float, rows: int,
                   available: int | None = None) -> GateCheck[LeakageDetails]:
    """The no_leakage gate check: fails naming every feature whose AUC alone reaches the limit.

    `rows` is the number of training rows the AUCs were measured on, `available` the number there are (the same
    when omitted): the text says when the AUCs come from a sample.
    """
    available = rows if available is None else available
    on = f"the {rows:,} training rows" if rows == available else \
        f"a fixed-seed sample of {rows:,} of the {available:,} training rows"
    leaking = [row for row in aucs if row.roc_auc >= limit]
    details = LeakageDetails(limit=limit, rows_used=rows, rows_available=available,
                             strongest_features=tuple(aucs[:5]),
                             leaking_features=tuple(row.feature for row in leaking))
    if leaking:
        named = ", ".join(f"'{row.feature}' (ROC AUC {row.roc_auc:.4f})" for row in leaking)
        return GateCheck[LeakageDetails](
            passed=False, details=details,
            why=f"feature {named} alone predicts the label on {on} almost perfectly (ROC AUC ≥ {limit}): it most "
                f"likely leaks the outcome; compute it only from what is known at prediction time")
    strongest = aucs[0] if aucs else FeatureAuc(feature="none", type="number", roc_auc=0.5)
    return GateCheck[LeakageDetails](
        passed=True, details=details,
        why=f"no feature predicts the label alone: the strongest, '{strongest.feature}', has ROC AUC "
            f"{strongest.roc_auc:.4f} < {limit} on {on}")
