"""Drift binned once per reference, read from the inputs' STRUCT fields, gives the PSIs of the definition: bins
recomputed for every day and each stored JSON value coded on its own (as monitoring first did)."""

from __future__ import annotations

import datetime as dt
import json
from contextlib import closing

import duckdb
import numpy as np
import pandas as pd
import pytest

from ml_platform.monitoring.bins import Bins
from ml_platform.monitoring.drift import (PSI_ALARM, SCORE, Reference, day_drift, partition_level, reference_of,
                                         scored_days, window_drift)
from ml_platform.specs.models import ModelSpec
from ml_platform.storage.warehouse import prepare
from ml_platform_tests.helpers import january_model
from ml_platform_tests.monitoring.helpers import definition_psi

DAY = dt.date(2013, 2, 1)
VERSION = "flight_delay-000000000001"
# training-like rows with what real features have: NULLs and NaN among numbers, nullable integers, categories
# with NULLs, booleans with and without NULLs (pandas types them bool and boolean), a constant, a sparse number
FEATURES_SQL = """
    CASE WHEN i % 17 = 0 THEN NULL ELSE (i % 97) * 1.5 + {shift} END AS distance_miles,
    CAST(CASE WHEN i % 23 = 0 THEN NULL ELSE i % {ages} END AS INTEGER) AS plane_age_years,
    CAST(i % 7 AS INTEGER) AS day_of_week,
    CASE WHEN i % 11 = 0 THEN NULL ELSE {carriers}[i % 4 + 1] END AS carrier_code,
    i % {holidays} = 0 AS is_holiday,
    CASE WHEN i % 5 = 0 THEN NULL ELSE i % {wet} = 0 END AS wet_day,
    42.0 AS constant_value,
    CASE WHEN i % 13 = 0 THEN 'nan'::DOUBLE WHEN i % 29 = 0 THEN 'inf'::DOUBLE ELSE i / 7.0 END AS ratio,
    CASE WHEN i % 50 = 0 THEN i ELSE NULL END AS sparse_count
"""
TRAINING = FEATURES_SQL.format(shift=0, ages=12, carriers="['UA', 'B6', 'DL', 'AA']", holidays=3, wet=2)
# the day drifts: numbers shift, a carrier never seen in training arrives, booleans change their mix
DAY_ROWS = FEATURES_SQL.format(shift=20, ages=9, carriers="['UA', 'ZZ', 'ZZ', 'AA']", holidays=4, wet=3)


def scored_warehouse(path) -> duckdb.DuckDBPyConnection:
    """A warehouse whose predictions of DAY hold the day's rows, inputs as a STRUCT."""
    connection = duckdb.connect(str(path))
    prepare(connection)
    names = [line.split(" AS ")[-1].strip().rstrip(",") for line in DAY_ROWS.strip().splitlines()]
    inputs = f"struct_pack({', '.join(f'{name} := {name}' for name in names)})"
    connection.execute(
        f"CREATE TABLE predictions.flight_delay AS SELECT CAST(i AS VARCHAR) AS flight_id, "
        f"TIMESTAMP '{DAY} 00:00:00' AS partition_date, (i % 100) / 100.0 + 0.2 AS score, "
        f"'{VERSION}' AS model_version, {inputs} AS inputs FROM (SELECT i, {DAY_ROWS} FROM range(900) AS t(i))")
    connection.execute("CREATE VIEW predictions.flight_delay__latest AS SELECT * FROM predictions.flight_delay")
    return connection


def test_psis_binned_once_from_struct_fields_equal_the_definition_on_each_stored_json_value(tmp_path):
    training = duckdb.connect().execute(f"SELECT {TRAINING} FROM range(5000) AS t(i)").df()
    # pandas types these columns as the snapshot reader would: nullable integers and booleans, objects, floats
    assert str(training["plane_age_years"].dtype) == "Int32" and str(training["wet_day"].dtype) == "boolean"
    assert training["is_holiday"].dtype == bool and training["carrier_code"].dtype == object
    scores = np.linspace(0.1, 0.6, 400)
    reference = Reference(VERSION, {name: Bins.of(training[name]) for name in training.columns},
                          Bins.of(pd.Series(scores)))
    model = ModelSpec.model_validate(january_model())
    with closing(scored_warehouse(tmp_path / "warehouse.duckdb")) as connection:
        with closing(scored_days(connection, model, DAY, DAY)) as scored:
            (day, rows), = scored
        assert day == DAY
        measured = day_drift(reference, rows).set_index("feature")
        stored = connection.execute("SELECT CAST(to_json(inputs) AS VARCHAR) AS inputs, score "
                                    "FROM predictions.flight_delay").df()
    parsed = pd.DataFrame([json.loads(text) for text in stored["inputs"]], columns=list(training.columns))
    expected = {name: definition_psi(training[name], parsed[name]) for name in training.columns}
    expected[SCORE] = definition_psi(pd.Series(scores), stored["score"])
    assert measured["psi"].to_dict() == expected
    assert set(measured["rows"]) == {900}
    # the frame is realistic: unseen carriers, missing values and drifted numbers all move the PSIs
    assert all(expected[name] > 0.01 for name in ("distance_miles", "plane_age_years", "carrier_code", "is_holiday",
                                                  "wet_day", "ratio", "sparse_count", SCORE)), expected
    assert expected["constant_value"] == pytest.approx(0.0, abs=1e-12)


