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


def held(rows: list) -> list:
    """Rows (tuples or lists) of key values as the served indexes hold them: a date column's values as datetimes
    (`key_value`). A column's values are of one kind, so the first row says whether any needs it (a DATE key of
    a source or a population's `partition_date`); other rows are returned as they are, at no cost per value."""
    if not rows or not any(key_value(value) is not value for value in rows[0]):
        return rows
    return [tuple(key_value(value) for value in row) for row in rows]


def identity(values: dict, keys: list[str]):
    """A row's key as a dictionary key: the value of a single key column, else the tuple of values."""
    return values[keys[0]] if len(keys) == 1 else tuple(values[key] for key in keys)
