"""The embedded DuckDB warehouse: schemas, safe identifiers, and partition-range writes done in one transaction.

Every connection is capped at MEMORY_LIMIT of the machine's memory (DuckDB's default is 80%), and spills what
does not fit (big sorts, joins and aggregates) to SPILL_FOLDER beside the warehouse file, in the project's data
folder: DuckDB shares its process with pandas and LightGBM, and the machine with other processes, so a
10-million-row snapshot sorts on disk instead of growing the process by the size of its rows.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Mapping

import duckdb

from ml_platform.names import FEATURE_TABLES_VARIABLE, REGISTRY_VARIABLE, SCHEMAS
from ml_platform.storage.faults import pause_point

# SCHEMAS, quote and table are names.py's, listed here too for the modules that write their SQL through this one

LOCK_WAIT_SECONDS = 120.0
MEMORY_LIMIT = "25%"  # of physical memory (or the container's limit), as DuckDB reads it
SPILL_FOLDER = "duckdb_spill"


def connection_settings(path: Path) -> dict[str, str]:
    """DuckDB settings of a warehouse connection: its memory cap and where it spills beyond it."""
    return {"memory_limit": MEMORY_LIMIT, "temp_directory": str(path.resolve().parent / SPILL_FOLDER)}


@contextmanager
def open_warehouse(path: str | Path, wait_seconds: float = LOCK_WAIT_SECONDS) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection to the warehouse file with schemas and registries in place, always closed afterwards.

    DuckDB admits one writer process: while another process holds the file, wait for it (up to wait_seconds),
    then fail saying so. Any other error is raised at once. In the cluster configuration with no file (file_free),
    a private in-memory one instead: nothing to wait for, and the file is not created.
    """
    path = Path(path)
    if file_free(path):  # the cluster configuration, every table and registry elsewhere: the file is never made
        with open_private_warehouse(path) as connection:
            yield connection
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + wait_seconds
    delay = 0.05
    while True:
        try:
            connection = duckdb.connect(str(path), config=connection_settings(path))
            break
        except duckdb.IOException as error:
            if "lock" not in str(error).lower():
                raise
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"the warehouse {path} stayed locked by another process for {wait_seconds:.0f} s: "
                    f"{str(error).splitlines()[0]}") from error
            time.sleep(delay)
            delay = min(delay * 2, 2.0)
    try:
        prepare(connection)
        yield connection
    finally:
        connection.close()


def file_free(database: str | Path, environment: Mapping[str, str] | None = None) -> bool:
    """Whether the cluster configuration's warehouse connections need no file: every table is a Delta table
    (FEATURE_TABLES_VARIABLE), the registries are in PostgreSQL (REGISTRY_VARIABLE), and no warehouse file exists
    (one that does, from an embedded run, may hold tables and registries of its own: it is opened as before).
    Then many processes hold warehouse connections at once, none waiting for the file's lock."""
    environment = os.environ if environment is None else environment
    return (bool(environment.get(FEATURE_TABLES_VARIABLE, "").strip())
            and bool(environment.get(REGISTRY_VARIABLE, "").strip()) and not Path(database).exists())


