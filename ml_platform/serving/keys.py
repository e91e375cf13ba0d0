"""How a request names an entity row, and how the served indexes hold its key values."""

from __future__ import annotations

import datetime as dt

from ml_platform.names import PARTITION_START_COLUMN
from ml_platform.specs.catalog import Catalog


def served_keys(catalog: Catalog, entity: str) -> list[str]:
    """The columns a request names a row of the entity by: a daily source's keys; a population's keys within a
    partition, with `partition_date` (the period's first day) unless an hourly row's `partition_start` is one."""
    rows = catalog.entity_rows(entity)
    keys = list(rows.keys)
    if rows.is_population and PARTITION_START_COLUMN not in keys:
        keys.append("partition_date")
    return keys


def key_value(value):
    """A key value as the served indexes hold it: a date as the datetime of its midnight (DuckDB hands a DATE
    column's values as dates, pandas as Timestamps, which equal and hash as datetimes), any other as it is."""
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return dt.datetime.combine(value, dt.time())
    return value


def identity(values: dict, keys: list[str]):
    """A row's key as a dictionary key: the value of a single key column, else the tuple of values."""
    return values[keys[0]] if len(keys) == 1 else tuple(values[key] for key in keys)
