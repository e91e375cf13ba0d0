"""Checks of entity specs against the sources they read: names, time zones, date ranges and the population query.

A population query reads the one-row view `bounds` and its declared sources by their bare names (at run time each
daily source is a view cut to the partition's lookback window, so the declared lookback is all it can see); the
columns known only after the event are hidden, as the population is chosen before the rows' outcomes exist.
"""

from __future__ import annotations

import calendar
import datetime as dt

import duckdb

from ml_platform.names import BOUNDS_VIEW, ENTITY_RESERVED_COLUMNS
from ml_platform.specs.catalog import Catalog, entity_row_keys
from ml_platform.specs.errors import SpecError, unknown_name
from ml_platform.specs.models import ColumnSpec, DailyPartitioning, EntitySpec, Lookback, SourceSpec
from ml_platform.specs.sql_checks import SqlChecker
from ml_platform.specs.sql_reach import refuse_escapes

TIME_TYPES = ("DATE", "TIMESTAMP")
BOUNDS_COLUMNS = {"partition_start": "TIMESTAMP", "partition_end": "TIMESTAMP"}


def population_tables(entity: EntitySpec) -> frozenset[str]:
    """The tables a population query may read: `bounds` and the sources it declares, by their bare names."""
    return frozenset({BOUNDS_VIEW, *entity.reads})


def _error(catalog: Catalog, entity: EntitySpec, field: str, message: str) -> SpecError:
    return SpecError(catalog.file_of("entity", entity.name), field, message, "entity", entity.name)


# Period arithmetic is repeated here in its simplest form: the spec floor sits beneath ml_platform.grains.
def _add_months(day: dt.date, months: int) -> dt.date:
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    return dt.date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))


def _next_start(grain: str, start: dt.date) -> dt.date:
    if grain == "monthly":
        return _add_months(start, 1)
    return start + dt.timedelta(days=7 if grain == "weekly" else 1)


def _period_start(grain: str, day: dt.date) -> dt.date:
    if grain == "weekly":
        return day - dt.timedelta(days=day.isoweekday() - 1)
    return day.replace(day=1) if grain == "monthly" else day


def _reads_from(lookback: Lookback | None, start: dt.date) -> dt.date:
    """The first day a partition starting on `start` reads (hours of lookback reach into the day before)."""
    if lookback is None:
        return start
    if lookback.months is not None:
        return _add_months(start, -lookback.months)
    hours = (lookback.hours or 0) + 24 * (lookback.days or 0)
    return (dt.datetime.combine(start, dt.time()) - dt.timedelta(hours=hours)).date()


def _lookback_words(lookback: Lookback | None) -> str:
    if lookback is None:
        return "no lookback"
    unit = next(unit for unit in ("hours", "days", "months") if getattr(lookback, unit) is not None)
    return f"lookback {getattr(lookback, unit)} {unit}"


