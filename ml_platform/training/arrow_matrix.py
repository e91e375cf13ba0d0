"""The model's input matrix encoded straight from Arrow columns, with no pandas object column on the way.

The same values as `FeatureLayout.matrix` on the frame DuckDB would hand over (tested side by side): numbers as
float64 with NaN for missing; a category as its position in the vocabulary, the text of each *distinct* value
computed once (by `category_text`, on the dictionary of the column) rather than a Python string per row. Only the
Arrow types whose pandas reading is unambiguous take this path (integers, floats, booleans, text); a layout whose
columns hold any other type (decimals, dates, ...) is encoded from the pandas frame, as before.

Training reads its split in record batches, filling a preallocated column-major matrix: a category's codes wait
until every batch has been read, since its vocabulary is the training rows' distinct values. Single-machine
training and scoring hand LightGBM the same values as Arrow columns instead (`learn_and_encode_columns`,
`layout_columns`: a float64 column per layout column, missing values NaN), which it reads without the matrix being
written: the same Dataset bin for bin, the same model bytes and the same scores (tested).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ml_platform.training.algorithms import FeatureLayout, category_text


def _is_number(kind: pa.DataType) -> bool:
    return pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind)


def _is_text(kind: pa.DataType) -> bool:
    return pa.types.is_string(kind) or pa.types.is_large_string(kind)


def encodable(schema: pa.Schema, columns: Iterable[str], categories: Iterable[str]) -> bool:
    """Whether every named column has a type this module encodes exactly as the pandas path does: numbers
    (integers, floats, booleans) and, for categories, text too."""
    categorical = set(categories)
    return all(_is_number(schema.field(name).type) or (name in categorical and _is_text(schema.field(name).type))
               for name in columns)


def float_values(array: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A numeric column as float64, missing values as NaN (what `as_float` gives on DuckDB's pandas column)."""
    # unsafe: integers beyond 2**53 round to the nearest double, as numpy's conversion does
    values = pc.cast(array, pa.float64(), safe=False)
    return values.to_numpy(zero_copy_only=False) if values.null_count else np.asarray(values.to_numpy())


class _Coded:
    """One batch of a category column: each row's index into the batch's distinct values (-1 when missing), and
    the text of those distinct values (`category_text`; NA for a value with no text, such as a float NaN)."""

    def __init__(self, array: pa.Array):
        encoded = pc.dictionary_encode(array)
        self.indices = pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False)
        self.text = category_text(encoded.dictionary.to_pandas())

    def positions(self, vocabulary: pd.Index) -> np.ndarray:
        """Each row's position in the vocabulary as float64, NaN when missing or unseen."""
        positions = vocabulary.get_indexer(self.text).astype("float64")
        positions[positions < 0] = np.nan
        if not len(positions):
            return np.full(len(self.indices), np.nan)
        return np.where(self.indices < 0, np.nan, positions[np.maximum(self.indices, 0)])


def _chunks(array: pa.Array | pa.ChunkedArray) -> list[pa.Array]:
    return array.chunks if isinstance(array, pa.ChunkedArray) else [array]


def _chunk_positions(array: pa.Array | pa.ChunkedArray, vocabulary: list[str]) -> list[np.ndarray]:
    """`category_positions` of each chunk of the array, in order."""
    index = pd.Index(vocabulary, dtype="string")
    return [_Coded(chunk).positions(index) for chunk in _chunks(array)]


def category_positions(array: pa.Array | pa.ChunkedArray, vocabulary: list[str]) -> np.ndarray:
    """Each value's position in the vocabulary as float64, NaN when missing or unseen (`category_codes`)."""
    parts = _chunk_positions(array, vocabulary)
    return np.concatenate(parts) if parts else np.empty(0, dtype="float64")


def vocabulary_of(batches: Iterable[_Coded]) -> list[str]:
    """The sorted text of the distinct values of a category's batches, missing values left out
    (`category_vocabulary`)."""
    seen = set()
    for batch in batches:
        seen.update(batch.text.dropna().tolist())
    return sorted(seen)


