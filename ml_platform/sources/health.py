"""Partition health of daily sources: a changed unit or a surge of missing values, each day judged by its past.

`distribution_shift` compares each numeric column's typical size on a day (the mean absolute value of its non-zero
values, so that mostly-zero columns such as precipitation are judged by their non-zero values) with the same figure
on the trailing stored days. The comparison is made on the logarithm, so a unit change is a shift whatever the
column's scale: a robust z (distance from the trailing median in units of 1.4826 x the trailing median absolute
deviation, never below 0.05, i.e. 5 %) and a plain factor. Temperature in °C instead of °F, inches turned into
millimetres or miles into kilometres all move it far more than any real day of 2013 did (see
ml_platform_tests/sources/test_source_health.py, which runs it over the whole year).

`null_surge` compares each column's missing share on a day with the largest share of the trailing days, so a
column that is usually 80 % missing (a gust speed) is judged by its own history.

History is the stored source's trailing days plus the staged days before the judged one, so a first load of a
whole year is judged too; a column with too little history passes and the message says why.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd

from ml_platform.specs.models import SourceSpec
from ml_platform.names import quote, source_table
from ml_platform.storage.warehouse import date_literal, table_exists

HEALTH_CHECK_NAMES = {
    "distribution_shift": "each numeric column's typical size on the day is in line with the trailing days "
                          "(a changed unit fails); tuned by checks.distribution",
    "null_surge": "no column is missing far more often on the day than on the trailing days; tuned by "
                  "checks.null_surge",
}
NUMERIC = ("INTEGER", "BIGINT", "DOUBLE")
MIN_LOG_SCALE = 0.05  # a 5 % day-to-day change in a column's typical size is never alarming on its own
MOSTLY_ONE_VALUE = 0.5  # when one non-zero value makes up this share of a day's values, its size says nothing


@dataclass(frozen=True)
class Judgement:
    """One column on one day: its statistic, what it was compared with, and the verdict."""

    day: dt.date
    column: str
    passed: bool
    statistic: float | None
    message: str


def date_columns(source: SourceSpec) -> set[str]:
    """Declared columns the partition date is computed from: they change with the date, by design."""
    expression = getattr(source.partitioning, "date", "")
    return {name for name in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", expression) if name in source.columns}


def judged_columns(source: SourceSpec) -> list[str]:
    """Numeric declared columns the distribution check judges."""
    skipped = date_columns(source) | set(source.keys) | set(source.checks.distribution.exclude)
    return [name for name, column in source.columns.items() if column.type in NUMERIC and name not in skipped]


def _history_view(connection: duckdb.DuckDBPyConnection, source: SourceSpec, staged: str, start: dt.date,
                  end: dt.date) -> None:
    """A temporary view of the staged rows and the stored rows of the trailing window before them."""
    window = max(source.checks.distribution.window_days, 1)
    columns = ", ".join(quote(name) for name in source.columns)
    select = f"SELECT partition_date, TRUE AS staged, {columns} FROM {staged}"
    if table_exists(connection, "source", source.name):
        select += (f" UNION ALL SELECT partition_date, FALSE AS staged, {columns} FROM {source_table(source.name)} "
                   f"WHERE partition_date >= {date_literal(start - dt.timedelta(days=window))} "
                   f"AND partition_date < {date_literal(start)}")
    connection.execute(f"CREATE OR REPLACE TEMP VIEW health_rows AS {select}")


def _presence(connection: duckdb.DuckDBPyConnection, source: SourceSpec) -> pd.DataFrame:
    """Rows and non-missing values of every declared column, per day."""
    present = ", ".join(f"count({quote(name)}) AS {quote(name)}" for name in source.columns)
    return connection.execute(f"SELECT partition_date, bool_or(staged) AS staged, count(*) AS row_count, {present} "
                              f"FROM health_rows GROUP BY 1 ORDER BY 1").df()


def _sizes(connection: duckdb.DuckDBPyConnection, columns: list[str]) -> pd.DataFrame:
    """Per day and column: non-zero values, the log of their mean absolute value, and the top value's share."""
    if not columns:
        return pd.DataFrame(columns=["partition_date", "column_name", "nonzero", "log_size", "top_share"])
    casts = ", ".join(f"CAST({quote(name)} AS DOUBLE) AS {quote(name)}" for name in columns)
    on = ", ".join(quote(name) for name in columns)
    return connection.execute(
        f"WITH long AS (UNPIVOT (SELECT partition_date, {casts} FROM health_rows) ON {on} "
        f"  INTO NAME column_name VALUE value), "
        f"nonzero AS (SELECT * FROM long WHERE value <> 0 AND isfinite(value)), "
        f"tops AS (SELECT partition_date, column_name, max(n) AS top FROM (SELECT partition_date, column_name, value, "
        f"  count(*) AS n FROM nonzero GROUP BY ALL) GROUP BY ALL) "
        f"SELECT partition_date, column_name, count(*) AS nonzero, ln(avg(abs(value))) AS log_size, "
        f"  any_value(top) / count(*) AS top_share "
        f"FROM nonzero JOIN tops USING (partition_date, column_name) GROUP BY ALL ORDER BY ALL").df()


