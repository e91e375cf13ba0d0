"""A batch's rows staged as Arrow (scoring.staging) read back through `scoring_rows` exactly as a temporary table of
the same query would: the same types, values and order, and nothing left behind."""

from __future__ import annotations

import duckdb
import numpy as np
import pyarrow as pa
import pytest

from ml_platform.scoring.staging import VIEW, staged_rows

TYPED = """
    SELECT range AS k, CAST(range AS HUGEINT) * 1000000000000 AS huge, CAST(range / 7 AS DECIMAL(18,3)) AS dec,
           DATE '2013-01-01' + CAST(range % 365 AS INTEGER) AS d,
           TIMESTAMP '2013-01-01 10:00' + to_seconds(range) AS ts,
           TIMESTAMPTZ '2013-01-01 10:00+00' + to_seconds(range) AS tz, to_seconds(range) AS iv,
           CASE WHEN range % 5 = 0 THEN NULL ELSE printf('v%d', range % 13) END AS s, range % 2 = 0 AS b,
           CAST(range % 100 AS TINYINT) AS t, CAST(range % 200 AS UTINYINT) AS u, CAST(range / 3 AS FLOAT) AS f,
           CASE WHEN range % 3 = 0 THEN NULL ELSE range / 3 END AS x,
           CAST(['sad', 'ok', 'happy'][range % 3 + 1] AS mood) AS m,
           {'a': range} AS st, [range, 1] AS li
    FROM range(5000)"""


@pytest.fixture
def connection(tmp_path):
    connection = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    connection.execute("CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy')")
    yield connection
    connection.close()


def test_the_view_gives_the_types_values_and_order_of_a_temporary_table(connection):
    connection.execute(f"CREATE TEMP TABLE expected AS {TYPED}")
    expected = connection.sql("SELECT * FROM expected")
    with staged_rows(connection, TYPED) as staged:
        view = connection.sql(f"SELECT * FROM {VIEW}")
        assert [str(kind) for kind in view.types] == [str(kind) for kind in expected.types]
        assert list(staged.types) == expected.columns
        assert staged.features(["s", "dec"]) == {"s": "VARCHAR", "dec": "DECIMAL(18,3)"}
        assert staged.table.num_rows == 5000
        assert connection.execute(f"SELECT * FROM {VIEW}").fetchall() == \
            connection.execute("SELECT * FROM expected").fetchall()


def test_rows_line_up_with_their_scores_by_position_over_many_record_batches(connection):
    # more rows than one Arrow record batch holds, read by two threads: positions must still line up
    connection.execute("SET threads = 2")
    sql = "SELECT range AS k, range % 7 AS day FROM range(2500000) ORDER BY day, k"
    with staged_rows(connection, sql) as staged:
        assert staged.table.num_rows == 2_500_000 and len(staged.table.to_batches()) > 1
        connection.register("scores", pa.table({"score": staged.table.column("k").to_numpy() * 2.0}))
        try:
            mismatched = connection.execute(
                f"SELECT count(*) FROM (SELECT k, score FROM {VIEW} POSITIONAL JOIN scores) WHERE score != k * 2"
            ).fetchall()[0][0]
            order = connection.execute(f"SELECT k FROM {VIEW}").fetchnumpy()["k"]
        finally:
            connection.unregister("scores")
    assert mismatched == 0
    assert np.array_equal(order, connection.execute(sql).fetchnumpy()["k"])


def test_nothing_is_left_behind_after_a_batch_even_a_failed_one(connection):
    with pytest.raises(RuntimeError, match="predict failed"):
        with staged_rows(connection, "SELECT 1 AS k"):
            raise RuntimeError("predict failed")
    views = connection.execute("SELECT count(*) FROM duckdb_views() WHERE view_name = ?", [VIEW]).fetchall()[0][0]
    assert views == 0
    with pytest.raises(duckdb.CatalogException):
        connection.execute("SELECT * FROM scoring_rows_arrow")
    with staged_rows(connection, "SELECT 2 AS k WHERE false") as staged:  # an empty batch stages too
        assert staged.table.num_rows == 0
        assert connection.execute(f"SELECT count(*) FROM {VIEW}").fetchall() == [(0,)]


def test_a_query_that_fails_leaves_no_view(connection):
    with pytest.raises(duckdb.CatalogException):
        with staged_rows(connection, "SELECT * FROM no_such_table"):
            pass
    assert connection.execute("SELECT count(*) FROM duckdb_views() WHERE view_name = ?", [VIEW]).fetchall() == [(0,)]
