"""The leakage guard's score for every task: concordance for regression, one-vs-rest ROC AUC for multiclass."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml_platform.evaluation.leakage import LeakageInputError, feature_auc, single_feature_aucs
from ml_platform.evaluation.rank_statistics import concordance, roc_auc, strict_inversions

ROWS = 3000


def brute_concordance(label: np.ndarray, scores: np.ndarray) -> float:
    """Harrell's C by looking at every pair: O(n^2), for checking only."""
    agree, pairs = 0.0, 0
    for i in range(len(label)):
        for j in range(i + 1, len(label)):
            if label[i] == label[j]:
                continue
            pairs += 1
            if scores[i] == scores[j]:
                agree += 0.5
            elif (scores[i] < scores[j]) == (label[i] < label[j]):
                agree += 1.0
    return agree / pairs


def brute_ranking_score(label: np.ndarray, numbers: np.ndarray) -> float:
    """The raw-value part of the guard by brute force: missing placed lowest, then highest, stronger direction."""
    present = np.isfinite(numbers)
    best = 0.5
    for fill in (numbers[present].min() - 1.0, numbers[present].max() + 1.0):
        value = brute_concordance(label, np.where(present, numbers, fill))
        best = max(best, value, 1.0 - value)
    return best


@pytest.mark.parametrize("seed", range(6))
def test_inversions_match_a_pairwise_count(seed):
    ranks = np.random.default_rng(seed).integers(0, 7, 37 + seed * 11)
    expected = sum(int(ranks[i] > ranks[j]) for i in range(len(ranks)) for j in range(i + 1, len(ranks)))
    assert strict_inversions(ranks) == expected


def test_inversions_of_the_edge_cases():
    assert strict_inversions(np.array([], dtype=np.int64)) == 0
    assert strict_inversions(np.array([3])) == 0
    assert strict_inversions(np.arange(100)) == 0
    assert strict_inversions(np.arange(100)[::-1]) == 100 * 99 // 2
    assert strict_inversions(np.zeros(50, dtype=np.int64)) == 0


@pytest.mark.parametrize("seed", range(8))
def test_concordance_matches_a_brute_force_count_with_ties(seed):
    generator = np.random.default_rng(seed)
    size = int(generator.integers(2, 160))
    label = generator.integers(0, 6, size).astype(float)  # many tied labels
    scores = generator.integers(0, 5, size) + 0.4 * label  # tied scores, and some signal
    if len(np.unique(label)) < 2:
        label[0], label[-1] = 0.0, 1.0
    assert concordance(label, scores) == pytest.approx(brute_concordance(label, scores), abs=1e-12)
    assert concordance(label, -scores) == pytest.approx(brute_concordance(label, -scores), abs=1e-12)


@pytest.mark.parametrize("seed", range(6))
def test_the_regression_ranking_score_with_missing_values_matches_brute_force(seed):
    generator = np.random.default_rng(100 + seed)
    size = 120
    label = np.round(generator.normal(size=size), 1)
    numbers = np.round(label + generator.normal(size=size), 0)
    numbers[generator.random(size) < 0.2] = np.nan
    numbers[label > 1.0] = np.nan  # missing tells the label: only placing missing highest sees it
    folds = np.random.default_rng(seed).permutation(size) % 5
    # the guard's score is the best of the raw-value ranking (checked here by brute force) and the binned rate
    guard = feature_auc(pd.Series(numbers), "number", label, folds, task="regression")
    assert guard >= brute_ranking_score(label, numbers) - 1e-12
    present = np.isfinite(numbers)
    high = brute_concordance(label, np.where(present, numbers, np.nanmax(numbers) + 1))
    low = brute_concordance(label, np.where(present, numbers, np.nanmin(numbers) - 1))
    assert max(high, 1 - high) > max(low, 1 - low)  # the two placements differ, so both are really tried


@pytest.mark.parametrize("distinct", [2, 10, 10_000])
def test_concordance_equals_roc_auc_for_a_zero_one_label(distinct):
    generator = np.random.default_rng(distinct)
    label = generator.integers(0, 2, 20_000)
    scores = generator.integers(0, distinct, 20_000) + 0.3 * label * generator.random(20_000)
    assert concordance(label.astype(float), scores) == pytest.approx(roc_auc(label, scores), abs=1e-12)
    frame = pd.DataFrame({"score": scores, "code": (scores * 3).astype(int).astype(str)})
    kinds = {"score": "number", "code": "category"}
    as_binary = single_feature_aucs(frame, kinds, label, seed=4)
    as_regression = single_feature_aucs(frame, kinds, label.astype(float), seed=4, task="regression")
    assert as_binary == as_regression


def test_concordance_needs_two_different_labels():
    with pytest.raises(ValueError, match="two different labels"):
        concordance(np.ones(10), np.arange(10.0))


