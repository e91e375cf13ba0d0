"""End to end: the weekly example model (model_specs/route_weeks/) through the demo's chain of Dagster runs, on
a short window of real 2013 flights: population, features, training with a forward label, deployment, scoring a
week and judging it once its labels are mature."""

from __future__ import annotations

import datetime as dt
import shutil

import pytest

from ml_platform.chain.model_chain import run_chain
from ml_platform.names import DAILY_JOB, REFERENCE_JOB, daily_job_name, outcomes_job_name, scoring_job_name, training_job_name
from ml_platform.storage.warehouse import open_warehouse

from ml_platform_tests.helpers import REPO_ROOT, SPECS, load_yaml, project_at, write_yaml

pytestmark = pytest.mark.slow

SHORT_SPLIT = {"train": {"start": "2013-02-04", "end": "2013-04-28"},
               "validation": {"start": "2013-04-29", "end": "2013-05-26"},
               "test": {"start": "2013-05-27", "end": "2013-06-30"}}


@pytest.fixture
def weekly_project(tmp_path, dagster_home):
    root = tmp_path / "project"
    for folder in ("sources", "entities", "route_weeks"):
        shutil.copytree(SPECS / folder, root / "model_specs" / folder)
    shutil.copyfile(REPO_ROOT / "dagster.yaml", root / "dagster.yaml")
    document = load_yaml(SPECS / "route_weeks" / "route_disruption.yaml")
    document["split"] = SHORT_SPLIT
    document["gate"] = {**document["gate"], "min_money": -1000000, "min_roc_auc": 0.5}  # a short window: run on
    write_yaml(root / "model_specs" / "route_weeks" / "route_disruption.yaml", document)
    return project_at(root)


def test_the_weekly_example_runs_end_to_end_in_weeks(weekly_project):
    lines = []
    result = run_chain(weekly_project, "route_disruption", score_days=7, say=lines.append)

    jobs = [run.job for run in result.runs]
    assert jobs == [REFERENCE_JOB, DAILY_JOB, daily_job_name("route_disruption"), training_job_name("route_disruption"),
                    scoring_job_name("route_disruption"), outcomes_job_name("route_disruption")], lines
    assert all(run.success for run in result.runs), lines
    assert result.score_window == (dt.date(2013, 7, 1), dt.date(2013, 7, 7))
    with open_warehouse(weekly_project.storage.warehouse) as connection:
        weeks = connection.execute("SELECT DISTINCT partition_date FROM population.route_weeks ORDER BY 1").fetchall()
        scored = connection.execute("SELECT DISTINCT CAST(partition_date AS DATE) FROM predictions.route_disruption"
                                    ).fetchall()
        population = connection.execute("SELECT count(*) FROM population.route_weeks WHERE partition_date = "
                                        "DATE '2013-07-01'").fetchall()[0][0]
        judged = connection.execute("SELECT day, status FROM monitoring.route_disruption__outcomes").fetchall()
    assert [row[0] for row in weeks][:2] == [dt.date(2013, 2, 4), dt.date(2013, 2, 11)]
    assert all(row[0].isoweekday() == 1 for row in weeks) and len(weeks) == 22  # Feb 4 to Jul 1
    assert scored == [(dt.date(2013, 7, 1),)] and result.scored_rows == population > 100
    assert [str(day)[:10] for day, _ in judged] == ["2013-07-01"]  # one week judged, not seven days
    summary = result.evaluation
    assert summary.test.window == ("2013-05-27", "2013-06-30") and summary.test.rows > 400
    # a week's label looks 7 days ahead: the last training weeks reach into validation and are purged
    assert any("entity 'route_weeks' and its features, 22 weekly partitions" in line for line in lines), lines

    again = run_chain(weekly_project, "route_disruption", score_days=7, say=lines.append)
    assert again.runs == []  # nothing changed: every step is up to date


def test_a_replay_of_the_weekly_example_scores_mondays_and_judges_them_a_week_later(tmp_path, dagster_home):
    from ml_platform.replay.story import replay, summary_lines

    root = tmp_path / "replayed"
    for folder in ("sources", "entities", "route_weeks"):
        shutil.copytree(SPECS / folder, root / "model_specs" / folder)
    shutil.copyfile(REPO_ROOT / "dagster.yaml", root / "dagster.yaml")
    shutil.copyfile(REPO_ROOT / "workspace.yaml", root / "workspace.yaml")
    project = project_at(root)
    lines = []
    result = replay(project, dt.date(2013, 12, 8), dt.date(2013, 12, 16), say=lines.append)
    summary = summary_lines(project, result)

    ledger = result.ledgers["route_disruption"]
    assert [training.promoted for training in ledger.trainings][:1] == [True], lines
    assert "route_disruption: 2 of 2 weeks scored" in summary, summary
    with open_warehouse(project.storage.warehouse) as connection:
        scored = connection.execute("SELECT DISTINCT CAST(partition_date AS DATE) FROM predictions.route_disruption "
                                    "ORDER BY 1").fetchall()
        judged = connection.execute("SELECT CAST(day AS DATE), status FROM monitoring.route_disruption__outcomes "
                                    "ORDER BY 1").fetchall()
    assert [row[0] for row in scored] == [dt.date(2013, 12, 9), dt.date(2013, 12, 16)]
    # the week of the 9th is judged on the 16th, once its seven days are over; nothing is judged on other days
    assert [(day, status) for day, status in judged if day == dt.date(2013, 12, 9)] == [
        (dt.date(2013, 12, 9), "labelled")], judged
    assert any(line.startswith("[ 10/10] 2013-12-16") and "judged 2013-12-09" in line for line in lines), lines
