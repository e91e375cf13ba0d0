"""The leakage guard on small synthetic columns: what it catches and what it leaves alone."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml_platform.evaluation.leakage import leakage_result, single_feature_aucs
from ml_platform.evaluation.rank_statistics import roc_auc
from ml_platform.records.gate import FeatureAuc

ROWS = 2000


def label() -> np.ndarray:
    return np.random.default_rng(0).random(ROWS) < 0.3


def aucs(columns: dict[str, tuple[str, pd.Series]], target: np.ndarray) -> dict[str, float]:
    frame = pd.DataFrame({name: values for name, (_, values) in columns.items()})
    kinds = {name: kind for name, (kind, _) in columns.items()}
    return {row.feature: row.roc_auc for row in single_feature_aucs(frame, kinds, target, seed=1)}


def test_outcome_copies_are_caught_in_every_form():
    target = label()
    noise = np.random.default_rng(1).normal(size=ROWS)
    delay = np.where(target, 30 + np.abs(noise) * 20, -np.abs(noise) * 5)
    found = aucs({
        "delay": ("number", pd.Series(delay)),
        "minus_delay": ("number", pd.Series(-delay)),                                   # the other direction
        "status_text": ("category", pd.Series(np.where(target, "late", "on time"))),
        "missing_when_late": ("number", pd.Series(np.where(target, np.nan, noise))),   # missing = the outcome
    }, target)
    assert all(value >= 0.99 for value in found.values()), found


def test_a_value_far_from_the_middle_leaks_even_when_not_monotonic():
    target = label()
    middle = np.random.default_rng(2).normal(size=ROWS)
    # positives sit at both ends, negatives in the middle: ranking alone sees nothing, bins see it all
    value = np.where(target, np.sign(middle) * (3 + np.abs(middle)), middle * 0.5)
    found = aucs({"two_sided": ("number", pd.Series(value))}, target)
    assert found["two_sided"] >= 0.97


def test_honest_features_and_identifiers_are_left_alone():
    target = label()
    generator = np.random.default_rng(3)
    weak = target * 0.5 + generator.normal(size=ROWS)
    found = aucs({
        "weak_signal": ("number", pd.Series(weak)),
        "row_id": ("category", pd.Series([f"id-{index}" for index in range(ROWS)])),  # unique per row
        "constant": ("number", pd.Series(np.ones(ROWS))),
        "airport": ("category", pd.Series(generator.choice(["EWR", "JFK", "LGA"], ROWS))),
    }, target)
    assert 0.55 < found["weak_signal"] < 0.8
    assert found["row_id"] < 0.6 and found["constant"] == 0.5 and found["airport"] < 0.6


def test_the_check_names_each_leaking_feature_and_passes_without_one():
    rows = [FeatureAuc(feature="vendor_delay", type="number", roc_auc=0.999),
            FeatureAuc(feature="status", type="category", roc_auc=0.98),
            FeatureAuc(feature="hour", type="number", roc_auc=0.62)]
    failed = leakage_result(rows, 0.97, 1000)
    assert not failed.passed
    assert failed.details.leaking_features == ("vendor_delay", "status")
    assert failed.why.startswith("feature 'vendor_delay' (ROC AUC 0.9990), 'status' (ROC AUC 0.9800) alone "
                                    "predicts the label on the 1,000 training rows")
    passed = leakage_result(rows[2:], 0.97, 1000)
    assert passed.passed and passed.why.endswith("the strongest, 'hour', has ROC AUC 0.6200 < 0.97 on the "
                                                 "1,000 training rows")
    assert (passed.details.rows_used, passed.details.rows_available) == (1000, 1000)


def test_the_check_says_when_it_measured_a_sample_of_the_training_rows():
    rows = [FeatureAuc(feature="vendor_delay", type="number", roc_auc=0.999),
            FeatureAuc(feature="hour", type="number", roc_auc=0.62)]
    failed = leakage_result(rows, 0.97, 1_000_000, 9_956_702)
    assert "alone predicts the label on a fixed-seed sample of 1,000,000 of the 9,956,702 training rows " \
           "almost perfectly" in failed.why
    assert (failed.details.rows_used, failed.details.rows_available) == (1_000_000, 9_956_702)
    passed = leakage_result(rows[1:], 0.97, 1_000_000, 9_956_702)
    assert passed.why.endswith("< 0.97 on a fixed-seed sample of 1,000,000 of the 9,956,702 training rows")


@pytest.mark.parametrize("distinct", [3, 50, 100_000])
def test_roc_auc_is_sklearns_figure_with_ties(distinct):
    from sklearn.metrics import roc_auc_score

    generator = np.random.default_rng(distinct)
    label = generator.integers(0, 2, 20_000)
    scores = generator.integers(0, distinct, 20_000) + 0.3 * label * generator.random(20_000)
    assert roc_auc(label, scores) == pytest.approx(roc_auc_score(label, scores), abs=1e-12)
    assert roc_auc(label, -scores) == pytest.approx(1 - roc_auc_score(label, scores), abs=1e-12)


def test_roc_auc_needs_both_classes():
    with pytest.raises(ValueError, match="both classes"):
        roc_auc(np.ones(10), np.arange(10.0))
