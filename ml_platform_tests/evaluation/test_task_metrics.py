"""Task metrics on real January flights, against scikit-learn's own implementations and hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, log_loss, mean_absolute_error, mean_pinball_loss, r2_score

from ml_platform.evaluation.task_metrics import (
    confusion, metric_bound_problems, multiclass_metrics, regression_metrics, residuals_by_slice)
from ml_platform.specs.models import MetricBound
from ml_platform_tests.flights_sample import CLASSES, january


def air_times():
    frame = january()
    frame = frame[frame["air_time"].notna()]
    slope, intercept = np.polyfit(frame["distance"], frame["air_time"], 1)
    return frame, frame["air_time"].to_numpy(dtype="float64"), slope * frame["distance"].to_numpy() + intercept


def test_regression_metrics_agree_with_scikit_learn():
    _, label, predicted = air_times()

    metrics = regression_metrics(label, predicted, alpha=0.8)

    assert metrics["rmse"] == pytest.approx(np.sqrt(np.mean((label - predicted) ** 2)))
    assert metrics["mae"] == pytest.approx(mean_absolute_error(label, predicted))
    assert metrics["pinball"] == pytest.approx(mean_pinball_loss(label, predicted, alpha=0.8))
    assert metrics["r2"] == pytest.approx(r2_score(label, predicted))
    assert metrics["wape"] == pytest.approx(np.abs(label - predicted).sum() / label.sum())
    assert abs(metrics["bias"]) < 1e-6  # a least-squares line is unbiased on its own rows


def test_multiclass_metrics_agree_with_scikit_learn():
    frame = january()
    shares = frame.groupby("hour")["outcome"].value_counts(normalize=True).unstack(fill_value=0)
    probabilities = shares.reindex(columns=CLASSES, fill_value=0).loc[frame["hour"]].to_numpy()
    label = frame["outcome"].to_numpy(dtype=object)

    metrics = multiclass_metrics(label, probabilities, CLASSES)

    predicted = np.array(CLASSES, dtype=object)[probabilities.argmax(axis=1)]
    assert metrics["accuracy"] == pytest.approx(accuracy_score(label, predicted))
    assert metrics["macro_f1"] == pytest.approx(f1_score(label, predicted, average="macro", labels=sorted(
        set(label) | set(predicted))))
    in_text_order = [CLASSES.index(name) for name in sorted(CLASSES)]  # scikit-learn's column order
    assert metrics["log_loss"] == pytest.approx(
        log_loss(label, np.clip(probabilities[:, in_text_order], 1e-15, 1), labels=sorted(CLASSES)), rel=1e-6)
    table = confusion(label, probabilities, CLASSES)
    assert sum(map(sum, table.counts)) == len(label)
    assert sum(table.counts[index][index] for index in range(4)) == round(metrics["accuracy"] * len(label))


def test_residuals_by_slice_show_where_a_model_is_wrong():
    frame, label, predicted = air_times()

    slices = residuals_by_slice(frame["origin"].to_numpy(), label, predicted)

    assert {item.slice for item in slices} == {"EWR", "JFK", "LGA"}
    assert sum(item.rows for item in slices) == len(label)
    assert [item.mae for item in slices] == sorted((item.mae for item in slices), reverse=True)


def test_metric_bounds_pass_within_and_fail_outside_or_on_nan():
    checks = metric_bound_problems({"rmse": MetricBound(max=12), "r2": MetricBound(min=0.5, max=1)},
                                   {"rmse": 12.5, "r2": 0.7})

    assert checks == {"r2": (True, "test r2 0.7 is at least 0.5 and at most 1"),
                      "rmse": (False, "test rmse 12.5 is not at most 12")}
    assert metric_bound_problems({"mae": MetricBound(max=3)}, {"mae": float("nan")})["mae"][0] is False
