"""Monitoring tables in the warehouse: one row per model, day and measure, replaced whole when a day is measured
again; with the Delta store named (the cluster configuration, docs/scale-out.md), Delta tables under
`monitoring/<model>__<kind>` that readers see as the same `monitoring.<model>__<kind>` views."""

from __future__ import annotations

import datetime as dt

import os
import socket

import duckdb
import pandas as pd

from ml_platform import names
from ml_platform.records.versions import PartitionVersion
from ml_platform.storage.delta_tables import (MONITORING, DeltaStore, delta_store_from_environment, is_delta_view,
                                              refresh_view, version_index)
from ml_platform.storage.versions import record_versions
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
    """Replace the rows of the given days with frame's rows, in one transaction (with the Delta store named, one
    commit to the model's Delta table `monitoring/<model>__<kind>`); returns rows written."""
    store = delta_store_from_environment()
    if store is not None:
        return _replace_delta_days(connection, store, model, kind, frame, days)
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


def _replace_delta_days(connection: duckdb.DuckDBPyConnection, store: DeltaStore, model: str, kind: str,
                        frame: pd.DataFrame, days: list[dt.date]) -> int:
    """replace_days with the Delta store: the rows typed as the warehouse's table would type them (COLUMNS), then
    one commit replacing their days (the table created, or given the columns it lacks, by that commit)."""
    name = names.monitoring_table_name(model, kind)
    if table_exists(connection, "monitoring", name) and not is_delta_view(connection, "monitoring", name):
        raise MONITORING.held_by_file(store, name)  # the file holds it: measuring into Delta would split its days
    if not days:
        return 0
    connection.register("monitoring_rows", frame)
    try:
        connection.execute(f"CREATE OR REPLACE TEMP TABLE monitoring_staged ({COLUMNS[kind]})")
        if len(frame):
            connection.execute("INSERT INTO monitoring_staged BY NAME SELECT * FROM monitoring_rows")
        rows = connection.sql("SELECT * FROM monitoring_staged").to_arrow_table()
    finally:
        connection.unregister("monitoring_rows")
        connection.execute("DROP TABLE IF EXISTS temp.main.monitoring_staged")
    store.replace_where(MONITORING.path(name), rows, "day", days,
                        {"model": model, "kind": kind, "days": len(days), "pid": os.getpid(),
                         "host": socket.gethostname()})
    refresh_view(connection, store, MONITORING, name)
    return len(frame)


def record_days_versions(connection: duckdb.DuckDBPyConnection, model: str, kind: str,
                         versions: dict[str, PartitionVersion]) -> None:
    """Record the versions of the days a monitoring table was given (outcomes': what judged them), after their
    rows: in the warehouse's version index, or with the Delta store named in the table's Delta version index."""
    store = delta_store_from_environment()
    if store is None:
        record_versions(connection, names.stage_asset(kind, model), versions)
        return
    if not versions:
        return
    name = names.monitoring_table_name(model, kind)
    days = sorted(dt.date.fromisoformat(key[:10]) for key in versions)
    store.replace_days(MONITORING.versions_path(name), version_index(versions, store.version(MONITORING.path(name))),
                       days[0], days[-1], "partition_date", {"model": model, "kind": kind, "pid": os.getpid()})
    refresh_view(connection, store, MONITORING, name)


def read_days(connection: duckdb.DuckDBPyConnection, model: str, kind: str, start: dt.date,
              end: dt.date) -> pd.DataFrame:
    """The stored rows of [start, end] (empty when nothing was measured yet)."""
    if not table_exists(connection, "monitoring", names.monitoring_table_name(model, kind)):
        return pd.DataFrame()
    return connection.execute(f"SELECT * FROM {names.monitoring_table(model, kind)} WHERE day BETWEEN "
                              f"{date_literal(start)} AND {date_literal(end)} ORDER BY ALL").df()
