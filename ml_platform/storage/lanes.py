"""Independent pieces of work on several cursors of one DuckDB connection at once: the machine's idle core.

A cursor (`connection.cursor()`) is a connection of its own to the same database: its statements run on the
thread that calls them, and DuckDB releases the GIL while they run, so two cursors used from two threads compute
at once, each query with the database's thread setting. Feature SQL runs single-threaded (`single_threaded`), so a
piece computes the same bits on either cursor. A cursor has its own temporary tables and views and sees only
committed rows; the `history.` views and the tables are the database's, shared by every cursor.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Callable, Iterator, Sequence, TypeVar

import duckdb

Result = TypeVar("Result")

LANES = 2  # cursors working at once: the machine's two cores


def private_objects(connection: duckdb.DuckDBPyConnection) -> list[str]:
    """The temporary tables and views of the connection (an object registered on it, such as an Arrow dataset, is
    one): its cursors cannot read them, nor a view of the database that reads them. Work that may read one stays
    on the connection itself."""
    return [row[0] for row in connection.execute(
        "SELECT view_name FROM duckdb_views() WHERE temporary AND NOT internal UNION ALL "
        "SELECT table_name FROM duckdb_tables() WHERE temporary ORDER BY 1").fetchall()]


@contextmanager
def lane_cursors(connection: duckdb.DuckDBPyConnection,
                 lanes: int = LANES) -> Iterator[list[duckdb.DuckDBPyConnection]]:
    """`lanes` new cursors of the connection resolving bare names as it does (its search path), closed (their
    temporary tables and views dropped) when the block ends, however it ends."""
    search_path = connection.execute("SELECT current_setting('search_path')").fetchall()[0][0]
    cursors = [connection.cursor() for _ in range(lanes)]
    try:
        for cursor in cursors:  # a new cursor starts with the default search path
            cursor.execute(f"SET search_path = '{search_path.replace(chr(39), chr(39) * 2)}'")
        yield cursors
    finally:
        for cursor in cursors:
            cursor.close()


def run_on_cursors(cursors: Sequence[duckdb.DuckDBPyConnection],
                   work: Sequence[Callable[[duckdb.DuckDBPyConnection], Result]]) -> list[Result]:
    """piece(cursor) for every piece of `work`, the results in the order of `work`: each cursor takes the next
    piece not yet taken when it is free, the first cursor on the calling thread, each other one on a thread of its
    own. A piece must not depend on which cursor runs it, nor on another piece.

    When a piece raises, no piece is started after it and the pieces running end; then the error of the first
    failed piece (in the order of `work`: the one a loop over `work` would have raised) is raised here, in the
    caller's thread."""
    if not cursors:
        raise ValueError("run_on_cursors needs at least one cursor")
    results: list = [None] * len(work)
    failures: dict[int, BaseException] = {}
    taken = iter(range(len(work)))
    lock = threading.Lock()

    def lane(cursor: duckdb.DuckDBPyConnection) -> None:
        while True:
            with lock:
                index = None if failures else next(taken, None)
            if index is None:
                return
            try:
                results[index] = work[index](cursor)
            except BaseException as error:  # raised below, in the caller's thread
                with lock:
                    failures[index] = error

    others = [threading.Thread(target=lane, args=(cursor,), name=f"cursor-lane-{number}")
              for number, cursor in enumerate(cursors[1:len(work)], start=1)]
    for thread in others:
        thread.start()
    try:
        lane(cursors[0])
    finally:
        for thread in others:
            thread.join()
    if failures:
        raise failures[min(failures)]
    return results