def _check_range(catalog: Catalog, entity: EntitySpec, source: SourceSpec) -> list[SpecError]:
    """A daily source's time zone and days must cover every partition the entity reads from it."""
    partitioning = source.partitioning
    assert isinstance(partitioning, DailyPartitioning)
    where = f"{catalog.file_of('source', source.name)}, field partitioning"
    if partitioning.timezone != entity.timezone:
        return [_error(catalog, entity, "timezone", (
            f"given {entity.timezone!r}, but source '{source.name}' counts its days in {partitioning.timezone!r} "
            f"({where}.timezone): an entity's partitions are counted in the time zone of the daily sources it "
            f"reads; set timezone: {partitioning.timezone}"))]
    errors = []
    first_read = _reads_from(entity.lookback, entity.start)
    if first_read < partitioning.start:
        fitting = entity.start
        while _reads_from(entity.lookback, fitting) < partitioning.start:
            fitting = _next_start(entity.grain, fitting)
        errors.append(_error(catalog, entity, "start", (
            f"the first {entity.grain} partition, from {entity.start}, reads source '{source.name}' from "
            f"{first_read} ({_lookback_words(entity.lookback)}), before its first day {partitioning.start} "
            f"({where}.start); start on {fitting} or later")))
    if partitioning.end is not None:
        if entity.end is None:
            errors.append(_error(catalog, entity, "end", (
                f"missing, but source '{source.name}' ends on {partitioning.end} ({where}.end): an open-ended entity "
                f"would have partitions with no data to read; give the last day it covers")))
        else:
            last_start = _period_start(entity.grain, entity.end)
            last_day = _next_start(entity.grain, last_start) - dt.timedelta(days=1)
            if last_day > partitioning.end:
                errors.append(_error(catalog, entity, "end", (
                    f"{entity.end} lies in the {entity.grain} partition from {last_start} to {last_day}, which "
                    f"reads source '{source.name}' beyond its last day {partitioning.end} ({where}.end); end on "
                    f"{_last_whole(entity.grain, partitioning.end)} or earlier")))
    return errors


def _last_whole(grain: str, last_day: dt.date) -> dt.date:
    """The last day of the last whole period of the grain that ends on or before `last_day`."""
    start = _period_start(grain, last_day)
    if _next_start(grain, start) - dt.timedelta(days=1) > last_day:
        start = _period_start(grain, start - dt.timedelta(days=1))
    return _next_start(grain, start) - dt.timedelta(days=1)


def _after_event_hint(problem: str, readable: dict[str, SourceSpec]) -> str:
    """Say so when the query failed because it read a column known only after the event."""
    for source in readable.values():
        for column in source.after_event_columns():
            if problem.startswith(f"unknown column '{column}'"):
                return (f"reads '{column}' of source '{source.name}', which is known only after the event: a "
                        f"population is chosen before its rows' outcomes exist, so it reads only the columns known "
                        f"before ({problem})")
    return problem


