"""A snapshot's rows read by split and column, so that a stage holds only what it works on.

At millions of rows, a frame of every column of a snapshot costs several times the memory of the work done on
it: training encodes one column at a time, evaluation reads the training rows only for the leakage guard.
Rows come in the file's order (DuckDB keeps a scan's order), the order the snapshot was written in.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from ml_platform.names import quote

SPLITS = ("train", "validation", "test")


def split_condition(*splits: str) -> str:
    """SQL keeping the rows of the named splits (an unknown name is an error listing the splits there are)."""
    unknown = [name for name in splits if name not in SPLITS]
    if unknown or not splits:
        raise ValueError(f"unknown snapshot split(s) {', '.join(map(repr, unknown)) or '(none named)'}; a snapshot "
                         f"has the splits {', '.join(SPLITS)}")
    return "split IN (" + ", ".join(f"'{name}'" for name in splits) + ")"


@dataclass(frozen=True)
class SplitRows:
    """The rows of one split of a verified snapshot file: their labels, and any column read when asked."""

    connection: duckdb.DuckDBPyConnection
    path: Path
    split: str
    label: np.ndarray

    @classmethod
    def read(cls, connection: duckdb.DuckDBPyConnection, path: Path, split: str) -> "SplitRows":
        """The split's rows of the snapshot at path (already verified), with their labels read."""
        label = connection.execute(
            f"SELECT label FROM read_parquet('{path}') WHERE {split_condition(split)}").df()["label"]
        # binary labels as 0/1; numbers (regression) and class text (multiclass) as they are
        values = label.astype(int).to_numpy() if pd.api.types.is_bool_dtype(label) else \
            label.to_numpy(dtype="float64") if pd.api.types.is_numeric_dtype(label) else label.astype(object).to_numpy()
        return cls(connection, path, split, values)

    def __len__(self) -> int:
        return len(self.label)

    def column(self, name: str) -> pd.Series:
        """One column of these rows, in the file's order (a new read each time: nothing is kept)."""
        return self.connection.execute(
            f"SELECT {quote(name)} FROM read_parquet('{self.path}') WHERE {split_condition(self.split)}").df()[name]

    def arrow_schema(self, names: list[str]):
        """The Arrow types of some columns of these rows (no row is read)."""
        columns = ", ".join(quote(name) for name in names)
        return self.connection.sql(f"SELECT {columns} FROM read_parquet('{self.path}') LIMIT 0").to_arrow_table().schema

    def record_batches(self, names: list[str], batch_rows: int = 1_000_000) -> pa.RecordBatchReader:
        """Some columns of these rows as Arrow record batches of at most `batch_rows` rows, in the file's order
        (one scan of the file). Each reader scans on a cursor of its own, closed when the reader is read to its
        end: readers of several column lists can be read at once, on several threads (`concurrent_reads`)."""
        columns = ", ".join(quote(name) for name in names)
        cursor = self.connection.cursor()
        try:
            reader = cursor.sql(
                f"SELECT {columns} FROM read_parquet('{self.path}') WHERE {split_condition(self.split)}"
            ).to_arrow_reader(batch_rows)
        except BaseException:
            cursor.close()
            raise

        def batches():
            try:
                yield from reader
            finally:  # read to its end (or the reader dropped): the scan's cursor goes with it
                reader.close()
                cursor.close()

        return pa.RecordBatchReader.from_batches(reader.schema, batches())

    # the readers of record_batches may be read on several threads at once (training.arrow_matrix)
    record_batches.concurrent_reads = True


def sample_split(connection: duckdb.DuckDBPyConnection, path: Path, split: str, names: list[str], size: int,
                 seed: int) -> tuple[pd.DataFrame, int]:
    """Some columns of at most `size` rows of a split, drawn without replacement with a fixed seed, in the file's
    order (every row when there are no more), and the number of rows the split has."""
    columns = ", ".join(quote(name) for name in names)
    available = connection.execute(
        f"SELECT count(*) FROM read_parquet('{path}') WHERE {split_condition(split)}").fetchone()[0]
    if available <= size:
        return connection.execute(
            f"SELECT {columns} FROM read_parquet('{path}') WHERE {split_condition(split)}").df(), available
    positions = connection.execute(
        f"SELECT file_row_number FROM read_parquet('{path}', file_row_number = true) "
        f"WHERE {split_condition(split)} ORDER BY file_row_number").fetchnumpy()["file_row_number"]
    drawn = pd.DataFrame({"file_row_number": np.sort(np.random.default_rng(seed).choice(positions, size=size,
                                                                                         replace=False))})
    connection.register("sampled_snapshot_rows", drawn)
    try:
        frame = connection.execute(
            f"SELECT {columns} FROM read_parquet('{path}', file_row_number = true) "
            f"SEMI JOIN sampled_snapshot_rows USING (file_row_number) ORDER BY file_row_number").df()
    finally:
        connection.unregister("sampled_snapshot_rows")
    return frame, len(positions)
