"""`ml-platform compare`, the evaluation report and the deployment page set two regression (or multiclass)
training runs side by side like binary ones: money, the task's metrics, the decision, money by slice and the
feature importance shift, on real training runs of the January slice."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml_platform import names
from ml_platform.cli import main
from ml_platform.evaluation.run_figures import stored_measurement
from ml_platform.storage import registry
from ml_platform.storage.artifacts import ArtifactStore
from ml_platform.storage.warehouse import open_warehouse
from ml_platform_tests.evaluation.january import MODEL, Runs, january_project, latest_event
from ml_platform_tests.evaluation.test_task_chain import MULTICLASS, REGRESSION

pytestmark = pytest.mark.slow

NO_BOUNDS = {"min_money": -1_000_000_000}  # the weak champion is judged in money only
WEAK_FEATURES = ["day_of_week", "carrier_code"]


def weak(document: dict) -> dict:
    """The same task knowing only the weekday and the carrier, with a few trees: clearly worse, still sane."""
    weaker = {**document, "features": WEAK_FEATURES, "gate": NO_BOUNDS}
    weaker["algorithm"] = {**document["algorithm"], "params": {**document["algorithm"]["params"],
                                                                "n_estimators": 20}}
    return weaker


def stored(project, training_run: str):
    """The run's task evaluation record, its measurement and its test predictions, read back from their files."""
    store = ArtifactStore(root=str(project.storage.artifacts))
    with open_warehouse(project.storage.warehouse) as connection:
        record = registry.task_evaluations.get(connection, MODEL, training_run)
    rows = pd.read_parquet(store.verify(record.predictions_path, record.predictions_sha256))
    return record, stored_measurement(store, record), rows, store


def compared(project, capsys, first: str, second: str) -> str:
    assert main(["--project", str(project.root), "compare", first, second]) == 0
    return capsys.readouterr().out


def section(output: str, heading: str) -> list[str]:
    return output.split(heading + "\n")[1].split("\n\n")[0].splitlines()


def test_two_regression_runs_side_by_side_in_compare_the_report_and_the_deployment_page(tmp_path, dagster_home,
                                                                                         capsys):
    runs = Runs(january_project(tmp_path / "project", {MODEL: weak(REGRESSION)}))
    champion = runs.train()
    assert champion.outcome.success and champion.champion is not None, champion.outcome.failures
    challenger = runs.train(REGRESSION)
    assert challenger.outcome.success, challenger.outcome.failures
    first, one, rows_a, store = stored(runs.project, champion.training_run)
    second, two, rows_b, _ = stored(runs.project, challenger.training_run)
    assert challenger.champion.model_version == second.model_version  # promoted over the weak champion

    output = compared(runs.project, capsys, champion.training_run, challenger.training_run)

    for letter, record in (("A", first), ("B", second)):
        low, high = record.test_money_interval_95
        assert (f"  {letter}  {record.test_money:,.0f} USD (95% {low:,.0f} to {high:,.0f})  test "
                f"{record.test_window[0]} to {record.test_window[1]}") in output
    assert "Same rows: not compared (paired on the same rows for binary runs only;" in output
    # the metrics, recomputed here from each run's stored test predictions
    metrics = {" ".join(line.split()[:-3]): line.split()[-3:] for line in section(output, "Metrics (test):")[1:]}
    for rows, column in ((rows_a, 0), (rows_b, 1)):
        error = rows["label"].to_numpy(float) - rows[names.PREDICTION_COLUMN].to_numpy(float)
        assert metrics["RMSE"][column] == f"{np.sqrt(np.mean(error ** 2)):.4f}"
        assert metrics["MAE"][column] == f"{np.mean(np.abs(error)):.4f}"
        assert metrics["pinball loss"][column] == f"{np.mean(np.maximum(0.8 * error, -0.2 * error)):.4f}"
    assert metrics["RMSE"][2] == f"{two.test_metrics['rmse'] - one.test_metrics['rmse']:+.4f}"
    assert float(metrics["RMSE"][1]) < float(metrics["RMSE"][0])  # the full feature set errs less
    decision = section(output, "Decision (chosen on validation):")
    assert decision[1].split() == ["offset", f"{one.decision_parameter:+g}", f"{two.decision_parameter:+g}"]
    # money by origin: each run's slices add up to its test money, which its stored rows add up to
    slices = section(output, next(line for line in output.splitlines() if line.startswith("Money by origin (test")))
    assert slices[0].split() == ["origin", "A", "B", "B", "-", "A"] and len(slices) == 4  # EWR, JFK, LGA
    by_origin = {line.split()[0]: [float(cell.replace(",", "")) for cell in line.split()[1:]] for line in slices[1:]}
    assert sum(values[0] for values in by_origin.values()) == pytest.approx(rows_a["money"].sum(), abs=2)
    assert sum(values[1] for values in by_origin.values()) == pytest.approx(rows_b["money"].sum(), abs=2)
    assert rows_b["money"].sum() == pytest.approx(second.test_money)
    # the importance shift: A used two features, B every feature of the example
    shift = output.split("Feature importance shift (share of mean |contribution| on each run's test rows; A: ")[1]
    shown = {line.split()[0]: line.split()[1:] for line in shift.split("\n\n")[0].splitlines()[2:]}
    assert set(shown) == set(REGRESSION["features"])
    assert shown["distance_miles"][0] == "-" and shown["distance_miles"][1].endswith("%")
    assert all(values[0].endswith("%") and values[-1] == "pts" for name, values in shown.items()  # "+1.0 pts"
               if name in WEAK_FEATURES)
    assert "Spec diff:\n" in output and "-- day_of_week" not in output

    # the deployment page and the evaluation report: the same figures beside the champion
    details = second.gate.beats_champion.details
    assert details.champion == first.model_version
    page = latest_event(names.stage_key("deployment", MODEL)).asset_materialization.metadata["comparison"].value
    report = store.verify(second.report_path, second.report_sha256).read_text(encoding="utf-8")
    for text in (page, report):
        assert f"| | champion {first.model_version} | challenger {second.model_version} |" in text
        assert f"| RMSE | {one.test_metrics['rmse']:.4f} | {two.test_metrics['rmse']:.4f} |" in text
        assert f"| WAPE | {one.test_metrics['wape']:.4f} | {two.test_metrics['wape']:.4f} |" in text
        assert (f"| offset (chosen on validation) | {one.decision_parameter:+g} | {two.decision_parameter:+g} |"
                in text)
        assert "| origin | champion | challenger | challenger - champion |" in text
        assert "| distance_miles | – | " in text
        assert (f"champion {details.champion_money:,.0f} USD, gain **{details.gain:,.0f} USD**") in text
    assert page.startswith("### Challenger beside the champion") and "\n## Challenger beside the champion\n" in report
    first_report = store.verify(first.report_path, first.report_sha256).read_text(encoding="utf-8")
    assert "Challenger beside the champion" not in first_report  # nothing to compare the first run with
    evaluation = latest_event(names.stage_key("evaluation", MODEL)).asset_materialization.metadata["report"].value
    assert f"| RMSE | {one.test_metrics['rmse']:.4f} | {two.test_metrics['rmse']:.4f} |" in evaluation


