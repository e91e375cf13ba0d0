"""Pieces of work on two cursors at once: results in the order given, both cursors working at the same time, and
an error raised on either cursor raised to the caller (the first failed piece's, in order), never swallowed."""

from __future__ import annotations

import threading

import duckdb
import pytest

from ml_platform.storage.lanes import lane_cursors, private_objects, run_on_cursors


def test_results_come_in_the_order_given_and_both_cursors_work_at_once():
    connection = duckdb.connect()
    both = threading.Barrier(2, timeout=10)  # passes only when two pieces run at the same time

    def piece(number: int):
        def run(cursor: duckdb.DuckDBPyConnection) -> tuple[int, int]:
            if number < 2:
                both.wait()
            return cursor.execute(f"SELECT {number} * 10").fetchall()[0][0], threading.get_ident()
        return run

    with lane_cursors(connection) as cursors:
        results = run_on_cursors(cursors, [piece(number) for number in range(6)])
    assert [value for value, _ in results] == [0, 10, 20, 30, 40, 50]
    assert len({thread for _, thread in results[:2]}) == 2


def test_a_cursor_has_its_own_temporary_tables_and_sees_the_committed_ones():
    connection = duckdb.connect()
    connection.execute("CREATE TABLE shared AS SELECT 7 AS value")

    def piece(cursor: duckdb.DuckDBPyConnection) -> int:
        cursor.execute("CREATE OR REPLACE TEMP TABLE mine AS SELECT value FROM shared")
        return cursor.execute("SELECT value FROM mine").fetchall()[0][0]

    with lane_cursors(connection) as cursors:
        assert run_on_cursors(cursors, [piece, piece, piece]) == [7, 7, 7]
        with pytest.raises(duckdb.CatalogException):  # the cursors' temporary tables are theirs alone
            connection.execute("SELECT * FROM mine")


def test_an_error_on_the_second_cursor_reaches_the_caller():
    connection = duckdb.connect()
    calling = threading.get_ident()
    second_ran = threading.Event()

    def piece(cursor: duckdb.DuckDBPyConnection) -> int:
        if threading.get_ident() == calling:
            assert second_ran.wait(timeout=10)  # the second cursor gets a piece however fast the first one is
            return 1
        second_ran.set()
        return cursor.execute("SELECT error('failed on the second cursor')").fetchall()[0][0]

    with lane_cursors(connection) as cursors:
        with pytest.raises(duckdb.Error, match="failed on the second cursor"):
            run_on_cursors(cursors, [piece] * 8)


def test_the_first_failed_piece_in_order_is_raised_and_no_piece_starts_after_a_failure():
    connection = duckdb.connect()
    started = []

    def piece(number: int):
        def run(cursor: duckdb.DuckDBPyConnection) -> int:
            started.append(number)
            if number >= 3:
                raise ValueError(f"piece {number} failed")
            return number
        return run

    with lane_cursors(connection) as cursors:
        with pytest.raises(ValueError, match="piece 3 failed"):
            run_on_cursors(cursors, [piece(number) for number in range(40)])
    assert len(started) < 40  # the pieces after the first failures were never started


def test_one_cursor_runs_every_piece_on_the_calling_thread():
    connection = duckdb.connect()
    calling = threading.get_ident()
    assert run_on_cursors([connection], [lambda cursor: threading.get_ident() == calling] * 3) == [True] * 3


def test_cursors_resolve_bare_names_as_the_connection_does():
    connection = duckdb.connect()
    connection.execute("CREATE SCHEMA features")
    connection.execute("CREATE TABLE features.schedule AS SELECT 3 AS hour")
    connection.execute("SET search_path = 'features,main'")
    with lane_cursors(connection) as cursors:
        assert run_on_cursors(cursors, [lambda cursor: cursor.execute("SELECT hour FROM schedule").fetchall()] * 2) \
            == [[(3,)], [(3,)]]


def test_what_only_the_connection_reads_is_named():
    import pyarrow as pa

    connection = duckdb.connect()
    connection.execute("CREATE TABLE shared AS SELECT 1 AS value")
    assert private_objects(connection) == []
    connection.register("arrow_rows", pa.table({"value": [1]}))
    connection.execute("CREATE TEMP TABLE mine AS SELECT 1 AS value")
    assert private_objects(connection) == ["arrow_rows", "mine"]
