"""`ml-platform replay --model`: only the named models' chains live through the simulated days."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re

import dagster as dg
import pytest

from ml_platform.cli import main
from ml_platform.cli.demo_commands import model_names
from ml_platform.definitions import ModelSelectionError, only_models
from ml_platform.features.library import load_catalog
from ml_platform.names import (PARTITION_TAG, TICK_TAG, daily_job_name, feature_asset, outcomes_job_name,
                               outcomes_schedule_name, retraining_sensor_name, scoring_schedule_name, source_asset,
                               training_job_name)
from ml_platform.replay.clock import ReplayError
from ml_platform.replay.story import replay
from ml_platform.storage.versions import partition_versions
from ml_platform.storage.warehouse import open_warehouse, table_exists
from ml_platform_tests.helpers import instance_of, january_model

SCHEDULE_ONLY = ["departure_hour", "day_of_week", "carrier_code", "origin_airport", "destination_airport",
                 "distance_miles"]  # flight_schedule's features: the flights source alone, no weather


def two_models(make_project):
    return make_project({"flight_delay": january_model(),
                         "flight_schedule_only": january_model(name="flight_schedule_only", features=SCHEDULE_ONLY)})


def test_model_names_accept_repeated_options_and_comma_lists():
    assert model_names(None) is None
    assert model_names(["b", "a, c", "b"]) == ["b", "a", "c"]
    assert model_names([" , "]) == []  # given, yet naming nothing: the replay says so (below)


def test_an_unknown_model_is_an_error_listing_the_known_models(make_project, dagster_home, capsys):
    project = two_models(make_project)
    with pytest.raises(ReplayError) as error:
        replay(project, dt.date(2013, 2, 1), dt.date(2013, 2, 1), say=lambda line: None, models=["flight_dely"])
    assert str(error.value) == (f"--model flight_dely: no model spec of that name in {project.specs_dir}; the models "
                                f"are: flight_delay, flight_schedule_only")
    assert main(["--project", str(project.root), "replay", "--from", "2013-02-01", "--to", "2013-02-01",
                 "--model", "flight_delay,nope", "--model", "other"]) == 1
    assert capsys.readouterr().err.strip() == (
        f"error: --model nope, other: no model spec of that name in {project.specs_dir}; the models are: "
        f"flight_delay, flight_schedule_only")
    assert main(["--project", str(project.root), "replay", "--from", "2013-02-01", "--to", "2013-02-01",
                 "--model", ","]) == 1
    assert capsys.readouterr().err.strip() == (
        f"error: --model (empty): no model spec of that name in {project.specs_dir}; the models are: "
        f"flight_delay, flight_schedule_only")
    assert not instance_of(project).get_runs()  # nothing ran


def test_the_definitions_hold_only_the_selected_models(make_project):
    catalog = load_catalog(two_models(make_project).specs_dir)
    assert only_models(catalog, None) is catalog
    chosen = only_models(catalog, ["flight_schedule_only"])
    assert list(chosen.models) == ["flight_schedule_only"]
    assert chosen.feature_sets == catalog.feature_sets and chosen.sources == catalog.sources
    with pytest.raises(ModelSelectionError) as error:
        only_models(catalog, ["flight_schedule_only", "nope"])
    assert str(error.value) == (f"ML_PLATFORM_MODELS names nope: no model spec of that name in {catalog.specs_dir}; "
                                f"the models are: flight_delay, flight_schedule_only")


@pytest.mark.slow
def test_a_replay_of_one_model_runs_only_its_chain_and_what_it_reads(make_project, dagster_home):
    project = two_models(make_project)
    lines: list[str] = []
    result = replay(project, dt.date(2013, 2, 1), dt.date(2013, 2, 2), say=lines.append,
                    models=["flight_schedule_only"])

    assert list(result.ledgers) == ["flight_schedule_only"]
    assert lines[0] == "[history] what existed before 2013-02-01 for flight_schedule_only"
    day_lines = [line for line in lines if line.startswith("[ ")]
    assert len(day_lines) == 3 and all("flight_delay" not in line for line in day_lines), day_lines
    assert "flight_schedule_only: retrained 2013-01-31_" in day_lines[1] and "PROMOTED" in day_lines[1]
    assert result.ledgers["flight_schedule_only"].scored_days == ["2013-02-02", "2013-02-03"]

    instance = instance_of(project)
    ticked = sorted({(run.job_name, run.tags.get(PARTITION_TAG)) for run in instance.get_runs()
                     if TICK_TAG in run.tags})
    daily, outcomes = daily_job_name("flight_schedule_only"), outcomes_job_name("flight_schedule_only")
    assert ticked == [(daily, "2013-02-01"), (daily, "2013-02-02"), (daily, "2013-02-03"),
                      (outcomes, "2013-01-30"), (outcomes, "2013-01-31"), (outcomes, "2013-02-01"),
                      (training_job_name("flight_schedule_only"), ticked[-1][1])]
    assert all(run.status == dg.DagsterRunStatus.SUCCESS for run in instance.get_runs())
    # the other model's schedules and sensor never ticked: the replay's code location does not hold them
    states = {state.instigator_name: state for state in instance.all_instigator_state()}
    for name in (scoring_schedule_name("flight_delay"), outcomes_schedule_name("flight_delay"),
                 retraining_sensor_name("flight_delay")):
        assert name not in states or not instance.get_ticks(states[name].instigator_origin_id,
                                                            states[name].selector_id), name
    with open_warehouse(project.storage.warehouse) as connection:
        assert not table_exists(connection, "predictions", "flight_delay")
        # the history loaded only what the replayed model reads: no weather, no weather features
        assert not partition_versions(connection, source_asset("weather"))
        assert not partition_versions(connection, feature_asset("origin_weather_eve"))
        assert "2013-01-15" in partition_versions(connection, feature_asset("flight_schedule"))


# a wall-clock duration (a model card's training_seconds, ...): measured, not a result of the runs
DURATION = re.compile(r'"(\w*seconds)": [-+0-9.eE]+')


def recorded(project) -> dict[str, list[tuple]]:
    """Every row of every warehouse table as text, sorted: what a replay recorded. Left out: Dagster run ids (each
    replay has its own runs), wall-clock durations, and when a partition version was recorded (the history before
    the clock is loaded on the wall clock)."""
    with open_warehouse(project.storage.warehouse) as connection:
        tables = connection.execute("SELECT table_schema, table_name FROM information_schema.tables WHERE "
                                    "table_type = 'BASE TABLE' ORDER BY 1, 2").fetchall()
        found = {}
        for schema, name in tables:
            frame = connection.execute(f'SELECT * FROM "{schema}"."{name}"').df()
            kept = [column for column in frame.columns if "run_id" not in column and "seconds" not in column
                    and not (name == "partition_versions" and column == "recorded_at")]
            found[f"{schema}.{name}"] = sorted(tuple(DURATION.sub(r'"\1": ...', str(value)) for value in row)
                                               for row in frame[kept].itertuples(index=False))
    return found


@pytest.mark.slow
def test_a_replay_reusing_what_does_not_change_records_what_a_replay_building_all_anew_records(
        make_project, dagster_home, tmp_path):
    # a first training run (the morning of 2013-02-01), its promotion, scoring with drift and judging: the days a
    # replay kept its definitions, drift reference and event log databases against one that built each anew
    reusing = make_project(name="reusing")
    anew = dataclasses.replace(make_project(name="anew"), dagster_home=tmp_path / "anew_home")
    runs = {}
    for project, reuse in ((reusing, True), (anew, False)):
        result = replay(project, dt.date(2013, 1, 31), dt.date(2013, 2, 3), say=lambda line: None, reuse=reuse)
        assert [training.promoted for training in result.ledgers["flight_delay"].trainings] == [True]
        runs[reuse] = sorted((run.job_name, run.tags.get(PARTITION_TAG), run.status.value)
                             for run in instance_of(project).get_runs() if TICK_TAG in run.tags)
    assert runs[True] == runs[False] and len(runs[True]) == 11, runs  # 5 days scored, 5 judged, 1 training
    first, second = recorded(reusing), recorded(anew)
    assert sorted(first) == sorted(second)
    assert {"predictions.flight_delay", "registry.promotions"} <= set(first), sorted(first)
    differing = [table for table in first if first[table] != second[table]]
    assert not differing, {table: [row for row in first[table] if row not in second[table]][:2] for table in differing}
