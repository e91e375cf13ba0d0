"""The server's own in-memory copy of the warehouse tables its models read: sources, populations, feature partitions
and the registry.

DuckDB admits one writer process, and a process that holds the file open, even to read, keeps every writer of
another process out. The server therefore never keeps the warehouse open: it opens the file for as long as one copy
(or one look at the promotion log) takes, and answers every request from its copy. A Dagster run that holds the
file makes a copy wait (the server keeps serving the copy it has) and a look skip; a copy in progress makes a run's
connection wait (open_warehouse retries for two minutes). The connection has the settings of every platform
connection, so that within one process (a test, in-process runs) DuckDB shares its database instead of refusing.

In the cluster configuration (ML_PLATFORM_FEATURE_TABLES names the Delta store) the feature partitions, the sources
and the populations are Delta tables, not tables of the file: the copy reads each at its latest version, and the
fingerprint counts their versions, so that a committed partition makes the server take a new copy as a new partition
of the file does.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb

from ml_platform.names import REGISTRY_TABLES, SCHEMAS, quote, registry_table
from ml_platform.storage import registry
from ml_platform.serving.errors import ServingError
from ml_platform.specs.catalog import Catalog
from ml_platform.storage.delta_tables import (FEATURES, POPULATIONS, SOURCES, DeltaStore,
                                              delta_store_from_environment)
from ml_platform.storage.warehouse import connection_settings, file_free, prepare, table_exists

COPY_WAIT_SECONDS = 60.0
# the Delta tables the copy holds (what feature code reads): predictions and monitoring tables are not copied, and
# their commits (every scoring's) do not make the server take a new copy
KINDS_BY_SCHEMA = {kind.schema: kind for kind in (FEATURES, SOURCES, POPULATIONS)}


@dataclass(frozen=True)
class Fingerprint:
    """What the server's copy depends on: the promotion log and the recorded data versions. A change of either
    means a promotion, a rollback or a new partition: the copy is taken again."""

    promotions: str
    versions: str
    delta_features: str = ""  # the Delta tables' versions (features, sources: the cluster configuration)


def _locked(error: duckdb.Error) -> bool:
    """Whether the file is busy: held by a writer in another process (a lock), or open in this process with
    other settings (a test, or a server sharing its process with in-process Dagster runs)."""
    text = str(error).lower()
    return "lock" in text or "different configuration" in text


def _open(warehouse: Path, wait_seconds: float) -> duckdb.DuckDBPyConnection:
    """A connection to the warehouse file, with the settings every platform connection uses (so that a process
    holding it already shares it), waiting while another process writes it."""
    if not warehouse.exists():
        if file_free(warehouse):  # the cluster configuration without a file: registries and tables elsewhere
            connection = duckdb.connect(":memory:", config=connection_settings(warehouse))
            prepare(connection)
            return connection
        raise ServingError(f"no warehouse at {warehouse}: run `ml-platform demo` (or the project's jobs) first")
    deadline, delay = time.monotonic() + wait_seconds, 0.02
    while True:
        try:
            return duckdb.connect(str(warehouse), config=connection_settings(warehouse))
        except duckdb.Error as error:
            if not _locked(error) or time.monotonic() >= deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.5)


def _digest(rows: list[tuple]) -> str:
    return hashlib.sha256(repr(rows).encode()).hexdigest()


def _delta_versions(store: DeltaStore | None) -> dict[tuple[str, str], int]:
    """{(schema, name): latest version} of the Delta tables (feature sets, sources, populations), or empty."""
    if store is None:
        return {}
    return {(kind.schema, name): store.version(kind.path(name)) for kind in KINDS_BY_SCHEMA.values()
            for name in kind.names(store)}


def fingerprint_of(connection: duckdb.DuckDBPyConnection, delta: dict[tuple[str, str], int]) -> Fingerprint:
    """The fingerprint of the connection's warehouse, and of the Delta tables' versions (`delta`, empty without
    them)."""
    prefix = ""
    promotions = [registry.promotions.fingerprint(connection)]  # in the warehouse, or in PostgreSQL
    versions = connection.execute(
        f"SELECT count(*), coalesce(bit_xor(hash(stored)), 0) FROM {prefix}{registry_table('partition_versions')} "
        f"AS stored").fetchall()
    return Fingerprint(_digest(promotions), _digest(versions), _digest(sorted(delta.items())) if delta else "")


def read_fingerprint(warehouse: Path) -> Fingerprint | None:
    """The warehouse's fingerprint through a short connection, or None while a writer holds the file."""
    try:
        connection = _open(warehouse, 0.0)
    except duckdb.Error as error:
        if _locked(error):
            return None
        raise
    try:
        return fingerprint_of(connection, _delta_versions(delta_store_from_environment()))
    finally:
        connection.close()


def _tables_of(catalog: Catalog) -> list[tuple[str, str]]:
    """(schema, name) of every table feature code can read: each source, each entity spec's population and each
    feature set of the catalog (a champion trained on an older spec revision may read feature sets today's spec
    no longer names)."""
    return [*(("source", name) for name in sorted(catalog.sources)),
            *(("population", name) for name in sorted(catalog.entities)),
            *(("features", name) for name in sorted(catalog.feature_sets))]


def copy_warehouse(warehouse: Path, catalog: Catalog,
                   wait_seconds: float = COPY_WAIT_SECONDS) -> tuple[duckdb.DuckDBPyConnection, Fingerprint]:
    """An in-memory database holding the tables feature code reads and the whole registry, with the warehouse's
    schemas and search path, and the fingerprint of the warehouse it was copied from (one consistent read).
    Rows cross as Arrow tables, their types unchanged. A feature set with a Delta table (the cluster
    configuration), and a source or population with one, is copied from that table's latest version instead of the
    file."""
    store = delta_store_from_environment()
    delta = _delta_versions(store)  # listed once: the fingerprint's versions and the tables copied from Delta
    memory = duckdb.connect(":memory:")
    for schema in SCHEMAS:
        memory.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    stored = _open(warehouse, wait_seconds)
    try:
        stored.execute("BEGIN TRANSACTION")  # one snapshot of the file for every table copied
        fingerprint = fingerprint_of(stored, delta)
        tables = [("registry", name) for name in REGISTRY_TABLES] + _tables_of(catalog)
        for schema, name in tables:
            target = f"{schema}.{quote(name)}"
            if (schema, name) in delta:
                rows = store.dataset(KINDS_BY_SCHEMA[schema].path(name)).to_table()
            elif table_exists(stored, schema, name):
                rows = stored.sql(f"SELECT * FROM {target}").to_arrow_table()
            else:
                continue
            memory.register("copied_rows", rows)
            try:
                memory.execute(f"CREATE TABLE {target} AS SELECT * FROM copied_rows")
            finally:
                memory.unregister("copied_rows")
        stored.execute("COMMIT")
    finally:
        stored.close()
    prepare(memory)
    return memory, fingerprint


def has_table(connection: duckdb.DuckDBPyConnection, schema: str, name: str) -> bool:
    """True when the copy holds the table."""
    return table_exists(connection, schema, name)
