"""The inputs column of a predictions table, on a real DuckDB file: a STRUCT that gains a field per new feature,
refuses a feature whose type changed, and reads each row back as its own features' values."""

from __future__ import annotations

import duckdb
import pytest

from ml_platform.scoring.inputs import InputsColumnError, feature_values, packed_sql, writable_sql

TARGET = "predictions.flight_delay"


@pytest.fixture
def connection(tmp_path):
    connection = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    connection.execute("CREATE SCHEMA predictions")
    yield connection
    connection.close()


def write(connection: duckdb.DuckDBPyConnection, rows_sql: str) -> None:
    """Append rows (a key `k`, then features) as scoring does: create the table once, then write its column."""
    connection.execute(f"CREATE OR REPLACE TEMP TABLE batch AS {rows_sql}")
    staged = connection.sql("SELECT * EXCLUDE (k) FROM batch")
    features = {name: str(kind) for name, kind in zip(staged.columns, staged.types)}
    connection.execute(f"CREATE TABLE IF NOT EXISTS {TARGET} AS SELECT k, {packed_sql(list(features))} AS inputs "
                       f"FROM batch LIMIT 0")
    connection.execute(f"INSERT INTO {TARGET} BY NAME SELECT k, {writable_sql(connection, TARGET, features)} AS inputs "
                       f"FROM batch")


def stored(connection: duckdb.DuckDBPyConnection) -> tuple[str, dict]:
    kind = str(connection.sql(f"SELECT inputs FROM {TARGET}").types[0])
    return kind, dict(connection.execute(f"SELECT k, inputs FROM {TARGET} ORDER BY k").fetchall())


def test_a_new_feature_adds_a_field_and_earlier_rows_keep_their_values(connection):
    write(connection, "SELECT 1 AS k, CAST(5 AS INTEGER) AS a, 'x' AS b")
    write(connection, "SELECT 2 AS k, CAST(6 AS INTEGER) AS a, CAST(2.5 AS DOUBLE) AS c")
    kind, rows = stored(connection)
    assert kind == "STRUCT(a INTEGER, b VARCHAR, c DOUBLE)"
    assert rows == {1: {"a": 5, "b": "x", "c": None}, 2: {"a": 6, "b": None, "c": 2.5}}
    # each row is read with the features of its own spec, in that spec's order
    assert feature_values(rows[1], ["b", "a"]) == {"b": "x", "a": 5}
    assert feature_values(rows[2], ["a", "c"]) == {"a": 6, "c": 2.5}


def test_a_feature_whose_type_changes_is_refused_and_nothing_stored_changes(connection):
    write(connection, "SELECT 1 AS k, CAST(5 AS INTEGER) AS a, 'x' AS b")
    before = stored(connection)
    with pytest.raises(InputsColumnError) as raised:
        write(connection, "SELECT 3 AS k, 'seven' AS a, CAST(2.5 AS DOUBLE) AS c")
    assert str(raised.value) == (
        "the features of this batch do not fit column inputs of predictions.flight_delay: a is VARCHAR (stored as "
        "INTEGER); a feature keeps its type once a prediction stored it (cast it in its feature set, or give the "
        "new type a new feature name)")
    assert stored(connection) == before == ("STRUCT(a INTEGER, b VARCHAR)", {1: {"a": 5, "b": "x"}})


def test_a_widening_rolled_back_leaves_the_column_as_it_was(connection):
    write(connection, "SELECT 1 AS k, CAST(5 AS INTEGER) AS a")
    before = stored(connection)
    connection.execute("BEGIN TRANSACTION")
    write(connection, "SELECT 2 AS k, 'six' AS b")  # a new field
    assert stored(connection) != before
    connection.execute("ROLLBACK")
    assert stored(connection) == before == ("STRUCT(a INTEGER)", {1: {"a": 5}})


def test_an_inputs_column_of_another_type_is_refused_saying_what_is_allowed(connection):
    connection.execute(f"CREATE TABLE {TARGET} (k INTEGER, inputs INTEGER)")
    with pytest.raises(InputsColumnError) as raised:
        write(connection, "SELECT 1 AS k, CAST(5 AS INTEGER) AS a")
    assert str(raised.value) == ("column inputs of predictions.flight_delay is INTEGER: the platform stores the inputs "
                                 "of a prediction as a STRUCT (one field per feature)")
