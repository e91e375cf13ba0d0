"""End to end: the demo's chain of Dagster runs on a January slice, in a real instance and a real DuckDB file."""

from __future__ import annotations

import pytest

from ml_platform.chain.model_chain import run_chain
from ml_platform.demo import summary_text
from ml_platform.evaluation.realized import VERDICTS
from ml_platform.names import DAILY_JOB, outcomes_job_name, scoring_job_name, stage_key, training_job_name
from ml_platform.storage.warehouse import open_warehouse

from ml_platform_tests.helpers import instance_of

# drives chains of Dagster runs: the full suite only (`pytest -m "not slow"` leaves it out)
pytestmark = pytest.mark.slow


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
    assert verdict.days == 2 and verdict.state in VERDICTS
    assert f"  verdict ({result.champion.model_version}): {verdict.state}: realized " in text
    assert (f"Prediction drift (the score's PSI pooled over the 7 days ending on each day, against the test window's "
            f"scores): above 0.25 on {result.monitoring.days_prediction_drift} of 2 scored days") in text
    test = result.evaluation.test
    assert ("money_floor passed on the point estimate: the 95% interval reaches below zero" in text) == (
        test.money_interval_95[0] < 0 <= test.money - result.evaluation.gate.money_floor.details.floor)


@pytest.mark.slow
def test_a_re_run_with_nothing_changed_launches_no_run_and_a_new_day_scores_only_that_day(make_project, dagster_home,
                                                                                         monkeypatch):
    project = make_project()
    monkeypatch.setenv("ML_PLATFORM_PROGRESS_SECONDS", "0")  # a progress line whenever one can be given
    said = []
    first = run_chain(project, "flight_delay", score_days=2, say=said.append)
    assert len(first.runs) == 5 and first.scored_rows > 1000
    # progress of the waits, under the run it belongs to: feature backfills by ranges of days, training rounds
    assert "     ... features 'flight_schedule': 1 of 2 ranges of days computed, up to 2013-01-31 (" in "\n".join(said)
    assert any(line.startswith("     ... training round 1 of 60 (validation binary_logloss ") for line in said)
    assert any(line.startswith("     ... trained lightgbm in ") for line in said)
    training = next(run for run in first.runs if run.job == training_job_name("flight_delay"))
    logged = [entry.user_message for entry in instance_of(project).all_logs(training.run_id)]
    assert any(message.startswith("training round 1 of 60 (") for message in logged)  # the run's Dagster log
    monkeypatch.delenv("ML_PLATFORM_PROGRESS_SECONDS")

    def rows() -> int:
        with open_warehouse(project.storage.warehouse) as connection:
            return connection.execute("SELECT count(*) FROM predictions.flight_delay").fetchall()[0][0]

    stored = rows()
    runs_before = len(instance_of(project).get_runs())
    lines = []
    again = run_chain(project, "flight_delay", score_days=2, say=lines.append)
    assert again.runs == [] and len(instance_of(project).get_runs()) == runs_before  # nothing launched
    assert rows() == stored  # the same predictions are not appended again
    assert again.scored_rows == first.scored_rows and again.champion == first.champion
    text = "\n".join(lines)
    assert text.count("; no run needed") == 5, text
    assert f"up to date: {first.champion.model_version} was trained, evaluated and is the live model" in text
    assert f"up to date: every day is scored by {first.champion.model_version} from the feature data" in text
    assert "up to date: every scored day is judged from the same predictions and labels" in text
    assert "== flight_delay: done in" in summary_text(project, again) and ", 0 Dagster runs ==" in \
        summary_text(project, again)

    # one more day: its data is loaded, and only that day is scored and judged
    lines.clear()
    more = run_chain(project, "flight_delay", score_days=3, say=lines.append)
    assert [run.job for run in more.runs] == [DAILY_JOB, scoring_job_name("flight_delay"),
                                              outcomes_job_name("flight_delay")]
    assert "score with the champion and measure drift (1 day, 2013-02-03 to 2013-02-03)" in "\n".join(lines)
    with open_warehouse(project.storage.warehouse) as connection:
        per_day = dict(connection.execute("SELECT CAST(partition_date AS DATE)::VARCHAR, count(*) FROM "
                                          "predictions.flight_delay GROUP BY 1").fetchall())
    assert sum(per_day.values()) == stored + per_day["2013-02-03"] and len(per_day) == 3
