"""Monitoring tables in the warehouse: one row per model, day and measure, replaced whole when a day is measured
again."""

from __future__ import annotations

import datetime as dt

import duckdb
import pandas as pd

from ml_platform import names
from ml_platform.storage.warehouse import date_literal, table_exists, transaction

COLUMNS = {
    "drift": "day DATE NOT NULL, model_version VARCHAR NOT NULL, feature VARCHAR NOT NULL, psi DOUBLE NOT NULL, "
             "rows BIGINT NOT NULL, computed_at TIMESTAMP NOT NULL, run_id VARCHAR NOT NULL, window_days BIGINT, "
             "window_rows BIGINT, scope VARCHAR",
    "outcomes": "day DATE NOT NULL, status VARCHAR NOT NULL, model_version VARCHAR, rows_scored BIGINT, "
                "labelled_rows BIGINT, flagged BIGINT, true_positives BIGINT, false_positives BIGINT, "
                "realized_money DOUBLE, promised_money DOUBLE, promised_money_by_rows DOUBLE, promised_low DOUBLE, "
                "promised_high DOUBLE, test_days BIGINT, currency VARCHAR, computed_at TIMESTAMP NOT NULL, "
                "run_id VARCHAR NOT NULL",
    # the served channel of each day (monitoring/served.py), apart from the batch's rows so that no figure mixes them
    "served_outcomes": "day DATE NOT NULL, status VARCHAR NOT NULL, model_version VARCHAR, served_lines BIGINT, "
                       "rows_served BIGINT, other_version_rows BIGINT, also_batch_scored BIGINT, "
                       "labelled_rows BIGINT, waiting_rows BIGINT, flagged BIGINT, true_positives BIGINT, "
                       "false_positives BIGINT, realized_money DOUBLE, promised_money_by_rows DOUBLE, "
                       "currency VARCHAR, computed_at TIMESTAMP NOT NULL, run_id VARCHAR NOT NULL",
}
# columns added since a table was first created: a table made by an earlier version gains them (NULL in old rows)
ADDED = {"drift": {"window_days": "BIGINT", "window_rows": "BIGINT", "scope": "VARCHAR"}}


def replace_days(connection: duckdb.DuckDBPyConnection, model: str, kind: str, frame: pd.DataFrame,
                 days: list[dt.date]) -> int:
    """Replace the rows of the given days with frame's rows, in one transaction; returns rows written."""
    target = names.monitoring_table(model, kind)
    connection.register("monitoring_rows", frame)
    try:
        with transaction(connection):
            connection.execute(f"CREATE TABLE IF NOT EXISTS {target} ({COLUMNS[kind]})")
            for column, kind_of in ADDED.get(kind, {}).items():
                connection.execute(f"ALTER TABLE {target} ADD COLUMN IF NOT EXISTS {column} {kind_of}")
            listed = ", ".join(date_literal(day) for day in days)
            if listed:
                connection.execute(f"DELETE FROM {target} WHERE day IN ({listed})")
            if len(frame):
                connection.execute(f"INSERT INTO {target} BY NAME SELECT * FROM monitoring_rows")
    finally:
        connection.unregister("monitoring_rows")
    return len(frame)


def read_days(connection: duckdb.DuckDBPyConnection, model: str, kind: str, start: dt.date,
              end: dt.date) -> pd.DataFrame:
    """The stored rows of [start, end] (empty when nothing was measured yet)."""
    if not table_exists(connection, "monitoring", names.monitoring_table_name(model, kind)):
        return pd.DataFrame()
    return connection.execute(f"SELECT * FROM {names.monitoring_table(model, kind)} WHERE day BETWEEN "
                              f"{date_literal(start)} AND {date_literal(end)} ORDER BY ALL").df()