class DaySeries:
    """Per-day figures sorted by day, for judging each day against its trailing days without re-filtering."""

    def __init__(self, frame: pd.DataFrame):
        frame = frame.sort_values("partition_date", kind="stable")
        self.days = pd.to_datetime(frame["partition_date"]).to_numpy(dtype="datetime64[D]")
        self.columns = {name: frame[name].to_numpy() for name in frame.columns if name != "partition_date"}

    def index_of(self, day: dt.date) -> int | None:
        """The position of the day, or None when it has no figures."""
        position = int(np.searchsorted(self.days, np.datetime64(day, "D")))
        return position if position < len(self.days) and self.days[position] == np.datetime64(day, "D") else None

    def trailing(self, day: dt.date, window: int) -> slice:
        """The positions of the `window` days before the day."""
        first = np.searchsorted(self.days, np.datetime64(day - dt.timedelta(days=window), "D"))
        return slice(int(first), int(np.searchsorted(self.days, np.datetime64(day, "D"))))


def judge_distribution(source: SourceSpec, sizes: dict[str, DaySeries], day: dt.date) -> list[Judgement]:
    """Judge the typical size of every judged column on one day against the trailing days."""
    settings = source.checks.distribution
    judgements = []
    for column in judged_columns(source):
        series = sizes.get(column)
        if series is None:
            series = DaySeries(pd.DataFrame(columns=["partition_date", "nonzero", "log_size", "top_share"]))
        window = series.trailing(day, settings.window_days)
        enough = series.columns["nonzero"][window] >= settings.min_values
        logs = series.columns["log_size"][window][enough].astype(float)
        top_shares = series.columns["top_share"][window][enough].astype(float)
        position = series.index_of(day)
        nonzero = int(series.columns["nonzero"][position]) if position is not None else 0
        if len(logs) < settings.min_history_days:
            judgements.append(Judgement(day, column, True, None, (
                f"{column}: not judged, too little history ({len(logs)} of the {settings.window_days} trailing "
                f"days have {settings.min_values}+ non-zero values; {settings.min_history_days} needed)")))
            continue
        if nonzero < settings.min_values:
            judgements.append(Judgement(day, column, True, None, (
                f"{column}: not judged, {nonzero} non-zero value(s) on the day ({settings.min_values} needed)")))
            continue
        if float(np.median(top_shares)) >= MOSTLY_ONE_VALUE:
            judgements.append(Judgement(day, column, True, None, (
                f"{column}: not judged, mostly one value (on a trailing day, its most common non-zero value makes "
                f"up {float(np.median(top_shares)):.0%} of its values)")))
            continue
        center = float(np.median(logs))
        scale = max(1.4826 * float(np.median(np.abs(logs - center))), MIN_LOG_SCALE)
        value = float(series.columns["log_size"][position])
        robust_z = abs(value - center) / scale
        factor = math.exp(abs(value - center))
        threshold = settings.thresholds.get(column, settings.threshold)
        passed = robust_z <= threshold and factor <= settings.max_factor
        judgements.append(Judgement(day, column, passed, robust_z, (
            f"{column} typical size {math.exp(value):.4g} against a trailing {math.exp(center):.4g} "
            f"({len(logs)} days; robust z {robust_z:.1f} {'≤' if robust_z <= threshold else '>'} {threshold:g}, "
            f"factor {factor:.2f} {'≤' if factor <= settings.max_factor else '>'} {settings.max_factor:g})"
            + ("" if passed else ": a unit change? (typical size: mean absolute value of the non-zero values)"))))
    return judgements


