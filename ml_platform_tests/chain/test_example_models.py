"""End to end: the two example models of model_specs (a regression and a multiclass model) carried through the
demo's chain of Dagster runs on a January slice, beside the flights model, in a real instance and DuckDB file:
sources, features, snapshot, training, evaluation, gate, deployment, scoring and outcomes."""

from __future__ import annotations

import pytest

import datetime as dt
from zoneinfo import ZoneInfo

import dagster as dg

from ml_platform.chain.model_chain import run_chain
from ml_platform.chain.runner import Chain
from ml_platform.features.library import load_catalog
from ml_platform.provenance.runs import runs_text, training_runs
from ml_platform.replay.clock import ReplayRun
from ml_platform.replay.story import training_line
from ml_platform.storage.resources import Warehouse
from ml_platform.demo import summary_text
from ml_platform.names import daily_job_name, scoring_schedule_name, stage_key, training_job_name
from ml_platform.storage.warehouse import open_warehouse
from ml_platform_tests.helpers import SPECS, instance_of, january_model, load_yaml
from ml_platform_tests.helpers import JANUARY_SPLIT

pytestmark = pytest.mark.slow


def example(name: str) -> dict:
    """The example model as model_specs holds it, on the January slice with fewer trees."""
    document = {**load_yaml(SPECS / f"{name}.yaml"), "split": JANUARY_SPLIT}
    document["algorithm"]["params"]["n_estimators"] = 60
    return document


@pytest.mark.parametrize("name, task, decision", [("air_time_plan", "regression", "quantity"),
                                                  ("flight_outcome", "multiclass", "class")])
def test_an_example_model_runs_end_to_end_beside_the_flights_model(make_project, dagster_home, name, task,
                                                                    decision):
    project = make_project({"flight_delay": january_model(), name: example(name)})
    lines = []

    result = run_chain(project, name, score_days=2, say=lines.append)

    # reference, daily, training, scoring, outcomes
    assert [run.success for run in result.runs] == [True] * 5, [run.failures for run in result.runs]
    assert result.evaluation is None and result.task_evaluation.task == task
    assert result.task_evaluation.decision == decision and result.task_evaluation.gate_passed
    assert not result.blocked and result.champion.model_version == result.task_evaluation.model_version
    assert result.scored_rows > 1000 and result.monitoring.days_labelled == 2
    instance = instance_of(project)
    for stage in ("snapshot", "model", "evaluation", "deployment", "predictions", "monitoring", "outcomes"):
        assert instance.get_latest_materialization_event(stage_key(stage, name)) is not None, stage
    for stage in ("snapshot", "deployment", "predictions"):  # only the example's chain ran
        assert instance.get_latest_materialization_event(stage_key(stage, "flight_delay")) is None, stage
    with open_warehouse(project.storage.warehouse) as connection:
        stored = connection.execute(f'SELECT count(*), count(DISTINCT model_version), count(decision) '
                                    f'FROM predictions."{name}"').fetchall()[0]
        realized = connection.execute(f'SELECT sum(realized_money) FROM monitoring."{name}__outcomes"').fetchall()[0]
        listed = runs_text(name, training_runs(connection, name))  # what `ml-platform runs` prints
        # the line a replay prints for this training run: read from the task evaluations, not the binary ones
        judged = result.task_evaluation
        line, outcome = training_line(connection, name, ReplayRun(
            "run", training_job_name(name), judged.training_run, "SUCCESS", "first training", [], 1.0))
    assert line == (f"retrained {judged.training_run} (first training): PROMOTED {judged.model_version}, "
                    f"test 2013-01-26..2013-01-31: {judged.test_money:,.0f} USD, {task}, {decision} decision"), line
    assert outcome.promoted and outcome.test_money == judged.test_money and outcome.failed_checks() == {}
    assert f"{result.task_evaluation.test_money:,.0f} USD (95% " in listed and "(not evaluated)" not in listed
    assert stored == (result.scored_rows, 1, result.scored_rows)
    text = summary_text(project, result)
    assert "Money on the test window 2013-01-26 to 2013-01-31: " in text
    assert ("Gate: money_floor passed, metric_bounds passed, beats_champion passed, no_leakage passed, "
            "predictions_sane passed") in text
    assert f"Deployed model: {result.champion.model_version} (promotion #1" in text
    assert f"Realized on those days, once their labels were known: {realized[0]:,.0f} USD" in text

    again = run_chain(project, name, score_days=2, say=lines.append)  # everything is up to date: no run

    assert again.runs == [] and again.champion == result.champion

    # the model's own schedule, at 18:00 on February 2, loads and scores February 3 with the champion
    chain = Chain(project, load_catalog(project.specs_dir, project.root), say=lines.append)
    schedule = chain.definitions.resolve_schedule_def(scoring_schedule_name(name))
    tick = dt.datetime(2013, 2, 2, 18, 0, tzinfo=ZoneInfo(schedule.execution_timezone))
    with dg.build_schedule_context(instance=instance, scheduled_execution_time=tick,
                                   repository_def=chain.definitions.get_repository_def(),
                                   resources={"warehouse": Warehouse(database=str(project.storage.warehouse))}) as context:
        request, = schedule.evaluate_tick(context).run_requests
    assert request.partition_key == "2013-02-03" and stage_key("predictions", name) in request.asset_selection
    daily = chain.run(daily_job_name(name), "scheduled day", partition_key=request.partition_key,
                      assets=list(request.asset_selection))
    assert daily.success, daily.failures
    with open_warehouse(project.storage.warehouse) as connection:
        day = connection.execute(f'SELECT count(*), min(model_version) FROM predictions."{name}" '
                                 f"WHERE partition_date = DATE '2013-02-03'").fetchall()[0]
    assert day[0] > 500 and day[1] == result.champion.model_version
