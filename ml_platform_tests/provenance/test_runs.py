"""`ml-platform runs`: every training run of a model with its snapshot, version, money, gate and champion status."""

from __future__ import annotations

import pytest

from ml_platform.cli import main

from ml_platform_tests.provenance.helpers import fetch

# drives chains of Dagster runs: the full suite only (`pytest -m "not slow"` leaves it out)
pytestmark = pytest.mark.slow


def test_runs_lists_each_training_run_with_its_money_gate_and_champion_status(history, capsys):
    assert main(history.run("runs", "flight_delay")) == 0
    lines = capsys.readouterr().out.splitlines()

    assert lines[0] == (f"Training runs of flight_delay: 3; live champion: {history.second} "
                        f"(training run {history.second_run})")
    assert lines[2].split("  ")[0] == "training run"
    for column in ("created (UTC)", "snapshot", "rows", "model version", "test money", "ROC AUC", "gate", "champion"):
        assert column in lines[2]
    rows = {line.split()[0]: line for line in lines[3:]}
    first_run = fetch(history.project, "models", model_version=history.first).training_run
    assert list(rows) == [first_run, history.second_run, history.failed_run]  # oldest first

    for key, line in rows.items():
        snapshot = fetch(history.project, "snapshots", model="flight_delay", training_run=key)
        evaluation = fetch(history.project, "evaluations", model="flight_delay", training_run=key)
        test = evaluation.summary.test
        low, high = test.money_interval_95
        assert snapshot.snapshot_id in line and f"{snapshot.created_at:%Y-%m-%d %H:%M:%S}" in line
        assert f"{sum(snapshot.manifest.rows.values()):,}" in line
        assert evaluation.model_version in line
        assert f"{test.money:,.0f} USD (95% {low:,.0f} to {high:,.0f})" in line
        assert f"{test.roc_auc:.4f}" in line
    assert "passed" in rows[first_run] and rows[first_run].endswith("was champion (promotion #1)")
    assert "passed" in rows[history.second_run] and rows[history.second_run].endswith("live champion (promotion #2)")
    assert "FAILED" in rows[history.failed_run] and rows[history.failed_run].endswith("never")


def test_runs_of_an_unknown_model_names_the_models_that_have_runs(history, capsys):
    assert main(history.run("runs", "flight_dealy")) == 2
    assert capsys.readouterr().err.strip() == (
        "error: no training runs of model 'flight_dealy' in the registry; did you mean 'flight_delay'? "
        "(models with training runs: flight_delay, flight_delay_lr)")


def test_runs_in_a_project_without_a_warehouse_says_nothing_was_trained(tmp_path, capsys):
    assert main(["--project", str(tmp_path), "runs", "flight_delay"]) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"error: no warehouse at {tmp_path}/.ml_platform/warehouse.duckdb: nothing was trained")
