"""The regression and multiclass report shows the hyper-parameter search like the binary one: every trial, the
chosen one, the spec's params as baseline, and the plot of money by trial beside the other plots."""

from __future__ import annotations

import pytest

from ml_platform import names
from ml_platform.evaluation.task_report import draw_task_plots, render_task_report
from ml_platform.records.search import SearchRecord, SearchTrial
from ml_platform.records.tasks import TaskMeasurement
from ml_platform.storage import registry
from ml_platform.storage.warehouse import open_warehouse
from ml_platform_tests.evaluation.january import MODEL, latest_event
from ml_platform_tests.evaluation.test_decisions import SHORT_COSTS_MORE
from ml_platform_tests.evaluation.test_task_chain import MULTICLASS, run
from ml_platform_tests.evaluation.test_task_evaluation import measured

SECTION = "## Hyper-parameter search (validation window only)"


def search_record() -> SearchRecord:
    trials = (SearchTrial(number=0, parameters={"num_leaves": 31}, value=-5200.0, validation_money=-5200.0,
                          seconds=1.5, state="COMPLETE", origin="params"),
              SearchTrial(number=1, parameters={"num_leaves": 9}, value=-4100.0, validation_money=-4100.0,
                          seconds=1.25, state="COMPLETE"),
              SearchTrial(number=2, parameters={"num_leaves": 60}, value=-6000.0, validation_money=-6000.0,
                          seconds=2.0, state="COMPLETE"))
    return SearchRecord(library={"optuna": "4.0"}, sampler="TPESampler(seed=5)", storage="in memory",
                        objective="money", direction="maximize", trials_declared=3, stopped_by_time_budget=False,
                        seconds=4.75, best_trial=1, chosen={"num_leaves": 9}, trials=trials)


def test_the_regression_report_lists_the_search_trials_and_plots_them():
    _, regression, test = measured({
        "label": {"task": "regression", "expression": "air_time"},
        "money": {"currency": "USD", "decision": {"kind": "quantity", "offset": {"min": -10, "max": 30, "step": 1}},
                  "value": SHORT_COSTS_MORE}, "gate": {"min_money": 0}}, "air_time")
    assert SECTION not in render_task_report(regression) and "search_trials" not in draw_task_plots(regression)

    searched = regression.model_copy(update={"search": search_record()})
    text = render_task_report(searched)

    section = text.split(SECTION)[1].split("\n## ")[0]
    assert "3 trials by Optuna 4.0 (TPESampler(seed=5)), maximize money on the validation window: ran all 3 " \
           "trials declared in 4.8 s." in section
    assert "Validation money of the chosen trial: -4,100 USD, against -5,200 USD for the spec's own params " \
           "(trial 0): +1,100 USD." in section
    assert "| 1 **chosen** | -4,100 | -4,100 | 1.2 | complete | num_leaves 9 |" in section
    assert "| 0 (the spec's params) | -5,200 |" in section and section.count("| complete |") == 3
    assert text.index("## Metrics") < text.index(SECTION) < text.index("## Money by slice (test)")
    plots = draw_task_plots(searched, test["label"].to_numpy(), test["air_time"].to_numpy())
    assert plots["search_trials"].startswith(b"\x89PNG")
    # the measurement file keeps the search
    assert TaskMeasurement.model_validate_json(searched.model_dump_json()).search == searched.search


@pytest.mark.slow
def test_a_searched_multiclass_model_reports_its_search_through_dagster(tmp_path, dagster_home):
    document = {**MULTICLASS, "algorithm": {**MULTICLASS["algorithm"], "search": {
        "trials": 3, "seed": 2, "parameters": {"num_leaves": {"low": 4, "high": 64, "log": True}}}}}
    runs, trained, _, model = run(tmp_path, document)
    assert trained.outcome.success, trained.outcome.failures
    search = model.card.search
    assert search is not None and len(search.trials) == 3

    with open_warehouse(runs.project.storage.warehouse) as connection:
        record = registry.task_evaluations.get(connection, MODEL, trained.training_run)
    measurement = TaskMeasurement.model_validate_json(
        (runs.project.storage.artifacts / record.measurement_path).read_text(encoding="utf-8"))
    assert measurement.search == search and "search_trials" in record.plots
    report = (runs.project.storage.artifacts / record.report_path).read_text(encoding="utf-8")
    assert f"| {search.best_trial} **chosen**" in report.split(SECTION)[1]
    metadata = latest_event(names.stage_key("evaluation", MODEL)).asset_materialization.metadata
    assert SECTION in metadata["report"].value and "![search_trials](data:image/png;base64," in metadata[
        "report"].value
    # the evaluation judged the chosen trial's model: its validation money is the chosen trial's
    assert measurement.validation_money == pytest.approx(search.best().validation_money, abs=1e-6)
