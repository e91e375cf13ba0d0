"""Build an entity's population, one partition at a time, into `population.<name>`.

For a partition [start, end) the query sees the one-row view `bounds` and each declared source as a view of the
same name holding its columns known before the event; a daily source's view holds only the days from the
declared lookback before `start` to the day before `start`'s day: a population is chosen before its period begins
(its rows are scored ahead of it, and a daily source's day is delivered once it is over), so the lookback in the
spec is all the query can read.
Each partition's rows replace the stored ones in one transaction, with their period's start and local date. An
hourly entity's partitions are days: the query runs once per hour of the day, each row stamped with its hour.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

import duckdb

from ml_platform import grains
from ml_platform.errors import PlatformError
from ml_platform.names import (BOUNDS_VIEW, ENTITY_RESERVED_COLUMNS, population_asset, population_table, quote,
                               source_asset, source_table, table_label)
from ml_platform.specs.catalog import Catalog, partition_grain
from ml_platform.specs.entity_checks import population_tables
from ml_platform.specs.models import EntitySpec
from ml_platform.specs.sql_checks import only_one_select
from ml_platform.specs.sql_reach import refuse_escapes
from ml_platform.storage.versions import WHOLE, partition_version, partition_versions, record_versions
from ml_platform.storage.warehouse import date_literal, single_threaded, table_exists, transaction


class PopulationError(PlatformError, RuntimeError):
    """An entity's population cannot be built: inputs missing, or the query broke the entity contract."""


@dataclass(frozen=True)
class PartitionPopulation:
    """What building one partition wrote."""

    key: str
    start: dt.datetime
    end: dt.datetime
    rows: int


def timestamp_literal(moment: dt.datetime) -> str:
    """A DuckDB TIMESTAMP literal of a naive local time (from partition bounds, never from free text)."""
    return f"TIMESTAMP '{dt.datetime.fromisoformat(moment.isoformat()).isoformat(sep=' ')}'"


def _days_read(entity: EntitySpec, start: dt.datetime, end: dt.datetime) -> tuple[dt.date, dt.date]:
    """The first and last local day of daily sources a period (or a day of hours) from `start` reads: the
    lookback's days before its start, up to the last day over by then (a population is chosen before its period
    begins, from what is known by then; a day's rows are delivered when the day is over)."""
    return grains.lookback_start(entity.lookback, start).date(), start.date() - dt.timedelta(days=1)


def _bind_sources(connection: duckdb.DuckDBPyConnection, catalog: Catalog, entity: EntitySpec,
                  start: dt.datetime, end: dt.datetime) -> None:
    """The views the query reads: `bounds` and each source, cut to the partition's lookback window."""
    first, last = _days_read(entity, start, end)
    for name in entity.reads:
        source = catalog.sources[name]
        hidden = set(source.after_event_columns())
        columns = ", ".join(quote(column) for column in source.all_columns() if column not in hidden)
        where = f" WHERE partition_date BETWEEN {date_literal(first)} AND {date_literal(last)}" \
            if source.is_daily else ""
        connection.execute(f"CREATE OR REPLACE TEMP VIEW {quote(name)} AS SELECT {columns} "
                           f"FROM {source_table(name)}{where}")
        if source.is_daily:
            loaded = {row[0] for row in connection.execute(
                f"SELECT DISTINCT partition_date FROM {source_table(name)} WHERE partition_date BETWEEN "
                f"{date_literal(first)} AND {date_literal(last)}").fetchall()}
            missing = [day for day in (first + dt.timedelta(days=offset) for offset in range((last - first).days + 1))
                       if day not in loaded]
            if missing:
                raise PopulationError(
                    f"entity '{entity.name}': the {entity.grain} partition from {start:%Y-%m-%d %H:%M} reads source "
                    f"'{name}' from {first} to {last}, but {len(missing)} of those day(s) are not loaded (first "
                    f"{missing[0]}, last {missing[-1]}): materialize those partitions of source '{name}' first")
    connection.execute(f"CREATE OR REPLACE TEMP VIEW {BOUNDS_VIEW} AS SELECT {timestamp_literal(start)} AS "
                       f"partition_start, {timestamp_literal(end)} AS partition_end")