def judge_null_surge(source: SourceSpec, presence: DaySeries, day: dt.date) -> list[Judgement]:
    """Judge the missing share of every declared column on one day against the trailing days."""
    settings = source.checks.null_surge
    position = presence.index_of(day)
    window = presence.trailing(day, source.checks.distribution.window_days)
    trailing_rows = presence.columns["row_count"][window].astype(float)
    kept = trailing_rows > 0
    if position is None or presence.columns["row_count"][position] == 0:
        return []  # an empty day fails row_count
    rows = int(presence.columns["row_count"][position])
    history_days = int(kept.sum())
    judgements = []
    for column in source.columns:
        if column in settings.exclude:
            continue
        missing = rows - int(presence.columns[column][position])
        if history_days < source.checks.distribution.min_history_days:
            judgements.append(Judgement(day, column, True, None, f"{column}: not judged, too little history "
                                                                 f"({history_days} trailing day(s))"))
            continue
        present = presence.columns[column][window][kept].astype(float)
        trailing = float((1 - present / trailing_rows[kept]).max())
        share = missing / rows
        allowed = min(trailing + settings.margin, 1.0)
        passed = share <= allowed or missing < settings.min_missing
        judgements.append(Judgement(day, column, passed, share - trailing, (
            f"{column} missing in {missing} of {rows} rows ({share:.0%}) against at most {trailing:.0%} on the "
            f"{history_days} trailing days (allowed: up to {allowed:.0%}, the trailing largest + "
            f"{settings.margin:.0%}, or fewer than {settings.min_missing} missing)")))
    return judgements


def health_judgements(connection: duckdb.DuckDBPyConnection, source: SourceSpec, staged: str,
                      days: list[str]) -> dict[str, list[Judgement]]:
    """Judge every staged day: {"distribution_shift": [...], "null_surge": [...]}.

    The per-day figures come from two queries; each day is then judged on sorted arrays (a binary search for
    its trailing window), so a long backfill costs in proportion to its days.
    """
    if not days:
        return {"distribution_shift": [], "null_surge": []}
    judged_days = sorted(dt.date.fromisoformat(day) for day in days)
    _history_view(connection, source, staged, judged_days[0], judged_days[-1])
    try:
        presence = DaySeries(_presence(connection, source))
        sizes = {column: DaySeries(frame.drop(columns="column_name"))
                 for column, frame in _sizes(connection, judged_columns(source)).groupby("column_name")}
    finally:
        connection.execute("DROP VIEW IF EXISTS health_rows")
    result = {"distribution_shift": [], "null_surge": []}
    for day in judged_days:
        result["distribution_shift"] += judge_distribution(source, sizes, day)
        result["null_surge"] += judge_null_surge(source, presence, day)
    return result


def summary(source: SourceSpec, check: str, judgements: list[Judgement]) -> tuple[bool, str]:
    """A check's verdict over all judged days and a message naming source, day, column and figures."""
    failed = [judgement for judgement in judgements if not judgement.passed]
    if failed:
        shown = "; ".join(f"{source.name} {judgement.day}: {judgement.message}" for judgement in failed[:5])
        more = f"; and {len(failed) - 5} more" if len(failed) > 5 else ""
        return False, f"{len(failed)} failure(s): {shown}{more}"
    measured = [judgement for judgement in judgements if judgement.statistic is not None]
    days = len({judgement.day for judgement in judgements})
    unjudged = [judgement for judgement in judgements if judgement.statistic is None]
    if not measured:
        reason = judgements[0].message.split(": ", 1)[1] if judgements else "no columns to judge"
        return True, f"{source.name}: {days} day(s) passed unjudged ({reason})"
    worst = max(measured, key=lambda judgement: judgement.statistic)
    text = (f"{source.name}: {days} day(s) in line with their trailing days; closest: {worst.day} "
            f"{worst.message}")
    if unjudged:
        text += f"; {len(unjudged)} column-day(s) unjudged, e.g. {unjudged[0].day} {unjudged[0].message}"
    return True, text
