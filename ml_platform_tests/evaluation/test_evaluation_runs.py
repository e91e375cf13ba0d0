"""Evaluation materialized through Dagster on January 2013: kept predictions, plots, report, and the gate."""

from __future__ import annotations

import json
import re
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from ml_platform import names
from ml_platform.evaluation.plots import PLOTS
from ml_platform.evaluation.leakage import measure_leakage
from ml_platform.evaluation.leakage_store import LEAKAGE_FOLDER
from ml_platform.evaluation.report import headline_markdown
from ml_platform.specs.models import ModelSpec
from ml_platform.storage import registry
from ml_platform.storage.warehouse import open_warehouse
from ml_platform.storage.artifacts import file_sha256
from ml_platform.training.attributions import TREE_SHAP
from ml_platform_tests.helpers import january_model
from ml_platform_tests.evaluation.january import (
    LEAKING_FEATURE, MODEL, Runs, january_project, latest_event, with_vendor_feature)

# drives chains of Dagster runs: the full suite only (`pytest -m "not slow"` leaves it out)
pytestmark = pytest.mark.slow

CHECKS = ["money_floor", "roc_auc_floor", "beats_champion", "no_leakage", "predictions_sane"]


@pytest.fixture
def runs(tmp_path, dagster_home) -> Runs:
    return Runs(january_project(tmp_path / "project"))


def check_evaluations(run_id: str) -> dict[str, dg.AssetCheckEvaluation]:
    """The gate check results a Dagster run recorded on its evaluation asset, by check name (the run's snapshot
    has a check of its own, the point-in-time proof)."""
    records = dg.DagsterInstance.get().all_logs(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION)
    return {record.dagster_event.event_specific_data.check_name: record.dagster_event.event_specific_data
            for record in records if record.dagster_event.event_specific_data.asset_key.path[-1] == "evaluation"}


def test_evaluation_keeps_its_predictions_plots_and_report(runs):
    trained = runs.train()
    assert trained.outcome.success, trained.outcome.failures
    summary = trained.evaluation.summary
    artifacts = runs.project.storage.artifacts

    # the per-row predictions: validation and test rows, the decision at the threshold and its money
    stored = summary.artifacts.predictions
    path = artifacts / stored.path
    assert stored.path.startswith(f"evaluations/{MODEL}/") and file_sha256(path) == stored.sha256
    rows = duckdb.sql(f"SELECT split, count(*), sum(money), bool_and(flagged = (score >= {summary.threshold})), "
                      f"typeof(any_value(partition_date)) FROM read_parquet('{path}') GROUP BY split ORDER BY split"
                      ).fetchall()
    assert [row[0] for row in rows] == ["test", "validation"]
    test_rows = rows[0]
    assert test_rows[1] == summary.test.rows and round(test_rows[2], 2) == round(summary.test.money, 2)
    assert rows[1][1] == summary.validation.rows
    assert all(row[3] for row in rows) and test_rows[4] == "DATE"

    # the report file links its plots by relative path, and every plot is a stored PNG
    report = artifacts / summary.artifacts.report_markdown.path
    text = report.read_text(encoding="utf-8")
    assert text.startswith(f"# {MODEL} — evaluation of {trained.evaluation.model_version}")
    links = re.findall(r"!\[[^]]+\]\(([^)]+)\)", text)
    # the spec's slice_column: carrier; then the dependence plots of the three most important features
    importance = summary.importance
    assert importance.method == TREE_SHAP and importance.scale == "log-odds"
    assert importance.rows == min(1_000, summary.test.rows)  # TreeSHAP: a seeded sample of 1,000 test rows
    shares = [item.share for item in importance.features]
    assert shares == sorted(shares, reverse=True) and abs(sum(shares) - 1) < 1e-9
    assert {item.feature for item in importance.features} == set(json.loads(
        runs.query("SELECT card FROM registry.models")[0][0])["features"])
    top = [item.feature for item in importance.features[:3]]
    assert [points.feature for points in importance.dependence] == top
    assert all(len(points.values) == len(points.contributions) == 400 for points in importance.dependence)
    plots = [*PLOTS, "money_by_slice__carrier", *(names.dependence_plot_name(feature) for feature in top)]
    assert "## Feature importance (test)" in text
    assert f"| {top[0]} | {importance.features[0].mean_absolute:.4f} | {shares[0]:.1%} |" in text
    assert len(links) == len(plots)
    for link in links:
        assert (report.parent / link).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert set(summary.artifacts.plots) == set(plots)

    # the UI: the headline first (short enough to show inline), the report with its plots inline, the files as
    # paths, readable numbers, and no number that is not a metric worth a chart across training runs
    metadata = latest_event(names.stage_key("evaluation", MODEL)).asset_materialization.metadata
    assert list(metadata)[:2] == ["headline", "report"]
    assert metadata["headline"].value == headline_markdown(summary) and len(metadata["headline"].value) < 1000
    assert metadata["headline"].value.startswith(f"**{summary.test.money:,.0f} USD (95% interval ")
    assert metadata["report"].value.count("](data:image/png;base64,") == len(plots)
    assert len(metadata["report"].value) < 150_000
    assert Path(metadata["report_file"].value) == report
    assert Path(metadata["predictions_file"].value) == path
    assert metadata["champion_compared"].value == "none (nothing deployed)"
    assert metadata["threshold"].value.startswith(f"{summary.threshold:.3f} (chosen on the validation window")
    numbers = {key for key, value in metadata.items() if isinstance(value, (dg.IntMetadataValue, dg.FloatMetadataValue))}
    assert numbers == {"money_USD", "roc_auc", "log_loss"}
    assert metadata["money_USD"].value == round(summary.test.money)
    assert metadata["roc_auc"].value == round(summary.test.roc_auc, 4)
    checks = check_evaluations(trained.outcome.run_id)
    assert list(checks) == CHECKS and all(check.passed for check in checks.values())
    assert checks["beats_champion"].description == "no champion is deployed yet: there is nothing to beat"
    assert checks["no_leakage"].description.startswith("no feature predicts the label alone: the strongest, ")
    # fewer training rows than the guard's sample: it measured every one of them
    leakage = summary.gate.no_leakage.details
    card = json.loads(runs.query("SELECT card FROM registry.models")[0][0])
    assert leakage.rows_used == leakage.rows_available == card["training_rows"]
    # the validation window's rows were measured too, every one of them, and each feature's score is stored beside
    assert leakage.validation_rows_used == leakage.validation_rows_available == summary.validation.rows
    assert all(row.validation_roc_auc is not None for row in summary.single_feature_roc_auc)
    strongest = summary.single_feature_roc_auc[0]
    assert checks["no_leakage"].description.endswith(
        f"on the {leakage.rows_used:,} training rows ({strongest.validation_roc_auc:.4f} on the "
        f"{summary.validation.rows:,} validation rows)")
    assert leakage.out_of_time.judged and "## Single features alone (leakage guard)" in text

    # evaluated once: a second run of the same training run reuses every file
    again = runs.train()
    assert again.outcome.success
    assert again.evaluation.summary.artifacts == summary.artifacts
    assert runs.query("SELECT count(*) FROM registry.evaluations") == [(1,)]
    assert latest_event(names.stage_key("evaluation", MODEL)).asset_materialization.metadata["reused"].value.startswith(
        "evaluation already stored")


