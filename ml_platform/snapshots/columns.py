"""A snapshot's rows read by split and column, so that a stage holds only what it works on.

At millions of rows, a frame of every column of a snapshot costs several times the memory of the work done on
it: training encodes one column at a time.
Rows come in the file's order (DuckDB keeps a scan's order), the order the snapshot was written in.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from ml_platform.storage.warehouse import quote

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
    """The rows of one split of a verified snapshot file: their 0/1 labels, and any column read when asked."""

    connection: duckdb.DuckDBPyConnection
    path: Path
    split: str
    label: np.ndarray

    @classmethod
    def read(cls, connection: duckdb.DuckDBPyConnection, path: Path, split: str) -> "SplitRows":
        """The split's rows of the snapshot at path (already verified), with their labels read."""
        label = connection.execute(
            f"SELECT label FROM read_parquet('{path}') WHERE {split_condition(split)}").df()["label"]
        return cls(connection, path, split, label.astype(int).to_numpy())

    def __len__(self) -> int:
        return len(self.label)

    def column(self, name: str) -> pd.Series:
        """One column of these rows, in the file's order (a new read each time: nothing is kept)."""
        return self.connection.execute(
            f"SELECT {quote(name)} FROM read_parquet('{self.path}') WHERE {split_condition(self.split)}").df()[name]
