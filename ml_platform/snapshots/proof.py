"""The snapshot's point-in-time proof: before a training run's snapshot is written, a sample of the feature values it
would hold is recomputed with every source cut at each row's prediction time (features/proof.py); any difference
stops the snapshot, hence training, evaluation and deployment."""

from __future__ import annotations

import duckdb

from ml_platform.features.proof import Proof, prove_feature_sets
from ml_platform.partitions import run_split
from ml_platform.snapshots.build import SnapshotError, check_run_matches_spec
from ml_platform.specs.catalog import Catalog
from ml_platform.specs.models import ModelSpec
from ml_platform.storage import registry
from ml_platform.storage.lanes import LANES


class SnapshotProofError(SnapshotError):
    """A feature value the snapshot would hold changed when recomputed at its row's prediction time."""

    def __init__(self, model: str, proofs: list[Proof]):
        failed = [proof for proof in proofs if not proof.passed]
        super().__init__(f"snapshot of '{model}' not written: " + " || ".join(proof.message() for proof in failed))
        self.proofs = proofs


def prove_training_run(connection: duckdb.DuckDBPyConnection, catalog: Catalog, model: ModelSpec,
                       training_run: str) -> list[Proof]:
    """The proofs of every feature set over the run's split windows (none when its snapshot is already stored:
    it was proven when written); raises SnapshotProofError when one fails."""
    if registry.snapshots.get(connection, model.name, training_run) is not None:
        return []
    check_run_matches_spec(model, training_run, catalog.spec_hash(model))
    split = run_split(model, training_run)
    # every set's cuts on LANES cursors at once (see prove_feature_sets)
    proofs = prove_feature_sets(connection, catalog, catalog.feature_sets_of(model), split.train.start,
                                split.test.end, seed=f"{training_run}|", lanes=LANES)
    if not all(proof.passed for proof in proofs):
        raise SnapshotProofError(model.name, proofs)
    return proofs