def logged(run_id: str, step: str) -> list[str]:
    """The messages a run's step logged itself (context.log), in order."""
    return [record.user_message for record in dg.DagsterInstance.get().all_logs(run_id)
            if record.dagster_event is None and record.step_key and record.step_key.endswith(step)]


def test_the_leakage_guard_measures_a_snapshot_once(runs):
    trained = runs.train()
    assert trained.outcome.success, trained.outcome.failures
    answers = runs.project.storage.artifacts / LEAKAGE_FOLDER
    [answer] = answers.glob("*.json")
    assert not [line for line in logged(trained.outcome.run_id, "evaluation") if line.startswith("leakage guard:")]
    with open_warehouse(runs.project.storage.warehouse) as connection:
        snapshot = registry.snapshots.get(connection, MODEL, trained.training_run)
    summary = trained.evaluation.summary
    text = lambda record: "".join(row.model_dump_json() for row in record.single_feature_roc_auc) + \
        record.gate.no_leakage.model_dump_json()  # noqa: E731
    # a hyper-parameter change: a new training run on the same snapshot file reads the same answer, and says so
    document = january_model()
    document["algorithm"]["params"]["learning_rate"] = 0.07
    again = runs.train(document, deploy=False)
    assert again.evaluation is not None, again.outcome.failures  # evaluated (its gate may block it: no matter)
    assert again.training_run != trained.training_run and again.evaluation.summary.snapshot_id == summary.snapshot_id
    assert again.evaluation.summary.model_version != summary.model_version
    assert list(answers.glob("*.json")) == [answer]
    assert text(again.evaluation.summary) == text(summary)
    assert [line for line in logged(again.outcome.run_id, "evaluation") if line.startswith("leakage guard:")] == [
        f"leakage guard: figures read from {answer}, measured by an earlier evaluation of snapshot "
        f"{summary.snapshot_id} with the same features, limit, seed and code"]
    assert file_sha256(runs.project.storage.artifacts / snapshot.path) == snapshot.sha256
    # a new seed is a new question: measured anew, beside the first answer
    document["algorithm"]["seed"] = document["algorithm"].get("seed", 0) + 1
    third = runs.train(document, deploy=False)
    assert third.evaluation is not None, third.outcome.failures
    assert len(list(answers.glob("*.json"))) == 2