def category_vocabularies(batches: Iterable[pa.RecordBatch], categorical: list[str]) -> dict[str, list[str]]:
    """Each category column's vocabulary (`vocabulary_of`) from record batches of its rows: the categories of the
    layout single-machine training learns from the same rows, without encoding their matrix."""
    coded: dict[str, list[_Coded]] = {name: [] for name in categorical}
    for batch in batches:
        for name in categorical:
            coded[name].append(_Coded(batch.column(name)))
    return {name: vocabulary_of(coded[name]) for name in categorical}


def layout_matrix(layout: FeatureLayout, table: pa.Table) -> np.ndarray:
    """The model's input matrix (column-major float64) of an Arrow table holding the layout's columns."""
    encoded = np.empty((table.num_rows, len(layout.columns)), dtype="float64", order="F")
    for position, name in enumerate(layout.columns):
        column = table.column(name)
        encoded[:, position] = category_positions(column, layout.categories[name]) if name in layout.categories \
            else float_values(column)
    return encoded


def layout_columns(layout: FeatureLayout, table: pa.Table) -> pa.Table:
    """The model's input as Arrow columns, one float64 column per layout column in order, chunk for chunk: the
    values of `layout_matrix`, which LightGBM reads from Arrow without the matrix being written (a float64 column
    without missing values is not copied)."""
    columns = {}
    for name in layout.columns:
        column = table.column(name)
        parts = _chunk_positions(column, layout.categories[name]) if name in layout.categories \
            else [float_values(chunk) for chunk in _chunks(column)]
        columns[name] = pa.chunked_array([pa.array(part) for part in parts], type=pa.float64())
    return pa.table(columns)


def _encode_batches(batches: Iterable[pa.RecordBatch], rows: int, columns: list[str], categorical: list[str],
                    put) -> FeatureLayout:
    """Read the training rows' record batches once, in order; hand each column's float64 values of each batch to
    `put(offset, position, values)` (a category's once its vocabulary is known, after the last batch); return
    the layout learnt."""
    coded: dict[str, list[tuple[int, _Coded]]] = {name: [] for name in categorical}
    offset = 0
    for batch in batches:
        size = batch.num_rows
        if offset + size > rows:
            raise ValueError(f"the batches hold more than the {rows} rows announced")
        for position, name in enumerate(columns):
            if name in coded:
                coded[name].append((offset, _Coded(batch.column(name))))
            else:
                put(offset, position, float_values(batch.column(name)))
        offset += size
    if offset != rows:
        raise ValueError(f"the batches hold {offset} rows, not the {rows} announced")
    categories = {}
    for name in categorical:
        categories[name] = vocabulary_of(part for _, part in coded[name])
        index, position = pd.Index(categories[name], dtype="string"), columns.index(name)
        for start, part in coded.pop(name):
            put(start, position, part.positions(index))
    return FeatureLayout(tuple(columns), categories)


def learn_and_encode_batches(batches: Iterable[pa.RecordBatch], rows: int, columns: list[str],
                             categorical: list[str]) -> tuple[FeatureLayout, np.ndarray]:
    """The layout learnt from the training rows, read as record batches in order, and their matrix."""
    encoded = np.empty((rows, len(columns)), dtype="float64", order="F")

    def put(offset: int, position: int, values: np.ndarray) -> None:
        encoded[offset:offset + len(values), position] = values

    return _encode_batches(batches, rows, columns, categorical, put), encoded


