"""A regression and a multiclass LightGBM model trained on real January flights, measured in money and in their
task's metrics: the decision chosen on validation, every figure on test."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml_platform.evaluation.report import readable_money
from ml_platform.evaluation.task_evaluation import measure_task, prediction_problems
from ml_platform.evaluation.task_report import draw_task_plots, render_task_report, task_headline
from ml_platform.specs.models import LightGBMAlgorithm, ModelSpec
from ml_platform.training.algorithms import FrameRows, train
from ml_platform_tests.evaluation.test_decisions import SHORT_COSTS_MORE, class_value
from ml_platform_tests.flights_sample import CLASSES, january
from ml_platform_tests.helpers import january_model
from ml_platform_tests.training.test_tasks_training import FEATURES

SPLIT = {"train": {"start": "2013-01-01", "end": "2013-01-03"},
         "validation": {"start": "2013-01-04", "end": "2013-01-05"},
         "test": {"start": "2013-01-06", "end": "2013-01-07"}}


def measured(overrides: dict, label_column: str) -> tuple[ModelSpec, object, pd.DataFrame]:
    model = ModelSpec.model_validate(january_model(split=SPLIT, **overrides))
    frame = january()
    if model.label.task == "regression":
        frame = frame[frame["air_time"].notna()].reset_index(drop=True)
    frame = frame.assign(label=frame[label_column].to_numpy(), partition_date=frame["day"].to_numpy(),
                         slice=frame["origin"].to_numpy())
    parts = {name: frame[frame["day"].between(*days)].reset_index(drop=True)
             for name, days in (("train", (1, 3)), ("validation", (4, 5)), ("test", (6, 7)))}
    values = {name: part["label"].to_numpy(dtype="float64" if model.label.task == "regression" else object)
              for name, part in parts.items()}
    algorithm = LightGBMAlgorithm(kind="lightgbm", seed=3, params={"n_estimators": 60, "learning_rate": 0.2})
    predictor = train(algorithm, FEATURES, ["carrier", "origin"], FrameRows(parts["train"], values["train"]),
                      FrameRows(parts["validation"], values["validation"]), label=model.label).predictor
    result = measure_task(model, parts["validation"], predictor.predict(parts["validation"]), parts["test"],
                          predictor.predict(parts["test"]))
    return model, result, parts["test"]


def test_a_regression_plans_air_time_with_the_offset_chosen_on_validation():
    model, result, test = measured({
        "label": {"task": "regression", "expression": "air_time"},
        "money": {"currency": "USD", "decision": {"kind": "quantity", "offset": {"min": -10, "max": 30, "step": 1}},
                  "value": SHORT_COSTS_MORE},
        "gate": {"min_money": 0, "metrics": {"rmse": {"max": 30}, "wape": {"max": 0.0001}}},
        "slice_column": None, "slices": ["origin", "carrier"]}, "air_time")

    assert (result.task, result.objective, result.decision, result.decision_parameter_name) == (
        "regression", "l2", "quantity", "offset")
    # a short minute costs four times a minute over: the plan is padded above the mean prediction
    assert result.decision_parameter > 0
    best = result.curve_candidates.index(result.decision_parameter)
    assert result.curve_validation[best] == max(result.curve_validation) == result.validation_money
    assert result.curve_test[best] == pytest.approx(result.test_money)
    assert result.test_money < 0 == result.test_money_perfect  # planning the actual minutes costs nothing
    assert result.test_money_interval_95[0] <= result.test_money <= result.test_money_interval_95[1]
    assert result.test_metrics["rmse"] < 0.5 * np.std(test["air_time"])
    assert result.metric_checks["rmse"].passed and not result.metric_checks["wape"].passed
    assert {item.slice for item in result.residuals_by_slice} == {"EWR", "JFK", "LGA"}
    # every declared slice is broken down, each adding up to the test money
    assert list(dict.fromkeys(item.slice_name for item in result.money_by_slice)) == model.slice_names()
    assert {item.slice for item in result.money_by_slice if item.slice_name == "origin"} == {"EWR", "JFK", "LGA"}
    for name in model.slice_names():
        assert sum(item.money for item in result.money_by_slice if item.slice_name == name) == pytest.approx(
            result.test_money)
    assert result.sanity_problems == ()


def test_a_multiclass_model_decides_the_class_of_most_money():
    model, result, test = measured({
        "label": {"task": "multiclass", "expression": "'on_time'", "classes": CLASSES},
        "money": {"currency": "USD", "decision": {"kind": "class", "rule": "most_money"}, "value": class_value()},
        "gate": {"min_money": 0, "metrics": {"accuracy": {"min": 0.5}}}}, "outcome")

    assert (result.task, result.decision, result.decision_parameter, result.curve_candidates) == (
        "multiclass", "class", None, ())
    assert result.confusion.classes == tuple(CLASSES)
    assert sum(map(sum, result.confusion.counts)) == len(test)
    assert result.test_metrics["accuracy"] > 0.5 and result.metric_checks["accuracy"].passed
    assert result.test_money <= result.test_money_perfect
    assert result.sanity_problems == ()


def test_predictions_that_are_not_probabilities_or_numbers_are_named():
    assert prediction_problems("regression", np.array([1.0, np.nan, 2.0])) == ("1 prediction(s) are not finite",)
    assert prediction_problems("regression", np.array([3.0, 3.0])) == ("every prediction is the same number",)
    assert prediction_problems("multiclass", np.array([[0.5, 0.6, 0.0], [0.6, 0.1, 0.3]])) == (
        "class probabilities do not sum to 1 per row",)


def test_the_reports_say_the_money_the_decision_and_the_metrics():
    _, regression, test = measured({
        "label": {"task": "regression", "expression": "air_time"},
        "money": {"currency": "USD", "decision": {"kind": "quantity", "offset": {"min": -10, "max": 30, "step": 1}},
                  "value": SHORT_COSTS_MORE},
        "gate": {"min_money": 0, "metrics": {"rmse": {"max": 1}}}}, "air_time")

    text = render_task_report(regression)
    assert text.startswith(f"# {regression.model}: regression ({regression.objective})\n")

    assert task_headline(regression).startswith(f"{readable_money(regression.test_money, 'USD')} (95% interval ")
    assert f"at offset {regression.decision_parameter:+g} on the test window 2013-01-06 to 2013-01-07; " \
           f"metric bounds failed: rmse" in text
    assert "| rmse |" in text and "FAILED: test rmse" in text and "## Residuals by slice" in text
    plots = draw_task_plots(regression, test["label"].to_numpy(), np.zeros(len(test)))
    assert set(plots) == {"money_curve", "residuals_by_slice", "predicted_against_actual"}
    assert all(png.startswith(b"\x89PNG") for png in plots.values())


def test_the_multiclass_report_has_its_confusion_table():
    _, result, _ = measured({
        "label": {"task": "multiclass", "expression": "'on_time'", "classes": CLASSES},
        "money": {"currency": "USD", "decision": {"kind": "class"}, "value": class_value()},
        "gate": {"min_money": 0}}, "outcome")

    text = render_task_report(result)

    assert " at the most likely class on the test window " in text  # most_likely is the default rule
    assert result.objective == "multiclass" and text.startswith(f"# {result.model}: multiclass\n")
    assert "| actual | on_time | late | very_late | cancelled |" in text
    assert set(draw_task_plots(result)) == {"confusion"}


def test_a_regression_can_act_on_the_top_rows_of_each_day():
    model, result, test = measured({
        "label": {"task": "regression", "expression": "air_time"},
        # checking a flight costs $20 and is worth 10 cents per minute it flies
        "money": {"currency": "USD", "decision": {"kind": "top", "count": 40},
                  "value": "CASE WHEN decision THEN 0.1 * label - 20 ELSE 0 END"},
        "gate": {"min_money": 0}}, "air_time")

    assert (result.decision, result.decision_parameter_name) == ("top", "rows_per_day")
    best = result.curve_candidates.index(result.decision_parameter)
    assert result.curve_test[best] == pytest.approx(result.test_money)
    # only flights of more than 200 minutes are worth a check: the longest predicted ones, a few dozen a day
    assert 0 < result.decision_parameter <= 40 and result.validation_money > 0