def test_a_leaking_feature_fails_the_gate_and_is_named(runs):
    leaking = with_vendor_feature(january_model(), LEAKING_FEATURE)
    trained = runs.train(leaking)
    assert not trained.outcome.success
    gate = trained.evaluation.summary.gate
    assert [name for name, _ in gate.failures()] == ["no_leakage"]
    assert gate.no_leakage.details.leaking_features == (LEAKING_FEATURE,)
    message = next(failure for failure in trained.outcome.failures if failure.startswith("gate check no_leakage"))
    leak = next(row for row in trained.evaluation.summary.single_feature_roc_auc if row.feature == LEAKING_FEATURE)
    assert leak.roc_auc == 1.0 and leak.validation_roc_auc > 0.99  # a leak leaks on both windows
    assert f"feature '{LEAKING_FEATURE}' (ROC AUC 1.0000; {leak.validation_roc_auc:.4f} on validation) alone " \
           f"predicts the label" in message
    assert not gate.no_leakage.details.out_of_time.flagged
    # the UI says which check stopped the model and why
    check = check_evaluations(trained.outcome.run_id)["no_leakage"]
    assert not check.passed and LEAKING_FEATURE in check.description
    assert check.metadata["leaking_features"].value == [LEAKING_FEATURE]
    # a check's figures are text a person reads, never a number Dagster would chart across runs
    assert check.metadata["rows_used"].value == f"{gate.no_leakage.details.rows_used:,}"
    assert check.metadata["limit"].value == f"{gate.no_leakage.details.limit:.4f}"
    assert not [key for key, value in check.metadata.items()
                if isinstance(value, (dg.IntMetadataValue, dg.FloatMetadataValue))]
    assert trained.champion is None
    assert runs.query("SELECT count(*) FROM registry.promotions") == [(0,)]


def test_a_feature_whose_feed_breaks_on_validation_is_flagged_out_of_time(runs, tmp_path):
    """Real January rows: the leaky vendor column, scrambled on the validation days only (a feed that broke), is
    flagged as losing its signal out of time; the intact snapshot flags nothing."""
    trained = runs.train(with_vendor_feature(january_model(), LEAKING_FEATURE), deploy=False)
    with open_warehouse(runs.project.storage.warehouse) as connection:
        snapshot = registry.snapshots.get(connection, MODEL, trained.training_run)
    path = runs.project.storage.artifacts / snapshot.path
    model = ModelSpec.model_validate(with_vendor_feature(january_model(), LEAKING_FEATURE))
    kinds = {row.feature: row.type for row in trained.evaluation.summary.single_feature_roc_auc}
    broken = tmp_path / "broken.parquet"
    connection = duckdb.connect()
    column = f'"{LEAKING_FEATURE}"'
    connection.execute(
        f"COPY (SELECT * EXCLUDE (file_row_number) REPLACE (CASE WHEN split = 'validation' THEN "
        f"CAST(hash(file_row_number) % 97 AS DOUBLE) ELSE {column} END AS {column}) "
        f"FROM read_parquet('{path}', file_row_number = true) ORDER BY file_row_number) TO '{broken}' "
        f"(FORMAT parquet)")
    intact_aucs, intact = measure_leakage(connection, path, kinds, model.gate.max_feature_roc_auc,
                                          seed=model.algorithm.seed)
    # the guard read what the evaluation stored
    assert intact_aucs == trained.evaluation.summary.single_feature_roc_auc
    assert intact == trained.evaluation.summary.gate.no_leakage and not intact.details.out_of_time.flagged
    aucs, check = measure_leakage(connection, broken, kinds, model.gate.max_feature_roc_auc,
                                  seed=model.algorithm.seed)
    warning = check.details.out_of_time
    assert warning.flagged and [row.feature for row in warning.collapsed] == [LEAKING_FEATURE]
    assert warning.collapsed[0].training == 1.0 and warning.collapsed[0].validation < 0.56
    # the warning never changes the check: it fails on the training rows' leak, as before
    assert not check.passed and check.details.leaking_features == (LEAKING_FEATURE,)
    assert [(row.feature, row.roc_auc) for row in aucs] == [(row.feature, row.roc_auc) for row in intact_aucs]
