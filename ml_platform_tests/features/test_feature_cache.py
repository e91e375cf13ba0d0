"""The feature cache in both directions: every real change recomputes what it affects, and nothing else."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import pandas as pd
import pytest

from ml_platform.names import (DAILY_JOB, REFERENCE_JOB, outcomes_job_name, scoring_job_name,
                               training_job_name)
from ml_platform.chain.model_chain import DemoError, run_chain
from ml_platform.chain.runner import Chain
from ml_platform.features import functions
from ml_platform.sources.loading import source_file
from ml_platform.features.library import load_catalog

from ml_platform_tests.helpers import january_model, load_yaml, route_load_feature_set, write_yaml

# drives chains of Dagster runs: the full suite only (`pytest -m "not slow"` leaves it out)
pytestmark = pytest.mark.slow

JANUARY = (dt.date(2013, 1, 1), dt.date(2013, 1, 31))  # within the demo chain's window of the January project
SETS = ("flight_schedule", "origin_weather_eve", "aircraft_and_destination", "disruption_history")


def _metadata(name: str) -> dict:
    event = dg.DagsterInstance.get().get_latest_materialization_event(dg.AssetKey(name.split("/")))
    return {key: value.value for key, value in event.asset_materialization.metadata.items()}


def _run_daily(project) -> dict[str, dict]:
    runner = Chain(project, load_catalog(project.specs_dir, project.root), say=lambda line: None)
    assert runner.run(DAILY_JOB, "daily", date_range=JANUARY).success, runner.runs[-1].failures
    return {name: _metadata(f"features/{name}") for name in SETS}


def _recomputed(results: dict[str, dict]) -> dict[str, int]:
    return {name: result["recomputed_days"] for name, result in results.items()}


@pytest.fixture
def csv_project(make_project, dagster_home):
    """A January project whose flights come from a CSV file in the project, so a test can edit a day's rows."""
    project = make_project()
    catalog = load_catalog(project.specs_dir, project.root)
    flights = pd.read_csv(source_file(catalog.sources["flights"], project.root))
    path = project.root / "data" / "flights.csv"
    path.parent.mkdir()
    flights[flights["month"] == 1].to_csv(path, index=False, na_rep="NA")
    spec_path = project.specs_dir / "sources" / "flights.yaml"
    spec = load_yaml(spec_path)
    spec["location"] = {"kind": "file", "path": "data/flights.csv", "format": "csv", "null_string": "NA"}
    write_yaml(spec_path, spec)
    runner = Chain(project, load_catalog(project.specs_dir, project.root), say=lambda line: None)
    assert runner.run(REFERENCE_JOB, "reference").success
    first = _run_daily(project)
    assert _recomputed(first) == {name: 31 for name in SETS}
    return project


def test_nothing_changed_recomputes_nothing_and_reads_no_source(csv_project):
    again = _run_daily(csv_project)
    assert _recomputed(again) == {name: 0 for name in SETS}
    assert all(result["why_recomputed"] == "nothing changed" for result in again.values())
    assert _metadata("source/flights")["reused"].startswith("31 partition(s) already loaded from the same file")


def test_one_changed_source_day_recomputes_exactly_the_days_that_read_it(csv_project):
    path = csv_project.root / "data" / "flights.csv"
    flights = pd.read_csv(path)
    flights.loc[flights["day"] == 10, "dep_delay"] += 30
    flights.to_csv(path, index=False, na_rep="NA")
    results = _run_daily(csv_project)
    assert _metadata("source/flights")["changed_partitions"] == 1
    # each set reads flights over [day - lookback, day]: lookback 0, 1, 0 and 14 days
    assert _recomputed(results) == {"flight_schedule": 1, "origin_weather_eve": 2,
                                    "aircraft_and_destination": 1, "disruption_history": 15}
    assert results["disruption_history"]["why_recomputed"] == "15 day(s) changed: source flights"


def test_a_changed_feature_sql_recomputes_that_set_only(csv_project):
    path = csv_project.specs_dir / "features" / "flight_schedule.yaml"
    spec = load_yaml(path)
    spec["sql"] = spec["sql"].replace("distance                                     AS distance_miles",
                                      "round(distance)                              AS distance_miles")
    write_yaml(path, spec)
    results = _run_daily(csv_project)
    assert _recomputed(results) == {"flight_schedule": 31, "origin_weather_eve": 0,
                                    "aircraft_and_destination": 0, "disruption_history": 0}
    assert results["flight_schedule"]["why_recomputed"] == "31 day(s) changed: definition"


def test_a_changed_description_recomputes_nothing(csv_project):
    path = csv_project.specs_dir / "features" / "flight_schedule.yaml"
    spec = load_yaml(path)
    spec["description"] = "Reworded for readers; computes the same values."
    spec["features"]["distance_miles"]["description"] = "reworded"
    write_yaml(path, spec)
    assert _recomputed(_run_daily(csv_project)) == {name: 0 for name in SETS}


