"""Feature partitions computed each in a private DuckDB and committed to Delta tables, one transaction per partition.

The cluster configuration's feature tables (docs/scale-out.md). A partition is computed by the same code as in the
embedded warehouse (`compute_feature_set`, the point-in-time proof), but in an in-memory DuckDB of its own that
reads the sources' and populations' Delta tables and versions, the Delta tables of the feature sets it uses, and the
warehouse file read-only for what is still in it (sources and populations written there before the store was named,
their versions); a partition reading nothing from the file runs where the file does not exist. Then its rows replace the partition's
rows in the feature set's Delta table in one commit, and its version is recorded in the Delta version index beside
it. Nothing is published before the proof passed; a process killed before the rows' commit leaves the table's last
version as it was, and one killed between the two commits leaves the partition's version unrecorded, so the next run
computes it again.
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
from typing import Iterator, Sequence

import duckdb
import pyarrow as pa

from ml_platform import clock, grains
from ml_platform.features.compute import check_feature_set_sql, compute_feature_set
from ml_platform.features.proof import Proof, prove_feature_set
from ml_platform.features.versions import stale_days
from ml_platform.errors import PlatformError
from ml_platform.names import (delta_feature_path, delta_versions_path, feature_asset, feature_table, quote,
                               registry_table, table_label)
from ml_platform.records.feature_partitions import FeaturePartitionCommit
from ml_platform.records.versions import PartitionVersion
from ml_platform.specs.catalog import Catalog
from ml_platform.specs.models import FeatureSetSpec
from ml_platform.storage.delta_tables import POPULATIONS, SOURCES, DeltaStore, mirror_versions
from ml_platform.storage.faults import pause_point
from ml_platform.storage.warehouse import LOCK_WAIT_SECONDS, MEMORY_LIMIT, attach_read_only, date_literal, prepare

ATTACHED = "warehouse"  # the warehouse file's catalog in a private connection
VERSIONS = registry_table("partition_versions")


class WarehouseFileMissing(PlatformError, FileNotFoundError):
    """A feature partition reads tables that only the warehouse file can hold, and the file does not exist."""


def file_tables(catalog: Catalog, feature_set: FeatureSetSpec, delta_sources: list[str],
                delta_populations: list[str]) -> list[tuple[str, str]]:
    """(schema, name) of the tables a feature set's partitions read (its rows, the sources it reads, their
    versions) that are not Delta tables of the store: its entity's population unless in `delta_populations`, and
    any source not in `delta_sources`. Only these need the warehouse file."""
    rows = catalog.entity_rows(feature_set.entity)
    found = [("source", name) for name in sorted({*rows.reads(), *feature_set.reads}) if name not in delta_sources]
    return found + ([("population", rows.name)] if rows.is_population and rows.name not in delta_populations else [])


def missing_file(path: Path, store: DeltaStore, feature_set: FeatureSetSpec,
                 needed: list[tuple[str, str]]) -> WarehouseFileMissing:
    """The refusal of a partition that needs the warehouse file where it does not exist, naming each table and
    where it was looked for."""
    said = []
    for schema, name in needed:
        kind, asset = (SOURCES, "source") if schema == "source" else (POPULATIONS, "entity")
        said.append(f"{table_label(schema, name)} (no Delta table at {store.uri(kind.path(name))}: "
                    f"materialize {asset} '{name}' first)")
    return WarehouseFileMissing(f"feature set '{feature_set.name}' reads from the warehouse file {path}, which does "
                                f"not exist: " + "; ".join(said))


def stored_versions_table(store: DeltaStore, name: str) -> pa.Table | None:
    """The Delta version index of a feature set, or None before its first partition."""
    path = delta_versions_path(name)
    return store.table(path).to_pyarrow_table() if store.exists(path) else None


@contextmanager
def private_connection(warehouse: str | Path, store: DeltaStore, catalog: Catalog, feature_set: FeatureSetSpec,
                       wait_seconds: float = LOCK_WAIT_SECONDS) -> Iterator[duckdb.DuckDBPyConnection]:
    """An in-memory DuckDB laid out like the warehouse for one feature set: the sources' Delta tables, their
    versions, the populations' Delta tables and versions, the Delta tables of the feature sets it uses, the Delta
    versions of those and of its own partitions, and, when the warehouse file exists, the populations and sources
    it holds (read-only, a Delta source's or population's table of its own refused). Without the file, a feature
    set whose rows and sources are all Delta tables is served all the same (a fresh cluster's first feature step
    may run before anything wrote the file); one reading a population or a source in no Delta table is refused
    naming them (`missing_file`). Closed when the block ends; the warehouse file is never written."""
    path = Path(warehouse).resolve()
    delta_sources, delta_populations = SOURCES.names(store), POPULATIONS.names(store)
    in_delta = {"source": (SOURCES, delta_sources), "population": (POPULATIONS, delta_populations)}
    attached = path.exists()
    if not attached:
        needed = file_tables(catalog, feature_set, delta_sources, delta_populations)
        if needed:
            raise missing_file(path, store, feature_set, needed)
    connection = duckdb.connect(":memory:", config={"memory_limit": MEMORY_LIMIT})
    try:
        if attached:
            attach_read_only(connection, path, ATTACHED, wait_seconds)
        prepare(connection)
        for schema in ("source", "population") if attached else ():
            for name, kind in connection.execute(
                    "SELECT table_name, table_type FROM information_schema.tables WHERE table_catalog = ? AND "
                    "table_schema = ?", [ATTACHED, schema]).fetchall():
                delta_kind, names = in_delta[schema]
                if name in names:
                    if kind != "VIEW":
                        raise delta_kind.shadowed(store, name)
                    continue  # a reader's view over the Delta table, left by a process that died: not the rows
                connection.execute(f"CREATE VIEW {schema}.{quote(name)} AS "
                                   f"SELECT * FROM {ATTACHED}.{schema}.{quote(name)}")
        for name in delta_sources:  # these sources' rows and versions are the Delta tables'
            connection.register(SOURCES.dataset_name(name), store.readable(SOURCES.path(name)))
            connection.execute(f'CREATE VIEW {SOURCES.view(name)} AS SELECT * FROM "{SOURCES.dataset_name(name)}"')
        if attached:  # the warehouse's feature versions are the embedded tables': these feature tables' are Delta's
            connection.execute(f"INSERT INTO {VERSIONS} SELECT * FROM {ATTACHED}.{VERSIONS} "
                               f"WHERE NOT starts_with(asset, 'features/')")
        for name in delta_populations:  # these populations' rows and versions are the Delta tables'
            connection.register(POPULATIONS.dataset_name(name), store.readable(POPULATIONS.path(name)))
            connection.execute(f'CREATE VIEW {POPULATIONS.view(name)} AS SELECT * FROM '
                               f'"{POPULATIONS.dataset_name(name)}"')
        mirror_versions(connection, store, SOURCES, delta_sources)
        mirror_versions(connection, store, POPULATIONS, delta_populations)
        for name in sorted({*feature_set.uses, feature_set.name}):
            versions = stored_versions_table(store, name)
            if versions is not None:
                connection.register("delta_versions", versions)
                connection.execute(f"INSERT INTO {VERSIONS} SELECT ?, partition_key, version, CAST(components AS JSON),"
                                   f" recorded_at FROM delta_versions", [feature_asset(name)])
                connection.unregister("delta_versions")
        for name in sorted(feature_set.uses):
            if store.exists(delta_feature_path(name)):
                connection.register(f"delta_{name}", store.dataset(delta_feature_path(name)))
                connection.execute(f'CREATE VIEW {feature_table(name)} AS SELECT * FROM "delta_{name}"')
        yield connection
    finally:
        connection.close()


@dataclass(frozen=True)
class PartitionTask:
    """One partition of one feature set to compute and commit (what a dask task carries to a worker)."""

    warehouse: str
    store: DeltaStore
    catalog: Catalog
    feature_set: FeatureSetSpec
    first: dt.date
    last: dt.date
    version: PartitionVersion


def compute_partition(task: PartitionTask) -> tuple[FeaturePartitionCommit | None, Proof]:
    """Compute one partition privately, prove it, and commit its rows and then its version to the Delta tables;
    a partition whose point-in-time proof failed is not committed (None), its proof says why."""
    return compute_partitions([task])[0]


def compute_partitions(tasks: Sequence[PartitionTask]) -> list[tuple[FeaturePartitionCommit | None, Proof]]:
    """Partitions of one feature set (one dask task's share of a backfill), each computed, proven and committed as
    `compute_partition` does it, one after another, in one private connection: what only depends on the feature
    set (its SQL checks, its sources' rows and versions read from the store) is done once for all of them. Each
    partition is committed before the next is computed, so a process killed in the middle leaves the earlier ones
    committed and the later ones as they were; the first error ends the call."""
    if not tasks:
        return []
    first = tasks[0]
    if any((task.warehouse, task.store, task.feature_set) != (first.warehouse, first.store, first.feature_set)
           for task in tasks):
        raise ValueError("compute_partitions takes partitions of one feature set, warehouse and store")
    results = []
    with private_connection(first.warehouse, first.store, first.catalog, first.feature_set) as connection:
        check_feature_set_sql(connection, first.catalog, first.feature_set)
        for task in tasks:
            results.append(_compute_and_commit(connection, task))
    return results


def _compute_and_commit(connection: duckdb.DuckDBPyConnection,
                        task: PartitionTask) -> tuple[FeaturePartitionCommit | None, Proof]:
    """One partition computed and proven on the private connection, then its rows and its version committed."""
    started = time.time()
    feature_set = task.feature_set
    compute_feature_set(connection, task.catalog, feature_set, task.first, task.last, sql_checked=True)
    proof = prove_feature_set(connection, task.catalog, feature_set, task.first, task.last, days=[task.first])
    if not proof.passed:  # nothing is published: the partition stays as it was, and stale
        return None, proof
    rows = connection.sql(
        f"SELECT * FROM {feature_table(feature_set.name)} WHERE partition_date BETWEEN "
        f"{date_literal(task.first)} AND {date_literal(task.last)}").to_arrow_table()
    pause_point("feature-partition-computed")
    context = {"feature_set": feature_set.name, "first_day": task.first.isoformat(),
               "last_day": task.last.isoformat(), "started_at": started, "pid": os.getpid(),
               "host": socket.gethostname(), "version": task.version.version}
    table_version = task.store.replace_days(delta_feature_path(feature_set.name), rows, task.first, task.last,
                                            "partition_date", context)
    index = pa.table({
        "partition_date": pa.array([task.first], pa.date32()),
        "partition_key": [task.first.isoformat()],
        "version": [task.version.version],
        "components": [json.dumps(task.version.components, sort_keys=True)],
        "recorded_at": pa.array([clock.now()], pa.timestamp("us")),
        "table_version": pa.array([table_version], pa.int64()),
    })
    task.store.replace_days(delta_versions_path(feature_set.name), index, task.first, task.first, "partition_date",
                            context)
    commit = FeaturePartitionCommit(feature_set=feature_set.name, first_day=task.first, last_day=task.last,
                                    rows=rows.num_rows, table_version=table_version, started_at=started,
                                    committed_at=time.time(), pid=os.getpid(), host=socket.gethostname())
    return commit, proof


def stale_partitions(warehouse: str | Path, store: DeltaStore, catalog: Catalog, feature_set: FeatureSetSpec,
                     start: dt.date, end: dt.date) -> tuple[dict[str, PartitionVersion], dict[str, str],
                                                            list[PartitionTask]]:
    """The expected versions of [start, end], the stale partitions and why, and a task for each stale one."""
    with private_connection(warehouse, store, catalog, feature_set) as connection:
        check_feature_set_sql(connection, catalog, feature_set)  # refused here, before any worker starts
        expected, stale = stale_days(connection, catalog, feature_set, start, end)
    grain = catalog.entity_rows(feature_set.entity).grain
    tasks = []
    for key in sorted(stale):
        first = dt.date.fromisoformat(key)
        (_, last), = grains.partition_days(grain, first, first)
        tasks.append(PartitionTask(str(warehouse), store, catalog, feature_set, first, last, expected[key]))
    return expected, stale, tasks


def combined_proof(feature_set: str, proofs: list[Proof]) -> Proof:
    """The proofs of several partitions as one: every cut, row and difference they found."""
    return Proof(feature_set=feature_set, cuts_total=sum(proof.cuts_total for proof in proofs),
                 cuts=tuple(cut for proof in proofs for cut in proof.cuts),
                 rows=sum(proof.rows for proof in proofs), seconds=sum(proof.seconds for proof in proofs),
                 differing_rows=sum(proof.differing_rows for proof in proofs),
                 differences=tuple(difference for proof in proofs for difference in proof.differences))
