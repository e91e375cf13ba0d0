"""Immutable training snapshots: the exact rows, features, labels and money inputs of one training run."""

from __future__ import annotations


import duckdb
import pandas as pd

from ml_platform.errors import PlatformError
from ml_platform.features.compute import missing_feature_days, require_tables
from ml_platform.specs.catalog import Catalog
from ml_platform.partitions import run_split
from ml_platform.specs.models import ModelSpec
from ml_platform.storage import registry
from ml_platform.storage.artifacts import ArtifactStore
from ml_platform.snapshots.columns import split_condition
from ml_platform.snapshots.pinning import MissingDataVersionError, pin_data_versions
from ml_platform.snapshots.writing import write_rows
from ml_platform.storage.warehouse import date_literal, table


class SnapshotError(PlatformError, RuntimeError):
    """The data a snapshot needs is not there."""


def build_snapshot(connection: duckdb.DuckDBPyConnection, artifacts: ArtifactStore, catalog: Catalog,
                   model: ModelSpec, training_run: str, spec_hash: str) -> dict:
    """Write the run's snapshot once; return its registry row (the existing one if the run already has one)."""
    existing = registry.fetch_one(connection, "snapshots", model=model.name, training_run=training_run)
    if existing is not None:
        artifacts.verify(existing["path"], existing["sha256"])
        return {**existing, "reused": True}
    split = run_split(model, training_run)
    require_tables(connection, "source", [model.entity], "materialize the model's sources first")
    missing = missing_feature_days(connection, catalog, model, split.train.start, split.test.end)
    if missing:
        details = "; ".join(f"{name}: {len(days)} day(s) from {days[0]}" for name, days in missing.items())
        raise SnapshotError(f"features missing for the split windows of '{model.name}' ({details}); "
                            f"materialize those feature partitions first")
    try:
        sources, features = pin_data_versions(connection, catalog, model, split)
    except MissingDataVersionError as error:
        raise SnapshotError(f"cannot pin the data versions the snapshot of '{model.name}' reads: {error}") from None
    stored = artifacts.write(f"snapshots/{model.name}", ".parquet",
                             lambda path: write_rows(connection, catalog, model, split, path))
    stats = connection.execute(
        f"SELECT split, count(*), avg(CAST(label AS DOUBLE)) FROM read_parquet('{artifacts.path_of(stored.path)}') "
        f"GROUP BY split"
    ).fetchall()
    unlabelled = connection.execute(
        f"SELECT count(*) FROM {table('source', model.entity)} WHERE partition_date BETWEEN "
        f"{date_literal(split.train.start)} AND {date_literal(split.test.end)} AND ({model.label.expression}) IS NULL"
    ).fetchall()[0][0]
    entity = catalog.sources[model.entity]
    manifest = {
        "model": model.name,
        "training_run": training_run,
        "spec_hash": spec_hash,
        "snapshot_sha256": stored.sha256,
        "size_bytes": stored.size_bytes,
        "entity": entity.name,
        "keys": entity.keys,
        "features": list(model.features),
        "feature_set_versions": {fs.name: catalog.feature_set_hash(fs) for fs in catalog.feature_sets_of(model)},
        "source_data_versions": sources,
        "feature_data_versions": features,
        "split_windows": {name: {"start": str(getattr(split, name).start), "end": str(getattr(split, name).end)}
                          for name in ("train", "validation", "test")},
        "rows": {name: count for name, count, _ in stats},
        "positive_rate": {name: round(rate, 6) for name, _, rate in stats},
        "rows_without_label_excluded": unlabelled,
    }
    row = {
        "training_run": training_run, "model": model.name, "snapshot_id": stored.sha256[:16],
        "spec_hash": spec_hash, "path": stored.path, "sha256": stored.sha256, "manifest": manifest,
        "created_at": registry.now(),
    }
    registry.insert(connection, "snapshots", row)
    return {**row, "reused": False}


def read_snapshot(connection: duckdb.DuckDBPyConnection, artifacts: ArtifactStore, snapshot: dict,
                  splits: tuple[str, ...] | None = None) -> pd.DataFrame:
    """The snapshot's rows (of the given splits only, when named), after verifying the file's hash."""
    path = artifacts.verify(snapshot["path"], snapshot["sha256"])
    where = f" WHERE {split_condition(*splits)}" if splits is not None else ""
    return connection.execute(f"SELECT * FROM read_parquet('{path}'){where}").df()
