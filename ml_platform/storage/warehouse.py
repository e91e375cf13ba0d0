"""The embedded DuckDB warehouse: schemas, safe identifiers, and partition-range writes done in one transaction.

Every connection is capped at MEMORY_LIMIT of the machine's memory (DuckDB's default is 80%), and spills what
does not fit (big sorts, joins and aggregates) to SPILL_FOLDER beside the warehouse file, in the project's data
folder: DuckDB shares its process with pandas and LightGBM, and the machine with other processes, so a
10-million-row snapshot sorts on disk instead of growing the process by the size of its rows.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Mapping

import duckdb

from ml_platform.names import FEATURE_TABLES_VARIABLE, REGISTRY_VARIABLE, RUN_CONFIG_VARIABLE, SCHEMAS
from ml_platform.storage.faults import pause_point

# SCHEMAS, quote and table are names.py's, listed here too for the modules that write their SQL through this one

LOCK_WAIT_SECONDS = 120.0
MEMORY_LIMIT = "25%"  # of physical memory (or the container's limit), as DuckDB reads it
SPILL_FOLDER = "duckdb_spill"
# spec SQL names sources and feature sets bare; the checks keep their names apart
SEARCH_PATH = "SET search_path = 'source,features,main'"

# warehouse files this process holds open (`held_open`), by resolved path: their connections are handed out as
# cursors of the database already open, each (by id, while it is open) with the connection holding its database
_held: dict[Path, duckdb.DuckDBPyConnection] = {}
_handed: dict[int, duckdb.DuckDBPyConnection] = {}
_holding = threading.Lock()  # a holder's cursors and registrations are made one at a time, from any thread


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
    held = _held.get(path.resolve()) if _held else None
    if held is not None:  # the database is open in this process already (held_open): a new connection to it
        with _holding:
            connection = held.cursor()
            _handed[id(connection)] = held
        try:
            connection.execute(SEARCH_PATH)
            yield connection
        finally:
            with _holding:
                del _handed[id(connection)]
            connection.close()
        return
    if file_free(path):  # the cluster configuration, every table and registry elsewhere: the file is never made
        with open_private_warehouse(path) as connection:
            yield connection
        return
    with _connected(path, wait_seconds) as connection:
        yield connection


@contextmanager
def _connected(path: Path, wait_seconds: float) -> Iterator[duckdb.DuckDBPyConnection]:
    """The warehouse file opened (waiting while another process holds its lock) and prepared; closed afterwards."""
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


def holding() -> bool:
    """Whether this process holds a warehouse file open (`held_open`): the runs it executes meanwhile share one
    database, their connections cursors of its holder, their Python functions registered on the holder."""
    return bool(_held)


def holdable(environment: Mapping[str, str] | None = None) -> bool:
    """Whether a process may hold the warehouse file open across the runs it executes (held_open): only in the
    embedded configuration with every run in this process. Delta tables (FEATURE_TABLES_VARIABLE) attach the file
    read-only from private connections, registries in PostgreSQL (REGISTRY_VARIABLE) may leave no file at all,
    and a run config file (RUN_CONFIG_VARIABLE) launches steps in other processes, which wait for the file's lock."""
    environment = os.environ if environment is None else environment
    return not any(environment.get(name, "").strip()
                   for name in (FEATURE_TABLES_VARIABLE, REGISTRY_VARIABLE, RUN_CONFIG_VARIABLE))


@contextmanager
def held_open(path: str | Path) -> Iterator[bool]:
    """Hold the warehouse file open in this process for the block (in the embedded configuration: `holdable`;
    elsewhere nothing is held). Every `open_warehouse` of it meanwhile is a new connection to the database already
    open, as cheap as a cursor, instead of opening the file (its catalog read, its log replayed) and closing it
    (a checkpoint written) each time: a process that executes many runs (a replay: about a dozen connections per
    simulated day) keeps its connections' work and loses the files' opening. Each connection still starts afresh
    (its own transactions, temporary objects and settings; the search path set as `prepare` sets it). Committed
    rows are in the file's log as always; the database is checkpointed and closed when the block ends. The file
    stays locked by this process meanwhile: another process waits for it (open_warehouse's wait). Yields whether
    the file is held."""
    path = Path(path)
    key = path.resolve()
    if key in _held or not holdable() or file_free(path):
        yield key in _held
        return
    with _connected(path, LOCK_WAIT_SECONDS) as connection:
        _held[key] = connection
        try:
            yield True
        finally:
            del _held[key]


@contextmanager
def registering(connection: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """The connection to register Python functions on (`create_function`) for SQL run on `connection`, one
    registration at a time. DuckDB registers a function for the whole database, every connection to it sees it,
    but the Python function lives only as long as the connection that registered it: registered on a connection
    `open_warehouse` handed out of a held database (held_open), it would be called after that connection closed
    and freed it. Such functions are registered on the holder, which outlives every connection to its database;
    any other connection registers its own."""
    with _holding:
        yield _handed.get(id(connection), connection)


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


# databases computing on one thread for someone (`single_threaded`): {database: [holders, threads to restore]}
_single: dict[object, list[int]] = {}
_single_lock = threading.Lock()


@contextmanager
def single_threaded(connection: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """The connection computing on one thread for the duration, its thread count restored afterwards.

    DuckDB sums floating-point numbers in parallel, each thread over its own row groups, and adds the partial
    sums in whatever order the threads finish: the last bits of a DOUBLE sum (or average, or window sum) differ
    from one run to the next with more than one thread. On one thread a query adds its rows in their stored
    order, so the same rows give the same bits on every rebuild, whatever the connection's thread count.

    The thread count is the database's, shared by every connection to it in this process: while several blocks
    hold it (steps of a run on threads, each on its own connection), the first sets it to one and the last one out
    restores it, so no block's queries run on more threads because another block ended.
    """
    key = database_key(connection)
    with _single_lock:
        entry = _single.get(key)
        if entry is None:
            threads = int(connection.execute("SELECT current_setting('threads')").fetchall()[0][0])
            if threads != 1:  # single-threaded already (the server's copy): nothing to set nor restore
                connection.execute("SET threads = 1")
            entry = _single[key] = [0, threads]
        entry[0] += 1
    try:
        yield connection
    finally:
        with _single_lock:
            entry[0] -= 1
            if entry[0] == 0:
                del _single[key]
                if entry[1] != 1:
                    connection.execute(f"SET threads = {entry[1]}")


def database_key(connection: duckdb.DuckDBPyConnection) -> object:
    """What identifies the connection's database in this process: its file, or for an in-memory database (which
    only its own connection and its cursors reach) the connection."""
    file = connection.execute("SELECT file FROM pragma_database_list WHERE name = current_database()").fetchall()
    return ("file", str(Path(file[0][0]).resolve())) if file and file[0][0] else ("connection", id(connection))


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
    connection.execute(SEARCH_PATH)


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
