"""The `history.<source>` views are the database's, shared by every connection to it: binding them and running the
SQL that reads them holds the database's history lock, so steps computing at once on threads of one process
(adapters/threaded_executor.py) never read each other's cut. A set binds only the history views its SQL names."""

from __future__ import annotations

import datetime as dt
import threading

import duckdb
import pytest

from ml_platform.features.compute import compute_feature_set
from ml_platform.features.relations import HistoryLockError, bind_sources, history_bound, history_reads, unbind
from ml_platform.names import feature_table
from ml_platform.storage.warehouse import held_open, open_warehouse
from ml_platform_tests.features.test_point_in_time import copied, loaded_warehouse

START, END = dt.date(2013, 1, 1), dt.date(2013, 1, 20)
WAIT = 20.0


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    """A warehouse file with the repository's sources loaded for START to END, copied for each test."""
    return loaded_warehouse(tmp_path_factory.mktemp("history_lock"), START, END)


def test_binding_a_history_view_without_the_lock_is_refused(loaded, tmp_path):
    catalog = loaded[1]
    reading, not_reading = catalog.feature_sets["disruption_history"], catalog.feature_sets["flight_schedule"]
    with open_warehouse(copied(loaded[0], tmp_path, "refused")) as connection:
        assert history_reads(connection, reading) == ["flights"] and history_reads(connection, not_reading) == []
        cut = dt.datetime(2013, 1, 10, 6)
        with pytest.raises(HistoryLockError, match=r"feature set 'disruption_history': history views flights "
                                                   r"bound without the history lock"):
            bind_sources(connection, catalog, reading, cut)
        bind_sources(connection, catalog, not_reading, cut)  # names no history view: nothing shared is bound
        unbind(connection, not_reading)
        with history_bound(connection, ["flights"]):
            bind_sources(connection, catalog, reading, cut)
            unbind(connection, reading)


def test_the_lock_admits_one_thread_per_database_at_a_time(tmp_path):
    first = duckdb.connect(str(tmp_path / "one.duckdb"))
    same = duckdb.connect(str(tmp_path / "one.duckdb"))  # the same database, another connection
    other = duckdb.connect(str(tmp_path / "other.duckdb"))
    inside, leave, entered = threading.Event(), threading.Event(), []

    def holder():
        with history_bound(first, ["flights"]):
            inside.set()
            assert leave.wait(WAIT)

    def waiter(connection, label):
        with history_bound(connection, ["flights"]):
            entered.append(label)

    thread = threading.Thread(target=holder)
    thread.start()
    try:
        assert inside.wait(WAIT)
        with history_bound(first, []):  # a set naming no history view takes nothing
            pass
        elsewhere = threading.Thread(target=waiter, args=(other, "other database"))
        elsewhere.start()
        elsewhere.join(WAIT)
        assert entered == ["other database"]
        blocked = threading.Thread(target=waiter, args=(same, "same database"))
        blocked.start()
        blocked.join(0.5)
        assert blocked.is_alive() and entered == ["other database"]  # waits for the holder
    except BaseException:
        leave.set()
        raise
    leave.set()
    thread.join(WAIT)
    blocked.join(WAIT)
    assert entered == ["other database", "same database"]
    for connection in (first, same, other):
        connection.close()


def test_sets_reading_history_computed_at_once_store_what_one_after_another_stores(loaded, tmp_path):
    catalog = loaded[1]
    feature_set = catalog.feature_sets["disruption_history"]
    ranges = [(START, dt.date(2013, 1, 10)), (dt.date(2013, 1, 11), END)]  # two cuts of the same views

    def stored(path):
        with open_warehouse(path) as connection:
            return connection.execute(f"SELECT * FROM {feature_table(feature_set.name)} "
                                      f"ORDER BY partition_date, flight_id").fetchall()

    one_after_another = copied(loaded[0], tmp_path, "sequential")
    with open_warehouse(one_after_another) as connection:
        for first, last in ranges:
            compute_feature_set(connection, catalog, feature_set, first, last)
    at_once = copied(loaded[0], tmp_path, "at_once")
    errors = []

    def compute(first, last):
        try:
            with open_warehouse(at_once) as connection:  # a cursor of the held database, as a step's
                for _ in range(5):  # each range five times, so that the two threads' cuts interleave
                    compute_feature_set(connection, catalog, feature_set, first, last)
        except BaseException as error:
            errors.append(error)

    with held_open(at_once) as held:
        assert held
        threads = [threading.Thread(target=compute, args=bounds) for bounds in ranges]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
    assert errors == []
    expected = stored(one_after_another)
    assert len(expected) > 10000 and stored(at_once) == expected
