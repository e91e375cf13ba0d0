"""`ml-platform compare A B`: two training runs of the demo model side by side."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from ml_platform.cli import main
from ml_platform.evaluation.predictions_file import read_predictions
from ml_platform.storage.artifacts import ArtifactStore
from ml_platform.storage.warehouse import open_warehouse

from ml_platform_tests.provenance.helpers import SCHEDULE_FEATURES, WEAK_FEATURES, fetch

# reads the shared history, whose chains of Dagster runs the full suite alone builds
pytestmark = pytest.mark.slow


def compared(history, capsys, first: str, second: str) -> str:
    assert main(history.run("compare", first, second)) == 0
    return capsys.readouterr().out


def test_compare_two_training_runs_prints_money_intervals_metrics_decision_importance_and_spec_diff(history, capsys):
    one = fetch(history.project, "models", model_version=history.first)
    two = fetch(history.project, "models", model_version=history.second)
    output = compared(history, capsys, one.training_run, history.second)
    first = fetch(history.project, "evaluations", training_run=one.training_run).summary
    second = fetch(history.project, "evaluations", training_run=history.second_run).summary
    assert output.startswith(f"Comparing A and B\nA: {history.first} (training run {one.training_run}, spec hash "
                             f"{one.spec_hash})\n   lightgbm, seed 13, 1 features; gate passed\n")
    assert f"B: {history.second} (training run {history.second_run}, spec hash {two.spec_hash}); the live champion\n" \
           f"   lightgbm, seed 13, 4 features; gate passed\n" in output
    for letter, summary in (("A", first), ("B", second)):
        low, high = summary.test.money_interval_95
        assert (f"  {letter}  {summary.test.money:,.0f} USD (95% {low:,.0f} to {high:,.0f})  test "
                f"{summary.test.window[0]} to {summary.test.window[1]}") in output

    # the same test rows, both decisions valued with B's money values, recomputed here from the stored files
    store = ArtifactStore(root=str(history.project.storage.artifacts))
    with open_warehouse(history.project.storage.warehouse) as connection:
        rows_a, rows_b = (read_predictions(connection, store, summary) for summary in (first, second))
    joined = rows_a[rows_a["split"] == "test"].merge(rows_b[rows_b["split"] == "test"],
                                                     on=["flight_id", "partition_date"], suffixes=("_a", "_b"))
    value = lambda flags: np.where(flags, joined["money_if_flagged_b"], joined["money_if_not_flagged_b"]).sum()
    money_a, money_b = value(joined["flagged_a"].to_numpy(bool)), value(joined["flagged_b"].to_numpy(bool))
    assert len(joined) == second.test.rows == first.test.rows  # the same window: every row pairs
    assert abs(money_b - second.test.money) < 0.01  # B's own decisions with B's values: B's test money
    line = next(line for line in output.splitlines() if line.startswith("  A ") and ": B - A " in line)
    assert line.startswith(f"  A {money_a:,.0f} USD, B {money_b:,.0f} USD: B - A {money_b - money_a:+,.0f} USD "
                           f"(paired 95% interval ")
    low, high = (float(text.replace(",", "")) for text in
                 re.search(r"interval ([+-][\d,]+) to ([+-][\d,]+), resampling days\)$", line).groups())
    assert low <= money_b - money_a <= high
    days = pd.Series(joined["partition_date"]).nunique()
    assert f"Same rows: the {len(joined):,} test rows both runs scored ({days} days)" in output

    metrics = output.split("Metrics (test):\n")[1].split("\n\n")[0].splitlines()
    assert metrics[1].split() == ["ROC", "AUC", f"{first.test.roc_auc:.4f}", f"{second.test.roc_auc:.4f}",
                                  f"{second.test.roc_auc - first.test.roc_auc:+.4f}"]
    decision = output.split("Decision (chosen on validation):\n")[1].split("\n\n")[0]
    assert decision.splitlines()[1].split() == ["threshold", f"{first.threshold:.4f}", f"{second.threshold:.4f}"]
    assert "Money by carrier (test, each run's own window and money values;" in output

    shift = output.split("Feature importance shift (share of mean |contribution| on each run's test rows; ")[1]
    shift = shift.split("\n\n")[0].splitlines()[2:]
    shown = {line.split()[0]: line.split()[1:] for line in shift}
    assert set(shown) == {*WEAK_FEATURES, *SCHEDULE_FEATURES}
    assert shown["distance_miles"] == ["100.0%", "-", "-"]  # A's only feature; B does not use it
    assert all(values[0] == "-" for name, values in shown.items() if name in SCHEDULE_FEATURES)

    # the spec diff: the features changed, the money too (revision 1 costs mitigations at 5,000)
    diff = output.split("Spec diff:\n")[1]
    assert diff.startswith(f"--- A: training run {one.training_run} of flight_delay (spec hash {one.spec_hash})")
    assert "  model flight_delay: changed" in diff and "-- distance_miles" in diff and "+- departure_hour" in diff


def test_compare_a_run_with_itself_shows_no_difference(history, capsys):
    output = compared(history, capsys, history.second, history.second_run)
    assert ": B - A +0 USD (paired 95% interval +0 to +0, resampling days)" in output
    assert "Spec diff: none\n" in output and "no differences: both define spec hash" in output


def test_compare_a_logistic_regression_with_the_lightgbm_champion_across_models(history, capsys):
    output = compared(history, capsys, history.logistic, history.second)
    assert "logistic_regression, seed 3" in output
    assert "interventional Shapley values, sampled orderings" in output and "TreeSHAP" in output
    assert "Same rows: the " in output  # the same flights: both models predict for flights


def test_compare_a_run_whose_gate_failed(history, capsys):
    output = compared(history, capsys, history.second_run, history.failed_run)
    assert "gate FAILED" in output and "n_estimators: 59" in output


@pytest.mark.parametrize("given, message", [
    ("flight_dela-123", "'flight_dela-123' is neither a model version nor a trained training run in the registry"),
    ("nothing", "'nothing' is neither a model version nor a trained training run in the registry"),
])
def test_compare_names_what_it_does_not_know(history, capsys, given, message):
    assert main(history.run("compare", given, history.second)) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"error: {message}") and "versions, newest first: " in error
