"""Outputs count a model's partitions in its entity's grain: judged weeks, scored months, never "day(s)" for them;
and realized money is called on track only inside its interval."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from ml_platform.evaluation.comparison import periods_text
from ml_platform.evaluation.realized import ABOVE, ON_TRACK, verdict
from ml_platform.monitoring.alarms import version_verdicts
from ml_platform.monitoring.outcomes import trailing_verdict
from ml_platform.scoring.missing import MissingFeature, degraded_text
from ml_platform.scoring.shadow import comparison_text


def _outcome_rows(days: list[str], realized: float) -> pd.DataFrame:
    return pd.DataFrame([{"day": pd.Timestamp(day), "status": "labelled", "model_version": "m-1",
                          "realized_money": realized, "promised_money": 100.0, "promised_low": 80.0,
                          "promised_high": 120.0, "test_days": 8, "currency": "EUR"} for day in days])


@pytest.mark.parametrize("grain, unit", [("daily", "day(s)"), ("weekly", "week(s)"), ("monthly", "month(s)"),
                                         ("hourly", "hour(s)")])
def test_a_verdict_counts_judged_partitions_in_the_grain(grain, unit):
    judged = verdict(400.0, 4, 100.0, 80.0, 120.0, 8, "EUR", "2013-02-04", "2013-02-25", grain=grain)
    assert judged.state == ON_TRACK and judged.unit == unit
    assert f"over 4 judged {unit} (2013-02-04 to 2013-02-25)" in judged.text()
    assert ("day(s)" in judged.text()) == (grain == "daily")


def test_stored_weekly_outcomes_are_judged_as_weeks_and_money_far_above_the_promise_is_not_on_track():
    rows = _outcome_rows(["2013-02-04", "2013-02-11", "2013-02-18"], 1267.0)  # 1267% of 100 a week
    trailing = trailing_verdict(rows, 7, "weekly")
    assert trailing.state == ABOVE and trailing.text().startswith(
        "above the expected range: realized 3,801 EUR over 3 judged week(s) (2013-02-04 to 2013-02-18)")
    assert not trailing.under_water
    assert [v.unit for v in version_verdicts(rows, "monthly")] == ["month(s)"]


def test_degraded_scoring_names_weeks_for_a_weekly_model():
    found = [MissingFeature(dt.date(2013, 2, 4), "route_departures", 1.0, 0.0, 120)]
    assert degraded_text(found, "weekly").startswith("DEGRADED: 1 scored week(s) with a feature missing")
    assert "a month's rows" in degraded_text([], "monthly")
    assert degraded_text(found).startswith("DEGRADED: 1 scored day(s)")


def test_a_shadow_comparison_counts_its_partitions_in_the_grain():
    text = comparison_text({"challenger": "m-2", "champions": ["m-1"], "currency": "EUR", "rows": 300, "days": 3,
                            "unit": "week(s)", "first_day": "2013-02-04", "last_day": "2013-02-18",
                            "champion_money": 10.0, "challenger_money": 12.0, "gain": 2.0,
                            "gain_interval_95": [-1.0, 5.0]})
    assert "on 300 labelled rows of 3 week(s) (2013-02-04 to 2013-02-18)" in text
    assert "paired 95% interval over week(s)" in text and "day" not in text.replace("first_day", "")


@pytest.mark.parametrize("grain, text", [("daily", "31 day(s)"), ("weekly", "13 week(s)"), ("monthly", "3 month(s)")])
def test_the_champion_comparison_counts_its_bootstrap_partitions_in_the_grain(grain, text):
    count = int(text.split()[0])
    assert periods_text(count, grain) == text
