"""The money mechanism on real January flights: each decision's parameter chosen on validation, checked against
what the money function implies or a brute-force search; the value form of the binary shorthand means the same."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml_platform.evaluation.decisions import apply, choose, day_ranks, outcome_values
from ml_platform.evaluation.evaluate import summarize
from ml_platform.evaluation.money import MoneyError, OutcomeValues, best_threshold
from ml_platform.names import money_input_column
from ml_platform.specs.models import ModelSpec
from ml_platform.specs.tasks import TaskNotSupportedError, require_judged_today
from ml_platform_tests.flights_sample import CLASSES, january
from ml_platform_tests.helpers import january_model

SHORT_COSTS_MORE = ("CASE WHEN decision < label THEN -2 * (label - decision) ELSE -0.5 * (decision - label) END")


def spec(**overrides) -> ModelSpec:
    return ModelSpec.model_validate(january_model(**overrides))


def regression_rows() -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray, np.ndarray]:
    """Air times of days 1-4 (validation) and 5-7 (test), with a least-squares line on distance as predictor."""
    frame = january()
    frame = frame[frame["air_time"].notna()].reset_index(drop=True)
    slope, intercept = np.polyfit(frame["distance"], frame["air_time"], 1)
    rows = pd.DataFrame({"label": frame["air_time"].to_numpy(dtype="float64"),
                         "partition_date": frame["day"].to_numpy(),
                         money_input_column("distance"): frame["distance"].to_numpy(dtype="float64")})
    predictions = slope * frame["distance"].to_numpy() + intercept
    validation = (frame["day"] <= 4).to_numpy()
    return (rows[validation].reset_index(drop=True), rows[~validation].reset_index(drop=True),
            predictions[validation], predictions[~validation])


def quantity_model(value: str = SHORT_COSTS_MORE, step: float = 0.5) -> ModelSpec:
    return spec(label={"task": "regression", "expression": "air_time"},
                money={"currency": "USD", "decision": {"kind": "quantity", "offset": {"min": -20, "max": 40,
                                                                                      "step": step}},
                       "value": value},
                gate={"min_money": 0})


def test_an_asymmetric_cost_chooses_the_offset_of_its_quantile():
    model = quantity_model()
    validation, test, validation_predictions, test_predictions = regression_rows()

    chosen = choose(model, validation, validation_predictions)

    # a minute short costs 2 and a minute over 0.5: the best plan covers the 2 / 2.5 = 0.8 quantile of the error
    residual = validation["label"].to_numpy() - validation_predictions
    assert abs(chosen.parameter - np.quantile(residual, 0.8)) <= 1.0
    assert chosen.parameter_name == "offset" and len(chosen.candidates) == 121
    assert chosen.validation_money == max(chosen.validation_curve)
    plan = validation_predictions + chosen.parameter
    label = validation["label"].to_numpy()
    direct = np.where(plan < label, -2 * (label - plan), -0.5 * (plan - label)).sum()
    assert chosen.validation_money == pytest.approx(direct, rel=1e-12)

    decided = apply(model, chosen, test, test_predictions)
    plan = test_predictions + chosen.parameter
    label = test["label"].to_numpy()
    assert np.array_equal(decided.decisions, plan)
    assert np.allclose(decided.per_row, np.where(plan < label, -2 * (label - plan), -0.5 * (plan - label)))
    assert np.all(decided.perfect == 0)  # planning the actual air time costs nothing


def test_a_value_reads_the_rows_own_columns():
    model = quantity_model("-abs(decision - label) * distance / 1000")
    validation, _, predictions, _ = regression_rows()

    chosen = choose(model, validation, predictions)

    plan = predictions + chosen.parameter
    expected = (-np.abs(plan - validation["label"]) * validation[money_input_column("distance")] / 1000).sum()
    assert chosen.validation_money == pytest.approx(expected, rel=1e-12)


def binary_rows() -> tuple[pd.DataFrame, np.ndarray]:
    """January's departures with the demo's label and money inputs, scored by a real signal: the hour."""
    frame = january()
    label = (frame["dep_time"].isna() | (frame["dep_delay"] > 15)).to_numpy()
    delay = frame["dep_delay"].to_numpy(dtype="float64")
    rows = pd.DataFrame({"label": label, "partition_date": frame["day"].to_numpy(),
                         money_input_column("dep_delay"): delay,
                         "money_true_positive": 0.30 * 75 * np.where(np.isnan(delay), 180, delay) - 500,
                         "money_false_positive": -500.0, "money_false_negative": 0.0, "money_true_negative": 0.0})
    scores = frame["hour"].to_numpy(dtype="float64") / 24
    return rows, scores


DEMO_VALUE = ("CASE WHEN decision AND label THEN 0.30 * 75 * coalesce(dep_delay, 180) - 500 "
              "WHEN decision THEN -500 ELSE 0 END")


def test_the_value_form_of_the_demo_money_means_what_the_outcomes_shorthand_means():
    rows, scores = binary_rows()
    shorthand = spec()
    value_form = spec(money={"currency": "USD", "decision": {"kind": "threshold"}, "value": DEMO_VALUE})

    by_outcomes, by_value = outcome_values(shorthand, rows, scores), outcome_values(value_form, rows, scores)

    assert np.allclose(by_outcomes.if_flagged, by_value.if_flagged)
    assert np.array_equal(by_outcomes.if_not_flagged, by_value.if_not_flagged)
    chosen = choose(value_form, rows, scores)
    assert (chosen.parameter, chosen.validation_money) == pytest.approx(
        best_threshold(scores, OutcomeValues.from_frame(rows)))


@pytest.mark.parametrize("budget", [{"count": 12}, {"share": 0.05}])
def test_a_budget_acts_on_the_best_number_of_top_rows_each_day(budget):
    rows, scores = binary_rows()
    model = spec(money={"currency": "USD", "decision": {"kind": "top", **budget}, "value": DEMO_VALUE})
    values = OutcomeValues.from_frame(rows)
    ranks, sizes = day_ranks(rows, scores)

    chosen = choose(model, rows, scores)

    key = ranks if "count" in budget else ranks / sizes
    brute = {candidate: values.money(key <= candidate) for candidate in chosen.candidates}
    assert chosen.validation_money == pytest.approx(max(brute.values()))
    assert chosen.parameter == min(candidate for candidate, money in brute.items()
                                   if money == pytest.approx(max(brute.values())))
    decided = apply(model, chosen, rows, scores)
    per_day = pd.Series(decided.decisions).groupby(rows["partition_date"]).sum()
    assert (per_day <= (budget.get("count") or np.floor(budget["share"] * sizes.max()))).all()


def test_ranks_are_per_day_highest_first():
    rows = pd.DataFrame({"partition_date": [1, 1, 2, 1, 2]})
    ranks, sizes = day_ranks(rows, np.array([0.1, 0.9, 0.5, 0.9, 0.7]))

    assert ranks.tolist() == [3, 1, 2, 2, 1] and sizes.tolist() == [3, 3, 2, 3, 2]


MONEY_BY_CLASS = {  # money of a decision (rows) when the flight turns out (columns): on time, late, very late, cancelled
    "on_time": [0, -40, -150, -400], "late": [-20, 10, -60, -300], "very_late": [-60, -10, 60, -100],
    "cancelled": [-200, -150, -50, 200]}


def class_value() -> str:
    cases = " ".join(f"WHEN decision = '{decided}' AND label = '{actual}' THEN {money}"
                     for decided, row in MONEY_BY_CLASS.items() for actual, money in zip(CLASSES, row))
    return f"CASE {cases} END"


def class_rows() -> tuple[pd.DataFrame, np.ndarray]:
    """January's departures with their outcome class and real class frequencies by hour as probabilities."""
    frame = january()
    shares = pd.crosstab(frame["hour"], frame["outcome"], normalize="index").reindex(columns=CLASSES, fill_value=0)
    probabilities = shares.loc[frame["hour"]].to_numpy()
    return pd.DataFrame({"label": frame["outcome"].to_numpy(dtype=object),
                         "partition_date": frame["day"].to_numpy()}), probabilities


