"""The matrix encoded from Arrow is, value for value, the one the pandas path encodes from DuckDB's frame: numbers,
categories of every encodable type, missing and unseen values, batches with different dictionaries; and types
this path does not encode (decimals, dates) take the pandas path. The same values handed to LightGBM as Arrow
columns (what single-machine training and scoring do) give the same Dataset: the same model bytes and scores."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import duckdb
import lightgbm
import numpy as np
import pyarrow as pa
import pytest

from ml_platform.snapshots.columns import SplitRows
from ml_platform.training.algorithms import FeatureLayout, train
from ml_platform.training.arrow_matrix import (encodable, layout_columns, layout_matrix, learn_and_encode_batches,
                                               learn_and_encode_columns, predict_relation, rows_matrix,
                                               training_matrix)
from ml_platform_tests.records.builders import FrameRows, spec

# every kind of column a feature set's SQL may give, with NULLs, NaN, values that differ by batch, large integers
ROWS = """
SELECT
    i AS row_id,
    CASE WHEN i % 7 = 0 THEN NULL ELSE i * 3 END::INTEGER AS small_int,
    (9007199254740993 + i * 1000003)::BIGINT AS big_int,
    CASE WHEN i % 5 = 0 THEN NULL WHEN i % 11 = 0 THEN 'NaN'::DOUBLE ELSE i / 7 END::DOUBLE AS ratio,
    CASE WHEN i % 9 = 0 THEN NULL ELSE i % 2 = 0 END AS yes_no,
    CASE WHEN i % 13 = 0 THEN NULL ELSE ['AA', 'B6', 'UA', 'ÉÉ', ''][(i // 40) % 5 + 1] END AS carrier,
    CASE WHEN i % 17 = 0 THEN NULL ELSE (i // 30) % 7 + 1 END::INTEGER AS weekday,
    CASE WHEN i % 19 = 0 THEN NULL WHEN i % 23 = 0 THEN 'NaN'::DOUBLE ELSE (i // 50) % 4 END::DOUBLE AS level,
    CASE WHEN i % 29 = 0 THEN NULL ELSE i % 3 = 0 END AS flag_category
FROM range({start}, {end}) AS rows(i)
"""
NUMBERS = ["small_int", "big_int", "ratio", "yes_no"]
CATEGORIES = ["carrier", "weekday", "level", "flag_category"]
COLUMNS = [NUMBERS[0], CATEGORIES[0], *NUMBERS[1:], *CATEGORIES[1:]]


@pytest.fixture
def connection():
    with duckdb.connect() as connection:
        yield connection


def test_training_batches_give_the_pandas_layout_and_matrix(connection):
    relation = connection.sql(ROWS.format(start=1, end=2_000))
    frame = relation.df()
    expected_layout = FeatureLayout.learn(frame, COLUMNS, CATEGORIES)
    expected = expected_layout.matrix(frame)
    # small batches: each holds some of the categories only, in its own dictionary order
    layout, matrix = learn_and_encode_batches(relation.to_arrow_reader(150), len(frame), COLUMNS, CATEGORIES)
    assert layout == expected_layout
    assert layout.categories["weekday"] == [str(day) for day in range(1, 8)]
    assert layout.categories["level"] == ["0", "1", "2", "3"]
    assert layout.categories["flag_category"] == ["False", "True"]
    np.testing.assert_array_equal(matrix, expected)  # NaN where NaN, every other value equal
    assert matrix.flags.f_contiguous and np.isnan(matrix).any()


def test_scoring_rows_with_unseen_and_missing_values_encode_as_the_pandas_path(connection):
    layout = FeatureLayout.learn(connection.sql(ROWS.format(start=1, end=500)).df(), COLUMNS, CATEGORIES)
    later = connection.sql(ROWS.format(start=3_000, end=6_000))  # other carriers' order, weekdays, levels
    expected = layout.matrix(later.df())
    np.testing.assert_array_equal(layout_matrix(layout, later.to_arrow_table()), expected)
    unseen = FeatureLayout(layout.columns, {**layout.categories, "carrier": ["AA", "ZZ"], "weekday": []})
    codes = layout_matrix(unseen, later.to_arrow_table())
    np.testing.assert_array_equal(codes, unseen.matrix(later.df()))
    assert np.isnan(codes[:, COLUMNS.index("weekday")]).all()


def _as_matrix(table: pa.Table) -> np.ndarray:
    """Arrow columns as the column-major matrix of their values (NaN where a value is NaN or missing)."""
    assert all(field.type == pa.float64() for field in table.schema)
    return np.column_stack([table.column(name).to_numpy() for name in table.column_names]) if table.num_columns \
        else np.empty((table.num_rows, 0))


def _reading(relation, batch_rows: int, scans: list | None = None):
    """A `read(names)` of some columns of the relation's rows as record batches, noting each scan's columns."""
    def read(names: list[str]):
        if scans is not None:
            scans.append(list(names))
        return relation.select(*names).to_arrow_reader(batch_rows)
    return read


def test_training_batches_as_arrow_columns_hold_the_matrix_values(connection):
    relation = connection.sql(ROWS.format(start=1, end=2_000))
    layout, matrix = learn_and_encode_batches(relation.to_arrow_reader(150), 1_999, COLUMNS, CATEGORIES)
    scans = []
    arrow_layout, columns = learn_and_encode_columns(_reading(relation, 150, scans), 1_999, COLUMNS, CATEGORIES)
    assert arrow_layout == layout and columns.column_names == COLUMNS
    assert list(arrow_layout.categories) == CATEGORIES
    np.testing.assert_array_equal(_as_matrix(columns), matrix)  # NaN where NaN, every other value equal
    # a chunk per batch, in the batches' order; a number's NaN is a value, never an Arrow null
    assert columns.column("ratio").num_chunks == 14 and columns.column("ratio").null_count == 0
    assert np.isnan(columns.column("ratio").to_numpy()).any()
    # the categories in one scan, the numbers in another: a number's batch holds no text
    assert scans == [CATEGORIES, NUMBERS]
    numbers_only, _ = learn_and_encode_columns(_reading(relation, 500, scans), 1_999, NUMBERS, [])
    assert numbers_only.categories == {} and scans[2:] == [NUMBERS]


def test_scoring_rows_as_arrow_columns_hold_the_matrix_values_chunk_for_chunk(connection):
    layout = FeatureLayout.learn(connection.sql(ROWS.format(start=1, end=500)).df(), COLUMNS, CATEGORIES)
    later = connection.sql(ROWS.format(start=3_000, end=6_000)).to_arrow_reader(700).read_all()  # 5 chunks
    unseen = FeatureLayout(layout.columns, {**layout.categories, "carrier": ["AA", "ZZ"], "weekday": []})
    for each in (layout, unseen):
        columns = layout_columns(each, later)
        np.testing.assert_array_equal(_as_matrix(columns), layout_matrix(each, later))
        assert [column.num_chunks for column in columns.columns] == [5] * len(COLUMNS)
    assert layout_columns(layout, later.slice(0, 0)).num_rows == 0


@pytest.mark.parametrize("encode", [
    lambda relation, rows: learn_and_encode_batches(relation.to_arrow_reader(40), rows, COLUMNS, CATEGORIES),
    lambda relation, rows: learn_and_encode_columns(_reading(relation, 40), rows, COLUMNS, CATEGORIES),
    lambda relation, rows: learn_and_encode_columns(_reading(relation, 40), rows, NUMBERS, [])])
def test_batches_announcing_other_row_counts_fail(connection, encode):
    relation = connection.sql(ROWS.format(start=1, end=100))
    with pytest.raises(ValueError, match="hold 99 rows, not the 100 announced"):
        encode(relation, 100)
    with pytest.raises(ValueError, match="more than the 50 rows announced"):
        encode(relation, 50)


def test_lightgbm_learns_the_same_model_from_arrow_columns_as_from_the_matrix(connection):
    """The Dataset LightGBM builds from the Arrow columns is the matrix's, bin for bin: the same model bytes (with
    categories, NaN in numbers and categories, integers beyond 2**53), and the same scores read either way."""
    labelled = connection.sql(f"SELECT coalesce(row_id % 3 = 0 OR carrier = 'UA' OR ratio > 200, false) AS label, * "
                              f"FROM ({ROWS.format(start=1, end=3_000)})")
    label = labelled.df()["label"].astype(int).to_numpy()
    layout, matrix = learn_and_encode_batches(labelled.to_arrow_reader(400), len(label), COLUMNS, CATEGORIES)
    _, columns = learn_and_encode_columns(_reading(labelled, 400), len(label), COLUMNS, CATEGORIES)
    parameters = {"objective": "binary", "seed": 7, "deterministic": True, "force_col_wise": True, "num_threads": 2,
                  "verbosity": -1, "min_child_samples": 5, "num_leaves": 15}
    categorical = [COLUMNS.index(name) for name in CATEGORIES]
    models = [lightgbm.train(parameters, lightgbm.Dataset(values, label=label, feature_name=COLUMNS,
                                                          categorical_feature=categorical), num_boost_round=30)
              for values in (matrix, columns)]
    assert models[0].model_to_string() == models[1].model_to_string()
    later = connection.sql(ROWS.format(start=2_500, end=5_000)).to_arrow_reader(600).read_all()
    scores = models[0].predict(layout_matrix(layout, later))
    assert scores.std() > 0
    np.testing.assert_array_equal(models[0].predict(layout_columns(layout, later)), scores)


def test_decimals_dates_and_numbers_as_text_are_not_encoded_from_arrow(connection):
    schema = connection.sql("SELECT 1.5::DECIMAL(4, 2) AS price, DATE '2013-01-01' AS day, '3' AS text, "
                            "1 AS number").to_arrow_table().schema
    assert encodable(schema, ["number", "text"], ["text"])
    assert not encodable(schema, ["price"], [])
    assert not encodable(schema, ["day"], ["day"])
    assert not encodable(schema, ["text"], [])  # a number given as text: pandas parses it


def _snapshot(connection, folder: Path, extra: str = "") -> Path:
    path = folder / "snapshot.parquet"
    connection.execute(f"COPY (SELECT CASE WHEN row_id % 4 = 0 THEN 'validation' ELSE 'train' END AS split, "
                       f"row_id % 3 = 0 AS label, *{extra} FROM ({ROWS.format(start=1, end=3_000)})) "
                       f"TO '{path}' (FORMAT parquet, ROW_GROUP_SIZE 500)")
    return path


@pytest.mark.parametrize("extra, columns", [("", COLUMNS), (", (row_id / 8)::DECIMAL(9, 3) AS price",
                                                              [*COLUMNS, "price"])])
def test_snapshot_splits_encode_as_a_pandas_column_at_a_time(connection, tmp_path, extra, columns):
    path = _snapshot(connection, tmp_path, extra)
    train, valid = (SplitRows.read(connection, path, split) for split in ("train", "validation"))
    expected_layout, expected = FeatureLayout.learn_and_encode(train, columns, CATEGORIES)
    layout, matrix = training_matrix(train, columns, CATEGORIES)
    assert layout == expected_layout
    np.testing.assert_array_equal(matrix, expected)
    np.testing.assert_array_equal(rows_matrix(layout, valid), layout.rows_matrix(valid.column, len(valid)))
    assert len(matrix) == len(train) and len(train) + len(valid) == 2_999
    # as Arrow columns where the types allow it (a decimal takes the pandas path: its matrix)
    arrow_layout, values = training_matrix(train, columns, CATEGORIES, as_arrow=True)
    valid_values = rows_matrix(layout, valid, as_arrow=True)
    assert arrow_layout == expected_layout
    assert isinstance(values, pa.Table) == isinstance(valid_values, pa.Table) == ("price" not in columns)
    if isinstance(values, pa.Table):
        values, valid_values = _as_matrix(values), _as_matrix(valid_values)
    np.testing.assert_array_equal(values, expected)
    np.testing.assert_array_equal(valid_values, layout.rows_matrix(valid.column, len(valid)))


def _trained(connection, columns):
    """A small LightGBM model trained (through the pandas path: rows given as a frame) on the test's columns."""
    algorithm = spec().algorithm
    algorithm = algorithm.model_copy(update={"params": algorithm.params.model_copy(
        update={"n_estimators": 20, "early_stopping_rounds": None, "min_child_samples": 5})})
    labelled = f"SELECT coalesce(row_id % 3 = 0 OR carrier = 'UA', false) AS label, * FROM ({ROWS.format(start=1, end=1_500)})"
    frame = connection.sql(f"SELECT *, (row_id / 8)::DECIMAL(9, 3) AS price FROM ({labelled})").df()
    rows = FrameRows(frame)
    return train(algorithm, columns, CATEGORIES, rows, rows).predictor


@pytest.mark.parametrize("columns", [COLUMNS, [*COLUMNS, "price"]])
def test_scores_from_arrow_are_the_scores_from_the_pandas_frame(connection, columns):
    predictor = _trained(connection, columns)
    later = connection.sql(f"SELECT *, (row_id / 8)::DECIMAL(9, 3) AS price "
                           f"FROM ({ROWS.format(start=1_000, end=4_000)})")
    scores = predict_relation(predictor, later)
    assert len(scores) == 3_000 and scores.std() > 0
    np.testing.assert_array_equal(scores, predictor.predict(later.df()))
    assert len(predict_relation(predictor, connection.sql(f"SELECT * FROM ({later.sql_query()}) WHERE false"))) == 0


def _same_values(table: pa.Table, expected: pa.Table) -> None:
    """The same columns, chunk for chunk, NaN where NaN and every other value equal."""
    assert table.column_names == expected.column_names
    assert [column.num_chunks for column in table.columns] == [column.num_chunks for column in expected.columns]
    np.testing.assert_array_equal(_as_matrix(table), _as_matrix(expected))


def _threaded_reading(connection, sql: str, batch_rows: int, scans: list, fail: str | None = None):
    """A `read(names)` callable from several threads (a cursor per scan), noting each scan's columns and thread;
    a scan of `fail` raises when its first batch is read."""
    def read(names: list[str]):
        scans.append((list(names), threading.current_thread().name))
        reader = connection.cursor().sql(sql).select(*names).to_arrow_reader(batch_rows)
        if fail in names:
            def failing():
                raise RuntimeError(f"the scan of {fail} failed")
                yield  # a generator
            return pa.RecordBatchReader.from_batches(reader.schema, failing())
        return reader
    return read


def test_the_two_scans_run_at_once_to_the_same_layout_and_values(connection):
    sql = ROWS.format(start=1, end=2_000)
    scans = []
    expected = learn_and_encode_columns(_reading(connection.sql(sql), 150), 1_999, COLUMNS, CATEGORIES)
    layout, columns = learn_and_encode_columns(_threaded_reading(connection, sql, 150, scans), 1_999, COLUMNS,
                                               CATEGORIES, concurrently=True)
    assert layout == expected[0] and columns.column_names == COLUMNS
    _same_values(columns, expected[1])
    assert [column.num_chunks for column in columns.columns] == [14] * len(COLUMNS)
    # the categories' scan on a thread of its own, the numbers' on the caller's
    threads = {tuple(names): thread for names, thread in scans}
    assert threads[tuple(CATEGORIES)].startswith("category-scan")
    assert threads[tuple(NUMBERS)] == threading.current_thread().name
    # one kind of column only: one scan, on the caller's thread
    scans.clear()
    learn_and_encode_columns(_threaded_reading(connection, sql, 150, scans), 1_999, NUMBERS, [], concurrently=True)
    assert scans == [(NUMBERS, threading.current_thread().name)]


@pytest.mark.parametrize("fail", ["carrier", "ratio"])
def test_a_failing_scan_fails_the_encoding_when_they_run_at_once(connection, fail):
    scans = []
    read = _threaded_reading(connection, ROWS.format(start=1, end=2_000), 150, scans, fail)
    with pytest.raises(RuntimeError, match=f"the scan of {fail} failed"):
        learn_and_encode_columns(read, 1_999, COLUMNS, CATEGORIES, concurrently=True)
    assert len(scans) == 2  # both scans started; the other one ran to its end before the error was raised


def test_snapshot_readers_scan_on_cursors_of_their_own(connection, tmp_path):
    """A snapshot split's readers can be read at once, interleaved or on two threads, each in the file's order;
    training reads its categories and numbers so, to the same layout and values as one scan after the other."""
    path = _snapshot(connection, tmp_path)
    train = SplitRows.read(connection, path, "train")
    expected = connection.sql(f"SELECT row_id, carrier FROM read_parquet('{path}') WHERE split = 'train'").fetchall()
    ids, carriers = train.record_batches(["row_id"], 300), train.record_batches(["carrier"], 300)
    pairs = [(row_id, carrier) for left, right in zip(ids, carriers)
             for row_id, carrier in zip(left.column(0).to_pylist(), right.column(0).to_pylist())]
    assert pairs == expected and len(pairs) == len(train)
    with ThreadPoolExecutor(max_workers=2) as pool:
        read = [pool.submit(lambda name: train.record_batches([name], 100).read_all().column(0).to_pylist(), name)
                for name in ("row_id", "carrier")]
        assert list(zip(read[0].result(), read[1].result())) == expected
    assert train.record_batches.concurrent_reads
    scans = []

    def noted(names: list[str], batch_rows: int = 1_000_000):
        scans.append(threading.current_thread().name)
        return train.record_batches(names, batch_rows)
    noted.concurrent_reads = True
    at_once = learn_and_encode_columns(noted, len(train), COLUMNS, CATEGORIES, concurrently=True)
    assert scans[0].startswith("category-scan") or scans[1].startswith("category-scan")
    one_after_another = learn_and_encode_columns(train.record_batches, len(train), COLUMNS, CATEGORIES)
    assert at_once[0] == one_after_another[0]
    _same_values(at_once[1], one_after_another[1])
    layout, values = training_matrix(train, COLUMNS, CATEGORIES, as_arrow=True)  # at once: SplitRows allows it
    assert layout == at_once[0]
    _same_values(values, at_once[1])
