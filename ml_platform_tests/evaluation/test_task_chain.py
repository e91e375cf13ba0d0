"""Regression and multiclass specs through real Dagster runs on January: the snapshot carries the task's label and
the money inputs, the model trains on them, the evaluation measures them in money and in their metrics with its
blocking checks, the run is registered with its five-check gate, and the deployment promotes it; a worse
challenger fails beats_champion, judged in money against the champion's own decisions on the same rows."""

from __future__ import annotations

import dagster as dg
import pytest

from ml_platform import names
from ml_platform.evaluation.report import readable_money
from ml_platform.records.tasks import TASK_CHECKS, TaskGate

from ml_platform.storage import registry
from ml_platform.storage.warehouse import open_warehouse
from ml_platform_tests.evaluation.january import MODEL, Runs, january_project, latest_event
from ml_platform_tests.flights_sample import CLASSES
from ml_platform_tests.helpers import JANUARY_SPLIT, REPO_ROOT, load_yaml

pytestmark = pytest.mark.slow

EXAMPLES = REPO_ROOT / "model_specs"


def example(name: str, **overrides) -> dict:
    """An example model of model_specs on the January slice, as the model the January helpers drive."""
    document = {**load_yaml(EXAMPLES / f"{name}.yaml"), "name": MODEL, "split": JANUARY_SPLIT}
    document["algorithm"]["params"]["n_estimators"] = 60
    return {**document, **overrides}


REGRESSION = example("air_time_plan")
MULTICLASS = example("flight_outcome")


def run(tmp_path, document):
    runs = Runs(january_project(tmp_path / "project", {MODEL: document}))
    trained = runs.train(deploy=False)
    with open_warehouse(runs.project.storage.warehouse) as connection:
        snapshot = registry.snapshots.get(connection, MODEL, trained.training_run)
        model = registry.models.get(connection, MODEL, trained.training_run)
    return runs, trained, snapshot, model


def snapshot_columns(runs, snapshot) -> dict[str, str]:
    path = runs.project.storage.artifacts / snapshot.path
    return {name: kind for name, kind, *_ in runs.query(f"DESCRIBE SELECT * FROM read_parquet('{path}')")}


def test_a_regression_is_snapshotted_trained_and_evaluated_in_money(tmp_path, dagster_home):
    runs, trained, snapshot, model = run(tmp_path, REGRESSION)

    assert trained.outcome.success, trained.outcome.failures
    columns = snapshot_columns(runs, snapshot)
    assert columns["label"] == "DOUBLE"
    assert not any(name.startswith("money_") for name in columns)  # the value reads only label and decision
    assert snapshot.manifest.positive_rate is None and 100 < snapshot.manifest.label_mean["train"] < 200
    assert model.card.training_positive_rate is None and 100 < model.card.training_label_mean < 200
    event = latest_event(names.stage_key("evaluation", MODEL))
    metadata = event.asset_materialization.metadata
    assert metadata["decision"].value.startswith("offset ") and metadata["money_USD"].value < 0
    # the UI's headline: a short paragraph per part (its table cell does not wrap and shows about 60 characters)
    paragraphs = metadata["headline"].value.split("\n\n")
    assert paragraphs[0].startswith(f"**{readable_money(metadata['money_USD'].value, 'USD')} (95%")
    assert paragraphs[1] == f"at {metadata['decision'].value.removesuffix(' (chosen on the validation window)')}"
    assert paragraphs[2].startswith("test window ") and paragraphs[3].startswith("**metric bounds ")
    assert len(paragraphs) == 4 and max(len(paragraph) for paragraph in paragraphs) <= 60, paragraphs
    assert "pinball" in metadata and "Predicted against actual" not in metadata["report"].value  # plots are images
    assert "![predicted_against_actual](data:image/png;base64," in metadata["report"].value
    assert "## Money by slice (test)" in metadata["report"].value and "| JFK |" in metadata["report"].value
    checks = dg.DagsterInstance.get().event_log_storage.get_latest_asset_check_execution_by_key(
        [dg.AssetCheckKey(names.stage_key("evaluation", MODEL), name) for name in TASK_CHECKS])
    assert {key.name: record.status.value for key, record in checks.items()} == {
        name: "SUCCEEDED" for name in TASK_CHECKS}

    with open_warehouse(runs.project.storage.warehouse) as connection:
        record = registry.task_evaluations.get(connection, MODEL, trained.training_run)
        assert registry.evaluations.get(connection, MODEL, trained.training_run) is None  # binary registry untouched
    assert record.task == "regression" and record.decision == "quantity" and record.gate_passed
    assert isinstance(record.gate, TaskGate) and record.decision_parameter == float(
        metadata["decision"].value.split()[1])
    assert record.gate.beats_champion.why == "no champion is deployed yet: there is nothing to beat"

    deployed = runs.deploy(trained.training_run)

    assert deployed.success, deployed.failures
    with open_warehouse(runs.project.storage.warehouse) as connection:
        champion = registry.promotions.champion(connection, MODEL)
    assert champion.model_version == record.model_version and isinstance(champion.gate, TaskGate)
    assert champion.gate == record.gate

    # a challenger that knows only the weekday loses money against the champion on the same test rows
    worse = example("air_time_plan", features=["day_of_week"])
    worse["algorithm"]["params"]["n_estimators"] = 2
    challenger = runs.train(worse)

    assert not challenger.outcome.success and challenger.outcome.blocked, challenger.outcome.failures
    with open_warehouse(runs.project.storage.warehouse) as connection:
        judged = registry.task_evaluations.get(connection, MODEL, challenger.training_run)
        assert registry.promotions.champion(connection, MODEL).model_version == champion.model_version
    comparison = judged.gate.beats_champion
    assert not comparison.passed and comparison.details.champion == champion.model_version
    assert comparison.details.champion_scores_from == "its own evaluation on the same test rows"
    assert comparison.details.challenger_money == pytest.approx(judged.test_money)
    assert comparison.details.champion_money == pytest.approx(record.test_money)
    assert comparison.details.gain < 0 and comparison.details.gain_interval_95[1] < 0
    assert comparison.why.startswith("does not beat the champion by the margin of")
    assert any("beats_champion" in failure for failure in challenger.outcome.failures)

    refused = runs.deploy(challenger.training_run)

    assert not refused.success
    assert any(f"{judged.model_version} is not deployed: the gate failed (" in failure
               and "beats_champion: does not beat the champion" in failure for failure in refused.failures), \
        refused.failures


