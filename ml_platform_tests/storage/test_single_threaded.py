"""`single_threaded`: the database's thread count is one while any block holds it, and restored by the last block
out, whichever leaves first (steps of a run computing at once on threads, each on its own connection)."""

from __future__ import annotations

import duckdb

from ml_platform.storage.warehouse import database_key, single_threaded


def test_single_threaded_holds_the_database_on_one_thread_until_the_last_holder_leaves(tmp_path):
    path = tmp_path / "warehouse.duckdb"
    first, second = duckdb.connect(str(path)), duckdb.connect(str(path))  # one database, two connections
    threads = lambda: int(first.execute("SELECT current_setting('threads')").fetchall()[0][0])  # noqa: E731
    before = threads()
    assert before > 1  # the machine's cores: otherwise the test would prove nothing
    try:
        earlier, later = single_threaded(first), single_threaded(second)
        earlier.__enter__()
        later.__enter__()
        assert threads() == 1
        earlier.__exit__(None, None, None)  # the first holder leaves while the second still computes
        assert threads() == 1
        later.__exit__(None, None, None)
        assert threads() == before
    finally:
        first.close()
        second.close()


def test_a_database_is_known_by_its_file_and_an_in_memory_one_by_its_connection(tmp_path):
    path = tmp_path / "warehouse.duckdb"
    first, second = duckdb.connect(str(path)), duckdb.connect(str(path))
    memory, other_memory = duckdb.connect(), duckdb.connect()
    try:
        assert database_key(first) == database_key(second) == database_key(first.cursor())
        assert database_key(memory) != database_key(other_memory)
    finally:
        for connection in (first, second, memory, other_memory):
            connection.close()
