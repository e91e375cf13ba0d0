"""Leakage guard: how well each feature alone predicts the label, on the training rows and out of time.

A feature computed from the outcome (a delay that is only known after departure, say) ranks the labels almost
perfectly on its own; no honest feature of a hard problem does. Each feature gets one ROC AUC, taken in whichever
direction is stronger, so 0.5 means no signal and 1.0 a perfect separation:

- numbers: the AUC of the raw value, with missing values placed lowest and then highest (a value that is missing
  exactly when the outcome happened leaks too); and, to catch relations that are not monotonic, the AUC of the
  out-of-fold positive rate of the value's quantile bin;
- categories: the AUC of the out-of-fold positive rate of each category (missing is a category of its own).

Out-of-fold rates stop an identifier-like category from "predicting" its own rows: a value seen in no other fold
gets the overall rate, which carries no signal.

Every task gets the same method with its own score (`single_feature_aucs(..., task=...)`):

- binary_classification: the 0/1 label and the ROC AUC above;
- regression: a float label and the concordance index (Harrell's C: the chance that two rows' feature values are
  in the same order as their labels, feature ties counting half, pairs with tied labels left out; it equals the
  ROC AUC for a 0/1 label), computed in O(n log n) by counting inversions; the out-of-fold "rate" of a category or
  bin is its out-of-fold mean label;
- multiclass: an integer class code label and the largest one-vs-rest ROC AUC over the classes present (a feature
  that gives away one class leaks, whatever it says of the others).

The gate check no_leakage decides on the training rows, as it always did. The validation window's rows (sampled by
the same rule, scored by the same method with the same seed) get their own figure beside it, and a warning flags
a feature whose signal collapses out of time. With a feature's signal s = score - 0.5 on each window, se the
standard error of a score under no signal (from the window's label counts, Kendall's variance with tied labels:
the Mann-Whitney variance for a 0/1 label; for multiclass the largest over the one-vs-rest splits) and d the
feature's design effect on the window (rows of one day share its conditions: 1 + (m - 1) * rho_feature *
rho_label, Scott and Holt, with days as clusters; see design_effects), a feature is flagged when

    s_train >= MATERIAL_SIGNAL (0.05)  and
    s_validation + NOISE_Z * sqrt(d_validation * se_validation^2 + KEPT^2 * d_train * se_train^2) < KEPT * s_train,
    with KEPT = 0.5 and NOISE_Z = 2:

it had a material signal in training and keeps less than half of it on validation, by more than chance explains.
Without the design effect a weather feature on a validation window of a few days would be "flagged" by chance: its
rows are not independent. Feature ties only lower a score's variance, so the allowance errs towards not flagging.
Each window is scored on its own, in its stronger direction: a relation that reverses between the windows keeps
its figure and is not flagged (the model's own validation and test metrics show that).

It warns and does not block: a feature whose relation drifts is a reason to look, not proof that the model is
worse (the money, ROC AUC and champion checks measure that on the test window, and block); seasonal features move
legitimately; and the gate's five checks are a stored contract that deployments verify.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from ml_platform.errors import PlatformError
from ml_platform.evaluation.rank_statistics import (
    agreement_correlation, coded_concordance, coded_roc_auc, intraclass_correlation, null_concordance_error)
from ml_platform.records.gate import FeatureAuc, GateCheck, LeakageDetails, OutOfTimeSignal, SignalCollapse
from ml_platform.snapshots.columns import sample_split

TASKS = ("binary_classification", "regression", "multiclass")
SCORE_NAMES = {"binary_classification": "ROC AUC", "regression": "concordance",
               "multiclass": "one-vs-rest ROC AUC"}
MATERIAL_SIGNAL = 0.05  # a training signal below this (score < 0.55) is too weak to speak of its collapse
KEPT = 0.5  # a feature keeping less than this share of its training signal on validation is flagged ...
NOISE_Z = 2.0  # ... when it falls short by more than this many standard errors

FOLDS = 5
QUANTILE_BINS = 20
SMOOTHING = 10.0  # pseudo-rows at the overall positive rate added to every category's rate
# beyond this many training rows the guard measures a fixed-seed sample of them: a million rows pin each AUC to
# about 0.001, far finer than any sensible limit, at a tenth of the memory and time of ten million
LEAKAGE_ROWS = 1_000_000
_MISSING = "\x00missing"  # a category column's missing values, as text: a category of their own


class LeakageInputError(PlatformError, ValueError):
    """The leakage guard was given a task it does not know or a label that does not fit the task."""


def _auc(label: np.ndarray, codes: np.ndarray, size: int, task: str = "binary_classification") -> float:
    """ROC AUC (binary) or concordance (regression) in the stronger direction (at least 0.5) of scores given as
    codes: each row's position among the `size` distinct scores in increasing order. Every score the guard takes
    is read this way, so that a column is sorted once however many scores read it."""
    if size < 2:
        return 0.5  # a single value for every row
    auc = coded_concordance(label, codes, size) if task == "regression" else coded_roc_auc(label, codes, size)
    return max(auc, 1.0 - auc)


def _out_of_fold_table(codes: np.ndarray, label: np.ndarray, folds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each fold's rate of each category, learned on the other folds and smoothed towards the overall rate (a
    fold's rows get their category's rate in the fold's row), and which cells hold rows, both FOLDS x categories."""
    size = int(codes.max()) + 1 if len(codes) else 0
    cells = folds.astype(np.int64) * size + codes
    fold_counts = np.bincount(cells, minlength=FOLDS * size).reshape(FOLDS, size)
    if label.dtype.kind in "iub":
        # an integer label in one pass: every fold's sums are whole numbers, exact in float64 whatever their
        # order, so the other folds' sums are the totals less the fold's, and the rates the same bits
        fold_positives = np.bincount(cells, weights=label, minlength=FOLDS * size).reshape(FOLDS, size)
        positives = fold_positives.sum(axis=0) - fold_positives
        counts = fold_counts.sum(axis=0) - fold_counts
        rows = counts.sum(axis=1)
        prior = np.where(rows > 0, positives.sum(axis=1) / np.maximum(rows, 1), 0.5)
        return (positives + SMOOTHING * prior[:, None]) / (counts + SMOOTHING), fold_counts > 0
    table = np.empty((FOLDS, size))
    for fold in range(FOLDS):
        rest = folds != fold
        prior = label[rest].mean() if rest.any() else 0.5
        positives = np.bincount(codes[rest], weights=label[rest], minlength=size)
        counts = np.bincount(codes[rest], minlength=size)
        table[fold] = (positives + SMOOTHING * prior) / (counts + SMOOTHING)
    return table, fold_counts > 0