def test_concordance_of_a_million_rows_is_fast_enough():
    import time

    generator = np.random.default_rng(9)
    label = generator.normal(size=1_000_000)
    scores = label + generator.normal(size=1_000_000)
    started = time.perf_counter()
    value = concordance(label, scores)
    assert time.perf_counter() - started < 20  # O(n^2) would take hours; O(n log n) takes a few seconds
    # for two standard normals with correlation 1/sqrt(2): C = 1/2 + arcsin(rho)/pi = 0.75
    assert value == pytest.approx(0.75, abs=0.002)


def regression_frame() -> tuple[pd.DataFrame, dict[str, str], np.ndarray]:
    generator = np.random.default_rng(5)
    minutes = generator.gamma(2.0, 15.0, ROWS)  # the regression label, e.g. arrival delay in minutes
    noise = generator.normal(size=ROWS)
    frame = pd.DataFrame({
        "observed_delay": minutes + generator.normal(scale=0.5, size=ROWS),                 # a copy of the label
        "late_band": pd.cut(minutes, [0, 10, 30, 60, np.inf]).astype(str),                   # a category copy
        "folded": np.where(minutes < 30, -minutes, minutes),           # a copy, but not monotonic: bins see it
        "weak": 0.01 * minutes + noise,
        "row_id": [f"id-{index}" for index in range(ROWS)],
        "constant": np.ones(ROWS),
    })
    kinds = {"observed_delay": "number", "late_band": "category", "folded": "number", "weak": "number",
             "row_id": "category", "constant": "number"}
    return frame, kinds, minutes


def test_regression_leaks_are_caught_and_honest_features_left_alone():
    frame, kinds, minutes = regression_frame()
    found = {row.feature: row.roc_auc for row in single_feature_aucs(frame, kinds, minutes, seed=1,
                                                                        task="regression")}
    # four bands tie most pairs, which count half: a perfect band copy cannot reach 1.0 against minutes
    assert found["observed_delay"] > 0.97 and found["late_band"] > 0.8 and found["folded"] > 0.9
    assert 0.52 < found["weak"] < 0.7
    assert found["row_id"] < 0.55 and found["constant"] == 0.5


def test_multiclass_takes_the_strongest_one_vs_rest_auc():
    generator = np.random.default_rng(6)
    classes = generator.integers(0, 4, ROWS)
    noise = generator.normal(size=ROWS)
    frame = pd.DataFrame({
        "gives_away_class_2": np.where(classes == 2, 10 + noise, noise),  # says nothing of 0, 1 and 3
        "code_copy": pd.Series(classes).map({0: "a", 1: "b", 2: "c", 3: "d"}),
        "weak": 0.2 * (classes == 1) + noise,
        "row_id": [f"id-{index}" for index in range(ROWS)],
    })
    kinds = {"gives_away_class_2": "number", "code_copy": "category", "weak": "number", "row_id": "category"}
    found = {row.feature: row.roc_auc for row in single_feature_aucs(frame, kinds, classes, seed=2,
                                                                        task="multiclass")}
    assert found["gives_away_class_2"] > 0.99 and found["code_copy"] > 0.99
    assert 0.52 < found["weak"] < 0.65 and found["row_id"] < 0.56
    folds = np.random.default_rng(2).permutation(ROWS) % 5
    one_vs_rest = [feature_auc(frame["weak"], "number", (classes == code).astype(int), folds) for code in range(4)]
    assert found["weak"] == round(max(one_vs_rest), 6)


def test_labels_that_do_not_fit_the_task_are_refused():
    frame = pd.DataFrame({"x": np.arange(10.0)})
    kinds = {"x": "number"}
    with pytest.raises(LeakageInputError, match="does not know task 'ranking'; allowed: binary_classification, "
                                                 "regression, multiclass"):
        single_feature_aucs(frame, kinds, np.arange(10) % 2, seed=1, task="ranking")
    with pytest.raises(LeakageInputError, match="regression label must be finite: 1 of 10 rows"):
        single_feature_aucs(frame, kinds, np.r_[np.arange(9.0), np.nan], seed=1, task="regression")
    with pytest.raises(LeakageInputError, match="multiclass label must be integer codes, got float64"):
        single_feature_aucs(frame, kinds, np.arange(10) / 3, seed=1, task="multiclass")
    with pytest.raises(LeakageInputError, match=r"binary_classification label must be 0 or 1, got \[2\]"):
        single_feature_aucs(frame, kinds, np.arange(10) % 3, seed=1)
    with pytest.raises(ValueError, match="at least two classes"):
        single_feature_aucs(frame, kinds, np.zeros(10, dtype=int), seed=1, task="multiclass")
    # booleans and nullable integers are read as 0/1 labels, as before
    assert single_feature_aucs(frame, kinds, np.arange(10) >= 5, seed=1)[0].roc_auc == 1.0
    nullable = pd.Series(np.arange(10) >= 5, dtype="Int64").to_numpy(dtype=object)
    assert single_feature_aucs(frame, kinds, nullable, seed=1)[0].roc_auc == 1.0
