"""When things are known: an entity row's prediction time, a source row's and an outcome column's availability, and
the relations feature SQL reads, cut at a moment.

Every time here is a local wall-clock TIMESTAMP in the entity's time zone: a source in another time zone has its
availability converted. Masking at a cut T: a source row whose availability is after T is absent; an after_event
column whose own availability is after T reads NULL.
"""

from __future__ import annotations

import datetime as dt

from ml_platform.grains import add_months
from ml_platform.names import AVAILABLE_AT_COLUMN, PREDICTION_TIME_COLUMN, quote, source_table
from ml_platform.specs.models import DailyPartitioning, KnownBy, SourceSpec

ALWAYS = "TIMESTAMP '-infinity'"  # the availability of a static reference row


def prediction_time(known_by: KnownBy, row_time: dt.date | dt.datetime) -> dt.datetime:
    """The moment a row of the given time (a date: its start) must be scored by."""
    if not isinstance(row_time, dt.datetime):
        row_time = dt.datetime.combine(row_time, dt.time())
    if known_by.at_clock_time:
        day = dt.datetime.combine(row_time.date(), dt.time())
        return day - dt.timedelta(minutes=known_by.minutes_before_event_day())
    if known_by.months_before is not None:
        return add_months(row_time, -known_by.months_before)
    return row_time - dt.timedelta(hours=known_by.hours_before or 0, days=known_by.days_before or 0)


def prediction_time_sql(known_by: KnownBy, row_time: str = "CAST(partition_date AS TIMESTAMP)") -> str:
    """SQL of a row's prediction time from the SQL of its time (a local TIMESTAMP)."""
    if known_by.at_clock_time:
        minutes = -known_by.minutes_before_event_day()
        return f"(CAST(CAST({row_time} AS DATE) AS TIMESTAMP) + INTERVAL ({minutes}) MINUTE)"
    if known_by.months_before is not None:
        return f"(({row_time}) - INTERVAL ({known_by.months_before}) MONTH)"
    if known_by.hours_before is not None:
        return f"(({row_time}) - INTERVAL ({known_by.hours_before}) HOUR)"
    return f"(({row_time}) - INTERVAL ({known_by.days_before}) DAY)"


def timestamp_literal(moment: dt.datetime) -> str:
    """A DuckDB TIMESTAMP literal (moments come from partition keys and specs, never from free text)."""
    return f"TIMESTAMP '{dt.datetime.fromisoformat(moment.isoformat()).isoformat(sep=' ')}'"


def _timezone(source: SourceSpec) -> str | None:
    return source.partitioning.timezone if isinstance(source.partitioning, DailyPartitioning) else None


def _in_entity_time(expression: str, source: SourceSpec, entity: SourceSpec) -> str:
    """A local time of the source expressed in the entity's local time (reference tables share the entity's)."""
    source_zone, entity_zone = _timezone(source), _timezone(entity)
    if source_zone is None or entity_zone is None or source_zone == entity_zone:
        return f"({expression})"
    return f"((({expression}) AT TIME ZONE '{source_zone}') AT TIME ZONE '{entity_zone}')"


def row_available_sql(source: SourceSpec, entity: SourceSpec) -> str:
    """SQL of when a row of the source becomes known, over the source table's columns."""
    if source.available_at is not None:
        return _in_entity_time(source.available_at, source, entity)
    if source.is_daily:  # the day's rows are delivered when the day is over
        return _in_entity_time("CAST(partition_date + 1 AS TIMESTAMP)", source, entity)
    return ALWAYS


def column_available_sql(source: SourceSpec, column: str, entity: SourceSpec) -> str:
    """SQL of when an after_event column's value becomes known, over the source table's columns."""
    declared = source.columns[column].available_at
    if declared is not None:
        return _in_entity_time(declared, source, entity)
    if source.is_daily:
        return _in_entity_time("CAST(partition_date + 1 AS TIMESTAMP)", source, entity)
    return row_available_sql(source, entity)


def _masked(source: SourceSpec, entity: SourceSpec, cut: str) -> str:
    """`* REPLACE (...)` nulling each after_event column not yet known at `cut` (an SQL expression)."""
    columns = source.after_event_columns()
    if not columns:
        return "*"
    replaced = ", ".join(
        f"CASE WHEN {column_available_sql(source, name, entity)} <= {cut} THEN {quote(name)} END AS {quote(name)}"
        for name in columns)
    return f"* REPLACE ({replaced})"


def cut_relation_sql(source: SourceSpec, entity: SourceSpec, cut: dt.datetime | None) -> str:
    """The source's rows and columns known at `cut`, with their availability; `cut` None: every row, unmasked."""
    available = row_available_sql(source, entity)
    table = source_table(source.name)
    if cut is None:
        return f"SELECT *, {available} AS {AVAILABLE_AT_COLUMN} FROM {table}"
    moment = timestamp_literal(cut)
    return (f"SELECT {_masked(source, entity, moment)}, {available} AS {AVAILABLE_AT_COLUMN} FROM {table} "
            f"WHERE {available} <= {moment}")


def entity_relation_sql(entity: SourceSpec, known_by: KnownBy, condition: str) -> str:
    """The entity's rows meeting `condition`, each with its prediction time (its time: the start of its local
    event date), its outcome columns masked at it."""
    rows = (f"SELECT *, {prediction_time_sql(known_by)} AS {PREDICTION_TIME_COLUMN} "
            f"FROM {source_table(entity.name)} WHERE {condition}")
    return f"SELECT {_masked(entity, entity, PREDICTION_TIME_COLUMN)} FROM ({rows})"