def _out_of_fold_rate(codes: np.ndarray, label: np.ndarray, folds: np.ndarray) -> np.ndarray:
    """Each row's category positive rate, learned on the other folds and smoothed towards the overall rate."""
    table, _ = _out_of_fold_table(codes, label, folds)
    return table[folds, codes] if len(codes) else np.empty(0)


def _out_of_fold_codes(codes: np.ndarray, label: np.ndarray, folds: np.ndarray) -> tuple[np.ndarray, int]:
    """_out_of_fold_rate as codes of its distinct rates (see _auc): a rate is a function of the row's fold and
    category, so the rates sorted are those of the cells that hold rows, not of every row."""
    table, filled = _out_of_fold_table(codes, label, folds)
    distinct, inverse = np.unique(table[filled], return_inverse=True)
    cells = np.zeros(table.shape, dtype=np.int64)
    cells[filled] = inverse
    return cells[folds, codes], len(distinct)


def _category_codes(values: pd.Series) -> np.ndarray:
    """Integer codes of a column's values as text, in the text's sorted order, missing values as a code of their
    own ("\x00missing", first).

    A column of texts or integers is turned into text once per distinct value, not per row: there two values are
    equal exactly when their texts are. Any other column (floats: 0.0 and -0.0 are equal, their texts are not;
    objects of mixed types: True == 1 == 1.0) has each row turned into text."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)  # missing: -1
    if not (values.dtype.kind in "iu" or (values.dtype == object and pd.api.types.infer_dtype(uniques) == "string")):
        return pd.factorize(values.astype("string").fillna(_MISSING), sort=True)[0].astype(np.int64)
    text = pd.Series(uniques).astype("string").fillna(_MISSING).tolist()
    missing = codes < 0
    if missing.any():
        text.append(_MISSING)
    text_codes = pd.factorize(pd.array(text, dtype="string"), sort=True)[0].astype(np.int64)
    return text_codes[np.where(missing, len(text) - 1, codes)]


def _sorted_values(numbers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct finite values of numbers in increasing order, and each row's position among them (-1 for a
    missing or infinite value)."""
    present = np.isfinite(numbers)
    distinct, inverse = np.unique(numbers[present], return_inverse=True)
    positions = np.full(len(numbers), -1, dtype=np.int64)
    positions[present] = inverse
    return distinct, positions


