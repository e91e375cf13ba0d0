"""Time at an entity's grain (hourly, daily, weekly, monthly): partitions, a partition's bounds, period arithmetic.

Every place that turns a grain into partitions or times goes through this module, so that no other module branches
on the grain. Times are naive local datetimes in the entity's time zone, as the warehouse stores them; a
partition covers [start, end). Weekly partitions are ISO weeks, from Monday; monthly ones calendar months.
"""

from __future__ import annotations

import calendar
import datetime as dt
import math

import dagster as dg

from ml_platform.errors import PlatformError
from ml_platform.specs.models import DAYS_AHEAD, GRAINS, Grain, Lookback

HOURLY_KEY = "%Y-%m-%d-%H:%M"  # Dagster's hourly partition keys
DAY_KEY = "%Y-%m-%d"  # Dagster's daily, weekly and monthly partition keys: the partition's first day
PERIOD_NOUN = {"hourly": "hour", "daily": "day", "weekly": "week", "monthly": "month"}
_MEAN_DAYS = {"hourly": 1 / 24, "daily": 1.0, "weekly": 7.0, "monthly": 28.0}  # monthly: the shortest month


class GrainError(PlatformError, ValueError):
    """A partition key or a time that does not fit a grain."""


def _grain(grain: str) -> Grain:
    if grain not in GRAINS:
        raise GrainError(f"unknown grain {grain!r} (allowed: {', '.join(GRAINS)})")
    return grain  # type: ignore[return-value]


def add_months(moment: dt.datetime, months: int) -> dt.datetime:
    """The same day and time `months` calendar months later (earlier when negative), clamped to the month's end."""
    index = moment.year * 12 + moment.month - 1 + months
    year, month = divmod(index, 12)
    day = min(moment.day, calendar.monthrange(year, month + 1)[1])
    return moment.replace(year=year, month=month + 1, day=day)


def period_start(grain: str, moment: dt.datetime) -> dt.datetime:
    """The start of the period of the grain holding `moment`."""
    grain = _grain(grain)
    if grain == "hourly":
        return moment.replace(minute=0, second=0, microsecond=0)
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if grain == "weekly":
        return day - dt.timedelta(days=day.isoweekday() - 1)
    if grain == "monthly":
        return day.replace(day=1)
    return day


def shift(grain: str, start: dt.datetime, periods: int) -> dt.datetime:
    """The start of the period `periods` periods after (before, when negative) the one starting at `start`."""
    grain = _grain(grain)
    if grain == "monthly":
        return add_months(start, periods)
    step = {"hourly": dt.timedelta(hours=1), "daily": dt.timedelta(days=1), "weekly": dt.timedelta(weeks=1)}[grain]
    return start + periods * step


def is_aligned(grain: str, moment: dt.datetime) -> bool:
    """True when `moment` starts a period of the grain."""
    return period_start(grain, moment) == moment


def partition_key(grain: str, start: dt.datetime) -> str:
    """The Dagster partition key of the period starting at `start`."""
    if not is_aligned(grain, start):
        raise GrainError(f"{start.isoformat(sep=' ')} does not start a {PERIOD_NOUN[grain]}")
    return start.strftime(HOURLY_KEY if grain == "hourly" else DAY_KEY)


def bounds(grain: str, key: str) -> tuple[dt.datetime, dt.datetime]:
    """The [start, end) local times of the partition a key names."""
    shape = HOURLY_KEY if _grain(grain) == "hourly" else DAY_KEY
    try:
        start = dt.datetime.strptime(key, shape)
    except ValueError:
        raise GrainError(f"partition key {key!r} is not a {grain} key (expected {shape})") from None
    if not is_aligned(grain, start):
        raise GrainError(f"partition key {key!r} does not start a {PERIOD_NOUN[grain]}"
                         + (" (weeks start on Monday)" if grain == "weekly" else ""))
    return start, shift(grain, start, 1)


def periods(grain: str, first: dt.datetime, last: dt.datetime) -> list[dt.datetime]:
    """The starts of every period from the one holding `first` to the one holding `last`, inclusive."""
    start, final = period_start(grain, first), period_start(grain, last)
    found = []
    while start <= final:
        found.append(start)
        start = shift(grain, start, 1)
    return found


