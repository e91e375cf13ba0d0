"""Labels: the SQL that computes them, and when each one matures. The one place that knows either.

A row of local day d has a label window (d, d + horizon] (empty without a horizon: the label reads the row's own
outcome columns); a row of an entity spec, whose time is its period's start, has the window [d, d + horizon) and
its label matures a day earlier. Its label is mature, final and usable, at the start of day d + horizon + 1 + delay,
local time:
every day of its window is over (a daily source's day is complete when it ends) and the sources it reads have
delivered it (`delivery_delay_days`). For the demo, a flight's outcome is known the morning after its day.
A label is usable only when, besides being mature by the clock, every day of its window is stored in the sources
it aggregates.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo

import duckdb

from ml_platform import clock, names
from ml_platform.names import quote, source_table
from ml_platform.specs.catalog import Catalog
from ml_platform.specs.models import ModelSpec, SourceSpec
from ml_platform.specs.tasks import label_sql
from ml_platform.storage.versions import partition_versions
from ml_platform.storage.warehouse import date_literal


def delivery_delay_days(source: SourceSpec) -> int:
    """Days after a source's day ends before its rows are delivered: none, a daily partition is complete when its
    day ends. The switch for point-in-time availability (`SourceSpec.available_at`) once it exists."""
    return 0


def horizon_days(model: ModelSpec) -> int:
    """How many days after a row's own day its label reads (0: only the row's own day)."""
    return model.label.horizon.days if model.label.horizon is not None else 0


def label_source_names(model: ModelSpec, catalog: Catalog | None = None) -> list[str]:
    """Every source the label reads: the entity (its own row; with the catalog, an entity spec's sources) and the
    aggregated sources, sorted."""
    entity = list(catalog.entity_rows(model.entity).reads()) if catalog is not None else [model.entity]
    return sorted({*entity, *model.label.label_sources()})


def window_offset(catalog: Catalog, model: ModelSpec) -> int:
    """Days from a row's day to the first day of its label window: 1 for a source's row, whose own day holds its
    event; 0 for an entity spec's row, whose time is its period's start, before any of the period's days."""
    return 0 if catalog.entity_rows(model.entity).is_population else 1


def label_lag_days(catalog: Catalog, model: ModelSpec) -> int:
    """Days from a row's local day to the start of the day its label matures: the window's offset (1 for a
    source's row, 0 for an entity spec's) + horizon + delivery delay."""
    delay = max(delivery_delay_days(catalog.sources[name]) for name in label_source_names(model, catalog))
    return window_offset(catalog, model) + horizon_days(model) + delay


def matures_on(catalog: Catalog, model: ModelSpec, day: dt.date) -> dt.date:
    """The local day at whose start the label of a row of `day` is mature."""
    return day + dt.timedelta(days=label_lag_days(catalog, model))


def last_mature_day(catalog: Catalog, model: ModelSpec, today: dt.date) -> dt.date:
    """The last row day whose label is mature at the start of local day `today`."""
    return today - dt.timedelta(days=label_lag_days(catalog, model))


def local_today(catalog: Catalog, model: ModelSpec) -> dt.date:
    """Today in the entity's time zone, by the platform's clock (a replay's simulated moment)."""
    zone = zoneinfo.ZoneInfo(catalog.entity_rows(model.entity).timezone)
    return clock.now().replace(tzinfo=dt.timezone.utc).astimezone(zone).date()


def _stored_through(stored: set[str], first: dt.date) -> dt.date | None:
    """The last day of the unbroken run of stored days from `first`; None when `first` is not stored."""
    day = first
    while day.isoformat() in stored:
        day += dt.timedelta(days=1)
    return None if day == first else day - dt.timedelta(days=1)


def labels_known_through(connection: duckdb.DuckDBPyConnection, catalog: Catalog, model: ModelSpec,
                         first: dt.date, today: dt.date) -> dt.date | None:
    """The last row day from `first` whose label is usable on `today`: mature by the clock, and every day of its
    window, from the day after `first`, stored in each source the label aggregates (a gap stops the run). None
    when not even `first`'s is. (A label of the row's own columns is there when the row is.)"""
    through = last_mature_day(catalog, model, today)
    offset = window_offset(catalog, model)
    # the window of a row of day d ends on d + offset + horizon - 1
    reach = dt.timedelta(days=offset + horizon_days(model) - 1)
    for name in model.label.label_sources():
        stored = set(partition_versions(connection, names.source_asset(name)))
        # the window of `first` starts `offset` days after it; days before the source's first day hold no rows
        start = max(first + dt.timedelta(days=offset), catalog.sources[name].partitioning.start)
        last = _stored_through(stored, start)
        if last is None:
            return None
        through = min(through, last - reach)
    return through if through >= first else None


def label_columns_sql(catalog: Catalog, model: ModelSpec, entity_alias: str = "entity_row") -> str:
    """`, (<aggregate>) AS "<name>"` for each of the label's aggregates, over the entity rows named entity_alias."""
    if not model.label.aggregates:
        return ""
    horizon = horizon_days(model)
    columns = []
    for name, aggregate in sorted(model.label.aggregates.items()):
        match = " AND ".join(f"later.{quote(source_column)} = {entity_alias}.{quote(entity_column)}"
                             for entity_column, source_column in sorted(aggregate.match.items()))
        value = f"({aggregate.expression})"
        if aggregate.default is not None:
            value = f"coalesce({value}, {aggregate.default!r})"
        if catalog.entity_rows(model.entity).is_population:  # the window [d, d + horizon) from the period's start
            window = (f"later.partition_date >= {entity_alias}.partition_date AND later.partition_date < "
                      f"{entity_alias}.partition_date + INTERVAL {horizon} DAY")
        else:  # the window (d, d + horizon] after the row's own day
            window = (f"later.partition_date > {entity_alias}.partition_date AND later.partition_date <= "
                      f"{entity_alias}.partition_date + INTERVAL {horizon} DAY")
        columns.append(f", (SELECT {value} FROM {source_table(aggregate.source)} AS later WHERE {match} AND "
                       f"{window}) AS {quote(name)}")
    return "".join(columns)


def labelled_rows_sql(catalog: Catalog, model: ModelSpec, start: dt.date | None = None,
                      end: dt.date | None = None) -> str:
    """A relation of the entity's rows (of [start, end] when given), each with the label's aggregates and `label`
    (the outcome expressions may name both, so they are computed on the entity rows first)."""
    where = ""
    if start is not None and end is not None:
        where = f" WHERE partition_date BETWEEN {date_literal(start)} AND {date_literal(end)}"
    rows = f"SELECT * FROM {names.table(catalog.entity_rows(model.entity).schema, model.entity)}{where}"
    if model.label.aggregates:
        rows = f"SELECT entity_row.*{label_columns_sql(catalog, model)} FROM ({rows}) AS entity_row"
    return f"(SELECT *, {label_sql(model.label)} AS label FROM ({rows}))"