def _bin_codes(distinct: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Bin codes of numbers given as their _sorted_values: each value its own bin when there are few, else the
    bins of `pd.qcut(values, QUANTILE_BINS, duplicates="drop")`; missing values apart (code 0).

    The quantiles are those of the values sorted (`np.repeat` of the distinct values by their counts: the same
    order statistics, with no sort), and each distinct value is cut once, not each row."""
    if len(distinct) <= QUANTILE_BINS:
        return positions + 1
    counts = np.bincount(positions[positions >= 0], minlength=len(distinct))
    edges = pd.Series(np.repeat(distinct, counts)).quantile(np.linspace(0, 1, QUANTILE_BINS + 1)).to_numpy()
    bins = np.asarray(pd.cut(distinct, edges, labels=False, include_lowest=True, duplicates="drop"),
                      dtype=np.int64)
    return np.concatenate([[0], bins + 1])[positions + 1]


class _Columns:
    """A frame's feature columns as the guard reads them, each worked out once however many scores and
    correlations read it: whether it holds a single value, a category's codes, a number column's floats, its
    distinct values sorted (and each row's place among them) and its quantile bins."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame
        self._memo: dict[tuple[str, str], object] = {}

    def _get(self, what: str, name: str, compute):
        key = (what, name)
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]

    def constant(self, name: str) -> bool:
        return self._get("constant", name, lambda: self.frame[name].nunique(dropna=False) <= 1)

    def codes(self, name: str) -> np.ndarray:
        return self._get("codes", name, lambda: _category_codes(self.frame[name]))

    def numbers(self, name: str) -> np.ndarray:
        return self._get("numbers", name, lambda: pd.to_numeric(self.frame[name], errors="coerce").to_numpy(
            dtype="float64", na_value=np.nan))

    def sorted_values(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        return self._get("sorted", name, lambda: _sorted_values(self.numbers(name)))

    def bins(self, name: str) -> np.ndarray:
        return self._get("bins", name, lambda: _bin_codes(*self.sorted_values(name)))

    def scored(self, name: str) -> None:
        """The column's score is taken: its bins (read by the scores alone, once per class) are let go, so that at
        most one column's bins are held; its codes and numbers stay for the day correlations."""
        self._memo.pop(("bins", name), None)


def feature_auc(values: pd.Series, kind: str, label: np.ndarray, folds: np.ndarray,
                task: str = "binary_classification") -> float:
    """The feature's score alone, in the stronger direction (0.5 means no signal): ROC AUC for a 0/1 label,
    concordance for a regression label, the largest one-vs-rest ROC AUC for a multiclass label."""
    return _feature_score(_Columns(values.to_frame("feature")), "feature", kind, label, folds, task)


def _feature_score(columns: _Columns, name: str, kind: str, label: np.ndarray, folds: np.ndarray,
                   task: str) -> float:
    """feature_auc of the column `name`, reading it through `columns`."""
    if columns.constant(name):
        return 0.5  # one value for every row carries no signal (out-of-fold rates would still wobble by fold)
    if task == "multiclass":
        classes = np.unique(label)
        if len(classes) < 2:
            raise ValueError("the one-vs-rest ROC AUC needs at least two classes among the rows")
        return max(_feature_score(columns, name, kind, (label == code).astype(int), folds, "binary_classification")
                   for code in classes)
    if kind == "category":
        return _auc(label, *_out_of_fold_codes(columns.codes(name), label, folds), task)
    best = _auc(label, *_out_of_fold_codes(columns.bins(name), label, folds), task)
    distinct, positions = columns.sorted_values(name)
    missing = positions < 0
    size = len(distinct)
    if not missing.any():
        return max(best, _auc(label, positions, size, task))  # either place for missing values: the same numbers
    if size:
        # missing values ranked below, then above, every value: filled with the lowest value - 1 and the highest
        # + 1, which are new values unless 1 is below the value's precision (then they join it)
        below = 1 if distinct[0] - 1.0 < distinct[0] else 0
        best = max(best, _auc(label, np.where(missing, 0, positions + below), size + below, task))
        above = 1 if distinct[-1] + 1.0 > distinct[-1] else 0
        best = max(best, _auc(label, np.where(missing, size - 1 + above, positions), size + above, task))
    return best


def task_label(label: np.ndarray, task: str) -> np.ndarray:
    """The label as the task's guard reads it: 0/1 integers, finite floats or integer class codes."""
    if task not in TASKS:
        raise LeakageInputError(f"the leakage guard does not know task '{task}'; allowed: {', '.join(TASKS)}")
    values = np.asarray(label)
    if task == "regression":
        try:
            numbers = values.astype("float64")
        except (TypeError, ValueError) as error:
            raise LeakageInputError(f"a regression label must be numbers, got {values.dtype}") from error
        if not np.isfinite(numbers).all():
            raise LeakageInputError(f"a regression label must be finite: {int((~np.isfinite(numbers)).sum()):,} "
                                    f"of {len(numbers):,} rows are missing or infinite")
        return numbers
    if values.dtype.kind in "bO":  # booleans, or pandas' nullable integers handed over as objects
        try:
            values = values.astype("float64")
        except (TypeError, ValueError) as error:
            raise LeakageInputError(f"a {task} label must be integer codes, got {values.dtype}") from error
    if values.dtype.kind == "f" and np.isfinite(values).all() and (values == np.round(values)).all():
        values = values.astype(np.int64)
    if values.dtype.kind not in "iu":
        raise LeakageInputError(f"a {task} label must be integer codes, got {values.dtype}")
    if task == "binary_classification" and not np.isin(values, (0, 1)).all():
        raise LeakageInputError("a binary_classification label must be 0 or 1, got "
                                f"{sorted(set(np.unique(values).tolist()) - {0, 1})[:5]}")
    return values.astype(np.int64)


def single_feature_aucs(frame: pd.DataFrame, kinds: dict[str, str], label: np.ndarray,
                        seed: int, task: str = "binary_classification", columns: _Columns | None = None
                        ) -> tuple[FeatureAuc, ...]:
    """Every feature's score alone on these rows (see feature_auc; 0.5 means no signal), strongest first.
    `columns` is the frame's _Columns when the caller reads the frame again (design_effects)."""
    label = task_label(label, task)
    folds = np.random.default_rng(seed).permutation(len(label)) % FOLDS
    columns = columns if columns is not None else _Columns(frame)
    rows = []
    for name, kind in kinds.items():
        rows.append(FeatureAuc(feature=name, type=kind,
                               roc_auc=round(_feature_score(columns, name, kind, label, folds, task), 6)))
        columns.scored(name)
    return tuple(sorted(rows, key=lambda row: (-row.roc_auc, row.feature)))


def _measurable(label: np.ndarray) -> bool:
    """True when the rows hold at least two different labels (else no score can be taken on them)."""
    return len(label) > 1 and len(np.unique(label)) > 1


def null_standard_error(label: np.ndarray, task: str = "binary_classification") -> float:
    """The standard error of a single-feature score on rows with these labels when the feature carries no signal
    (see rank_statistics.null_concordance_error); for multiclass the largest over the one-vs-rest splits (the
    rarest class's)."""
    label = task_label(label, task)
    if task == "multiclass":
        return max(null_concordance_error((label == code).astype(np.int64)) for code in np.unique(label))
    return null_concordance_error(label)


def with_validation(aucs: Sequence[FeatureAuc], validation: Sequence[FeatureAuc]) -> tuple[FeatureAuc, ...]:
    """The training scores with each feature's validation score beside it, in the training order."""
    by_feature = {row.feature: row.roc_auc for row in validation}
    missing = [row.feature for row in aucs if row.feature not in by_feature]
    if missing:
        raise ValueError(f"the validation scores lack the feature(s) {', '.join(missing)}")
    return tuple(row.model_copy(update={"validation_roc_auc": by_feature[row.feature]}) for row in aucs)


def _feature_correlation(columns: _Columns, name: str, kind: str, groups: np.ndarray) -> float | None:
    """The feature's intraclass correlation within days (None when it has a single value on these rows)."""
    if columns.constant(name):
        return None
    if kind == "category":
        return agreement_correlation(columns.codes(name), groups)
    return intraclass_correlation(_average_ranks(*columns.sorted_values(name)), groups)


def _average_ranks(distinct: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Each row's rank from 1 among the values of its column (_sorted_values), ties sharing their average rank and
    missing values lowest, as pandas' `rank()` gives them (half-integers: exact in float64)."""
    counts = np.bincount(positions + 1, minlength=len(distinct) + 1).astype("float64")  # missing first
    before = np.cumsum(counts) - counts
    return (before + (counts + 1.0) / 2.0)[positions + 1]


def _label_correlation(label: np.ndarray, task: str, groups: np.ndarray) -> float:
    """The label's intraclass correlation within days."""
    if task == "multiclass":
        return agreement_correlation(label.astype(np.int64), groups)
    values = label.astype("float64") if task == "binary_classification" else pd.Series(label).rank().to_numpy()
    return intraclass_correlation(values, groups)


def design_effects(training: pd.DataFrame, validation: pd.DataFrame, kinds: dict[str, str],
                   task: str = "binary_classification", day: str = "partition_date",
                   columns: tuple[_Columns, _Columns] | None = None) -> dict[str, tuple[float, float]]:
    """Each feature's design effect on the training and the validation rows: by how much the variance of its
    score exceeds the one of independent rows, since rows of one day share its conditions (weather, say).

    Scott and Holt's approximation for a correlation under cluster sampling, 1 + (m - 1) * rho_feature * rho_label,
    with days as the clusters, m their size-weighted mean size (sum of squared sizes over rows) and rho the
    intraclass correlations within days (ANOVA on ranks for numbers and a numeric label, agreement for categories
    and classes). A feature's rho is the larger of the two windows' (the training one alone when the feature has one
    value on validation): the guard would rather not flag than flag by chance. Frames carry `label` and `day`;
    `columns` are their _Columns when the caller has read them already.
    """
    columns = columns if columns is not None else (_Columns(training), _Columns(validation))
    windows = []
    for frame in (training, validation):
        groups = pd.factorize(frame[day])[0].astype(np.int64)
        counts = np.bincount(groups).astype("float64")
        typical = float(np.sum(counts ** 2) / len(frame)) if len(frame) else 1.0
        windows.append((groups, typical, _label_correlation(task_label(frame["label"].to_numpy(), task), task,
                                                            groups)))
    effects = {}
    for name, kind in kinds.items():
        correlations = [_feature_correlation(read, name, kind, groups)
                        for read, (groups, _, _) in zip(columns, windows)]
        feature = max((value for value in correlations if value is not None), default=0.0)
        effects[name] = tuple(round(1.0 + (typical - 1.0) * feature * label_rho, 4)
                              for _, typical, label_rho in windows)
    return effects


def out_of_time_signal(aucs: Sequence[FeatureAuc], training_label: np.ndarray, validation_label: np.ndarray,
                       task: str = "binary_classification",
                       effects: dict[str, tuple[float, float]] | None = None) -> OutOfTimeSignal:
    """The out-of-time warning: the features whose signal collapses from training to validation (module docstring).

    `aucs` carry both scores (with_validation); without validation scores (a single label on validation) nothing
    is judged. `effects` are the features' design effects on (training, validation) (see design_effects): each
    window's variance is multiplied by its own; without them rows are taken as independent.
    """
    effects = effects or {}
    score = SCORE_NAMES[task]
    rule = (f"flagged when a feature's training signal ({score} − 0.5) is at least {MATERIAL_SIGNAL:g} and its "
            f"validation signal is below {KEPT:.0%} of it by more than {NOISE_Z:g} standard errors of chance "
            f"(the rows of one day counted as correlated)")
    validation_label = task_label(validation_label, task)
    if not _measurable(validation_label) or any(row.validation_roc_auc is None for row in aucs):
        return OutOfTimeSignal(rule=rule, judged=False, flagged=False, collapsed=(),
                               why=f"not judged: the {len(validation_label):,} validation rows hold fewer than two "
                                   f"different labels")
    material = [row for row in aucs if row.roc_auc - 0.5 >= MATERIAL_SIGNAL]
    if not material:
        return OutOfTimeSignal(rule=rule, judged=True, flagged=False, collapsed=(),
                               why=f"nothing to judge: no feature reaches {score} {0.5 + MATERIAL_SIGNAL:g} on the "
                                   f"training rows")
    training_error = null_standard_error(training_label, task)
    validation_error = null_standard_error(validation_label, task)
    collapsed = []
    for row in sorted(material, key=lambda row: (-row.roc_auc, row.feature)):
        training_effect, validation_effect = effects.get(row.feature, (1.0, 1.0))
        noise = NOISE_Z * float(np.sqrt(validation_effect * validation_error ** 2
                                        + KEPT ** 2 * training_effect * training_error ** 2))
        if row.validation_roc_auc - 0.5 + noise < KEPT * (row.roc_auc - 0.5):
            collapsed.append(SignalCollapse(
                feature=row.feature, training=row.roc_auc, validation=row.validation_roc_auc,
                kept=round((row.validation_roc_auc - 0.5) / (row.roc_auc - 0.5), 4), noise=round(noise, 6),
                design_effects=(training_effect, validation_effect)))
    if not collapsed:
        return OutOfTimeSignal(
            rule=rule, judged=True, flagged=False, collapsed=(),
            why=f"no feature loses its signal out of time: none of the {len(material)} with training {score} ≥ "
                f"{0.5 + MATERIAL_SIGNAL:g} falls on validation below {KEPT:.0%} of its training signal "
                f"({score} − 0.5) by more than chance allows")
    named = ", ".join(f"'{row.feature}' ({score} {row.training:.4f} on training, {row.validation:.4f} on validation: "
                      f"{max(row.kept, 0.0):.0%} of its signal kept, chance ± {row.noise:.4f})" for row in collapsed)
    return OutOfTimeSignal(
        rule=rule, judged=True, flagged=True, collapsed=tuple(collapsed),
        why=f"feature {named} loses its signal out of time, by more than chance explains: the model leans on a "
            f"relation the validation window no longer shows; check how the feature is computed and whether its "
            f"source changed")


def _rows_text(rows: int, available: int, window: str) -> str:
    return f"the {rows:,} {window} rows" if rows == available else \
        f"a fixed-seed sample of {rows:,} of the {available:,} {window} rows"


def leakage_result(aucs: Sequence[FeatureAuc], limit: float, rows: int, available: int | None = None, *,
                   score: str = "ROC AUC", validation_rows: int | None = None,
                   validation_available: int | None = None,
                   out_of_time: OutOfTimeSignal | None = None) -> GateCheck[LeakageDetails]:
    """The no_leakage gate check: fails naming every feature whose training score alone reaches the limit.

    `rows` is the number of training rows the scores were measured on, `available` the number there are (the same
    when omitted): the text says when the scores come from a sample; likewise `validation_rows` and
    `validation_available` for the validation scores the features carry beside (shown, not decided on).
    `out_of_time` is the warning stored beside the check; it does not change whether the check passes.
    """
    available = rows if available is None else available
    on = _rows_text(rows, available, "training")
    if validation_rows is not None and validation_available is None:
        validation_available = validation_rows
    leaking = [row for row in aucs if row.roc_auc >= limit]
    details = LeakageDetails(limit=limit, rows_used=rows, rows_available=available,
                             strongest_features=tuple(aucs[:5]),
                             leaking_features=tuple(row.feature for row in leaking), score=score,
                             validation_rows_used=validation_rows, validation_rows_available=validation_available,
                             out_of_time=out_of_time)
    if leaking:
        named = ", ".join(f"'{row.feature}' ({score} {row.roc_auc:.4f}"
                          + ("" if row.validation_roc_auc is None else f"; {row.validation_roc_auc:.4f} on validation")
                          + ")" for row in leaking)
        return GateCheck[LeakageDetails](
            passed=False, details=details,
            why=f"feature {named} alone predicts the label on {on} almost perfectly ({score} ≥ {limit}): it most "
                f"likely leaks the outcome; compute it only from what is known at prediction time")
    strongest = aucs[0] if aucs else FeatureAuc(feature="none", type="number", roc_auc=0.5)
    beside = "" if strongest.validation_roc_auc is None or validation_rows is None else \
        f" ({strongest.validation_roc_auc:.4f} on {_rows_text(validation_rows, validation_available, 'validation')})"
    return GateCheck[LeakageDetails](
        passed=True, details=details,
        why=f"no feature predicts the label alone: the strongest, '{strongest.feature}', has {score} "
            f"{strongest.roc_auc:.4f} < {limit} on {on}{beside}")


def measure_leakage(connection: duckdb.DuckDBPyConnection, path: Path, kinds: dict[str, str], limit: float,
                    seed: int, task: str = "binary_classification"
                    ) -> tuple[tuple[FeatureAuc, ...], GateCheck[LeakageDetails]]:
    """Every feature's score alone on the training rows and on the validation rows of the snapshot file at `path`
    (each a fixed-seed sample of at most LEAKAGE_ROWS), and the no_leakage check with its out-of-time warning."""
    columns = ["label", "partition_date", *kinds]
    train, available = sample_split(connection, path, "train", columns, LEAKAGE_ROWS, seed=seed)
    training_label = train["label"].to_numpy()
    read = _Columns(train)
    aucs = single_feature_aucs(train, kinds, training_label, seed=seed, task=task, columns=read)
    validation, validation_available = sample_split(connection, path, "validation", columns, LEAKAGE_ROWS,
                                                    seed=seed)
    validation_label = validation["label"].to_numpy()
    effects = None
    if _measurable(task_label(validation_label, task)):
        read_validation = _Columns(validation)
        aucs = with_validation(aucs, single_feature_aucs(validation, kinds, validation_label, seed=seed, task=task,
                                                         columns=read_validation))
        effects = design_effects(train, validation, kinds, task, columns=(read, read_validation))
    del train, read
    warning = out_of_time_signal(aucs, training_label, validation_label, task, effects)
    check = leakage_result(aucs, limit, len(training_label), available, score=SCORE_NAMES[task],
                           validation_rows=len(validation), validation_available=validation_available,
                           out_of_time=warning)
    return aucs, check
