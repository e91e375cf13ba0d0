"""Where feature tables live, behind one seam: the embedded DuckDB warehouse (the default) or Delta Lake tables.

`feature_table_store()` picks by the environment when a step runs (ML_PLATFORM_FEATURE_TABLES, documented in
deploy/cluster/): unset, every feature set is computed and stored in the warehouse file exactly as always; set, each
stale partition is computed in a private DuckDB and committed to its Delta table on its own (delta_partitions.py),
runs of consecutive partitions spread over the dask cluster as tasks when the step runs on a dask worker.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Protocol

from ml_platform.features.partition_tasks import run_chunked
from ml_platform.features.delta_partitions import combined_proof, compute_partitions, stale_partitions
from ml_platform.features.proof import PointInTimeError
from ml_platform.features.refresh import FeatureRefresh, refresh_feature_set
from ml_platform.progress import Progress
from ml_platform.records.feature_partitions import FeaturePartitionCommit
from ml_platform.specs.catalog import Catalog
from ml_platform.specs.models import FeatureSetSpec
from ml_platform.storage.delta_tables import DeltaStore, delta_store_from_environment
from ml_platform.storage.resources import Warehouse


# a dask task computes and commits at most this many consecutive partitions, one after another, in one private
# connection (its sources read once); a backfill has at least two tasks per worker thread when it has the days
PARTITIONS_PER_TASK = 8


@dataclass(frozen=True)
class StoredFeatures:
    """What a refresh did, and the partitions committed one by one (Delta tables only)."""

    refresh: FeatureRefresh
    commits: tuple[FeaturePartitionCommit, ...] = field(default=())


class FeatureTableStore(Protocol):
    """Brings a feature set's partitions of a range up to date where its table lives."""

    def refresh(self, warehouse: Warehouse, catalog: Catalog, feature_set: FeatureSetSpec, start: dt.date,
                end: dt.date, progress: Progress) -> StoredFeatures:
        """Recompute the stale partitions of [start, end] and record their versions."""


class EmbeddedFeatureTables:
    """Feature tables in the warehouse file (`features.<name>`): one writer, one transaction per range of days."""

    def refresh(self, warehouse: Warehouse, catalog: Catalog, feature_set: FeatureSetSpec, start: dt.date,
                end: dt.date, progress: Progress) -> StoredFeatures:
        """Recompute the stale days in the warehouse (refresh.py)."""
        with warehouse.get_connection() as connection:
            return StoredFeatures(refresh_feature_set(connection, catalog, feature_set, start, end, progress))


@dataclass(frozen=True)
class DeltaFeatureTables:
    """Feature tables as Delta tables in `store`: each stale partition computed apart and committed atomically."""

    store: DeltaStore

    def refresh(self, warehouse: Warehouse, catalog: Catalog, feature_set: FeatureSetSpec, start: dt.date,
                end: dt.date, progress: Progress) -> StoredFeatures:
        """Compute every stale partition, runs of consecutive ones as dask tasks (in parallel on a dask cluster),
        and commit each partition on its own."""
        expected, stale, tasks = stale_partitions(warehouse.database, self.store, catalog, feature_set, start, end)
        if not tasks:
            return StoredFeatures(FeatureRefresh(expected, stale, 0))
        progress.tick(lambda: f"features '{feature_set.name}': {len(tasks)} partition(s) to compute")
        results = run_chunked(compute_partitions, tasks, PARTITIONS_PER_TASK)
        commits = tuple(commit for commit, _ in results if commit is not None)
        proof = combined_proof(feature_set.name, [proof for _, proof in results])
        if not proof.passed:  # the unproven partitions were not committed (the proven ones were, each whole)
            raise PointInTimeError(proof)
        return StoredFeatures(FeatureRefresh(expected, stale, sum(commit.rows for commit in commits), proof),
                              commits)


def feature_table_store() -> FeatureTableStore:
    """The store the environment names when a step runs: Delta tables, or the embedded warehouse by default."""
    store = delta_store_from_environment()
    return EmbeddedFeatureTables() if store is None else DeltaFeatureTables(store)
