"""Registered Python functions that feature SQL may call, for what SQL cannot say simply.

A feature set names the functions it calls under `functions:`; the platform registers them on the DuckDB
connection before running the set's SQL, and a function's source code is part of the feature set's version,
so editing a function recomputes exactly the feature sets that call it.
"""

from __future__ import annotations

import datetime as dt
import functools
import inspect
import weakref
from typing import Callable

import duckdb

from ml_platform.specs.functions import RegisteredFunction
from ml_platform.storage.warehouse import registering


REGISTRY: dict[str, RegisteredFunction] = {}
# per connection that registers functions (a held warehouse's holder, or a connection of its own), the names it
# registered or found there: its functions live as long as it does, and it is forgotten with it
_callable: weakref.WeakKeyDictionary[duckdb.DuckDBPyConnection, set[str]] = weakref.WeakKeyDictionary()
# The DuckDB types a feature function may return, with the Arrow type its values go back to DuckDB in.
CACHED_ARGUMENTS = 1_000_000  # distinct argument tuples remembered per function and connection
RETURN_TYPES = {"INTEGER": "int32", "BIGINT": "int64", "DOUBLE": "float64", "VARCHAR": "string", "BOOLEAN": "bool_",
                "DATE": "date32"}


def feature_function(name: str, parameters: tuple[str, ...], returns: str):
    """Register a Python function under a SQL name, with its DuckDB parameter and return types."""

    if returns not in RETURN_TYPES:
        raise ValueError(f"feature function '{name}' returns {returns}; allowed: {', '.join(RETURN_TYPES)}")

    def register(function: Callable) -> Callable:
        REGISTRY[name] = RegisteredFunction(name, function, parameters, returns,
                                            (function.__doc__ or "").strip().splitlines()[0])
        return function

    return register


def register_functions(connection: duckdb.DuckDBPyConnection, names: list[str]) -> None:
    """Make the named functions callable from SQL on this connection (once per connection, or once per held
    warehouse: storage/warehouse.py `registering`)."""
    if not names:  # most feature sets call none: skip the look at the connection's functions
        return
    with registering(connection) as owner:  # the held warehouse's holder when connection is one of its cursors
        callable_here = _callable.setdefault(owner, set())
        missing = [name for name in names if name not in callable_here]
        if not missing:  # registered (or found) on this owner before: no look at its functions (12 ms)
            return
        present = {row[0] for row in owner.execute(
            "SELECT DISTINCT function_name FROM duckdb_functions() WHERE function_type = 'scalar'").fetchall()}
        for name in missing:
            if name in present:
                continue
            registered = REGISTRY[name]
            owner.create_function(name, per_distinct_arguments(registered), list(registered.parameters),
                                  registered.returns, type="arrow", null_handling="special")
        callable_here.update(missing)


_UNKNOWN = object()  # a value not computed yet (None is a value: a NULL argument's)


def per_distinct_arguments(registered: RegisteredFunction) -> Callable:
    """The function over DuckDB's Arrow batches, called once per distinct argument tuple on this connection.

    A feature function is pure (its source is its version), so its value on a row follows from its value on the
    row's arguments: a day's flights share their date, and the Python function runs once per day instead of once
    per row. A NULL argument gives NULL, as DuckDB does for row-wise functions.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    result_type = getattr(pa, RETURN_TYPES[registered.returns])()
    known: dict[tuple, object] = {}

    def value(arguments: tuple) -> object:
        # two cursors of one connection call this at once (feature ranges side by side): the value is returned
        # from a local, never read back from the dict another thread may have cleared meanwhile
        found = known.get(arguments, _UNKNOWN)
        if found is _UNKNOWN:
            if len(known) >= CACHED_ARGUMENTS:
                known.clear()
            found = None if None in arguments else registered.function(*arguments)
            known[arguments] = found
        return found

    def vectorised(*columns):  # no annotations: DuckDB evaluates them in this module, where pyarrow is not imported
        if len(columns) == 1:
            distinct = columns[0].unique()
            values = pa.array([value((argument,)) for argument in distinct.to_pylist()], type=result_type)
            return values.take(pc.index_in(columns[0], distinct))
        return pa.array([value(arguments) for arguments in zip(*(column.to_pylist() for column in columns))],
                        type=result_type)

    # DuckDB counts the parameters of what it registers: one per SQL argument
    vectorised.__signature__ = inspect.Signature([
        inspect.Parameter(f"argument_{index}", inspect.Parameter.POSITIONAL_ONLY)
        for index in range(len(registered.parameters))])
    return vectorised


@functools.lru_cache(maxsize=None)
def _us_holidays(year: int) -> tuple[dt.date, ...]:
    """The major US holidays of a year, by their federal rules."""

    def nth_weekday(month: int, weekday: int, nth: int) -> dt.date:
        first = dt.date(year, month, 1)
        return first + dt.timedelta(days=(weekday - first.weekday()) % 7 + 7 * (nth - 1))

    def last_weekday(month: int, weekday: int) -> dt.date:
        following = dt.date(year + (month == 12), month % 12 + 1, 1)
        last = following - dt.timedelta(days=1)
        return last - dt.timedelta(days=(last.weekday() - weekday) % 7)

    return tuple(sorted([
        dt.date(year, 1, 1), nth_weekday(1, 0, 3), nth_weekday(2, 0, 3), last_weekday(5, 0),
        dt.date(year, 7, 4), nth_weekday(9, 0, 1), nth_weekday(11, 3, 4), dt.date(year, 12, 25),
    ]))


@feature_function("days_to_us_holiday", parameters=("DATE",), returns="INTEGER")
def days_to_us_holiday(day: dt.date) -> int:
    """Days from a date to the nearest major US holiday, before or after it (0 on the holiday)."""
    candidates = _us_holidays(day.year - 1) + _us_holidays(day.year) + _us_holidays(day.year + 1)
    return min(abs((holiday - day).days) for holiday in candidates)
