"""An entity's population partitions committed to its Delta table (the cluster configuration, docs/scale-out.md).

With the Delta store configured (FEATURE_TABLES_VARIABLE names its root), a population's partitions are computed by
the same code as in the embedded warehouse (population.py: the same query per period, the same checks, the same
versions), but in a private in-memory DuckDB that reads its sources' Delta tables and versions and never writes the
warehouse file (it reads it only for a source loaded into it before the store was named, and before a population's
first build into the store, to refuse one the file holds already). The
partitions' rows then replace their days in `populations/<name>` in one commit, and only then their versions go to
`versions/populations/<name>` in a second. Partitions whose stored versions are already the expected ones are reused
(nothing computed, nothing committed). A process killed before the first commit leaves the table's last version as
it was; killed between the two, the partitions stay stale and are computed again.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import duckdb
import pyarrow as pa

from ml_platform import clock, grains
from ml_platform.entities.population import (PartitionPopulation, check_inputs, compute_partition,
                                             population_version, stored_columns_refusal)
from ml_platform.names import (FEATURE_TABLES_VARIABLE, population_asset, quote, registry_table, source_asset,
                               table_label)
from ml_platform.records.versions import PartitionVersion
from ml_platform.specs.catalog import Catalog, partition_grain
from ml_platform.specs.models import EntitySpec
from ml_platform.storage.delta_tables import POPULATIONS, SOURCES, DeltaStore, DeltaStoreError, mirror_versions
from ml_platform.storage.versions import partition_versions
from ml_platform.storage.warehouse import LOCK_WAIT_SECONDS, MEMORY_LIMIT, attach_read_only, prepare

ATTACHED = "warehouse"  # the warehouse file's catalog in the private connection
VERSIONS = registry_table("partition_versions")


@dataclass(frozen=True)
class DeltaPopulationBuild:
    """What one step did to a population's Delta table: each partition's rows, the table's version holding them,
    and whether every partition was reused (nothing computed, nothing committed)."""

    partitions: list[PartitionPopulation]
    table_version: int | None
    reused: bool


def _file_table_type(warehouse: Path, schema: str, name: str, wait_seconds: float) -> str | None:
    """The type of `<schema>.<name>` in the warehouse file (read-only), or None where the file or table is not."""
    if not warehouse.exists():
        return None
    probe = duckdb.connect(":memory:")
    try:
        attach_read_only(probe, warehouse, ATTACHED, wait_seconds)
        found = probe.execute("SELECT table_type FROM information_schema.tables WHERE table_catalog = ? AND "
                              "table_schema = ? AND table_name = ?", [ATTACHED, schema, name]).fetchall()
    finally:
        probe.close()
    return found[0][0] if found else None


@contextmanager
def population_connection(store: DeltaStore, entity: EntitySpec, warehouse: Path,
                          wait_seconds: float = LOCK_WAIT_SECONDS) -> Iterator[duckdb.DuckDBPyConnection]:
    """An in-memory DuckDB laid out like the warehouse for one population: each source it reads as `source.<name>`
    (its Delta table; a source without one from the warehouse file, attached read-only, when the file exists), the
    sources' versions, and the population's own Delta versions (which decide what is reused). Closed when the block
    ends; the warehouse file is never written."""
    delta_sources = SOURCES.names(store)
    from_file = [name for name in entity.reads if name not in delta_sources]
    attached = bool(from_file) and warehouse.exists()
    connection = duckdb.connect(":memory:", config={"memory_limit": MEMORY_LIMIT})
    try:
        if attached:
            attach_read_only(connection, warehouse, ATTACHED, wait_seconds)
        prepare(connection)
        for name in from_file if attached else ():
            if connection.execute("SELECT count(*) FROM information_schema.tables WHERE table_catalog = ? AND "
                                  "table_schema = 'source' AND table_name = ?", [ATTACHED, name]).fetchall()[0][0]:
                connection.execute(f"CREATE VIEW source.{quote(name)} AS SELECT * FROM {ATTACHED}.source.{quote(name)}")
                connection.execute(f"INSERT INTO {VERSIONS} SELECT * FROM {ATTACHED}.{VERSIONS} WHERE asset = ?",
                                   [source_asset(name)])
        shown = [name for name in entity.reads if name in delta_sources]
        for name in shown:
            connection.register(SOURCES.dataset_name(name), store.dataset(SOURCES.path(name)))
            connection.execute(f'CREATE VIEW {SOURCES.view(name)} AS SELECT * FROM "{SOURCES.dataset_name(name)}"')
        mirror_versions(connection, store, SOURCES, shown)
        mirror_versions(connection, store, POPULATIONS, [entity.name])
        yield connection
    finally:
        connection.close()


def refuse_warehouse_copy(store: DeltaStore, entity: EntitySpec, warehouse: Path,
                          wait_seconds: float = LOCK_WAIT_SECONDS) -> None:
    """Refuse a first build into Delta while the warehouse file holds the population as a table of its own (built
    before the store was named): its earlier partitions would stay in the file, and every reader would then refuse
    the warehouse (`DeltaKind.shadowed`). Nothing is committed; the file is only read."""
    found = _file_table_type(warehouse, "population", entity.name, wait_seconds)
    if found is not None and found != "VIEW":
        raise DeltaStoreError(
            f"entity '{entity.name}': the warehouse {warehouse} holds {table_label('population', entity.name)} as a "
            f"table of its own (built before {FEATURE_TABLES_VARIABLE} was set), and "
            f"{store.uri(POPULATIONS.path(entity.name))} does not exist yet: a population lives in one place. Drop "
            f"the table and materialize the entity again (it goes to the store), or unset {FEATURE_TABLES_VARIABLE}")


def contiguous_runs(keys: list[str], grain: str) -> list[list[tuple[str, dt.datetime, dt.datetime]]]:
    """The partitions the keys name, (key, start, end) in time order, cut into runs of adjacent partitions: each run
    is one span of days, replaced in one commit."""
    runs: list[list[tuple[str, dt.datetime, dt.datetime]]] = []
    for key, start, end in sorted(((key, *grains.bounds(grain, key)) for key in set(keys)), key=lambda item: item[1]):
        if runs and runs[-1][-1][2] == start:
            runs[-1].append((key, start, end))
        else:
            runs.append([(key, start, end)])
    return runs


def build_delta_partitions(store: DeltaStore, catalog: Catalog, entity: EntitySpec, keys: list[str],
                           warehouse: Path) -> DeltaPopulationBuild:
    """Build the partitions the keys name into the population's Delta table: each run of adjacent partitions
    computed privately, its rows committed in one replacement of its days, then its versions; a run whose stored
    versions are all the expected ones is reused without a commit."""
    warehouse = Path(warehouse).resolve()
    if not store.exists(POPULATIONS.path(entity.name)):
        refuse_warehouse_copy(store, entity, warehouse)
    built: list[PartitionPopulation] = []
    table_version, reused = store.version(POPULATIONS.path(entity.name)), True
    with population_connection(store, entity, warehouse) as connection:
        check_inputs(connection, entity)
        stored = partition_versions(connection, population_asset(entity.name))
        for run in contiguous_runs(keys, partition_grain(entity.grain)):
            expected = {key: population_version(connection, catalog, entity, start, end) for key, start, end in run}
            if all(key in stored and stored[key].version == version.version for key, version in expected.items()):
                built.extend(_stored_partition(store, entity, key, start, end) for key, start, end in run)
                continue
            reused = False
            partitions, table_version = _commit_run(connection, store, catalog, entity, run, expected)
            built.extend(partitions)
    return DeltaPopulationBuild(partitions=built, table_version=table_version, reused=reused)


def _stored_partition(store: DeltaStore, entity: EntitySpec, key: str, start: dt.datetime,
                      end: dt.datetime) -> PartitionPopulation:
    """A reused partition, its rows counted in the Delta table."""
    import pyarrow.compute as pc

    last = (end - dt.timedelta(microseconds=1)).date()
    dataset = store.dataset(POPULATIONS.path(entity.name))
    rows = dataset.count_rows(filter=(pc.field("partition_date") >= pa.scalar(start.date())) &
                              (pc.field("partition_date") <= pa.scalar(last)))
    return PartitionPopulation(key=key, start=start, end=end, rows=rows)


def _commit_run(connection: duckdb.DuckDBPyConnection, store: DeltaStore, catalog: Catalog, entity: EntitySpec,
                run: list[tuple[str, dt.datetime, dt.datetime]],
                expected: dict[str, PartitionVersion]) -> tuple[list[PartitionPopulation], int]:
    """Compute a run's partitions, replace its days in the Delta table with their rows (one commit), then record
    their versions (a second); returns each partition's rows and the table's version holding them."""
    started = time.time()
    counts = []
    try:
        for index, (key, start, end) in enumerate(run):
            compute_partition(connection, catalog, entity, start, end)
            counts.append(connection.execute("SELECT count(*) FROM population_result").fetchall()[0][0])
            if index == 0:
                connection.execute("CREATE OR REPLACE TEMP TABLE run_rows AS SELECT * FROM population_result")
            else:
                connection.execute("INSERT INTO run_rows BY NAME SELECT * FROM population_result")
            connection.execute("DROP TABLE temp.main.population_result")
        returned = [row[0] for row in connection.execute("DESCRIBE run_rows").fetchall()]
        path = POPULATIONS.path(entity.name)
        columns = returned
        if store.exists(path):
            columns = store.table(path).schema().to_arrow().names
            refusal = stored_columns_refusal(entity, columns, returned)
            if refusal:
                raise refusal
        rows = connection.sql(f"SELECT {', '.join(quote(column) for column in columns)} FROM run_rows"
                              ).to_arrow_table()
    finally:
        connection.execute("DROP TABLE IF EXISTS temp.main.population_result")
        connection.execute("DROP TABLE IF EXISTS temp.main.run_rows")
    first, last = run[0][1].date(), (run[-1][2] - dt.timedelta(microseconds=1)).date()
    context = {"entity": entity.name, "first_day": first.isoformat(), "last_day": last.isoformat(),
               "started_at": started, "pid": os.getpid(), "host": socket.gethostname()}
    table_version = store.replace_days(POPULATIONS.path(entity.name), rows, first, last, "partition_date", context)
    index = pa.table({
        "partition_date": pa.array([start.date() for _, start, _ in run], pa.date32()),
        "partition_key": [key for key, _, _ in run],
        "version": [expected[key].version for key, _, _ in run],
        "components": [json.dumps(expected[key].components, sort_keys=True) for key, _, _ in run],
        "recorded_at": pa.array([clock.now()] * len(run), pa.timestamp("us")),
        "table_version": pa.array([table_version] * len(run), pa.int64()),
    })
    store.replace_days(POPULATIONS.versions_path(entity.name), index, first, last, "partition_date", context)
    return [PartitionPopulation(key=key, start=start, end=end, rows=count)
            for (key, start, end), count in zip(run, counts)], table_version
