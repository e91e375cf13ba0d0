"""Feature functions run in DuckDB over Arrow batches, once per distinct argument, with row-wise results."""

from __future__ import annotations

import datetime as dt

import duckdb
import pytest

from ml_platform.features import functions
from ml_platform.features.functions import REGISTRY, RegisteredFunction, per_distinct_arguments, register_functions

DAYS = """SELECT DATE '2012-12-20' + CAST(i % 400 AS INTEGER) AS day, i FROM range(20000) r(i)
          UNION ALL SELECT NULL, -1"""


def test_days_to_us_holiday_matches_the_python_function_row_by_row():
    connection = duckdb.connect()
    register_functions(connection, ["days_to_us_holiday"])
    rows = connection.execute(f"SELECT day, days_to_us_holiday(day) FROM ({DAYS}) ORDER BY i").fetchall()
    python = REGISTRY["days_to_us_holiday"].function
    assert rows[0] == (None, None)  # NULL in, NULL out, as for a row-wise function
    assert all(value == python(day) for day, value in rows[1:])
    assert dict(rows[1:])[dt.date(2013, 7, 4)] == 0 and dict(rows[1:])[dt.date(2013, 7, 1)] == 3
    # registering twice on one connection is harmless
    register_functions(connection, ["days_to_us_holiday"])


def test_the_python_function_runs_once_per_distinct_argument(monkeypatch):
    calls = []

    def spread(day: dt.date, step: int) -> int:
        calls.append((day, step))
        return day.toordinal() * step

    registered = RegisteredFunction("spread", spread, ("DATE", "INTEGER"), "BIGINT", "test")
    connection = duckdb.connect()
    connection.create_function("spread", per_distinct_arguments(registered), ["DATE", "INTEGER"], "BIGINT",
                               type="arrow", null_handling="special")
    rows = connection.execute(f"SELECT day, i % 3 AS step, spread(day, CAST(i % 3 AS INTEGER)) FROM ({DAYS}) "
                              f"ORDER BY i").fetchall()
    assert rows[0][2] is None
    assert all(value == day.toordinal() * step for day, step, value in rows[1:])
    assert len(calls) == len(set(calls)) == len({(day, step) for day, step, _ in rows[1:]})


def test_a_return_type_outside_the_list_is_refused():
    with pytest.raises(ValueError, match="returns HUGEINT; allowed: INTEGER, BIGINT, DOUBLE"):
        functions.feature_function("huge", ("DATE",), "HUGEINT")


class RecordingConnection:
    """Stands in for a DuckDB connection: records the look at its functions and each registration."""

    def __init__(self, present: tuple[str, ...] = ()):
        self.looks, self.registered, self.present = 0, [], present

    def execute(self, sql):
        assert "duckdb_functions()" in sql
        self.looks += 1
        return self

    def fetchall(self):
        return [(name,) for name in self.present]

    def create_function(self, name, *arguments, **options):
        self.registered.append(name)


def test_a_connection_looks_at_its_functions_once_per_name():
    """What a connection registered (or found registered) is remembered with it: the next feature set calling the
    same function neither looks at the connection's functions (12 ms) nor registers it again; a new name does."""
    connection = RecordingConnection()
    register_functions(connection, ["days_to_us_holiday"])
    register_functions(connection, ["days_to_us_holiday"])
    assert (connection.looks, connection.registered) == (1, ["days_to_us_holiday"])
    other = RecordingConnection(present=("days_to_us_holiday",))  # found there: not registered, remembered
    register_functions(other, ["days_to_us_holiday"])
    register_functions(other, ["days_to_us_holiday"])
    assert (other.looks, other.registered) == (1, [])
    assert connection in functions._callable and other in functions._callable
    del connection
    import gc

    gc.collect()
    remembered = [key for key in functions._callable.keys() if isinstance(key, RecordingConnection)]
    assert remembered == [other]  # forgotten with the connection