def _unbind(connection: duckdb.DuckDBPyConnection, entity: EntitySpec) -> None:
    for name in (*entity.reads, BOUNDS_VIEW):
        connection.execute(f"DROP VIEW IF EXISTS temp.main.{quote(name)}")


def _check_rows(connection: duckdb.DuckDBPyConnection, entity: EntitySpec, start: dt.datetime,
                end: dt.datetime) -> None:
    """The query's rows must be one per key, with keys and a time inside the partition."""
    columns = [row[0] for row in connection.execute("DESCRIBE period_result").fetchall()]
    missing = [name for name in (*entity.keys, entity.time) if name not in columns]
    reserved = [name for name in ENTITY_RESERVED_COLUMNS if name in columns]
    if missing or reserved:
        problem = f"does not return {', '.join(missing)}" if missing else f"returns reserved {', '.join(reserved)}"
        raise PopulationError(f"entity '{entity.name}': the population query {problem} (returns: "
                              f"{', '.join(columns)})")
    keys = ", ".join(quote(key) for key in entity.keys)
    null_keys = " OR ".join(f"{quote(key)} IS NULL" for key in entity.keys)
    time = quote(entity.time)
    rows, distinct, nulls, outside, example = connection.execute(
        f"SELECT count(*), (SELECT count(*) FROM (SELECT DISTINCT {keys} FROM period_result)), "
        f"count(*) FILTER (WHERE {null_keys}), "
        f"count(*) FILTER (WHERE {time} IS NULL OR CAST({time} AS TIMESTAMP) < {timestamp_literal(start)} "
        f"OR CAST({time} AS TIMESTAMP) >= {timestamp_literal(end)}), "
        f"min(CAST({time} AS VARCHAR)) FILTER (WHERE {time} IS NULL OR CAST({time} AS TIMESTAMP) < "
        f"{timestamp_literal(start)} OR CAST({time} AS TIMESTAMP) >= {timestamp_literal(end)}) "
        f"FROM period_result").fetchall()[0]
    window = f"the {entity.grain} partition [{start:%Y-%m-%d %H:%M}, {end:%Y-%m-%d %H:%M})"
    if nulls:
        raise PopulationError(f"entity '{entity.name}': {nulls} row(s) of {window} have a missing key ({keys})")
    if distinct != rows:
        raise PopulationError(f"entity '{entity.name}': {rows - distinct} duplicate row(s) for the same key "
                              f"({keys}) in {window}; the population query must return one row per key")
    if outside:
        raise PopulationError(f"entity '{entity.name}': {outside} row(s) of {window} have a time '{entity.time}' "
                              f"outside it (e.g. {example or 'missing'}); a row's time lies inside its partition")


def population_version(connection: duckdb.DuckDBPyConnection, catalog: Catalog, entity: EntitySpec,
                       start: dt.datetime, end: dt.datetime):
    """The version of a partition's population: the entity's definition and the stored versions of every source
    partition it reads (a changed source day within its lookback window changes it)."""
    first, last = _days_read(entity, start, end)
    components = {"definition": catalog.entity_hash(entity)}
    for name in entity.reads:
        stored = partition_versions(connection, source_asset(name))
        if catalog.sources[name].is_daily:
            window = [stored[key].version if key in stored else "absent" for key in
                      (str(first + dt.timedelta(days=offset)) for offset in range((last - first).days + 1))]
            components[f"source {name}"] = hashlib.sha256("|".join(window).encode()).hexdigest()[:16]
        else:
            components[f"source {name}"] = stored[WHOLE].version if WHOLE in stored else "absent"
    return partition_version(components)


def _write(connection: duckdb.DuckDBPyConnection, catalog: Catalog, entity: EntitySpec, start: dt.datetime,
           end: dt.datetime, key: str) -> int:
    """Replace the partition's stored rows with the query's (each stamped with its period's start), in one
    transaction; returns the rows written."""
    target = population_table(entity.name)
    select = "SELECT * FROM population_result"
    span = f"partition_start >= {timestamp_literal(start)} AND partition_start < {timestamp_literal(end)}"
    with transaction(connection):
        if table_exists(connection, "population", entity.name):
            stored = [row[0] for row in connection.execute(f"DESCRIBE {target}").fetchall()]
            returned = [row[0] for row in connection.execute(f"DESCRIBE {select}").fetchall()]
            refusal = stored_columns_refusal(entity, stored, returned)
            if refusal:
                raise refusal
        else:
            connection.execute(f"CREATE TABLE {target} AS SELECT * FROM ({select}) LIMIT 0")
        connection.execute(f"DELETE FROM {target} WHERE {span}")
        connection.execute(f"INSERT INTO {target} BY NAME {select}")
        record_versions(connection, population_asset(entity.name),
                        {key: population_version(connection, catalog, entity, start, end)})
        return connection.execute(
            f"SELECT count(*) FROM {target} WHERE {span}").fetchall()[0][0]


