"""Feature attributions of trained models on real flights: they add up to what the model outputs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml_platform.specs.models import (
    LabelSpec, LightGBMAlgorithm, LogisticRegressionAlgorithm, RandomForestAlgorithm)
from ml_platform.training.algorithms import FrameRows, train
from ml_platform.training.attributions import (
    SAMPLED_SHAPLEY, TREE_SHAP, AttributionError, attributions, probability, sampled_shapley)

from ml_platform_tests.flights_sample import january

FEATURES = ["hour", "distance", "carrier", "origin"]
CATEGORIES = ["carrier", "origin"]


def split(regression: bool = False) -> tuple[FrameRows, FrameRows]:
    frame = january()
    if regression:
        frame = frame[frame["air_time"].notna()].reset_index(drop=True)
        values = frame["air_time"].to_numpy(dtype="float64")
    else:
        values = (frame["dep_time"].isna() | (frame["dep_delay"] > 15)).astype(int).to_numpy()
    early = (frame["day"] <= 5).to_numpy()
    return (FrameRows(frame[early].reset_index(drop=True), values[early]),
            FrameRows(frame[~early].reset_index(drop=True), values[~early]))


def lightgbm(seed: int = 3) -> LightGBMAlgorithm:
    return LightGBMAlgorithm(kind="lightgbm", seed=seed, params={"n_estimators": 40, "learning_rate": 0.2})


def test_lightgbm_contributions_add_up_to_the_raw_score_of_every_row():
    train_rows, valid_rows = split()
    predictor = train(lightgbm(), FEATURES, CATEGORIES, train_rows, valid_rows).predictor
    rows = valid_rows.frame.iloc[:300]
    result = attributions(predictor, rows)
    raw = predictor.booster.predict(predictor.layout.matrix(rows), raw_score=True)
    assert result.method == TREE_SHAP and result.scale == "log-odds"
    assert result.contributions.shape == (300, 4) and result.columns == tuple(FEATURES)
    assert np.abs(result.base + result.contributions.sum(axis=1) - raw).max() < 1e-6
    assert np.abs(probability(result.output) - predictor.predict(rows)).max() < 1e-9
    # every feature moves some row: the model uses them all
    assert (np.abs(result.contributions).max(axis=0) > 1e-3).all()
    importance = result.mean_absolute()
    assert list(importance.values()) == sorted(importance.values(), reverse=True)


def test_lightgbm_regression_contributions_are_on_the_value_scale():
    train_rows, valid_rows = split(regression=True)
    label = LabelSpec(task="regression", expression="air_time")
    result = train(lightgbm(), FEATURES, CATEGORIES, train_rows, valid_rows, label=label).predictor
    rows = valid_rows.frame.iloc[:200]
    explained = attributions(result, rows)
    assert explained.scale == "value"
    assert np.abs(explained.base + explained.contributions.sum(axis=1) - result.predict(rows)).max() < 1e-6


@pytest.mark.parametrize("algorithm", [
    LogisticRegressionAlgorithm(kind="logistic_regression", seed=3, params={"C": 0.5}),
    RandomForestAlgorithm(kind="random_forest", seed=3, params={"n_estimators": 20, "max_depth": 6}),
])
def test_sklearn_sampled_shapley_values_add_up_to_the_prediction_minus_the_background_mean(algorithm):
    train_rows, valid_rows = split()
    predictor = train(algorithm, FEATURES, CATEGORIES, train_rows, valid_rows).predictor
    background = train_rows.frame[FEATURES].sample(60, random_state=1)
    rows = valid_rows.frame.iloc[:5]
    result = attributions(predictor, rows, background)
    assert result.method == SAMPLED_SHAPLEY and result.scale == "probability"
    assert np.abs(result.output - predictor.predict(rows)).max() < 1e-12
    assert np.allclose(result.base, predictor.predict(background).mean(), atol=1e-12)
    assert np.abs(result.base + result.contributions.sum(axis=1) - result.output).max() < 1e-9
    again = attributions(predictor, rows, background)
    # seeded: the same orderings every time (a forest averages its trees in threads: the last bits may differ)
    assert np.allclose(again.contributions, result.contributions, rtol=0, atol=1e-12)


def test_sampled_shapley_recovers_the_exact_values_of_an_additive_model():
    # for f(x) = sum of per-feature terms, every ordering credits each feature with its own term exactly
    background = pd.DataFrame({"a": [0.0, 2.0, 4.0], "b": [1.0, 1.0, 4.0]})
    row = pd.DataFrame({"a": [10.0], "b": [-2.0]})
    values, start, end = sampled_shapley(lambda frame: 3 * frame["a"] - frame["b"] ** 2, row, background)
    assert values == pytest.approx([3 * (10 - 2), -(4 - 6)])
    assert start == pytest.approx(6 - 6) and end == pytest.approx(30 - 4)


def test_sklearn_attributions_without_background_rows_are_refused():
    train_rows, valid_rows = split()
    algorithm = LogisticRegressionAlgorithm(kind="logistic_regression", seed=3)
    predictor = train(algorithm, FEATURES, CATEGORIES, train_rows, valid_rows).predictor
    with pytest.raises(AttributionError, match="need background rows"):
        attributions(predictor, valid_rows.frame.iloc[:2])
    with pytest.raises(AttributionError, match="none were given"):
        attributions(predictor, valid_rows.frame.iloc[:2], train_rows.frame.iloc[:0])
