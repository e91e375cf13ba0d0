"""A training run bins its snapshot for drift monitoring while its evaluation runs.

Drift monitoring reads a champion's snapshot bins (reference_store) at its first scoring run. Binned there, they
are a second of one core on the demo's snapshot, on the path from a new champion to its first monitored day. The
training run's evaluation is partly single-threaded (the leakage guard, the plots, the bootstrap) while LightGBM's
prediction and TreeSHAP use both cores only in parts, so the snapshot is binned on a thread of the evaluation's
step, on a cursor of its own, and stored before the step ends: the scoring run reads the bins back. The same bins
as binning at the scoring run (the same code on the same file), stored whole or not at all.

The evaluation asset is given this by build.py (the evaluation layer does not import monitoring); its failure fails
the evaluation step, naming the snapshot, as it would fail the first scoring run.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import duckdb

from ml_platform.monitoring.drift import snapshot_feature_bins
from ml_platform.monitoring.reference_store import FeatureBinsQuestion, answer_path, stored_feature_bins
from ml_platform.records.registry import SnapshotRecord
from ml_platform.storage import registry
from ml_platform.storage.artifacts import ArtifactStore


def _bin(cursor: duckdb.DuckDBPyConnection, artifacts: ArtifactStore, snapshot: SnapshotRecord,
         question: FeatureBinsQuestion) -> None:
    path = artifacts.verify(snapshot.path, snapshot.sha256)
    stored_feature_bins(Path(artifacts.root), question,
                        lambda: snapshot_feature_bins(cursor, path, list(question.features), question.by_partition))


@contextmanager
def snapshot_bins_beside(connection: duckdb.DuckDBPyConnection, artifacts: ArtifactStore, model: str,
                         training_run: str) -> Iterator[None]:
    """Bin the training run's snapshot (as drift monitoring does by default: partition-level features by their
    partitions) on a thread while the block runs, and store the bins; nothing when they are stored already or the
    run has no snapshot (the evaluation says so). The block's own error is the one raised (the thread's, if any,
    added to it as a note); else the thread's."""
    snapshot = registry.snapshots.get(connection, model, training_run)
    if snapshot is None:
        yield
        return
    question = FeatureBinsQuestion(snapshot.sha256, tuple(snapshot.manifest.features), True)
    if answer_path(Path(artifacts.root), question).is_file():
        yield
        return
    cursor = connection.cursor()
    try:
        with ThreadPoolExecutor(1, thread_name_prefix="drift-bins") as pool:
            binned = pool.submit(_bin, cursor, artifacts, snapshot, question)
            try:
                yield
            except BaseException as error:
                failure = binned.exception()  # waits: the thread reads through a cursor closed below
                if failure is not None:
                    error.add_note(f"binning snapshot {snapshot.snapshot_id} for drift monitoring also failed: "
                                   f"{failure}")
                raise
            binned.result()
    finally:
        cursor.close()