def _days(first: int, count: int, generator: np.random.Generator, rows: int = 60) -> pd.DataFrame:
    """Days of flights from three airports drawn from one process: the day of the week and each airport's
    temperature are one value per day (and airport), the hour one per flight, the score follows the temperature."""
    frames = []
    for day in range(first, first + count):
        temperatures = dict(zip("ABC", generator.normal(60, 15, 3)))
        origin = generator.choice(list("ABC"), rows)
        temperature = np.array([temperatures[code] for code in origin])
        frames.append(pd.DataFrame({
            "partition_date": day, "day_of_week": day % 7, "origin": origin, "temperature": temperature,
            "hour": generator.uniform(5, 23, rows),
            "score": 1 / (1 + np.exp(-(60 - temperature) / 10 - generator.normal(0, 0.3, rows)))}))
    return pd.concat(frames, ignore_index=True)


def test_a_missing_value_is_no_second_value_and_a_missing_group_is_a_partition_of_its_own():
    # 100 days of 4 rows: "eve" holds one value per day and airport, missing on some rows; the airport is missing on
    # one row a day, whose "eve" differs from every airport's; "noisy" has a second value on 4 days of 100 (96%, and
    # 98.7% of the day-and-airport cells: both below 99%)
    rows = []
    for day in range(100):
        for index, origin in enumerate(["A", "A", "B", None]):
            eve = None if index == 1 and day % 3 == 0 else {"A": day, "B": day + 0.5, None: -day}[origin]
            rows.append({"partition_date": day, "origin": origin, "eve": eve, "day_of_week": day % 7,
                         "noisy": float(day) + (index == 0 and day in (5, 6, 7, 8)), "empty": None})
    training = pd.DataFrame(rows).astype({"eve": float, "empty": float})
    features = ["origin", "eve", "day_of_week", "noisy", "empty"]
    assert partition_level(training, features) == {"day_of_week": (), "empty": (), "eve": ("origin",)}
    # 99 of 100 days holding one value is constant enough
    assert partition_level(training.assign(noisy=training["partition_date"].where(
        (training["partition_date"] != 5) | (training.index % 4 != 3), -1.0)), features)["noisy"] == ()


def test_features_constant_within_a_day_are_found_in_training_and_compared_across_days():
    generator = np.random.default_rng(7)
    training = _days(0, 240, generator)
    features = ["day_of_week", "origin", "temperature", "hour"]
    assert partition_level(training, features) == {"day_of_week": (), "temperature": ("origin",)}
    pooled = reference_of(VERSION, training, features, training["score"])
    daily = reference_of(VERSION, training, features, training["score"], by_partition=False)
    assert pooled.scope("temperature") == "days x origin" and daily.partition_level == {}
    week = _days(1000, 7, generator).rename(columns={name: f"input:{name}" for name in features})
    week = week.assign(model_version=VERSION, day=week["partition_date"])
    measured = window_drift(pooled, week).set_index("feature")
    one_day = day_drift(daily, week[week["day"] == 1003]).set_index("feature")
    # one day alone: its one day of the week and its three temperatures drift, by construction, as do its scores
    assert one_day.loc["day_of_week", "psi"] > PSI_ALARM and one_day.loc["temperature", "psi"] > PSI_ALARM
    # pooled over the week and compared across days, the same process is stable
    assert measured.loc["day_of_week", "psi"] < 0.01
    assert measured.loc["temperature", "psi"] < PSI_ALARM and measured.loc[SCORE, "psi"] < PSI_ALARM
    assert measured.loc["hour", "psi"] < 0.1
    assert set(measured["window_days"]) == {7} and set(measured["window_rows"]) == {7 * 60}
    assert measured.loc["temperature", "scope"] == "days x origin" and measured.loc["hour", "scope"] == "rows"
    # a week truly colder than training drifts on the pooled measure too
    cold = week.assign(**{"input:temperature": week["input:temperature"] - 40})
    assert window_drift(pooled, cold).set_index("feature").loc["temperature", "psi"] > PSI_ALARM


@pytest.mark.parametrize("reference, parts", [
    (pd.Series([1.0, 2.0, 3.0, np.nan, 5.0, 8.0, 13.0] * 20),
     [pd.Series([1.0, np.inf, 2.5]), pd.Series([], dtype=float), pd.Series([np.nan, 40.0, 0.5, 3.0] * 3)]),
    (pd.Series(["JFK", "LGA", None, "EWR"] * 10, dtype=object),
     [pd.Series(["JFK", "BOS", None]), pd.Series(["EWR", "EWR", "LGA"], dtype=object), pd.Series([], dtype=object)]),
], ids=["numbers", "categories"])
def test_a_population_s_psi_from_its_parts_bin_counts_is_the_psi_of_its_values(reference, parts):
    bins = Bins.of(reference)
    pooled = pd.concat(parts, ignore_index=True)
    counts = sum((bins.counts(part) for part in parts), np.zeros(bins.size, dtype=np.int64))

    assert counts.sum() == len(pooled)
    assert bins.psi_of_counts(counts) == bins.psi(pooled)  # the same bits: a window's days binned one by one
    assert bins.psi_of_counts(np.zeros(bins.size, dtype=np.int64)) == bins.psi(pooled.iloc[:0])
