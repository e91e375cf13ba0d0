"""The verdict of realized money against the evaluation's promise, and the gate's rule against a champion under
water."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest

from ml_platform.evaluation.comparison import champion_rule
from ml_platform.evaluation.evaluate import gate_results
from ml_platform.evaluation.realized import ABOVE, BELOW, LOSING, ON_TRACK, promised_interval, verdict

# the demo's evaluation: 861,520 USD over 31 test days, day-bootstrap interval -353,876 to 2,498,511
PER_DAY, LOW, HIGH, N = 861_520 / 31, -353_876 / 31, 2_498_511 / 31, 31


def test_the_interval_of_k_days_scales_the_centre_by_k_and_the_spread_by_its_square_root():
    promised, low, high = promised_interval(7, N, 861_520, -353_876, 2_498_511)
    assert promised == pytest.approx(861_520 * 7 / 31)
    assert low == pytest.approx(promised - math.sqrt(7 / 31) * (861_520 + 353_876))
    assert high == pytest.approx(promised + math.sqrt(7 / 31) * (2_498_511 - 861_520))
    assert promised_interval(31, N, 861_520, -353_876, 2_498_511) == pytest.approx((861_520, -353_876, 2_498_511))
    with pytest.raises(ValueError, match="positive"):
        promised_interval(0, N, 1.0, 0.0, 2.0)


@pytest.mark.parametrize("realized, state", [
    (20_905, ON_TRACK),  # the demo's week: 11% of the promise, yet within an interval that reaches below zero
    (900_000, ON_TRACK),  # 463% of the promise, still under the interval's high end (972,407)
    (2_000_000, ABOVE),  # 1028% of the promise: above the interval, never called on track
    (0, ON_TRACK),  # the interval's low end is negative: nothing made is still within it
    (-1, LOSING),
])
def test_the_demos_week_is_on_track_within_an_interval_reaching_below_zero(realized, state):
    judged = verdict(realized, 7, PER_DAY, LOW, HIGH, N, "USD", "2013-11-01", "2013-11-07")
    assert judged.state == state
    assert judged.under_water == (state not in (ON_TRACK, ABOVE))
    assert judged.text().startswith(f"{state}: realized {realized:,.0f} USD over 7 judged day(s) "
                                    f"(2013-11-01 to 2013-11-07) against a promised 194,537 (95% interval")


def test_positive_money_under_the_low_end_is_below_the_interval():
    # a narrow promise: 100 a day, interval 80 to 120 a day over 30 test days
    judged = verdict(500, 10, 100.0, 80.0, 120.0, 30, "USD")
    low = 1000 - math.sqrt(10 / 30) * (3000 - 2400)
    assert judged.low == pytest.approx(low) and judged.state == BELOW
    assert verdict(low, 10, 100.0, 80.0, 120.0, 30, "USD").state == ON_TRACK
    assert verdict(-0.01, 10, 100.0, 80.0, 120.0, 30, "USD").state == LOSING
    assert judged.figures()["verdict"] == BELOW


def test_a_cost_promised_below_zero_is_judged_against_its_interval_not_against_zero():
    # a plan that always costs: -6,700 a day promised over 16 test days, interval -7,570 to -5,940 a day
    on_promise = verdict(-46_980, 7, -6_690.0, -7_570.0, -5_940.0, 16, "USD")
    assert on_promise.promised < 0 and on_promise.low < -46_980 and on_promise.state == ON_TRACK
    assert not on_promise.under_water
    too_costly = verdict(-60_000, 7, -6_690.0, -7_570.0, -5_940.0, 16, "USD")
    assert too_costly.realized < too_costly.low and too_costly.state == BELOW and too_costly.under_water


UNDER_WATER = verdict(-34_192, 7, PER_DAY, LOW, HIGH, N, "USD", "2013-11-20", "2013-11-26")
ON_PROMISE = verdict(300_000, 7, PER_DAY, LOW, HIGH, N, "USD", "2013-11-20", "2013-11-26")


def test_a_champion_under_water_no_longer_blocks_a_challenger_better_on_the_point_estimate():
    # the challenger made 138,900 on the test rows, 40,000 more than the champion, but the gain's interval reaches 0
    passed, why, rule = champion_rule(40_000, -5_000, 0.0, 138_900, UNDER_WATER, "measured", "USD")
    assert passed and rule == "champion under water"
    assert "the interval requirement is dropped because the champion is losing money in production" in why
    assert "in production the champion is losing money: realized -34,192 USD over 7 judged day(s)" in why
    # the same figures against a champion on track: not clearly better, blocked
    passed, why, rule = champion_rule(40_000, -5_000, 0.0, 138_900, ON_PROMISE, "measured", "USD")
    assert not passed and rule == "clearly better" and why.startswith("not clearly better")
    assert "in production the champion is on track" in why
    # and without realized evidence: blocked, saying that it is not known
    passed, why, _ = champion_rule(40_000, -5_000, 0.0, 138_900, None, "measured", "USD")
    assert not passed and "realized money is not known for 7 judged days" in why


def test_a_champion_under_water_still_blocks_a_challenger_that_is_worse_or_loses_money_on_the_same_rows():
    passed, why, rule = champion_rule(-10_000, -50_000, 0.0, 138_900, UNDER_WATER, "measured", "USD")
    assert not passed and rule == "champion under water" and why.startswith("does not beat the champion, even")
    passed, _, _ = champion_rule(10_000, 2_000, 0.0, -5_000, UNDER_WATER, "measured", "USD")
    assert not passed  # better than the champion, but it would have lost money too
    passed, _, _ = champion_rule(10_000, 2_000, 20_000.0, 138_900, UNDER_WATER, "measured", "USD")
    assert not passed  # the spec's margin still holds


def test_a_clearly_better_challenger_passes_whatever_the_champion_realized():
    for realized in (None, ON_PROMISE):
        passed, why, rule = champion_rule(40_000, 5_000, 0.0, 138_900, realized, "measured", "USD")
        assert passed and rule == "clearly better" and why.startswith("beats the champion by at least 0 USD")


def _measured(money: float, interval: tuple[float, float]) -> SimpleNamespace:
    """The parts of a measured summary the absolute gate checks read."""
    return SimpleNamespace(currency="USD", sanity_problems=(),
                           test=SimpleNamespace(money=money, roc_auc=0.7, money_interval_95=interval))


def test_a_money_floor_passed_with_an_interval_reaching_below_zero_says_what_that_means():
    gate = SimpleNamespace(min_money=100_000, min_roc_auc=0.6)
    floor = gate_results(gate, _measured(861_520, (-353_876, 2_498_511)))["money_floor"]
    assert floor.passed
    assert floor.why == ("test money 861,520 USD ≥ floor 100,000 USD; passed on the point estimate: the 95% interval "
                         "reaches below zero (-353,876 USD), so a month like this one could lose money")
    clear = gate_results(gate, _measured(861_520, (120_000, 2_498_511)))["money_floor"]
    assert clear.passed and clear.why == "test money 861,520 USD ≥ floor 100,000 USD"
    failed = gate_results(gate, _measured(50_000, (-353_876, 2_498_511)))["money_floor"]
    assert not failed.passed and failed.why == "test money 50,000 USD < floor 100,000 USD"
