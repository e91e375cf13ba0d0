"""Distributed training's blocks of a snapshot file: each worker reads and encodes its own rows, and the blocks put
together are exactly the matrix single-machine training encodes from the whole split (same layout, same codes).
The blocks are made here in one process; ml_platform_tests/cluster/test_distributed_training.py makes them on a
LocalCluster's workers."""

from __future__ import annotations

import shutil

import duckdb
import numpy as np
import pandas as pd
import pytest

from ml_platform.snapshots.columns import SplitRows
from ml_platform.training import distributed
from ml_platform.training.arrow_matrix import training_matrix
from ml_platform.training.distributed import DistributedTrainingError, SnapshotFile, encode_block

COLUMNS = ["distance", "carrier", "hour", "origin"]
CATEGORICAL = ["carrier", "origin"]


def _snapshot(path, rows: int = 5_000, seed: int = 3):
    """A snapshot-like file: the splits interleaved in the file's order, missing numbers and categories, a category
    value seen in one split only."""
    generator = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "split": generator.choice(["train", "validation", "test"], rows, p=[0.7, 0.2, 0.1]),
        "label": generator.integers(0, 2, rows).astype(bool),
        "distance": np.where(generator.random(rows) < 0.05, np.nan, generator.uniform(50, 3000, rows)),
        "carrier": pd.Series(generator.choice(["AA", "B6", "DL", "UA", None], rows), dtype=object),
        "hour": generator.integers(5, 23, rows).astype("int32"),
        "origin": pd.Series(generator.choice(["EWR", "JFK", "LGA"], rows), dtype=object)})
    frame.loc[(frame["split"] == "test") & (frame.index % 7 == 0), "origin"] = "ALB"  # never among training rows
    signal = frame["distance"].fillna(1500) / 3000 + 0.4 * (frame["carrier"] == "DL") + generator.normal(0, 0.3, rows)
    frame["label"] = signal > 0.7
    duckdb.connect().register("frame", frame).execute(f"COPY frame TO '{path}' (FORMAT parquet, ROW_GROUP_SIZE 700)")
    return path


@pytest.mark.parametrize("workers", [1, 2, 3, 7])
def test_the_blocks_each_worker_encodes_are_the_single_machine_matrix_cut_in_consecutive_rows(tmp_path, workers):
    path = _snapshot(tmp_path / "snapshot.parquet")
    connection = duckdb.connect()
    rows = SplitRows.read(connection, path, "train")
    expected_layout, expected = training_matrix(rows, COLUMNS, CATEGORICAL)
    layout = distributed._learn_layout(rows, COLUMNS, CATEGORICAL)
    assert layout == expected_layout and "ALB" not in layout.categories["origin"]
    blocks = distributed._file_blocks(rows, SnapshotFile.at(path), workers)
    assert [block.rows for block in blocks] == [end - start for start, end in distributed._bounds(len(rows), workers)]
    made = np.vstack([encode_block(block, layout) for block in blocks])
    assert made.shape == expected.shape
    np.testing.assert_array_equal(made, expected)  # NaN where expected has NaN, every other value equal


def test_a_worker_refuses_a_file_it_cannot_read_or_whose_bytes_differ_naming_the_artifact(tmp_path):
    path = _snapshot(tmp_path / "snapshot.parquet")
    rows = SplitRows.read(duckdb.connect(), path, "train")
    layout = distributed._learn_layout(rows, COLUMNS, CATEGORICAL)
    block = distributed._file_blocks(rows, SnapshotFile.at(path), 2)[1]
    shutil.copyfile(_snapshot(tmp_path / "other.parquet", seed=4), path)  # another snapshot at the same path
    with pytest.raises(DistributedTrainingError, match="cannot train on the snapshot: artifact snapshot.parquet was "
                                                       "modified: its SHA-256 is [0-9a-f]{64}, recorded "
                                                       f"{block.snapshot.sha256}; refusing to load it"):
        encode_block(block, layout)
    path.unlink()
    with pytest.raises(DistributedTrainingError, match=f"cannot train on the snapshot: artifact snapshot.parquet is "
                                                       f"missing from {tmp_path}$"):
        encode_block(block, layout)


def test_a_column_only_pandas_encodes_leaves_the_encoding_to_the_step_s_process(tmp_path):
    path = tmp_path / "snapshot.parquet"
    duckdb.execute(f"COPY (SELECT 'train' AS split, true AS label, [1, 2] AS listed, 1.5 AS distance) TO '{path}'")
    rows = SplitRows.read(duckdb.connect(), path, "train")
    assert distributed._learn_layout(rows, ["listed", "distance"], []) is None
