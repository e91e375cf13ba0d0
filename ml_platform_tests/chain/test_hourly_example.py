"""End to end: the hourly example model (model_specs/origin_hours/) through the demo's chain of Dagster runs, on
a short window of real January 2013 flights: an hourly population kept in daily partitions, its features proven
point in time row by row, a regression trained, deployed, scoring a day's hours and judged once labels are known."""

from __future__ import annotations

import datetime as dt
import re
import shutil

import pytest

from ml_platform.chain.model_chain import DemoError, run_chain
from ml_platform.names import DAILY_JOB, REFERENCE_JOB, daily_job_name, outcomes_job_name, scoring_job_name, training_job_name
from ml_platform.storage.warehouse import open_warehouse

from ml_platform_tests.helpers import REPO_ROOT, SPECS, load_yaml, project_at, write_yaml

pytestmark = pytest.mark.slow

SHORT_SPLIT = {"train": {"start": "2013-01-08", "end": "2013-01-21"},
               "validation": {"start": "2013-01-22", "end": "2013-01-25"},
               "test": {"start": "2013-01-26", "end": "2013-01-31"}}
SCHEDULE = SPECS / "origin_hours" / "origin_hour_schedule.yaml"
# departures that happened in the 24 to 12 hours before the row's hour: known when the day's last hour is predicted
# (23:00 the day before), not yet when its first hours are (their prediction times are 00:00, 01:00, ...)
LEAK = ("count(h.flight_id) FILTER (WHERE h.dep_time IS NOT NULL AND h.scheduled_departure >= e.hour_start - "
        "INTERVAL 24 HOUR AND h.scheduled_departure < e.hour_start - INTERVAL 12 HOUR) AS departed_day_before,\n  ")


def _project(root, schedule: str | None = None):
    (root / "model_specs" / "entities").mkdir(parents=True)
    shutil.copytree(SPECS / "sources", root / "model_specs" / "sources")
    shutil.copyfile(SPECS / "entities" / "origin_hours.yaml", root / "model_specs" / "entities" / "origin_hours.yaml")
    shutil.copytree(SPECS / "origin_hours", root / "model_specs" / "origin_hours")
    shutil.copyfile(REPO_ROOT / "dagster.yaml", root / "dagster.yaml")
    document = load_yaml(SPECS / "origin_hours" / "origin_departures.yaml")
    document["split"] = SHORT_SPLIT
    write_yaml(root / "model_specs" / "origin_hours" / "origin_departures.yaml", document)
    if schedule is not None:
        (root / "model_specs" / "origin_hours" / "origin_hour_schedule.yaml").write_text(schedule, encoding="utf-8")
    return project_at(root)


def test_the_hourly_example_runs_end_to_end_keeping_each_hour_its_own_row(tmp_path, dagster_home):
    project = _project(tmp_path / "project")
    lines = []
    result = run_chain(project, "origin_departures", score_days=2, say=lines.append)

    jobs = [run.job for run in result.runs]
    assert jobs == [REFERENCE_JOB, DAILY_JOB, daily_job_name("origin_departures"),
                    training_job_name("origin_departures"), scoring_job_name("origin_departures"),
                    outcomes_job_name("origin_departures")], lines
    assert all(run.success for run in result.runs), lines
    assert any("entity 'origin_hours' and its features, 26 daily partitions from 2013-01-08" in line
               for line in lines), lines
    assert result.score_window == (dt.date(2013, 2, 1), dt.date(2013, 2, 2))
    with open_warehouse(project.storage.warehouse) as connection:
        def one(sql: str):
            return connection.execute(sql).fetchall()

        hours_of_a_day = "origin = 'JFK' AND partition_start IN (TIMESTAMP '2013-02-01 08:00', " \
                         "TIMESTAMP '2013-02-01 17:00')"
        population = one(f"SELECT partition_date, hour_start FROM population.origin_hours WHERE {hours_of_a_day} "
                         f"ORDER BY 2")
        features = one(f"SELECT scheduled_in_hour FROM features.origin_hour_schedule WHERE {hours_of_a_day} "
                       f"ORDER BY partition_start")
        predictions = one(f"SELECT partition_start, CAST(partition_date AS DATE), (inputs).scheduled_in_hour "
                          f"FROM predictions.origin_departures WHERE {hours_of_a_day} ORDER BY 1")
        stored = {table: one(f"SELECT count(*), count(DISTINCT (origin, partition_start)), "
                             f"count(DISTINCT partition_date) FROM {table}")[0]
                  for table in ("population.origin_hours", "features.origin_hour_schedule",
                                "predictions.origin_departures")}
        scheduled = one("SELECT hour, count(*) FROM source.flights WHERE origin = 'JFK' AND partition_date = "
                        "DATE '2013-02-01' AND hour IN (8, 17) GROUP BY 1 ORDER BY 1")
        judged = one("SELECT CAST(day AS DATE), status, rows_scored FROM monitoring.origin_departures__outcomes ORDER BY 1")
    # two hours of one day for the same airport stay two rows, each with its own features and prediction
    assert population == [(dt.date(2013, 2, 1), dt.datetime(2013, 2, 1, 8)),
                          (dt.date(2013, 2, 1), dt.datetime(2013, 2, 1, 17))]
    assert [row[0] for row in features] == [count for _, count in scheduled] and features[0] != features[1]
    assert predictions == [(dt.datetime(2013, 2, 1, 8), dt.date(2013, 2, 1), scheduled[0][1]),
                           (dt.datetime(2013, 2, 1, 17), dt.date(2013, 2, 1), scheduled[1][1])]
    # 3 airports x 24 hours a day: 26 days built, 2 scored
    assert stored["population.origin_hours"] == (26 * 72, 26 * 72, 26)
    assert stored["features.origin_hour_schedule"] == (26 * 72, 26 * 72, 26)
    assert stored["predictions.origin_departures"] == (2 * 72, 2 * 72, 2) and result.scored_rows == 144
    assert judged == [(dt.date(2013, 2, 1), "labelled", 72), (dt.date(2013, 2, 2), "labelled", 72)]
    summary = result.task_evaluation
    assert summary is not None and summary.test_rows == 6 * 72

    again = run_chain(project, "origin_departures", score_days=2, say=lines.append)
    assert again.runs == []  # nothing changed: every step is up to date


