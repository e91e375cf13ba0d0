"""A source's rows committed to its Delta table (the cluster configuration, docs/scale-out.md).

With the Delta store configured (FEATURE_TABLES_VARIABLE names its root), a source is staged and checked exactly as
in the embedded warehouse (refresh.py), but in a private in-memory DuckDB that neither reads nor writes the warehouse
file; the checked rows then go to the source's Delta table (`sources/<name>`) in one commit (a daily source's days
replace those days, a reference source's rows the whole table), and only then their versions (the same `content` and
`load` components, the same version hashes) are committed to the Delta version index beside it
(`versions/sources/<name>`). A process killed before the first commit leaves the table's last version as it was;
killed between the two, the partitions stay stale and are loaded again.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import duckdb
import pyarrow as pa

from ml_platform import clock
from ml_platform.names import FEATURE_TABLES_VARIABLE, table_label
from ml_platform.records.versions import PartitionVersion
from ml_platform.specs.models import SourceSpec
from ml_platform.storage.delta_tables import SOURCES, DeltaStore, DeltaStoreError, mirror_versions, version_index
from ml_platform.storage.warehouse import MEMORY_LIMIT, attach_read_only, prepare


def refuse_warehouse_copy(store: DeltaStore, source: SourceSpec, warehouse: Path) -> None:
    """Refuse a first load into Delta while the warehouse file holds the source as a table of its own (loaded
    before the store was named): the new rows would go to the store, the earlier ones stay in the file, and every
    reader would then refuse the warehouse (`DeltaKind.shadowed`). Nothing is committed; the file is only read."""
    if not warehouse.exists():
        return
    probe = duckdb.connect(":memory:")
    try:
        attach_read_only(probe, warehouse, "warehouse")
        found = probe.execute(
            "SELECT table_type FROM information_schema.tables WHERE table_catalog = 'warehouse' AND "
            "table_schema = 'source' AND table_name = ?", [source.name]).fetchall()
    finally:
        probe.close()
    if found and found[0][0] != "VIEW":
        raise DeltaStoreError(
            f"source '{source.name}': the warehouse {warehouse} holds {table_label('source', source.name)} as a table "
            f"of its own (loaded before {FEATURE_TABLES_VARIABLE} was set), and {store.uri(SOURCES.path(source.name))} "
            f"does not exist yet: a source lives in one place. Drop the table and load the source again (it goes "
            f"to the store), or unset {FEATURE_TABLES_VARIABLE}")


@contextmanager
def staging_connection(store: DeltaStore, source: SourceSpec, warehouse: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """An in-memory DuckDB laid out like the warehouse for one source's load: its Delta table as `source.<name>`
    (a daily source's stored days, which the health checks compare the staged ones with) and its Delta versions in
    the version index (which decide what is reused). Closed when the block ends; the warehouse file is never
    written, and read only before the source's first load into the store (`refuse_warehouse_copy`)."""
    exists = store.exists(SOURCES.path(source.name))
    if not exists:
        refuse_warehouse_copy(store, source, Path(warehouse))
    connection = duckdb.connect(":memory:", config={"memory_limit": MEMORY_LIMIT})
    try:
        prepare(connection)
        names = [source.name] if exists else []
        for name in names:
            connection.register(SOURCES.dataset_name(name), store.dataset(SOURCES.path(name)))
            connection.execute(f'CREATE VIEW {SOURCES.view(name)} AS SELECT * FROM "{SOURCES.dataset_name(name)}"')
        mirror_versions(connection, store, SOURCES, names)
        yield connection
    finally:
        connection.close()


def commit_days(store: DeltaStore, connection: duckdb.DuckDBPyConnection, source: SourceSpec, staged: str,
                start: dt.date, end: dt.date, versions: dict[str, PartitionVersion]) -> tuple[int, int]:
    """Replace the days [start, end] of the source's Delta table with the staged (checked) rows in one commit, then
    record the days' versions in its Delta version index in a second; returns the rows written and the table's
    version that holds them."""
    started = time.time()
    rows = connection.sql(f"SELECT * FROM {staged}").to_arrow_table()
    connection.execute(f"DROP TABLE {staged}")
    context = {"source": source.name, "first_day": start.isoformat(), "last_day": end.isoformat(),
               "started_at": started, "pid": os.getpid(), "host": socket.gethostname()}
    table_version = store.replace_days(SOURCES.path(source.name), rows, start, end, "partition_date", context)
    store.replace_days(SOURCES.versions_path(source.name), version_index(versions, table_version), start, end,
                       "partition_date", context)
    return rows.num_rows, table_version


def commit_whole(store: DeltaStore, connection: duckdb.DuckDBPyConnection, source: SourceSpec, staged: str,
                 versions: dict[str, PartitionVersion]) -> tuple[int, int]:
    """Replace the whole Delta table of a reference source (loaded whole, unpartitioned) with the staged (checked)
    rows in one commit, then its version (the one partition, WHOLE) in its Delta version index in a second; returns
    the rows written and the table's version that holds them."""
    if source.is_daily:
        raise ValueError(f"source '{source.name}' is daily: its days are committed by commit_days, not whole")
    started = time.time()
    rows = connection.sql(f"SELECT * FROM {staged}").to_arrow_table()
    connection.execute(f"DROP TABLE {staged}")
    context = {"source": source.name, "whole": True, "started_at": started, "pid": os.getpid(),
               "host": socket.gethostname()}
    table_version = store.replace_all(SOURCES.path(source.name), rows, context)
    keys = sorted(versions)
    index = pa.table({
        "partition_key": keys,
        "version": [versions[key].version for key in keys],
        "components": [json.dumps(versions[key].components, sort_keys=True) for key in keys],
        "recorded_at": pa.array([clock.now()] * len(keys), pa.timestamp("us")),
        "table_version": pa.array([table_version] * len(keys), pa.int64()),
    })
    store.replace_all(SOURCES.versions_path(source.name), index, context)
    return rows.num_rows, table_version