def test_two_multiclass_runs_compare_their_class_metrics_and_importance(tmp_path, dagster_home, capsys):
    runs = Runs(january_project(tmp_path / "project", {MODEL: weak(MULTICLASS)}))
    champion = runs.train(deploy=False)
    challenger = runs.train(MULTICLASS, deploy=False)
    # the weak run always answers the most common class: evaluated and stored, its gate failed
    assert champion.outcome.failures == ["gate check predictions_sane failed: every row gets the same most likely "
                                         "class"] and challenger.outcome.success, challenger.outcome.failures
    _, one, rows_a, _ = stored(runs.project, champion.training_run)
    _, two, rows_b, _ = stored(runs.project, challenger.training_run)

    output = compared(runs.project, capsys, champion.training_run, challenger.training_run)

    assert "gate FAILED" in output.split("\nB: ")[0] and "gate passed" in output.split("\nB: ")[1].split("\n")[1]
    metrics = {" ".join(line.split()[:-3]): line.split()[-3:] for line in section(output, "Metrics (test):")[1:]}
    assert set(metrics) == {"log loss", "accuracy", "macro F1"}
    classes = list(MULTICLASS["label"]["classes"])
    for rows, column in ((rows_a, 0), (rows_b, 1)):
        probabilities = rows[[names.probability_column(name) for name in classes]].to_numpy(float)
        actual = pd.Index(classes).get_indexer(rows["label"])
        accuracy = np.mean(probabilities.argmax(axis=1) == actual)
        log_loss = -np.mean(np.log(np.clip(probabilities[np.arange(len(rows)), actual], 1e-15, 1)))
        assert metrics["accuracy"][column] == f"{accuracy:.4f}" and metrics["log loss"][column] == f"{log_loss:.4f}"
    decision = section(output, "Decision (chosen on validation):")
    assert decision[1].startswith("  class rule") and "validation money" in decision[2]
    assert "Money by carrier (test, each run's own window and money values;" in output
    assert "Feature importance shift (share of mean |contribution| on each run's test rows; A: TreeSHAP" in output
    shift = output.split("Feature importance shift")[1].split("\n\n")[0].splitlines()[2:]
    assert {line.split()[0] for line in shift} == set(MULTICLASS["features"])
