"""Every (algorithm, task, objective) the support table allows trains on real January 2013 flights and predicts in
the task's shape; labels a task cannot learn fail naming what is wrong."""

from __future__ import annotations

import numpy as np
import pytest

from ml_platform.specs.models import (
    HistGradientBoostingAlgorithm, LabelSpec, LightGBMAlgorithm, LogisticRegressionAlgorithm, RandomForestAlgorithm)
from ml_platform.specs.tasks import SUPPORT
from ml_platform.training.algorithms import FrameRows, LabelError, load_predictor, targets, train
from ml_platform_tests.flights_sample import CLASSES, january

FEATURES = ["hour", "distance", "carrier", "origin"]
OBJECTIVE_PARAMETERS = {"quantile": {"alpha": 0.9}, "huber": {"delta": 60.0}, "tweedie": {"variance_power": 1.5}}


def rows_for(label: LabelSpec) -> tuple[FrameRows, FrameRows]:
    frame = january()
    if label.task == "regression":
        frame = frame[frame["air_time"].notna()].reset_index(drop=True)
        values = frame["air_time"].to_numpy(dtype="float64")
    elif label.task == "multiclass":
        values = frame["outcome"].to_numpy(dtype=object)
    else:
        values = (frame["dep_time"].isna() | (frame["dep_delay"] > 15)).astype(int).to_numpy()
    train_part = (frame["day"] <= 5).to_numpy()
    return (FrameRows(frame[train_part].reset_index(drop=True), values[train_part]),
            FrameRows(frame[~train_part].reset_index(drop=True), values[~train_part]))


ALGORITHMS = {
    "lightgbm": lambda: LightGBMAlgorithm(kind="lightgbm", seed=3, params={"n_estimators": 60, "learning_rate": 0.2}),
    "logistic_regression": lambda: LogisticRegressionAlgorithm(kind="logistic_regression", seed=3),
    "random_forest": lambda: RandomForestAlgorithm(kind="random_forest", seed=3, params={"n_estimators": 10}),
    "hist_gradient_boosting": lambda: HistGradientBoostingAlgorithm(kind="hist_gradient_boosting", seed=3,
                                                                    params={"max_iter": 60, "learning_rate": 0.2}),
}
CASES = [(algorithm, task, objective) for algorithm, tasks in SUPPORT.items() for task, objectives in tasks.items()
         for objective in objectives if task != "binary_classification"]


def label_of(task: str, objective: str) -> LabelSpec:
    if task == "multiclass":
        return LabelSpec(task=task, expression="outcome", classes=CLASSES)
    return LabelSpec(task=task, expression="air_time",
                     objective={"kind": objective, **OBJECTIVE_PARAMETERS.get(objective, {})})


@pytest.mark.parametrize(("algorithm", "task", "objective"), CASES, ids=["-".join(case) for case in CASES])
def test_every_supported_combination_trains_and_predicts_in_the_task_shape(algorithm, task, objective, tmp_path):
    label = label_of(task, objective)
    train_rows, valid_rows = rows_for(label)

    result = train(ALGORITHMS[algorithm](), FEATURES, ["carrier", "origin"], train_rows, valid_rows, label=label)
    result.predictor.save(tmp_path / "model")
    again = load_predictor(tmp_path / "model", result.predictor.format)
    predicted = again.predict(valid_rows.frame)

    # equal up to the order in which a forest's threads add up their trees
    assert np.allclose(predicted, result.predictor.predict(valid_rows.frame), rtol=1e-12, atol=0)
    if task == "multiclass":
        assert predicted.shape == (len(valid_rows.label), len(CLASSES))
        assert np.allclose(predicted.sum(axis=1), 1.0)
        # the most common class of the rows is on time, and the model knows it
        assert CLASSES[int(np.bincount(predicted.argmax(axis=1)).argmax())] == "on_time"
    else:
        assert predicted.shape == (len(valid_rows.label),)
        actual = valid_rows.label
        if objective == "quantile":  # about nine in ten flights take no longer than the 0.9 quantile
            assert 0.75 < np.mean(actual <= predicted) < 0.99
        else:  # air time follows distance: any regression of its centre must beat predicting the mean by far
            error = np.sqrt(np.mean((predicted - actual) ** 2))
            assert error < 0.5 * actual.std(), (error, actual.std())


def test_lightgbm_quantile_predicts_above_the_median():
    median_label, high_label = label_of("regression", "l1"), label_of("regression", "quantile")
    train_rows, valid_rows = rows_for(median_label)
    median = train(ALGORITHMS["lightgbm"](), FEATURES, ["carrier", "origin"], train_rows, valid_rows,
                   label=median_label).predictor.predict(valid_rows.frame)
    high = train(ALGORITHMS["lightgbm"](), FEATURES, ["carrier", "origin"], train_rows, valid_rows,
                 label=high_label).predictor.predict(valid_rows.frame)

    assert np.mean(high > median) > 0.9


def test_a_class_the_spec_does_not_list_is_an_error_naming_it():
    label = LabelSpec(task="multiclass", expression="outcome", classes=["on_time", "late", "very_late"])

    with pytest.raises(LabelError) as caught:
        targets(label, january()["outcome"].to_numpy(dtype=object), "train")

    assert str(caught.value) == ("the train rows have label value(s) 'cancelled' that label.classes does not list "
                                 "(allowed: on_time, late, very_late)")


def test_a_regression_label_that_is_not_a_finite_number_is_an_error():
    label = LabelSpec(task="regression", expression="air_time")

    with pytest.raises(LabelError) as caught:
        targets(label, january()["air_time"].to_numpy(dtype="float64"), "validation")

    assert str(caught.value).startswith("the validation rows have ")
    assert str(caught.value).endswith(" label(s) that are not finite numbers (label.expression)")
