"""The server's own in-memory copy of the warehouse tables its models read: sources, feature partitions, registry.

DuckDB admits one writer process, and a process that holds the file open read-only keeps every writer out. The
server therefore never keeps the warehouse open: it attaches the file read-only for as long as one copy takes, and
answers every request from its copy. A Dagster run that holds the file makes a copy wait (the server keeps
serving the copy it has); a copy in progress makes a run's connection wait (open_warehouse retries for two minutes).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb

from ml_platform.names import REGISTRY_TABLES, SCHEMAS, feature_table, quote, registry_table, source_table
from ml_platform.serving.errors import ServingError
from ml_platform.specs.catalog import Catalog
from ml_platform.storage.warehouse import prepare, table_exists

ATTACHED = "stored_warehouse"
COPY_WAIT_SECONDS = 60.0


@dataclass(frozen=True)
class Fingerprint:
    """What the server's copy depends on: the promotion log and the recorded data versions. A change of either
    means a promotion, a rollback or a new partition: the copy is taken again."""

    promotions: str
    versions: str


def _locked(error: duckdb.Error) -> bool:
    """Whether the file is busy: held by a writer in another process (a lock), or open in this process with
    other settings (a test, or a server sharing its process with in-process Dagster runs)."""
    text = str(error).lower()
    return "lock" in text or "different configuration" in text


def _attach(connection: duckdb.DuckDBPyConnection, warehouse: Path, wait_seconds: float) -> None:
    """Attach the warehouse read-only, waiting while another process writes it."""
    if not warehouse.exists():
        raise ServingError(f"no warehouse at {warehouse}: run `ml-platform demo` (or the project's jobs) first")
    deadline, delay = time.monotonic() + wait_seconds, 0.02
    while True:
        try:
            connection.execute(f"ATTACH '{warehouse}' AS {ATTACHED} (READ_ONLY)")
            return
        except duckdb.Error as error:
            if not _locked(error) or time.monotonic() >= deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.5)


def _digest(rows: list[tuple]) -> str:
    return hashlib.sha256(repr(rows).encode()).hexdigest()


def fingerprint_of(connection: duckdb.DuckDBPyConnection, schema_prefix: str) -> Fingerprint:
    """The fingerprint of a warehouse (attached under schema_prefix, or '' for the connection's own)."""
    prefix = f"{schema_prefix}." if schema_prefix else ""
    promotions = connection.execute(
        f"SELECT count(*), max(promotion_id) FROM {prefix}{registry_table('promotions')}").fetchall()
    versions = connection.execute(
        f"SELECT count(*), coalesce(bit_xor(hash(stored)), 0) FROM {prefix}{registry_table('partition_versions')} "
        f"AS stored").fetchall()
    return Fingerprint(_digest(promotions), _digest(versions))


def read_fingerprint(warehouse: Path) -> Fingerprint | None:
    """The warehouse's fingerprint through a short read-only connection, or None while a writer holds the file."""
    try:
        connection = duckdb.connect(str(warehouse), read_only=True)
    except duckdb.Error as error:
        if _locked(error):
            return None
        raise
    try:
        return fingerprint_of(connection, "")
    finally:
        connection.close()


def _tables_of(catalog: Catalog) -> list[tuple[str, str]]:
    """(schema, name) of every table feature code can read: each source and each feature set of the catalog (a
    champion trained on an older spec revision may read feature sets today's spec no longer names)."""
    return [*(("source", name) for name in sorted(catalog.sources)),
            *(("features", name) for name in sorted(catalog.feature_sets))]


def copy_warehouse(warehouse: Path, catalog: Catalog,
                   wait_seconds: float = COPY_WAIT_SECONDS) -> tuple[duckdb.DuckDBPyConnection, Fingerprint]:
    """An in-memory database holding the tables feature code reads and the whole registry, with the warehouse's
    schemas and search path, and the fingerprint of the warehouse it was copied from (one consistent read)."""
    memory = duckdb.connect(":memory:")
    for schema in SCHEMAS:
        memory.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    _attach(memory, warehouse, wait_seconds)
    try:
        memory.execute("BEGIN TRANSACTION")  # one snapshot of the attached file for every table copied
        fingerprint = fingerprint_of(memory, ATTACHED)
        for name in REGISTRY_TABLES:
            memory.execute(f"CREATE TABLE {registry_table(name)} AS SELECT * FROM {ATTACHED}.{registry_table(name)}")
        for schema, name in _tables_of(catalog):
            rows = memory.execute("SELECT count(*) FROM information_schema.tables WHERE table_catalog = ? AND "
                                  "table_schema = ? AND table_name = ?", [ATTACHED, schema, name]).fetchall()
            if rows[0][0]:
                target = source_table(name) if schema == "source" else feature_table(name)
                memory.execute(f"CREATE TABLE {target} AS SELECT * FROM {ATTACHED}.{schema}.{quote(name)}")
        memory.execute("COMMIT")
    finally:
        memory.execute(f"DETACH {ATTACHED}")
    prepare(memory)
    return memory, fingerprint


def has_table(connection: duckdb.DuckDBPyConnection, schema: str, name: str) -> bool:
    """True when the copy holds the table."""
    return table_exists(connection, schema, name)