def test_a_multiclass_snapshots_its_classes_and_trains(tmp_path, dagster_home):
    runs, trained, snapshot, model = run(tmp_path, MULTICLASS)

    assert trained.outcome.success, trained.outcome.failures
    metadata = latest_event(names.stage_key("evaluation", MODEL)).asset_materialization.metadata
    assert metadata["accuracy"].value > 0.5 and "| actual | on_time | late |" in metadata["report"].value
    assert snapshot_columns(runs, snapshot)["label"] == "VARCHAR"
    shares = snapshot.manifest.class_shares["train"]
    assert set(shares) == set(CLASSES) and sum(shares.values()) == pytest.approx(1.0, abs=1e-5)
    assert shares["on_time"] > 0.5 and model.card.training_class_shares["on_time"] == shares["on_time"]

    deployed = runs.deploy(trained.training_run)

    assert deployed.success, deployed.failures
    with open_warehouse(runs.project.storage.warehouse) as connection:
        champion = registry.promotions.champion(connection, MODEL)
        record = registry.task_evaluations.get(connection, MODEL, trained.training_run)
    assert champion.model_version == model.model_version and record.task == "multiclass"
    assert record.decision == "class" and champion.gate.passed()


def test_a_class_the_spec_does_not_list_fails_the_snapshot_naming_it(tmp_path, dagster_home):
    document = {**MULTICLASS, "label": {**MULTICLASS["label"], "classes": ["on_time", "late", "very_late"]}}

    _, trained, snapshot, _ = run(tmp_path, document)

    assert snapshot is None
    assert any("label.expression of 'flight_delay' gives values that label.classes does not list: 'cancelled' ("
               in failure and "(allowed: on_time, late, very_late)" in failure
               for failure in trained.outcome.failures), trained.outcome.failures


def test_a_metric_bound_out_of_reach_blocks_the_regression(tmp_path, dagster_home):
    document = {**REGRESSION, "gate": {"min_money": -1_000_000, "metrics": {"rmse": {"max": 1}}}}

    _, trained, _, _ = run(tmp_path, document)

    assert not trained.outcome.success and trained.outcome.blocked, trained.outcome.failures
    assert any("metric_bounds" in failure and "test rmse" in failure and "is not at most 1" in failure
               for failure in trained.outcome.failures), trained.outcome.failures
