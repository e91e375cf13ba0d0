"""Realized money against what an evaluation promised: the verdict shown wherever realized money is.

The promise of k judged days is built from what the evaluation stored for its N test days: the test money M and the
95% day-bootstrap interval [L, H] of that total. The promised money of k days is k/N * M; its interval is
k/N * M - sqrt(k/N) * (M - L) to k/N * M + sqrt(k/N) * (H - M). (The day bootstrap treats days as independent, so
the spread of a sum of k days grows as sqrt(k), not as k: k days vary more, relative to their promise, than N did.)

The verdict of k days that realized R:
- `losing money`: R < 0 (unless the promise itself is below 0: a cost, judged against its interval only);
- `below the interval`: 0 <= R < the interval's low end;
- `on track`: R within the interval;
- `above the expected range`: R above the interval's high end (not held against the model, but not called on track:
  more than promised is luck, a changed world or a measurement to look at).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import duckdb

from ml_platform import names
from ml_platform.grains import PERIOD_NOUN
from ml_platform.storage.warehouse import date_literal, table_exists

ON_TRACK = "on track"
ABOVE = "above the expected range"
BELOW = "below the interval"
LOSING = "losing money"
VERDICTS = (ON_TRACK, ABOVE, BELOW, LOSING)
UNDER_WATER = (BELOW, LOSING)  # verdicts that count against a champion
JUDGED = ("labelled", "partly labelled")  # the statuses of a stored outcomes day whose realized money is known
EVIDENCE_DAYS = 7  # judged days of a champion's realized money the gate and the retraining sensor look at


@dataclass(frozen=True)
class Verdict:
    """k judged days' realized money against the promise of k days and its interval, and the verdict."""

    days: int
    realized: float
    promised: float
    low: float
    high: float
    state: str  # one of VERDICTS
    currency: str
    first_day: str = ""  # ISO dates of the judged days, when known
    last_day: str = ""
    model_version: str = ""  # the version whose days were judged, when known
    grain: str = "daily"  # the entity's grain: one judged partition is a day, a week, a month or an hour

    @property
    def unit(self) -> str:
        """The judged partitions counted in words: "day(s)", "week(s)", "month(s)" or "hour(s)"."""
        return f"{PERIOD_NOUN[self.grain]}(s)"

    @property
    def under_water(self) -> bool:
        """True when the verdict counts against the model (below the interval, or losing money)."""
        return self.state in UNDER_WATER

    def text(self) -> str:
        """One line: the verdict, then the figures it was decided on."""
        span = f" ({self.first_day} to {self.last_day})" if self.first_day else ""
        share = f"; {self.realized / self.promised:.0%} of the promise" if self.promised > 0 else ""
        return (f"{self.state}: realized {self.realized:,.0f} {self.currency} over {self.days} judged {self.unit}"
                f"{span} "
                f"against a promised {self.promised:,.0f} (95% interval {self.low:,.0f} to {self.high:,.0f})"
                f"{share}")

    def figures(self) -> dict[str, float | str | int]:
        """The numbers of the verdict, as metadata."""
        return {"verdict": self.state, "days": self.days, "realized": self.realized, "promised": self.promised,
                "interval_low": self.low, "interval_high": self.high}


def state_of(realized: float, low: float, promised: float | None = None, high: float | None = None) -> str:
    """The verdict of realized money against its promised interval [low, high] (no high: unbounded above).

    A model whose money is a cost (its evaluation promised money below 0, e.g. a plan that always costs something)
    is never `losing money` for being below 0: it was promised to be; it is judged against its interval only.
    """
    if realized < 0 and (promised is None or promised >= 0):
        return LOSING
    if realized < low:
        return BELOW
    if high is not None and realized > high:
        return ABOVE
    return ON_TRACK


def promised_interval(days: int, test_days: int, test_money: float, test_low: float,
                      test_high: float) -> tuple[float, float, float]:
    """(promised, low, high) for `days` judged days, from the test window's money and 95% interval of N days."""
    if days <= 0 or test_days <= 0:
        raise ValueError(f"days and test days must be positive, got {days} and {test_days}")
    share = days / test_days
    spread = math.sqrt(share)
    promised = share * test_money
    return promised, promised - spread * (test_money - test_low), promised + spread * (test_high - test_money)


def verdict(realized: float, days: int, per_day: float, per_day_low: float, per_day_high: float, test_days: int,
            currency: str, first_day: str = "", last_day: str = "", model_version: str = "",
            grain: str = "daily") -> Verdict:
    """The verdict of `days` judged days that realized `realized`, against the per-day promise as the outcomes table
    stores it (the test money and its interval's ends divided by the N test days)."""
    promised, low, high = promised_interval(days, test_days, per_day * test_days, per_day_low * test_days,
                                            per_day_high * test_days)
    return Verdict(days=days, realized=float(realized), promised=promised, low=low, high=high,
                   state=state_of(realized, low, promised, high), currency=currency, first_day=first_day,
                   last_day=last_day,
                   model_version=model_version, grain=grain)


def verdict_of_rows(rows, grain: str = "daily") -> Verdict | None:
    """The verdict of stored outcome rows (a DataFrame of monitoring.<model>__outcomes rows), judged days only, of
    the model version of the last of them; None when none is judged."""
    judged = rows[rows["status"].isin(JUDGED)] if len(rows) else rows
    if not len(judged):
        return None
    judged = judged.sort_values("day")
    judged = judged[judged["model_version"] == judged["model_version"].iloc[-1]]
    last = judged.iloc[-1]
    return verdict(float(judged["realized_money"].sum()), len(judged), float(last["promised_money"]),
                   float(last["promised_low"]), float(last["promised_high"]), int(last["test_days"]),
                   str(last["currency"]), str(judged["day"].iloc[0])[:10], str(last["day"])[:10],
                   str(last["model_version"]), grain)


def recent_verdict(connection: duckdb.DuckDBPyConnection, model: str, model_version: str, through: dt.date,
                   days: int = EVIDENCE_DAYS, grain: str = "daily") -> Verdict | None:
    """The verdict of a model version's last `days` judged production days up to `through`, from the stored
    outcomes (monitoring.<model>__outcomes); None unless that many are judged: fewer are no evidence."""
    if not table_exists(connection, "monitoring", names.monitoring_table_name(model, "outcomes")):
        return None
    statuses = ", ".join(f"'{status}'" for status in JUDGED)
    rows = connection.execute(
        f"SELECT * FROM {names.monitoring_table(model, 'outcomes')} WHERE model_version = ? AND status IN "
        f"({statuses}) AND day <= {date_literal(through)} ORDER BY day DESC LIMIT {int(days)}",
        [model_version]).df()
    if len(rows) < days:
        return None
    return verdict_of_rows(rows, grain)
