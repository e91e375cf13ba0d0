"""`known_by` relative to the entity row's time, as the loader reads it: every form accepted where it applies, each
checked against the model's scoring time; an hourly entity's feature sets and models load, their rows keyed by
their hour (partition_start), a day's hours judged against the day's scoring time by its last hour."""

from __future__ import annotations

import pytest

from ml_platform.specs.models import KnownBy
from ml_platform_tests.helpers import SPECS
from ml_platform_tests.specs.helpers import errors_of, load, make_specs

SCHEDULE = (SPECS / "features" / "flight_schedule.yaml").read_text(encoding="utf-8")
FORM = 'known_by: {days_before: 1, time: "00:00"}'


@pytest.mark.parametrize("form, known_by", [
    ("{hours_before: 24}", KnownBy(hours_before=24)),
    ("{days_before: 1}", KnownBy(days_before=1)),
    ("{months_before: 1}", KnownBy(months_before=1)),
    ('{days_before: 2, time: "06:00"}', KnownBy(days_before=2, time="06:00")),
])
def test_every_form_loads_for_a_daily_entity_and_its_model(tmp_path, form, known_by):
    assert FORM in SCHEDULE
    root = make_specs(tmp_path, {"features/flight_schedule.yaml": SCHEDULE.replace(FORM, f"known_by: {form}")},
                      repository_model=True)
    catalog = load(root)
    assert catalog.feature_sets["flight_schedule"].known_by == known_by


def test_a_relative_form_known_after_the_model_predicts_is_named(tmp_path):
    # the model predicts at 18:00 the day before; three hours before a flight's date is 21:00 that day
    late = SCHEDULE.replace(FORM, "known_by: {hours_before: 3}")
    root = make_specs(tmp_path, {"features/flight_schedule.yaml": late}, repository_model=True)
    errors = errors_of(root)
    catalog_features = [name for name in load(make_specs(tmp_path / "ok", {}, repository_model=True)).models[
        "flight_delay"].features]
    schedule = load(make_specs(tmp_path / "ok2", {})).feature_sets["flight_schedule"].features
    expected = [f"model_specs/flight_delay.yaml: model 'flight_delay', field 'features[{index}]': feature '{name}' "
                f"of feature set 'flight_schedule' is known only 3 hour(s) before the row's time, after the model "
                f"predicts (1 day(s) before at 18:00; field cadence.predict_at)"
                for index, name in enumerate(catalog_features) if name in schedule]
    assert errors == expected and len(expected) > 1


def test_the_clock_form_is_stored_as_before_so_feature_versions_and_spec_hashes_keep_their_values(tmp_path):
    catalog = load(make_specs(tmp_path, {}, repository_model=True))
    assert catalog.feature_sets["flight_schedule"].model_dump(mode="json")["known_by"] == {
        "days_before": 1, "time": "00:00"}
    assert catalog.models["flight_delay"].model_dump(mode="json")["cadence"]["predict_at"] == {
        "days_before": 1, "time": "18:00"}


HOURLY = """\
spec_version: 1
kind: entity
name: origin_hours
description: Each New York airport with departures in the hour before, at each hour.
owner: team:flight-ops-ds
keys: [origin]
grain: hourly
time: hour_start
reads: [flights]
lookback: {days: 1}
population: |
  SELECT origin, b.partition_start AS hour_start, count(*) AS departures_last_hour
  FROM flights, bounds AS b
  GROUP BY ALL
start: 2013-02-01
end: 2013-02-28
timezone: America/New_York
"""

HOURLY_FEATURES = """\
spec_version: 1
kind: feature_set
name: origin_hour_features
description: Departures of the airport known a day ahead.
owner: team:flight-ops-ds
entity: origin_hours
known_by: {hours_before: 24}
sql: SELECT origin, partition_start, departures_last_hour AS departures FROM entity
features:
  departures: {type: number, description: departures in the hour before}
"""

HOURLY_MODEL = """\
spec_version: 1
kind: model
name: origin_hour_model
description: Departures per airport and hour.
owner: team:flight-ops-ds
entity: origin_hours
label:
  task: regression
  expression: "departures_last_hour"
features: [departures]
split:
  train: {start: 2013-02-01, end: 2013-02-14}
  validation: {start: 2013-02-15, end: 2013-02-20}
  test: {start: 2013-02-21, end: 2013-02-28}
algorithm:
  kind: lightgbm
money:
  currency: USD
  decision: {kind: quantity, scale: 1.0, offset: {min: 0, max: 0, step: 1}}
  value: "-abs(decision - label)"
gate: {min_money: -1000000000}
cadence:
  predict_at: {days_before: 1, time: "23:00"}
"""


def _hourly(tmp_path, features: str = HOURLY_FEATURES, model: str = HOURLY_MODEL):
    return make_specs(tmp_path, {"entities/origin_hours.yaml": HOURLY, "features/origin_hours.yaml": features,
                                 "origin_hour_model.yaml": model})


def test_an_hourly_entity_loads_with_its_feature_set_and_model_keyed_by_the_hour(tmp_path):
    catalog = load(_hourly(tmp_path))
    rows = catalog.entity_rows("origin_hours")
    assert (rows.keys, rows.grain, rows.row_grain) == (("origin", "partition_start"), "daily", "hourly")
    assert catalog.models["origin_hour_model"].entity == "origin_hours"
    daily = catalog.entity_rows("flights")  # every other entity keeps its keys and grain
    assert (daily.keys, daily.grain, daily.row_grain) == (("flight_id",), "daily", "daily")


def test_a_feature_set_of_an_hourly_entity_must_return_the_rows_hour(tmp_path):
    forgetful = HOURLY_FEATURES.replace("SELECT origin, partition_start,", "SELECT origin,")
    assert errors_of(_hourly(tmp_path, features=forgetful)) == [
        "model_specs/features/origin_hours.yaml: feature set 'origin_hour_features', field 'sql': must return the "
        "entity key column 'partition_start' (an hourly entity's row is a key in one hour: return "
        "entity.partition_start beside its keys)"]


def test_an_hourly_feature_known_after_the_days_scoring_is_named_by_its_last_hour(tmp_path):
    # the day's 24 hours are scored together at 18:00 the day before; 24 hours before 23:00 is 23:00 that day
    early = HOURLY_MODEL.replace('time: "23:00"', 'time: "18:00"')
    assert errors_of(_hourly(tmp_path, model=early)) == [
        "model_specs/origin_hour_model.yaml: model 'origin_hour_model', field 'features[0]': feature 'departures' of "
        "feature set 'origin_hour_features' is known only 24 hour(s) before the row's time, after the model "
        "predicts (1 day(s) before at 18:00; field cadence.predict_at) (for an hour's row: a day's 24 hours are "
        "scored together, so its last hour counts)"]