def check_inputs(connection: duckdb.DuckDBPyConnection, entity: EntitySpec) -> None:
    """Refuse a population query that is not one SELECT of its declared tables, or sources not loaded yet."""
    problem = only_one_select(connection, entity.population) or refuse_escapes(
        entity.population, population_tables(entity))
    if problem:  # the loader rejects such SQL already; a spec built in code must not run either
        raise PopulationError(f"entity '{entity.name}': {problem}")
    missing = [name for name in entity.reads if not table_exists(connection, "source", name)]
    if missing:
        raise PopulationError(f"entity '{entity.name}': {', '.join(table_label('source', n) for n in missing)} not "
                              f"in the warehouse yet: materialize the sources it reads first")


def compute_partition(connection: duckdb.DuckDBPyConnection, catalog: Catalog, entity: EntitySpec,
                      start: dt.datetime, end: dt.datetime) -> None:
    """Run the population query for every period of the partition [start, end) into the temporary table
    `population_result` (checked and stamped rows), which the caller writes and then drops."""
    for index, period in enumerate(grains.periods(entity.grain, start, end - dt.timedelta(microseconds=1))):
        _run_query(connection, catalog, entity, period, grains.shift(entity.grain, period, 1), index == 0)


def stored_columns_refusal(entity: EntitySpec, stored: list[str], returned: list[str]) -> PopulationError | None:
    """The refusal of a query whose columns are not the stored population's, or None when they are the same set."""
    if sorted(stored) == sorted(returned):
        return None
    return PopulationError(
        f"entity '{entity.name}': {table_label('population', entity.name)} holds columns ({', '.join(stored)}) but "
        f"the population query now returns ({', '.join(returned)}); a changed population needs a new entity name "
        f"(models trained on the old rows keep reading them)")


def build_partition(connection: duckdb.DuckDBPyConnection, catalog: Catalog, entity: EntitySpec,
                    key: str) -> PartitionPopulation:
    """Build the population of the partition a key names into `population.<name>`."""
    check_inputs(connection, entity)
    start, end = grains.bounds(partition_grain(entity.grain), key)
    try:
        compute_partition(connection, catalog, entity, start, end)
        rows = _write(connection, catalog, entity, start, end, key)
    finally:
        connection.execute("DROP TABLE IF EXISTS temp.main.population_result")
    return PartitionPopulation(key=key, start=start, end=end, rows=rows)


def _run_query(connection: duckdb.DuckDBPyConnection, catalog: Catalog, entity: EntitySpec, start: dt.datetime,
               end: dt.datetime, first: bool) -> None:
    """Run the query for one period [start, end), check its rows and add them, stamped with the period's start
    and local date, to `population_result` (created by the first period of a partition)."""
    try:
        _bind_sources(connection, catalog, entity, start, end)
        with single_threaded(connection):  # the same rows in the same order on every rebuild
            connection.execute(f"CREATE OR REPLACE TEMP TABLE period_result AS {entity.population}")
    except duckdb.Error as error:
        raise PopulationError(f"entity '{entity.name}': the population query failed for the partition from "
                              f"{start:%Y-%m-%d %H:%M}: {str(error).splitlines()[0]}") from None
    finally:
        _unbind(connection, entity)
    try:
        _check_rows(connection, entity, start, end)
        stamped = (f"SELECT *, {timestamp_literal(start)} AS partition_start, {date_literal(start.date())} AS "
                   f"partition_date FROM period_result")
        if first:
            connection.execute(f"CREATE OR REPLACE TEMP TABLE population_result AS {stamped}")
        else:
            connection.execute(f"INSERT INTO population_result BY NAME {stamped}")
    finally:
        connection.execute("DROP TABLE IF EXISTS temp.main.period_result")