@pytest.mark.parametrize("rule", ["most_likely", "most_money"])
def test_a_class_decision_is_the_likeliest_or_the_richest_class(rule):
    rows, probabilities = class_rows()
    model = spec(label={"task": "multiclass", "expression": "'on_time'", "classes": CLASSES},
                 money={"currency": "USD", "decision": {"kind": "class", "rule": rule}, "value": class_value()},
                 gate={"min_money": 0})

    decided = apply(model, choose(model, rows, probabilities), rows, probabilities)

    matrix = np.array([MONEY_BY_CLASS[name] for name in CLASSES], dtype="float64")
    expected_money = probabilities @ matrix.T  # rows x decisions
    best = expected_money.argmax(axis=1) if rule == "most_money" else probabilities.argmax(axis=1)
    assert decided.decisions.tolist() == [CLASSES[index] for index in best]
    actual = [CLASSES.index(value) for value in rows["label"]]
    assert np.allclose(decided.per_row, matrix[best, actual])
    assert np.allclose(decided.perfect, matrix[actual, actual])
    if rule == "most_money":  # deciding on expected money never makes less than the likeliest class, in expectation
        likeliest = probabilities.argmax(axis=1)
        assert expected_money[np.arange(len(rows)), best].sum() >= expected_money[np.arange(len(rows)),
                                                                                  likeliest].sum()