def test_a_feature_that_leaks_within_a_day_of_hours_is_caught_by_the_point_in_time_proof(tmp_path, dagster_home):
    schedule = SCHEDULE.read_text(encoding="utf-8")
    assert schedule.count("any_value(e.origin)") == 1
    leaking = schedule.replace("any_value(e.origin)", LEAK + "any_value(e.origin)").replace(
        "features:\n", "features:\n  departed_day_before: {type: number, description: departures of the day before}\n")
    project = _project(tmp_path / "project", leaking)
    lines = []
    with pytest.raises(DemoError) as caught:
        run_chain(project, "origin_departures", score_days=2, say=lines.append)
    message = str(caught.value)
    # the daily partitions' run fails on the blocking check; the proof cuts at each hour's own prediction time
    # (26 days x 24 hours) and names the leaking feature and the airport's hour that differs
    assert daily_job_name("origin_departures") in message and "data check point_in_time failed" in message, lines
    assert "of feature set 'origin_hour_schedule' differ when recomputed" in message
    assert "of 624 prediction time(s)" in message
    assert re.search(r"feature 'departed_day_before', key (EWR|JFK|LGA)\|2013-01-\d\d \d\d:00:00 \(day 2013-01-\d\d, "
                     r"prediction time 2013-01-\d\d \d\d:00\)", message), message
    assert "feature 'scheduled_in_hour'" not in message  # the honest features pass their proof


def test_a_replay_scores_each_days_hours_on_the_evening_before_and_judges_them_the_day_after(tmp_path,
                                                                                              dagster_home):
    from ml_platform.replay.story import replay, summary_lines

    root = tmp_path / "replayed"
    (root / "model_specs" / "entities").mkdir(parents=True)
    shutil.copytree(SPECS / "sources", root / "model_specs" / "sources")
    shutil.copyfile(SPECS / "entities" / "origin_hours.yaml", root / "model_specs" / "entities" / "origin_hours.yaml")
    shutil.copytree(SPECS / "origin_hours", root / "model_specs" / "origin_hours")
    shutil.copyfile(REPO_ROOT / "dagster.yaml", root / "dagster.yaml")
    shutil.copyfile(REPO_ROOT / "workspace.yaml", root / "workspace.yaml")
    project = project_at(root)
    lines = []
    result = replay(project, dt.date(2013, 4, 1), dt.date(2013, 4, 2), say=lines.append)
    summary = summary_lines(project, result)

    assert "origin_departures: 2 of 2 days scored" in summary, summary
    # the clock's first day (March 31) scores April 1st's 72 airport-hours at 23:00; a regression decides, no flags
    assert any(line.startswith("[  1/3] 2013-03-31") and "scored 2013-04-01: 72 rows, decided by" in line
               for line in lines), lines
    with open_warehouse(project.storage.warehouse) as connection:
        scored = connection.execute("SELECT CAST(partition_date AS DATE), count(DISTINCT partition_start), count(*) "
                                    "FROM predictions.origin_departures GROUP BY 1 ORDER BY 1").fetchall()
        judged = connection.execute("SELECT CAST(day AS DATE), status FROM monitoring.origin_departures__outcomes "
                                    "ORDER BY 1").fetchall()
    assert scored[:2] == [(dt.date(2013, 4, 1), 24, 72), (dt.date(2013, 4, 2), 24, 72)], scored
    assert (dt.date(2013, 4, 1), "labelled") in judged, judged
