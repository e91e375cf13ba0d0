"""Work an evaluation step does beside its own, given to the evaluation assets by build.py.

The evaluation layer does not import the layers above it; build.py hands the evaluation assets what they run around
the evaluation, in the same step: the snapshot's binning for drift monitoring (monitoring/training_bins.py), on a
thread while the evaluation runs.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext

import duckdb

from ml_platform.storage.artifacts import ArtifactStore

# (the step's connection, the artifact store, the model's name, the training run) -> a context around the evaluation
Beside = Callable[[duckdb.DuckDBPyConnection, ArtifactStore, str, str], AbstractContextManager]


def nothing_beside(connection: duckdb.DuckDBPyConnection, artifacts: ArtifactStore, model: str,
                   training_run: str) -> AbstractContextManager:
    """Nothing beside the evaluation (an evaluation asset built on its own, as in tests)."""
    return nullcontext()