def test_a_value_without_a_number_for_some_rows_is_an_error():
    model = quantity_model("CASE WHEN label > 300 THEN NULL ELSE -abs(decision - label) END")
    validation, _, predictions, _ = regression_rows()

    with pytest.raises(MoneyError, match=r"money.value gives no value \(NULL\) for \d+ row evaluation"):
        choose(model, validation, predictions)


def test_evaluation_of_the_value_form_reports_what_the_shorthand_reports():
    rows, scores = binary_rows()
    validation, test = (rows["partition_date"] <= 4).to_numpy(), (rows["partition_date"] > 4).to_numpy()
    value_form = spec(money={"currency": "USD", "decision": {"kind": "threshold"}, "value": DEMO_VALUE},
                      slice_column=None)

    by_outcomes, by_value = (summarize(model, rows[validation].reset_index(drop=True), scores[validation],
                                       rows[test].reset_index(drop=True), scores[test])
                             for model in (spec(slice_column=None), value_form))

    assert by_value.threshold == by_outcomes.threshold
    assert by_value.test.money == pytest.approx(by_outcomes.test.money)
    assert by_value.test.money_interval_95 == pytest.approx(by_outcomes.test.money_interval_95)
    assert by_value.money_by_threshold.test == pytest.approx(by_outcomes.money_by_threshold.test)


@pytest.mark.parametrize(("overrides", "message"), [
    ({"label": {"task": "regression", "expression": "air_time"},
      "money": {"currency": "USD", "decision": {"kind": "quantity", "offset": {"min": 0, "max": 1, "step": 1}},
                "value": "-abs(decision - label)"}, "gate": {"min_money": 0}},
     "evaluation of 'flight_delay' is not supported for task regression with decision quantity yet"),
    ({"money": {"currency": "USD", "decision": {"kind": "top", "count": 5}, "value": DEMO_VALUE}},
     "evaluation of 'flight_delay' is not supported for task binary_classification with decision top yet"),
])
def test_stages_that_cannot_judge_a_task_yet_refuse_it(overrides, message):
    with pytest.raises(TaskNotSupportedError) as caught:
        require_judged_today(spec(**overrides), "evaluation")

    assert str(caught.value).startswith(message)