def learn_and_encode_columns(read: Callable[[list[str]], Iterable[pa.RecordBatch]], rows: int, columns: list[str],
                             categorical: list[str], concurrently: bool = False) -> tuple[FeatureLayout, pa.Table]:
    """The layout learnt from the training rows and their `layout_columns` (the matrix's values as Arrow columns,
    a chunk per batch: no matrix is written). `read(names)` gives those columns of the rows as record batches in
    order; the categories are read in one scan and the numbers in another, so that the numbers' batches, which
    the columns keep without a copy (a batch's buffers are released together), hold no text.

    `concurrently`: the two scans run at once, the categories' on a thread of its own (when `read` may be called
    from several threads: `SplitRows.record_batches`). Each scan fills only its own columns, batch after batch in
    the rows' order, so the layout and the values are the same either way; pyarrow's and numpy's work on the
    batches (the categories' dictionary encoding, the numbers' float64 casts) then shares the machine's cores."""
    # each column's values reach `put` batch after batch, in the rows' order: its chunks are appended as they come
    parts: dict[str, list[pa.Array]] = {name: [] for name in columns}
    categories_first = [name for name in columns if name in categorical]
    numbers = [name for name in columns if name not in categorical]
    # (the scan's columns, those of them coded as categories): the categories' scan first, an empty one left out
    scans = [(names, coded) for names, coded in ((categories_first, categories_first), (numbers, [])) if names]

    def scan(names: list[str], coded: list[str]) -> dict[str, list[str]]:
        def put(offset: int, position: int, values: np.ndarray) -> None:
            parts[names[position]].append(pa.array(values))

        return _encode_batches(read(names), rows, names, coded, put).categories

    categories: dict[str, list[str]] = {}
    if concurrently and len(scans) == 2:
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="category-scan") as pool:
            first = pool.submit(scan, *scans[0])
            try:
                categories.update(scan(*scans[1]))
            finally:  # the categories' scan is waited for (and its error raised) even when the numbers' failed
                categories.update(first.result())
    else:
        for names, coded in scans:
            categories.update(scan(names, coded))
    layout = FeatureLayout(tuple(columns), {name: categories[name] for name in categorical})
    return layout, pa.table({name: pa.chunked_array(parts[name], type=pa.float64()) for name in columns})


def _batch_source(rows):
    """The rows' own reader of record batches (a verified snapshot split's), or None (rows given as a frame)."""
    return getattr(rows, "record_batches", None)


def training_matrix(rows, columns: list[str], categorical: list[str],
                    as_arrow: bool = False) -> tuple[FeatureLayout, np.ndarray | pa.Table]:
    """The layout learnt from the training rows and their matrix: from one scan of Arrow record batches when the
    rows can be read so and every column has a type encoded here, else a pandas column at a time. `as_arrow`:
    the Arrow path gives the matrix's values as Arrow columns (`learn_and_encode_columns`), which LightGBM reads
    as it reads the matrix."""
    read = _batch_source(rows)
    if read is not None:
        reader = read(columns)
        if encodable(reader.schema, columns, categorical):
            if not as_arrow:
                return learn_and_encode_batches(reader, len(rows.label), columns, categorical)
            reader.close()
            return learn_and_encode_columns(read, len(rows.label), columns, categorical,
                                            concurrently=getattr(read, "concurrent_reads", False))
        reader.close()
    return FeatureLayout.learn_and_encode(rows, columns, categorical)


def rows_matrix(layout: FeatureLayout, rows, as_arrow: bool = False) -> np.ndarray | pa.Table:
    """The matrix of rows (validation rows) encoded with a learnt layout, from Arrow when it can be (`as_arrow`:
    then as Arrow columns, `layout_columns`)."""
    read = _batch_source(rows)
    if read is not None:
        reader = read(list(layout.columns))
        if encodable(reader.schema, layout.columns, layout.categories):
            return (layout_columns if as_arrow else layout_matrix)(layout, reader.read_all())
        reader.close()
    return layout.rows_matrix(rows.column, len(rows.label))


def predict_relation(predictor, relation, table: pa.Table | None = None) -> np.ndarray:
    """A predictor's scores of the rows of a DuckDB relation holding its layout's columns, in the relation's order:
    a LightGBM booster's from the Arrow columns (no pandas frame), any other predictor's from the pandas frame.
    `table`: the relation's rows already read as Arrow (they are not read again)."""
    from ml_platform.training.algorithms import THREADS, LightGBMPredictor

    if isinstance(predictor, LightGBMPredictor):
        table = relation.to_arrow_table() if table is None else table
        if encodable(table.schema, predictor.layout.columns, predictor.layout.categories):
            columns = layout_columns(predictor.layout, table)
            del table
            return predictor.booster.predict(columns, num_threads=THREADS) if columns.num_rows else \
                np.array([], dtype="float64")
    frame = relation.df()
    return predictor.predict(frame) if len(frame) else np.array([], dtype="float64")