@contextmanager
def open_private_warehouse(path: str | Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """An in-memory DuckDB laid out as the warehouse at `path` (schemas and registries in place, its settings),
    holding no rows of its own and never touching the file: the cluster configuration's connection when every
    table and registry lives elsewhere (storage/resources.py). Closed afterwards."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)  # where it spills
    connection = duckdb.connect(":memory:", config=connection_settings(Path(path)))
    try:
        prepare(connection)
        yield connection
    finally:
        connection.close()


def attach_read_only(connection: duckdb.DuckDBPyConnection, path: Path, alias: str,
                     wait_seconds: float = LOCK_WAIT_SECONDS) -> None:
    """Attach the warehouse file read-only to a private connection as `alias` (many processes may read it at once);
    while a writer holds it, wait (up to wait_seconds), then fail."""
    deadline = time.monotonic() + wait_seconds
    delay = 0.05
    while True:
        try:
            connection.execute(f"ATTACH '{path}' AS {alias} (READ_ONLY)")
            return
        except duckdb.IOException as error:
            if "lock" not in str(error).lower():
                raise
            if time.monotonic() >= deadline:
                raise TimeoutError(f"the warehouse {path} stayed locked by a writer for {wait_seconds:.0f} s: "
                                   f"{str(error).splitlines()[0]}") from error
            time.sleep(delay)
            delay = min(delay * 2, 2.0)


@contextmanager
def single_threaded(connection: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """The connection computing on one thread for the duration, its thread count restored afterwards.

    DuckDB sums floating-point numbers in parallel, each thread over its own row groups, and adds the partial
    sums in whatever order the threads finish: the last bits of a DOUBLE sum (or average, or window sum) differ
    from one run to the next with more than one thread. On one thread a query adds its rows in their stored
    order, so the same rows give the same bits on every rebuild, whatever the connection's thread count.
    """
    threads = connection.execute("SELECT current_setting('threads')").fetchall()[0][0]
    if int(threads) == 1:  # single-threaded already (the server's copy): changing the setting costs milliseconds
        yield connection
        return
    connection.execute("SET threads = 1")
    try:
        yield connection
    finally:
        connection.execute(f"SET threads = {int(threads)}")


def date_literal(day: dt.date) -> str:
    """A DuckDB DATE literal (dates come from partition keys or specs, never from free text)."""
    return f"DATE '{dt.date.fromisoformat(str(day)).isoformat()}'"


def prepare(connection: duckdb.DuckDBPyConnection) -> None:
    """Create the platform's schemas and registries when missing, and resolve bare names to sources."""
    from ml_platform.storage.registry import create_registry_tables
    from ml_platform.storage.versions import create_versions_table

    for schema in SCHEMAS:
        connection.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    create_registry_tables(connection)
    create_versions_table(connection)
    # spec SQL names sources and feature sets bare; the checks keep their names apart
    connection.execute("SET search_path = 'source,features,main'")


def table_exists(connection: duckdb.DuckDBPyConnection, schema: str, name: str) -> bool:
    """True when the warehouse has the table."""
    rows = connection.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?", [schema, name]
    ).fetchall()
    return rows[0][0] > 0


@contextmanager
def transaction(connection: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """One transaction: committed when the block ends, rolled back (and the error raised again) when it fails."""
    connection.execute("BEGIN TRANSACTION")
    try:
        yield connection
        connection.execute("COMMIT")
    except BaseException:
        connection.execute("ROLLBACK")
        raise


def replace_date_range(connection: duckdb.DuckDBPyConnection, target: str, select_sql: str,
                       start: dt.date, end: dt.date) -> int:
    """Atomically replace the rows of [start, end] in target with select_sql's rows; returns the rows written."""
    with transaction(connection):
        connection.execute(f"CREATE TABLE IF NOT EXISTS {target} AS SELECT * FROM ({select_sql}) LIMIT 0")
        connection.execute(
            f"DELETE FROM {target} WHERE partition_date BETWEEN {date_literal(start)} AND {date_literal(end)}"
        )
        # an INSERT answers with the count of rows it inserted: no second pass over the range to count them
        written = connection.execute(f"INSERT INTO {target} BY NAME SELECT * FROM ({select_sql})").fetchall()[0][0]
        pause_point("partition-range-written")
    return written


def row_digests(connection: duckdb.DuckDBPyConnection, target: str, start: dt.date | None = None,
                end: dt.date | None = None, by_day: bool = False) -> list[tuple]:
    """Row count and an order-independent hash of target's rows (of [start, end]), whole or per partition_date."""
    where = f"WHERE partition_date BETWEEN {date_literal(start)} AND {date_literal(end)}" if start is not None else ""
    day = "partition_date, " if by_day else ""
    group = " GROUP BY 1" if by_day else ""
    return connection.execute(
        f"SELECT {day}count(*), coalesce(bit_xor(hash(stored_row)), 0) FROM {target} AS stored_row {where}{group}"
    ).fetchall()
