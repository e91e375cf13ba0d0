"""Where a scoring's rows go: the warehouse's predictions table (embedded), or the model's Delta table (the cluster
configuration, docs/scale-out.md).

Both scorings (score.py's threshold models, task_score.py's tasks) write their batches into the target this module
yields, inside one warehouse transaction. Embedded, that target is `predictions.<model>` itself, its latest view and
the days' versions written in the same transaction. With the Delta store named (FEATURE_TABLES_VARIABLE), the
batches go to a temporary table of the connection, shaped as the Delta table's stored rows (so a feature's type is
checked against what is stored, as embedded); when every batch is written, its rows are appended to
`predictions/<model>` in one Delta commit, and only then the days' versions go to `versions/predictions/<model>`
in a second. A process killed before the first commit leaves the table as it was; killed between the two, the days
stay stale and are scored again (the table is append-only: the newer rows are the latest, as embedded).
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import duckdb

from ml_platform import names
from ml_platform.records.versions import PartitionVersion
from ml_platform.specs.catalog import Catalog
from ml_platform.specs.models import ModelSpec
from ml_platform.storage.delta_tables import (DELTA_LATEST_ORDER, LATEST_KEYS, PREDICTIONS, DeltaStore,
                                              delta_store_from_environment, is_delta_view, refresh_view,
                                              version_index)
from ml_platform.storage.faults import pause_point
from ml_platform.storage.versions import record_versions
from ml_platform.storage.warehouse import table_exists, transaction

STAGED_TABLE = "temp.main.scored_rows"  # a Delta scoring's rows, before their commit


@dataclass(frozen=True)
class ScoringTarget:
    """Where a scoring writes its batches: `table`, made by `create` (`CREATE TABLE IF NOT EXISTS <table>`, with
    TEMP for the connection's own table of a Delta scoring) before each batch's INSERT."""

    table: str
    create: str


def latest_partition_by(catalog: Catalog, spec: ModelSpec) -> list[str]:
    """The columns that name a row in a model's latest view: its entity's keys, and for a population (whose keys
    name a row within its partition) the partition too."""
    rows_of = catalog.entity_rows(spec.entity)
    return [*rows_of.keys, *(["partition_date"] if rows_of.is_population else [])]


def latest_order(connection: duckdb.DuckDBPyConnection, name: str) -> str:
    """The ORDER BY that puts a predictions table's newest row first: append order (rowid) in a warehouse table,
    the scoring time then the partition in a Delta table's view, which has no row order."""
    return DELTA_LATEST_ORDER if is_delta_view(connection, "predictions", name) else "rowid DESC"


@contextmanager
def prediction_writes(connection: duckdb.DuckDBPyConnection, name: str, latest_by: list[str] | None,
                      versions: dict[str, PartitionVersion] | None, model: str) -> Iterator[ScoringTarget]:
    """The table a scoring writes its batches into (its `create`, then INSERT BY NAME), inside one
    warehouse transaction; when the block ends without error, the rows are stored in `predictions.<name>` with its
    latest view (partitioned by `latest_by`; None: no latest view, a shadow table) and the days' versions of
    `model` (None: none recorded)."""
    store = delta_store_from_environment()
    if store is None:
        target = names.table("predictions", name)
        with transaction(connection):
            yield ScoringTarget(target, f"CREATE TABLE IF NOT EXISTS {target}")
            if latest_by is not None:
                connection.execute(
                    f"CREATE OR REPLACE VIEW {names.latest_view(name)} AS SELECT * FROM {target} QUALIFY "
                    f"row_number() OVER (PARTITION BY {', '.join(names.quote(key) for key in latest_by)} "
                    f"ORDER BY rowid DESC) = 1")  # the last scored (append-only table)
            if versions is not None:
                record_versions(connection, names.stage_asset("predictions", model), versions)
            pause_point("predictions-written")
        return
    with _delta_writes(connection, store, name, latest_by, versions, model) as target:
        yield target


@contextmanager
def _delta_writes(connection: duckdb.DuckDBPyConnection, store: DeltaStore, name: str, latest_by: list[str] | None,
                  versions: dict[str, PartitionVersion] | None, model: str) -> Iterator[ScoringTarget]:
    """prediction_writes with the Delta store: batches into a temporary table, then one commit of its rows and one
    of the days' versions."""
    if table_exists(connection, "predictions", name) and not is_delta_view(connection, "predictions", name):
        raise PREDICTIONS.held_by_file(store, name)  # the file holds it: scoring into Delta would split its history
    started = time.time()
    connection.execute(f"DROP TABLE IF EXISTS {STAGED_TABLE}")
    try:
        with transaction(connection):
            if is_delta_view(connection, "predictions", name):  # shaped as stored: types are checked against it
                connection.execute(f"CREATE TEMP TABLE {STAGED_TABLE} AS SELECT * FROM "
                                   f"{names.table('predictions', name)} LIMIT 0")
            yield ScoringTarget(STAGED_TABLE, f"CREATE TEMP TABLE IF NOT EXISTS {STAGED_TABLE}")
        staged = connection.execute("SELECT count(*) FROM duckdb_tables() WHERE temporary AND "
                                    "table_name = 'scored_rows'").fetchall()[0][0]
        rows = connection.sql(f"SELECT * FROM {STAGED_TABLE}").to_arrow_table() if staged else None  # no batch
    finally:
        connection.execute(f"DROP TABLE IF EXISTS {STAGED_TABLE}")
    context = {"model": model, "table": name, "started_at": started, "pid": os.getpid(),
               "host": socket.gethostname(), **({LATEST_KEYS: latest_by} if latest_by is not None else {})}
    pause_point("predictions-written")
    table_version = (store.append(PREDICTIONS.path(name), rows, context) if rows is not None
                     else store.version(PREDICTIONS.path(name)))
    if versions:
        days = sorted(dt.date.fromisoformat(key[:10]) for key in versions)
        store.replace_days(PREDICTIONS.versions_path(name), version_index(versions, table_version), days[0],
                           days[-1], "partition_date", context)
    if table_version is not None:
        refresh_view(connection, store, PREDICTIONS, name)
