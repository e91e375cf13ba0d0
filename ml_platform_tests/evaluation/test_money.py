"""Money on small hand-computed arrays: outcome values, curves, the threshold, bootstrap intervals."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml_platform.evaluation.evaluate import summarize
from ml_platform.evaluation.money import (
    MoneyError,
    OutcomeValues,
    best_threshold,
    bootstrap_interval,
    bootstrap_totals,
    money_curve,
    paired_bootstrap_interval,
)
from ml_platform.specs.models import ModelSpec
from ml_platform_tests.helpers import january_model

# Four rows: label, and the money of each outcome as the snapshot stores it (tp, fp, fn, tn).
ROWS = pd.DataFrame({
    "label": [True, False, True, False],
    "money_true_positive": [100.0, 999.0, 40.0, 999.0],    # used by the positive rows only
    "money_false_positive": [999.0, -10.0, 999.0, -10.0],  # used by the negative rows only
    "money_false_negative": [-5.0, 999.0, 0.0, 999.0],
    "money_true_negative": [999.0, 0.0, 999.0, 1.0],
})


def values() -> OutcomeValues:
    return OutcomeValues.from_frame(ROWS)


def test_outcome_values_pick_each_rows_outcome_by_its_label():
    outcome = values()
    assert outcome.if_flagged.tolist() == [100.0, -10.0, 40.0, -10.0]
    assert outcome.if_not_flagged.tolist() == [-5.0, 0.0, 0.0, 1.0]
    assert outcome.money(np.array([True, False, False, True])) == 100 + 0 + 0 - 10
    assert outcome.do_nothing() == -5 + 0 + 0 + 1
    assert outcome.perfect() == 100 + 0 + 40 + 1


def test_missing_money_is_an_error_naming_the_outcome():
    broken = ROWS.copy()
    broken.loc[0, "money_true_positive"] = np.nan  # a positive row: its true-positive value is needed
    broken.loc[1, "money_true_positive"] = np.nan  # a negative row never uses it: not an error
    with pytest.raises(MoneyError, match=r"money.outcomes.true_positive for 1 row\(s\)$"):
        OutcomeValues.from_frame(broken)


def test_money_curve_flags_rows_scoring_at_least_the_threshold():
    scores = np.array([0.9, 0.6, 0.6, 0.1])
    curve = money_curve(scores, values(), np.array([0.0, 0.1, 0.5, 0.6, 0.7, 1.0]))
    # flag all: 100-10+40-10; at 0.5 and 0.6 both 0.6 rows (a tie) are flagged; at 0.7 only the first
    assert curve.tolist() == [120.0, 120.0, 100 - 10 + 40 + 1, 131.0, 100 + 0 + 0 + 1, -4.0]


def test_best_threshold_takes_the_most_money_and_the_higher_threshold_on_ties():
    scores = np.array([0.9, 0.6, 0.6, 0.1])
    threshold, money = best_threshold(scores, values())
    assert money == 131.0
    assert 0.1 < threshold <= 0.6  # every threshold in (0.1, 0.6] gives 131; ties go to the highest
    assert threshold == 0.6


def test_threshold_is_chosen_on_validation_never_on_test():
    model = ModelSpec.model_validate(january_model(slice_column=None))  # these rows carry no slice
    label = [True, False, True, False]

    def frame(day: str) -> pd.DataFrame:
        return pd.DataFrame({"label": label, "partition_date": pd.Timestamp(day),
                             "money_true_positive": 100.0, "money_false_positive": -50.0,
                             "money_false_negative": 0.0, "money_true_negative": 0.0})

    # validation: flagging from 0.8 makes 100 (the 0.8 positive); flagging all also makes 100; nothing between
    # does better, and ties go to the higher threshold
    validation_scores = np.array([0.8, 0.7, 0.1, 0.2])
    # test: the best threshold would be 0.3 (both positives, 200); the validation threshold 0.8 makes 100
    test_scores = np.array([0.9, 0.1, 0.3, 0.2])
    summary = summarize(model, frame("2013-01-21"), validation_scores, frame("2013-01-26"), test_scores)
    assert summary.threshold == 0.8 and summary.threshold_chosen_on == "validation"
    assert summary.validation.money == 100.0
    assert summary.test.money == 100.0 and summary.test.flagged == 1
    assert summary.test.money_perfect == 200.0 and summary.test.money_do_nothing == 0.0
    assert summary.test.share_of_perfect == 0.5
    curve = dict(zip(summary.money_by_threshold.thresholds, summary.money_by_threshold.test))
    assert curve[0.3] == 200.0 and curve[0.8] == 100.0


def test_bootstrap_of_equal_rows_is_exact_and_reproducible():
    flags = np.array([True, True, True])
    same = OutcomeValues(np.array([5.0, 5.0, 5.0]), np.zeros(3))
    assert bootstrap_interval(flags, same, seed=1) == (15.0, 15.0)
    mixed = OutcomeValues(np.array([1.0, 10.0, 100.0]), np.zeros(3))
    first = bootstrap_interval(flags, mixed, seed=7)
    assert first == bootstrap_interval(flags, mixed, seed=7)
    assert 3.0 <= first[0] < 111.0 < first[1] <= 300.0


def test_bootstrap_by_day_resamples_whole_days():
    # day A's rows total 10, day B's total 50: resampled totals can only be 20, 60 or 100
    per_row = np.array([4.0, 6.0, 20.0, 30.0])
    days = np.array(["A", "A", "B", "B"])
    totals = bootstrap_totals(per_row, seed=3, resamples=400, groups=days)
    assert set(totals.tolist()) == {20.0, 60.0, 100.0}
    assert abs(np.mean(totals == 60.0) - 0.5) < 0.1  # one day of each: probability 1/2


def test_paired_bootstrap_interval_of_a_difference():
    first = np.array([10.0, 10.0, 10.0, 10.0])
    assert paired_bootstrap_interval(first, first, seed=0) == (0.0, 0.0)
    better = first + np.array([1.0, 2.0, 3.0, 4.0])
    low, high = paired_bootstrap_interval(better, first, seed=0)
    assert 4.0 <= low < 10.0 < high <= 16.0  # every resample of four gains of 1 to 4 lies in [4, 16]
    with pytest.raises(ValueError, match="differ in number: 4 and 3"):
        paired_bootstrap_interval(first, first[:3], seed=0)
