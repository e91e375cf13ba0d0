"""End to end: the demo's chain of Dagster runs on a January slice, in a real instance and a real DuckDB file."""

from __future__ import annotations

from ml_platform.chain.model_chain import run_chain
from ml_platform.demo import summary_text
from ml_platform.names import DAILY_JOB, stage_key, training_job_name
from ml_platform.storage.warehouse import open_warehouse

from ml_platform_tests.helpers import instance_of


def test_chain_trains_deploys_and_scores_with_provenance(make_project, dagster_home):
    project = make_project()
    lines = []
    result = run_chain(project, "flight_delay", score_days=2, say=lines.append)

    assert [run.success for run in result.runs] == [True] * 5  # reference, daily, training, scoring, outcomes
    assert result.champion is not None and result.champion.model_version.startswith("flight_delay-")
    assert result.evaluation.gate_passed is True
    assert result.scored_rows > 1000  # two days of departures from New York
    assert any("[3/4] training run" in line for line in lines)

    with open_warehouse(project.storage.warehouse) as connection:
        rows = connection.execute(
            "SELECT model_version, spec_hash, snapshot_id, code_version, count(*) FROM predictions.flight_delay "
            "GROUP BY ALL").fetchall()
    assert len(rows) == 1
    model_version, spec_hash, snapshot_id, code_version, count = rows[0]
    assert model_version == result.champion.model_version
    assert len(spec_hash) == 12 and len(snapshot_id) == 16 and code_version.startswith("0.1.0+")

    instance = instance_of(project)
    assert result.dagster_home == project.dagster_home.resolve()
    runs = instance.get_runs()
    assert {run.job_name for run in runs} >= {DAILY_JOB, training_job_name("flight_delay")}
    for stage in ("snapshot", "model", "evaluation", "deployment"):
        assert instance.get_latest_materialization_event(stage_key(stage, "flight_delay")) is not None
    text = summary_text(project, result)
    assert "Money on the test window 2013-01-26 to 2013-01-31" in text and "USD" in text
    # the scored days were monitored, then judged in money once their labels were known
    for stage in ("monitoring", "outcomes"):
        assert instance.get_latest_materialization_event(stage_key(stage, "flight_delay")) is not None
    assert f"DAGSTER_HOME={project.dagster_home.resolve()} dagster dev" in text
    assert result.monitoring.days_measured == 2 and result.monitoring.days_labelled == 2
    assert "Realized on those days, once their labels were known: " in text
    assert "promised for 2 days (table monitoring.flight_delay__outcomes)" in text
    # with a verdict, and drift pooled over the days: the summary says which rule each line follows
    verdict, = result.monitoring.verdicts
    assert verdict.days == 2 and verdict.state in ("on track", "below the interval", "losing money")
    assert f"  verdict ({result.champion.model_version}): {verdict.state}: realized " in text
    assert (f"Prediction drift (the score's PSI pooled over the 7 days ending on each day, against the test window's "
            f"scores): above 0.25 on {result.monitoring.days_prediction_drift} of 2 scored days") in text
    test = result.evaluation.test
    assert ("money_floor passed on the point estimate: the 95% interval reaches below zero" in text) == (
        test.money_interval_95[0] < 0 <= test.money - result.evaluation.gate.money_floor.details.floor)
