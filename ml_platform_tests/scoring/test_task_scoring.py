"""A regression and a multiclass model deployed on January score February 1 through real Dagster runs: the
predictions table holds the prediction, the decision its evaluation chose and the provenance; a waived challenger
scores in shadow and is compared in money; the outcomes asset values the stored decisions with the spec's value
expression once labels are known (checked against the same money computed independently in SQL); drift reads
the prediction."""

from __future__ import annotations

import datetime as dt

import pytest

from ml_platform import names
from ml_platform.provenance.explain import explain, explanation_text
from ml_platform.storage import registry
from ml_platform.storage.artifacts import ArtifactStore
from ml_platform.storage.warehouse import open_warehouse
from ml_platform_tests.evaluation.january import MODEL, Runs, january_project, latest_event
from ml_platform_tests.evaluation.test_task_chain import MULTICLASS, REGRESSION, example
from ml_platform_tests.helpers import january_model
from ml_platform_tests.monitoring.helpers import monitor

pytestmark = pytest.mark.slow

FEBRUARY_1 = dt.date(2013, 2, 1)
PREDICTIONS = f'predictions."{MODEL}"'


def explained(runs: Runs, flight: str) -> str:
    """What `ml-platform explain` prints for a flight's latest prediction."""
    with open_warehouse(runs.project.storage.warehouse) as connection:
        return explanation_text(explain(connection, MODEL, flight, None,
                                        ArtifactStore(root=str(runs.project.storage.artifacts))))


def deployed(tmp_path, document) -> tuple[Runs, object]:
    runs = Runs(january_project(tmp_path / "project", {MODEL: document}))
    trained = runs.train()
    assert trained.outcome.success, trained.outcome.failures
    with open_warehouse(runs.project.storage.warehouse) as connection:
        record = registry.task_evaluations.get(connection, MODEL, trained.training_run)
        assert registry.promotions.champion(connection, MODEL).model_version == record.model_version
    return runs, record


def test_a_regression_scores_plans_shadows_a_challenger_and_is_judged_in_money(tmp_path, dagster_home):
    runs, record = deployed(tmp_path, REGRESSION)

    scored = runs.score(FEBRUARY_1, FEBRUARY_1)

    assert scored.success, scored.failures
    columns = {name: kind for name, kind, *_ in runs.query(f"DESCRIBE {PREDICTIONS}")}
    assert {"prediction": "DOUBLE", "decision": "DOUBLE", "decision_parameter": "DOUBLE"}.items() <= columns.items()
    assert "score" not in columns and "flagged" not in columns and "model_version" in columns
    rows = runs.query(f"SELECT count(*), count(DISTINCT model_version), max(abs(decision - prediction - "
                      f"decision_parameter)), min(decision_parameter), max(decision_parameter), min(prediction) "
                      f"FROM {PREDICTIONS}")[0]
    flights = runs.query("SELECT count(*) FROM source.flights WHERE partition_date = DATE '2013-02-01' "
                         "AND origin IN ('EWR', 'JFK', 'LGA')")[0][0]
    assert rows[0] == flights and rows[1] == 1 and rows[2] < 1e-9
    assert rows[3] == rows[4] == record.decision_parameter and rows[5] > 0
    metadata = latest_event(names.stage_key("predictions", MODEL)).asset_materialization.metadata
    assert metadata["decisions"].value.startswith("mean decision ") and "flagged" not in metadata
    flight, prediction, decision = runs.query(f"SELECT flight_id, prediction, decision FROM {PREDICTIONS} LIMIT 1")[0]
    text = explained(runs, flight)
    assert f"  prediction    {prediction:.6g}\n" in text
    assert (f"  decision      {decision:.6g} (decision parameter {record.decision_parameter:g}, chosen on "
            f"validation)") in text

    judged = monitor(runs, ["outcomes", "monitoring"], FEBRUARY_1, FEBRUARY_1)

    assert judged.success, judged.failures
    status, realized, labelled = runs.query(
        f"SELECT status, realized_money, labelled_rows FROM monitoring.{MODEL}__outcomes")[0]
    expected, known = runs.query(
        f"SELECT sum(CASE WHEN p.decision < f.air_time THEN -2.0 * (f.air_time - p.decision) "
        f"ELSE -0.5 * (p.decision - f.air_time) END), count(*) FROM {PREDICTIONS} p JOIN source.flights f "
        f"USING (flight_id) WHERE f.air_time IS NOT NULL")[0]
    # cancelled flights have no air time: the day is partly labelled
    assert status == "partly labelled" and labelled == known and realized == pytest.approx(expected)
    assert realized < 0
    drift = dict(runs.query(f"SELECT feature, psi FROM monitoring.{MODEL}__drift"))
    assert "__score__" in drift and drift["__score__"] >= 0

    # a challenger whose comparison is waived passes the gate and, not promoted, scores in shadow
    waived = example("air_time_plan")
    waived["algorithm"]["params"]["n_estimators"] = 30
    waived["gate"] = {"min_money": waived["gate"]["min_money"], "min_gain_over_champion": None}
    challenger = runs.train(waived, deploy=False)
    assert challenger.outcome.success, challenger.outcome.failures

    again = runs.score(FEBRUARY_1, FEBRUARY_1)

    assert again.success, again.failures
    shadow = runs.query(f'SELECT count(*), count(DISTINCT model_version), min(shadowing) '
                        f'FROM predictions."{MODEL}__shadow"')[0]
    assert shadow == (flights, 1, record.model_version)
    metadata = latest_event(names.stage_key("predictions", MODEL)).asset_materialization.metadata
    comparison = metadata["shadow_comparison_detail"].value
    assert comparison["rows"] == known and comparison["champion_money"] == pytest.approx(expected)
    assert comparison["gain"] == pytest.approx(comparison["challenger_money"] - comparison["champion_money"])
    assert "champion_flagged" not in comparison