def test_a_feature_set_recomputes_when_a_feature_set_it_uses_changes(csv_project):
    write_yaml(csv_project.specs_dir / "features" / "route_load.yaml", route_load_feature_set())
    sets = SETS + ("route_load",)
    runner = Chain(csv_project, load_catalog(csv_project.specs_dir, csv_project.root), say=lambda line: None)
    assert runner.run(DAILY_JOB, "daily", date_range=JANUARY).success, runner.runs[-1].failures
    assert _metadata("features/route_load")["recomputed_days"] == 31
    path = csv_project.specs_dir / "features" / "flight_schedule.yaml"
    spec = load_yaml(path)
    spec["sql"] = spec["sql"].replace("PARTITION BY origin, partition_date, hour)",
                                      "PARTITION BY origin, partition_date, hour, carrier)")
    write_yaml(path, spec)
    runner = Chain(csv_project, load_catalog(csv_project.specs_dir, csv_project.root), say=lambda line: None)
    assert runner.run(DAILY_JOB, "daily", date_range=JANUARY).success
    recomputed = {name: _metadata(f"features/{name}")["recomputed_days"] for name in sets}
    assert recomputed == {"flight_schedule": 31, "route_load": 31, "origin_weather_eve": 0,
                          "aircraft_and_destination": 0, "disruption_history": 0}




def test_a_changed_registered_function_recomputes_the_sets_that_call_it(csv_project, monkeypatch, tmp_path):
    module = tmp_path / "weekend_functions.py"
    module.write_text("def is_weekend(day):\n    return day.isoweekday() >= 6\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import importlib

    loaded = importlib.import_module("weekend_functions")
    monkeypatch.setitem(functions.REGISTRY, "is_weekend", functions.RegisteredFunction(
        "is_weekend", loaded.is_weekend, ("DATE",), "BOOLEAN", "Saturday or Sunday"))
    write_yaml(csv_project.specs_dir / "features" / "weekend.yaml", {
        "spec_version": 1, "kind": "feature_set", "name": "weekend", "owner": "team:flight-ops-ds",
        "description": "Whether the flight leaves on a weekend.", "entity": "flights", "functions": ["is_weekend"],
        "known_by": {"days_before": 1, "time": "00:00"},
        "sql": "SELECT flight_id, CAST(is_weekend(partition_date) AS INTEGER) AS weekend_departure FROM entity",
        "features": {"weekend_departure": {"type": "category", "description": "1 on Saturday and Sunday"}}})
    runner = Chain(csv_project, load_catalog(csv_project.specs_dir, csv_project.root), say=lambda line: None)
    assert runner.run(DAILY_JOB, "daily", date_range=JANUARY).success, runner.runs[-1].failures
    assert _metadata("features/weekend")["recomputed_days"] == 31
    assert runner.run(DAILY_JOB, "daily", date_range=JANUARY).success
    assert _metadata("features/weekend")["recomputed_days"] == 0
    module.write_text("def is_weekend(day):\n    return day.isoweekday() >= 5  # Friday counts now\n")
    importlib.reload(loaded)
    monkeypatch.setitem(functions.REGISTRY, "is_weekend", functions.RegisteredFunction(
        "is_weekend", loaded.is_weekend, ("DATE",), "BOOLEAN", "Friday to Sunday"))
    runner = Chain(csv_project, load_catalog(csv_project.specs_dir, csv_project.root), say=lambda line: None)
    assert runner.run(DAILY_JOB, "daily", date_range=JANUARY).success
    assert _metadata("features/weekend")["recomputed_days"] == 31
    assert _metadata("features/flight_schedule")["recomputed_days"] == 0


def test_a_hyper_parameter_change_recomputes_no_feature(make_project, dagster_home):
    project = make_project()
    run_chain(project, "flight_delay", score_days=1, say=lambda line: None)
    tuned = january_model()
    tuned["algorithm"]["params"]["learning_rate"] = 0.1
    tuned["gate"]["min_gain_over_champion"] = None  # the re-tune need not beat the champion: features are the point
    write_yaml(project.specs_dir / "flight_delay.yaml", tuned)
    lines: list[str] = []
    second = run_chain(project, "flight_delay", score_days=1, say=lines.append)
    # the chain found every source and feature partition at its version and launched no load at all
    assert [run.job for run in second.runs] == [training_job_name("flight_delay"), scoring_job_name("flight_delay"),
                                                outcomes_job_name("flight_delay")]
    assert "     up to date: every partition is stored at the version it would get; no run needed" in lines
    # and a run launched anyway recomputes nothing
    assert _recomputed(_run_daily(project)) == {name: 0 for name in SETS}
    assert second.evaluation.model_version != ""


def test_a_changed_feature_set_retrains_and_the_new_model_is_compared_with_the_champion(make_project, dagster_home):
    """After a feature set changes, the champion cannot score with today's features any more: the challenger is
    compared with the test predictions the champion's own evaluation stored, on the same rows; and production
    scoring refuses to feed the champion features it never saw, saying so, rather than scoring skewed."""
    project = make_project()
    first = run_chain(project, "flight_delay", score_days=1, say=lambda line: None)
    path = project.specs_dir / "features" / "origin_weather_eve.yaml"
    spec = load_yaml(path)
    spec["sql"] = spec["sql"].replace("WHERE hour < 18", "WHERE hour < 17")
    write_yaml(path, spec)
    lines: list[str] = []
    try:
        run_chain(project, "flight_delay", score_days=1, say=lines.append)
    except DemoError as error:  # the challenger lost (this change makes it worse on January): nothing can score
        assert "feature set 'origin_weather_eve' changed since" in str(error)
        assert "retrain and deploy a new version first" in str(error)
    output = "\n".join(lines)
    assert f"for champion {first.champion.model_version} on the same 5,144 test rows" in output
    assert "cannot be scored" not in output
