"""The retraining decision: first run, cadence, new spec revision, drift, and every reason not to retrain."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from ml_platform.automation.cadence import Retraining, decide_retraining, last_labelled_day, period_end
from ml_platform.features.library import load_catalog
from ml_platform.monitoring.store import replace_days
from ml_platform.names import source_asset
from ml_platform.records.gate import Gate
from ml_platform.records.registry import PromotionRecord
from ml_platform.storage import registry
from ml_platform.records.versions import PartitionVersion
from ml_platform.storage.versions import record_versions
from ml_platform.storage.warehouse import open_warehouse

from ml_platform_tests.helpers import day, january_model

MONTHS = {"train": {"start": "2013-01-01", "end": "2013-01-31"},
          "validation": {"start": "2013-02-01", "end": "2013-02-28"},
          "test": {"start": "2013-03-01", "end": "2013-03-31"}}


@pytest.fixture
def setting(make_project):
    """A monthly model with whole-month windows, and a real warehouse whose flights days can be declared stored."""
    project = make_project({"flight_delay": january_model(split=MONTHS)})
    catalog = load_catalog(project.specs_dir, project.root)
    model = catalog.models["flight_delay"]
    with open_warehouse(project.storage.warehouse) as connection:
        yield connection, catalog, model


def store_days(connection, first: str, last: str, skip: tuple[str, ...] = ()) -> None:
    """Record flights days as stored in the version index, as a load would."""
    days = {}
    current = day(first)
    while current <= day(last):
        if current.isoformat() not in skip:
            days[current.isoformat()] = PartitionVersion(version="v", components={})
        current += dt.timedelta(days=1)
    record_versions(connection, source_asset("flights"), days)


@pytest.mark.parametrize("cadence, today, expected", [
    ("monthly", "2013-07-01", "2013-06-30"), ("monthly", "2013-06-30", "2013-06-30"),
    ("monthly", "2013-01-15", "2012-12-31"), ("quarterly", "2013-05-10", "2013-03-31"),
    ("quarterly", "2013-02-10", "2012-12-31"), ("weekly", "2013-07-03", "2013-06-30"),
    ("weekly", "2013-06-30", "2013-06-30"),
])
def test_periods_end_on_the_last_complete_week_month_or_quarter(cadence, today, expected):
    assert period_end(cadence, day(today)) == day(expected)


def test_labels_are_known_the_day_after_and_a_gap_stops_the_labelled_run(setting):
    connection, catalog, model = setting
    assert last_labelled_day(connection, catalog, model, day("2013-05-01")) is None
    store_days(connection, "2013-01-01", "2013-05-10", skip=("2013-04-15",))
    assert last_labelled_day(connection, catalog, model, day("2013-04-10")) == day("2013-04-09")
    assert last_labelled_day(connection, catalog, model, day("2013-05-20")) == day("2013-04-14")


def test_the_first_run_is_cut_off_at_the_last_complete_month(setting):
    connection, catalog, model = setting
    store_days(connection, "2013-01-01", "2013-04-20")
    decision = decide_retraining(connection, catalog, model, day("2013-04-20"), [])
    spec_hash = catalog.spec_hash(model)
    assert decision == Retraining(f"2013-03-31_{spec_hash}", day("2013-03-31"),
                                  "first training run: data through 2013-03-31")


def test_monthly_cadence_retrains_once_a_month_has_closed(setting):
    connection, catalog, model = setting
    spec_hash = catalog.spec_hash(model)
    store_days(connection, "2013-01-01", "2013-05-02")
    requested = [f"2013-03-31_{spec_hash}"]
    assert decide_retraining(connection, catalog, model, day("2013-04-30"), requested) == (
        f"up to date: the last run of spec {spec_hash} was cut off on 2013-03-31; next monthly cut-off after "
        f"2013-03-31")
    # on May 1 the labels of April 30 are known: April has closed
    decision = decide_retraining(connection, catalog, model, day("2013-05-01"), requested)
    assert decision.training_run == f"2013-04-30_{spec_hash}"
    assert decision.reason == ("monthly retraining: labelled data through 2013-04-30 (the last run was cut off on "
                               "2013-03-31)")
    assert decide_retraining(connection, catalog, model, day("2013-05-01"), requested + [decision.training_run]) \
        .startswith("up to date")


def test_a_new_spec_revision_trains_at_once(setting):
    connection, catalog, model = setting
    store_days(connection, "2013-01-01", "2013-05-02")
    decision = decide_retraining(connection, catalog, model, day("2013-05-02"), ["2013-04-30_0123456789ab"])
    assert decision.reason == f"new spec revision {catalog.spec_hash(model)}: data through 2013-04-30"


def test_drift_retrains_between_cut_offs_at_most_weekly(setting):
    connection, catalog, model = setting
    spec_hash = catalog.spec_hash(model)
    store_days(connection, "2013-01-01", "2013-05-20")
    requested = [f"2013-04-30_{spec_hash}"]
    alarm = lambda connection, name, today: "feature drift: eve_temp_f PSI 0.41"  # noqa: E731
    too_soon = decide_retraining(connection, catalog, model, day("2013-05-05"), requested, alarm)
    assert too_soon.startswith("up to date")
    decision = decide_retraining(connection, catalog, model, day("2013-05-10"), requested, alarm)
    assert decision == Retraining(f"2013-05-09_{spec_hash}", day("2013-05-09"),
                                  "drift alarm: feature drift: eve_temp_f PSI 0.41")
    quiet = decide_retraining(connection, catalog, model, day("2013-05-10"), requested, lambda *_: None)
    assert quiet.startswith("up to date")


def test_too_little_history_waits_and_says_why(setting):
    connection, catalog, model = setting
    store_days(connection, "2013-01-01", "2013-02-20")
    assert decide_retraining(connection, catalog, model, day("2013-02-20"), []) == (
        "not enough history yet: a training run of 'flight_delay' cut off on 2013-01-31 would have no training "
        "days: training would end on 2012-11-30, before split.train.start (2013-01-01)")


def test_no_stored_days_means_no_training(setting):
    connection, catalog, model = setting
    assert decide_retraining(connection, catalog, model, day("2013-05-01"), []) == (
        "no flights day with known labels is stored yet")


def store_outcomes(connection, version: str, first: str, daily_money: list[float]) -> None:
    """Store judged outcome days of a model version, each promising 100 a day (interval 80 to 120 a day, 30 test
    days), as the outcomes asset would."""
    rows = [{"day": day(first) + dt.timedelta(days=offset), "status": "labelled", "model_version": version,
             "rows_scored": 10, "labelled_rows": 10, "flagged": 2, "true_positives": 1, "false_positives": 1,
             "realized_money": money, "promised_money": 100.0, "promised_money_by_rows": 100.0,
             "promised_low": 80.0, "promised_high": 120.0, "test_days": 30, "currency": "USD",
             "computed_at": dt.datetime(2013, 6, 1), "run_id": "test"} for offset, money in enumerate(daily_money)]
    replace_days(connection, "flight_delay", "outcomes", pd.DataFrame(rows), [row["day"] for row in rows])


def promote_champion(connection, version: str) -> None:
    registry.promotions.add(connection, PromotionRecord(
        promotion_id=registry.promotions.next_id(connection), model="flight_delay", model_version=version,
        training_run="2013-04-30_0123456789ab", promoted_at=dt.datetime(2013, 5, 1), dagster_run_id="test",
        reason="test", gate=Gate()))


@pytest.mark.parametrize("daily, expected", [
    ([-50.0] * 7, "losing money"),
    ([50.0] * 7, "below the interval"),
])
def test_a_champion_under_water_on_its_last_7_judged_days_retrains_at_most_weekly(setting, daily, expected):
    connection, catalog, model = setting
    spec_hash = catalog.spec_hash(model)
    store_days(connection, "2013-01-01", "2013-05-20")
    promote_champion(connection, "flight_delay-champion")
    store_outcomes(connection, "flight_delay-champion", "2013-05-01", daily)
    requested = [f"2013-04-30_{spec_hash}"]
    assert decide_retraining(connection, catalog, model, day("2013-05-05"), requested).startswith("up to date")
    decision = decide_retraining(connection, catalog, model, day("2013-05-10"), requested,
                                 lambda *_: "prediction drift")
    assert decision.training_run == f"2013-05-09_{spec_hash}"
    assert decision.reason.startswith(f"realized money: the champion flight_delay-champion is {expected}: realized "
                                      f"{sum(daily):,.0f} USD over 7 judged day(s) (2013-05-01 to 2013-05-07) "
                                      f"against a promised 700")


def test_a_champion_on_track_or_with_too_few_judged_days_does_not_retrain(setting):
    connection, catalog, model = setting
    spec_hash = catalog.spec_hash(model)
    store_days(connection, "2013-01-01", "2013-05-20")
    promote_champion(connection, "flight_delay-champion")
    requested = [f"2013-04-30_{spec_hash}"]
    store_outcomes(connection, "flight_delay-champion", "2013-05-01", [-50.0] * 6)  # six days are no evidence
    assert decide_retraining(connection, catalog, model, day("2013-05-10"), requested).startswith("up to date")
    store_outcomes(connection, "flight_delay-champion", "2013-05-01", [100.0] * 7)  # on track
    assert decide_retraining(connection, catalog, model, day("2013-05-10"), requested).startswith("up to date")
    # another version's losses are not the champion's
    store_outcomes(connection, "flight_delay-other", "2013-05-01", [-50.0] * 7)
    assert decide_retraining(connection, catalog, model, day("2013-05-10"), requested).startswith("up to date")