def check_entity(catalog: Catalog, entity: EntitySpec, broken: set[tuple[str, str]],
                 connection: duckdb.DuckDBPyConnection) -> list[SpecError]:
    """Every error of one entity spec against the catalog (names in `broken` failed to load and are skipped)."""
    if entity.name in catalog.sources:
        return [_error(catalog, entity, "name", (
            f"'{entity.name}' names both a source ({catalog.file_of('source', entity.name)}) and an entity; models "
            f"and feature sets name either in `entity:`, so rename the entity"))]
    errors, readable = [], {}
    for index, name in enumerate(entity.reads):
        if name in catalog.sources:
            readable[name] = catalog.sources[name]
        elif ("source", name) not in broken:
            errors.append(_error(catalog, entity, f"reads[{index}]", unknown_name("source", name, catalog.sources)))
    if errors or len(readable) != len(entity.reads):
        return errors
    for source in readable.values():
        if source.is_daily and entity.lookback is None:
            errors.append(_error(catalog, entity, "lookback", (
                f"missing, but the population reads daily source '{source.name}': it sees a daily source's days "
                f"from the lookback before a partition's start to the day before it (a population is chosen "
                f"before its period begins); give e.g. lookback: {{days: 28}}")))
        elif source.is_daily:
            errors += _check_range(catalog, entity, source)
    daily = [source.name for source in readable.values() if source.is_daily]
    short = entity.lookback.hours if entity.lookback is not None and entity.lookback.hours is not None else None
    if entity.grain == "hourly" and daily and short is not None and short < 24:
        errors.append(_error(catalog, entity, "lookback", (
            f"{{hours: {short}}} reaches no day of daily source '{daily[0]}' for the hours from {short:02d}:00: an "
            f"hour's population reads a daily source's days before the hour's own day (a day is delivered once it "
            f"is over); give at least {{hours: 24}}, e.g. {{days: 1}}")))
    if escape := refuse_escapes(entity.population, population_tables(entity), connection=connection):
        return errors + [_error(catalog, entity, "population", escape)]
    checker = SqlChecker(readable, unreadable=catalog.sources, connection=connection, before_event_only=True)
    try:
        listed = ", ".join(f"{column} {kind}" for column, kind in BOUNDS_COLUMNS.items())
        connection.execute(f"CREATE OR REPLACE TEMP TABLE {BOUNDS_VIEW} ({listed})")
        checker.tables = sorted({*checker.tables, BOUNDS_VIEW})
        columns, problem = checker.describe(entity.population)
    finally:
        connection.execute(f"DROP TABLE IF EXISTS temp.{BOUNDS_VIEW}")
        checker.close()
    if problem:
        return errors + [_error(catalog, entity, "population", _after_event_hint(problem, readable))]
    names = [column for column, _ in columns]
    returned = dict(columns)
    for duplicate in sorted({name for name in names if names.count(name) > 1}):
        errors.append(_error(catalog, entity, "population", f"returns column '{duplicate}' twice"))
    for index, key in enumerate(entity.keys):
        if key not in returned:
            errors.append(_error(catalog, entity, f"keys[{index}]",
                                 f"the population query does not return key '{key}' (returns: {', '.join(names)})"))
    if entity.time not in returned:
        errors.append(_error(catalog, entity, "time", f"the population query does not return '{entity.time}' "
                                                      f"(returns: {', '.join(names)})"))
    elif returned[entity.time] not in TIME_TYPES:
        errors.append(_error(catalog, entity, "time", f"'{entity.time}' must be a DATE or TIMESTAMP, the "
                                                      f"population query returns {returned[entity.time]}"))
    for reserved in sorted(set(returned) & set(ENTITY_RESERVED_COLUMNS)):
        errors.append(_error(catalog, entity, "population", f"returns column '{reserved}', which the platform "
                                                            f"writes itself (reserved: "
                                                            f"{', '.join(ENTITY_RESERVED_COLUMNS)})"))
    return errors


def population_source(catalog: Catalog, entity: EntitySpec,
                      connection: duckdb.DuckDBPyConnection) -> SourceSpec | None:
    """The entity's population described as a daily source would be, for checking the SQL of the feature sets and
    models that name it (its columns are those the population query returns, plus partition_start, a key of an
    hourly entity's rows; its days run from the entity's start to its end); None when the query does not bind
    (its own errors say why).

    Built without validation, inside the checks only: it names no file and is never loaded.
    """
    readable = {name: catalog.sources[name] for name in entity.reads if name in catalog.sources}
    if len(readable) != len(entity.reads):
        return None
    checker = SqlChecker(readable, connection=connection, before_event_only=True)
    try:
        listed = ", ".join(f"{column} {kind}" for column, kind in BOUNDS_COLUMNS.items())
        connection.execute(f"CREATE OR REPLACE TEMP TABLE {BOUNDS_VIEW} ({listed})")
        columns, problem = checker.describe(entity.population)
    finally:
        connection.execute(f"DROP TABLE IF EXISTS temp.{BOUNDS_VIEW}")
        checker.close()
    if problem or any(name in ENTITY_RESERVED_COLUMNS for name, _ in columns):
        return None
    described = {name: ColumnSpec.model_construct(type=kind, known="before_event", description="")
                 for name, kind in columns}
    described["partition_start"] = ColumnSpec.model_construct(type="TIMESTAMP", known="before_event",
                                                               description="")
    partitioning = DailyPartitioning.model_construct(kind="daily", date="partition_date", start=entity.start,
                                                     end=entity.end, timezone=entity.timezone)
    return SourceSpec.model_construct(
        spec_version=1, kind="source", name=entity.name, description=entity.description, owner=entity.owner,
        trust="internal", location=None, columns=described, derived_columns={}, keys=list(entity_row_keys(entity)),
        partitioning=partitioning, checks=None)