def test_a_multiclass_scores_class_probabilities_and_realizes_its_money(tmp_path, dagster_home):
    runs, record = deployed(tmp_path, MULTICLASS)

    scored = runs.score(FEBRUARY_1, FEBRUARY_1)

    assert scored.success, scored.failures
    columns = {name: kind for name, kind, *_ in runs.query(f"DESCRIBE {PREDICTIONS}")}
    classes = MULTICLASS["label"]["classes"]
    assert columns["decision"] == "VARCHAR" and all(columns[f"probability__{name}"] == "DOUBLE" for name in classes)
    total = " + ".join(f"probability__{name}" for name in classes)
    chosen = " ".join(f"WHEN '{name}' THEN probability__{name}" for name in classes)
    rows = runs.query(f"SELECT count(*), max(abs({total} - 1)), max(abs(prediction - CASE decision {chosen} END)), "
                      f"count(*) FILTER (WHERE decision NOT IN ({', '.join(repr(name) for name in classes)})), "
                      f"count(*) FILTER (WHERE decision_parameter IS NOT NULL) FROM {PREDICTIONS}")[0]
    assert rows[0] > 500 and rows[1] < 1e-6 and rows[2] == 0 and rows[3] == 0 and rows[4] == 0
    flight, decision, probability = runs.query(f"SELECT flight_id, decision, prediction FROM {PREDICTIONS} LIMIT 1")[0]
    text = explained(runs, flight)
    assert "  prediction    class probabilities on_time 0." in text and ", cancelled 0." in text
    assert f"  decision      {decision} (its probability {probability:.4f})\n" in text

    judged = monitor(runs, ["outcomes"], FEBRUARY_1, FEBRUARY_1)

    assert judged.success, judged.failures
    realized, labelled = runs.query(f"SELECT realized_money, labelled_rows FROM monitoring.{MODEL}__outcomes")[0]
    value = MULTICLASS["money"]["value"]
    label = MULTICLASS["label"]["expression"]
    expected = runs.query(
        f"SELECT sum({value}), count(*) FROM (SELECT p.decision, ({label}) AS label FROM {PREDICTIONS} p "
        f"JOIN source.flights f USING (flight_id))")[0]
    assert labelled == expected[1] and realized == pytest.approx(expected[0])
    metadata = latest_event(names.stage_key("outcomes", MODEL)).asset_materialization.metadata
    assert metadata["realized_money"].value == round(expected[0]) and "flagged" not in metadata


TOP_VALUE = "CASE WHEN decision THEN (CASE WHEN label THEN 300 ELSE -100 END) ELSE 0 END"


def test_a_binary_model_acting_on_the_top_rows_of_each_day_is_gated_deployed_scored_and_judged(tmp_path,
                                                                                               dagster_home):
    document = january_model(money={"currency": "USD", "decision": {"kind": "top", "count": 40},
                                    "value": TOP_VALUE})
    runs, record = deployed(tmp_path, document)

    assert record.task == "binary_classification" and record.decision == "top"
    assert record.decision_parameter_name == "rows_per_day" and 0 < record.decision_parameter <= 40
    assert [name for name, _ in record.gate.checks()] == [
        "money_floor", "metric_bounds", "beats_champion", "no_leakage", "predictions_sane"]
    assert "test roc_auc" in record.gate.metric_bounds.why  # gate.min_roc_auc, as a bound of the task gate

    scored = runs.score(FEBRUARY_1, FEBRUARY_1)

    assert scored.success, scored.failures
    columns = {name: kind for name, kind, *_ in runs.query(f"DESCRIBE {PREDICTIONS}")}
    assert columns["decision"] == "BOOLEAN" and columns["prediction"] == "DOUBLE"
    acted, rows, lowest_acted, highest_not = runs.query(
        f"SELECT count(*) FILTER (WHERE decision), count(*), min(prediction) FILTER (WHERE decision), "
        f"max(prediction) FILTER (WHERE NOT decision) FROM {PREDICTIONS}")[0]
    assert acted == record.decision_parameter and rows > acted
    assert acted == 0 or lowest_acted >= highest_not  # the day's top rows by predicted probability

    judged = monitor(runs, ["outcomes"], FEBRUARY_1, FEBRUARY_1)

    assert judged.success, judged.failures
    realized, flagged = runs.query(f"SELECT realized_money, flagged FROM monitoring.{MODEL}__outcomes")[0]
    expected = runs.query(
        f"SELECT sum(CASE WHEN p.decision THEN (CASE WHEN (f.dep_time IS NULL OR f.dep_delay > 15) THEN 300 "
        f"ELSE -100 END) ELSE 0 END) FROM {PREDICTIONS} p JOIN source.flights f USING (flight_id)")[0][0]
    assert flagged == acted and realized == pytest.approx(expected)
