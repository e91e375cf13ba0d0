"""An evaluation's per-row validation and test predictions: one content-addressed Parquet file, written and read."""

from __future__ import annotations

import duckdb
import pandas as pd

from ml_platform.records.evaluation import EvaluationSummary, StoredFile, StoredPredictions
from ml_platform.storage.artifacts import ArtifactStore


def stored_file(artifact) -> StoredFile:
    """Where an artifact was stored and its hash and size, as the evaluation summary records it."""
    return StoredFile(path=artifact.path, sha256=artifact.sha256, size_bytes=artifact.size_bytes)


def write_predictions(connection: duckdb.DuckDBPyConnection, artifacts: ArtifactStore, model: str,
                      predictions: pd.DataFrame) -> StoredPredictions:
    """Write the run's per-row validation and test predictions as content-addressed Parquet."""
    connection.register("evaluation_rows", predictions)
    try:
        stored = artifacts.write(
            f"evaluations/{model}", ".parquet",
            lambda path: connection.execute(
                f"COPY (SELECT * REPLACE (CAST(partition_date AS DATE) AS partition_date) FROM evaluation_rows) "
                f"TO '{path}' (FORMAT parquet, COMPRESSION zstd)"))
    finally:
        connection.unregister("evaluation_rows")
    return StoredPredictions(path=stored.path, sha256=stored.sha256, size_bytes=stored.size_bytes,
                             rows=int(len(predictions)))


def read_predictions(connection: duckdb.DuckDBPyConnection, artifacts: ArtifactStore,
                     summary: EvaluationSummary) -> pd.DataFrame:
    """The stored per-row predictions of an evaluation, after verifying the file's hash."""
    if summary.artifacts is None:
        raise ValueError(f"the evaluation of {summary.model_version} is not stored yet: it has no predictions file")
    stored = summary.artifacts.predictions
    path = artifacts.verify(stored.path, stored.sha256)
    return connection.execute(f"SELECT * FROM read_parquet('{path}')").df()