def lookback_start(lookback: Lookback | None, start: dt.datetime) -> dt.datetime:
    """The earliest time a population query reads for the partition starting at `start`."""
    if lookback is None:
        return start
    if lookback.months is not None:
        return add_months(start, -lookback.months)
    return start - dt.timedelta(hours=lookback.hours or 0, days=lookback.days or 0)


def lookback_periods(grain: str, lookback: Lookback | None) -> int:
    """The whole periods of the grain that cover a lookback (for Dagster's partition mappings, which count
    offsets in the downstream asset's periods)."""
    if lookback is None:
        return 0
    days = lookback.days or (lookback.hours or 0) / 24 or (lookback.months or 0) * 31
    return max(1, math.ceil(days / _MEAN_DAYS[_grain(grain)]))


def describe_lookback(lookback: Lookback | None) -> str:
    """A lookback in words."""
    if lookback is None:
        return "none: only the partition's own days"
    for unit in ("hours", "days", "months"):
        value = getattr(lookback, unit)
        if value is not None:
            return f"{value} {unit if value != 1 else unit[:-1]} before the partition's start"
    raise GrainError("a lookback names no unit")


def periods_ahead(grain: str) -> int:
    """How many periods beyond the last complete one exist already: Dagster creates a period once it is over,
    models predict up to DAYS_AHEAD days before a period starts, so the current period and those starting within
    DAYS_AHEAD days must exist (a source's days, as `partitions.daily_partitions` makes them, or an entity's)."""
    return {"hourly": 24 * (DAYS_AHEAD + 1), "daily": DAYS_AHEAD + 1, "weekly": 2, "monthly": 2}[_grain(grain)]


def partitions_definition(grain: str, start: dt.date, end: dt.date | None, timezone: str,
                          ahead: int | None = None) -> dg.TimeWindowPartitionsDefinition:
    """Dagster's partitions of the grain from `start` to the partition holding the day `end` (open-ended when
    None); `ahead` periods beyond the last complete one exist already (default: `periods_ahead`)."""
    grain = _grain(grain)
    ahead = periods_ahead(grain) if ahead is None else ahead
    first = dt.datetime.combine(start, dt.time())
    if not is_aligned(grain, first):
        raise GrainError(f"{start} does not start a {PERIOD_NOUN[grain]}")
    last_end = shift(grain, period_start(grain, dt.datetime.combine(end, dt.time())), 1) if end else None
    if grain == "hourly":
        return dg.HourlyPartitionsDefinition(
            start_date=first.strftime(HOURLY_KEY), end_date=last_end.strftime(HOURLY_KEY) if last_end else None,
            timezone=timezone, end_offset=ahead)
    end_date = last_end.strftime(DAY_KEY) if last_end else None
    if grain == "daily":
        return dg.DailyPartitionsDefinition(start_date=start.isoformat(), end_date=end_date, timezone=timezone,
                                            end_offset=ahead)
    if grain == "weekly":
        return dg.WeeklyPartitionsDefinition(start_date=start.isoformat(), end_date=end_date, timezone=timezone,
                                             day_offset=1, end_offset=ahead)
    return dg.MonthlyPartitionsDefinition(start_date=start.isoformat(), end_date=end_date, timezone=timezone,
                                          end_offset=ahead)


def partition_days(grain: str, first: dt.date, last: dt.date) -> list[tuple[dt.date, dt.date]]:
    """(first day, last day) of every partition of a daily, weekly or monthly grain whose first day lies in
    [first, last]: a partition's rows carry its first day as their partition_date."""
    if _grain(grain) == "hourly":
        raise GrainError("hourly partitions are not days: their rows are told apart by partition_start")
    start = dt.datetime.combine(first, dt.time())
    if not is_aligned(grain, start):
        start = shift(grain, period_start(grain, start), 1)
    found = []
    while start.date() <= last:
        following = shift(grain, start, 1)
        found.append((start.date(), (following - dt.timedelta(days=1)).date()))
        start = following
    return found
