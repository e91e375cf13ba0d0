"""A batch's rows staged as Arrow (scoring.staging) read back through `scoring_rows` exactly as a temporary table of
the same query would: the same types, values and order, and nothing left behind."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from ml_platform.scoring.staging import VIEW, StagingError, staged_rows

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


def test_scores_added_as_columns_are_stored_beside_their_rows_in_order_over_many_record_batches(connection):
    # more rows than one Arrow record batch holds, written by two threads: each score stays with its row, and the
    # stored table keeps the staged order
    connection.execute("SET threads = 2")
    sql = "SELECT range AS k, range % 7 AS day FROM range(2500000) ORDER BY day, k"
    with staged_rows(connection, sql) as staged:
        assert staged.table.num_rows == 2_500_000 and len(staged.table.to_batches()) > 1
        staged.add_columns(pa.table({"score": staged.table.column("k").to_numpy() * 2.0}))
        connection.execute(f"CREATE TABLE stored AS SELECT k, day, score FROM {VIEW}")
    stored = connection.execute("SELECT k, score FROM stored ORDER BY rowid").fetchnumpy()
    assert np.array_equal(stored["k"], connection.execute(sql).fetchnumpy()["k"])
    assert np.array_equal(stored["score"], stored["k"] * 2.0)


def test_scores_are_refused_unless_there_is_exactly_one_per_row(connection):
    with staged_rows(connection, "SELECT range AS k FROM range(10)") as staged:
        with pytest.raises(StagingError, match="the batch has 10 rows but 9 scores: each row needs exactly one"):
            staged.add_columns(pa.table({"score": np.zeros(9)}))
        with pytest.raises(StagingError, match=r"score columns \['k'\] are already columns of the batch's rows"):
            staged.add_columns(pa.table({"k": np.zeros(10)}))
        assert connection.sql(f"SELECT * FROM {VIEW}").columns == ["k"]  # the refused columns were not added


def test_a_frame_of_scores_keeps_the_types_duckdb_gives_a_frame(connection):
    frame = pd.DataFrame({"prediction": [0.5, np.nan], "decision": pd.Series(["late", None], dtype=object),
                          "acted": [True, False], "rows": np.array([3, 4], dtype="int64")})
    connection.register("frame", frame)
    expected = connection.sql("SELECT * FROM frame")
    with staged_rows(connection, "SELECT range AS k FROM range(2)") as staged:
        staged.add_frame(frame)
        view = connection.sql(f"SELECT prediction, decision, acted, rows FROM {VIEW}")
        assert [str(kind) for kind in view.types] == [str(kind) for kind in expected.types]
        assert view.fetchall() == expected.fetchall() == [(0.5, "late", True, 3), (None, None, False, 4)]


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
