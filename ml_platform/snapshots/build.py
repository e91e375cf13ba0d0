"""Immutable training snapshots: the exact rows, features, labels and money inputs of one training run."""

from __future__ import annotations

import duckdb
import pandas as pd

from ml_platform import names
from ml_platform.errors import PlatformError
from ml_platform.features.compute import missing_feature_days, require_tables
from ml_platform.features.labels import labelled_rows_sql
from ml_platform.partitions import parse_training_run_key, run_split, training_run_key, training_split
from ml_platform.records.outcomes import Stored
from ml_platform.records.registry import SnapshotRecord, SpecRecord
from ml_platform.records.snapshots import SnapshotManifest, SplitWindow
from ml_platform.snapshots.columns import split_condition
from ml_platform.snapshots.label_windows import ImmatureLabelsError, label_cut, label_windows
from ml_platform.snapshots.pinning import MissingDataVersionError, pin_data_versions
from ml_platform.snapshots.writing import write_rows
from ml_platform.specs.catalog import Catalog
from ml_platform.specs.models import ModelSpec
from ml_platform.specs.sql_reach import require_contained_model
from ml_platform.storage import registry
from ml_platform.storage.artifacts import ArtifactStore


class SnapshotError(PlatformError, RuntimeError):
    """The data a snapshot needs is not there."""


class TrainingRunError(PlatformError, ValueError):
    """A training run that cannot be built: its key is malformed, leaves no training days, or names another
    revision of the spec."""


def check_run_matches_spec(model: ModelSpec, training_run: str, spec_hash: str) -> None:
    """Refuse to build a run whose key is malformed, names another revision of the spec, or leaves no training days."""
    try:
        cutoff, run_hash = parse_training_run_key(training_run)
        training_split(model, cutoff)
    except ValueError as error:
        raise TrainingRunError(f"training run '{training_run}' of '{model.name}' cannot be built: {error}") \
            from None
    if run_hash != spec_hash:
        raise TrainingRunError(
            f"training run '{training_run}' was defined by another revision of the spec of '{model.name}' and has "
            f"no stored snapshot; the current spec defines run '{training_run_key(model, spec_hash, cutoff)}' for "
            f"the same cut-off")


def record_spec(connection: duckdb.DuckDBPyConnection, catalog: Catalog, model: ModelSpec, spec_hash: str) -> None:
    """Record the spec's text under its hash in registry.specs, once."""
    if registry.specs.get(connection, spec_hash) is None:
        registry.specs.add(connection, SpecRecord(spec_hash=spec_hash, model=model.name,
                                                  payload=catalog.model_payload(model), recorded_at=registry.now()))


def snapshot_run(connection: duckdb.DuckDBPyConnection, artifacts: ArtifactStore, catalog: Catalog,
                 model: ModelSpec, training_run: str) -> Stored[SnapshotRecord]:
    """The run's snapshot: the stored one, or a new one once the run key is checked and the spec recorded."""
    spec_hash = catalog.spec_hash(model)
    if registry.snapshots.get(connection, model.name, training_run) is None:
        check_run_matches_spec(model, training_run, spec_hash)
        record_spec(connection, catalog, model, spec_hash)
    return build_snapshot(connection, artifacts, catalog, model, training_run, spec_hash)


def build_snapshot(connection: duckdb.DuckDBPyConnection, artifacts: ArtifactStore, catalog: Catalog,
                   model: ModelSpec, training_run: str, spec_hash: str) -> Stored[SnapshotRecord]:
    """Write the run's snapshot once and record it; the stored one (reused) when the run already has one."""
    existing = registry.snapshots.get(connection, model.name, training_run)
    if existing is not None:
        artifacts.verify(existing.path, existing.sha256)
        return Stored(existing, reused=True)
    split = run_split(model, training_run)
    require_contained_model(model)  # the loader refuses such SQL already; a spec built in code must not run it
    rows = catalog.entity_rows(model.entity)
    require_tables(connection, rows.schema, [model.entity],
                   f"materialize the model's {'entity' if rows.is_population else 'sources'} first")
    missing = missing_feature_days(connection, catalog, model, split.train.start, split.test.end)
    if missing:
        details = "; ".join(f"{name}: {len(days)} day(s) from {days[0]}" for name, days in missing.items())
        raise SnapshotError(f"features missing for the split windows of '{model.name}' ({details}); "
                            f"materialize those feature partitions first")
    try:
        cut = label_cut(connection, catalog, model, split, training_run)
    except ImmatureLabelsError as error:
        raise SnapshotError(str(error)) from None
    try:
        sources, features = pin_data_versions(connection, catalog, model, split, cut.mature_through)
    except MissingDataVersionError as error:
        raise SnapshotError(f"cannot pin the data versions the snapshot of '{model.name}' reads: {error}") from None
    stored = artifacts.write(f"snapshots/{model.name}", ".parquet",
                             lambda path: write_rows(connection, catalog, model, split, path,
                                                     keep=cut.keep_condition(split)))
    file = f"read_parquet('{artifacts.path_of(stored.path)}')"
    if model.label.task == "multiclass":
        check_classes(connection, model, file)
    # binary: the positive rate; regression: the label's mean; multiclass: the first class's share (by class below)
    average = "avg(label)" if model.label.task == "regression" else "avg(CAST(label AS DOUBLE))" \
        if model.label.task == "binary_classification" else "NULL"
    stats = connection.execute(f"SELECT split, count(*), {average} FROM {file} GROUP BY split").fetchall()
    unlabelled = connection.execute(
        f"SELECT count(*) FROM {labelled_rows_sql(catalog, model, split.train.start, cut.mature_through)} "
        f"WHERE label IS NULL").fetchall()[0][0]
    entity = catalog.entity_rows(model.entity)
    manifest = SnapshotManifest(
        model=model.name,
        training_run=training_run,
        spec_hash=spec_hash,
        snapshot_sha256=stored.sha256,
        size_bytes=stored.size_bytes,
        entity=entity.name,
        keys=tuple(entity.keys),
        features=tuple(model.features),
        feature_set_versions={fs.name: catalog.feature_set_hash(fs) for fs in catalog.feature_sets_of(model)},
        source_data_versions=sources,
        feature_data_versions=features,
        split_windows={name: SplitWindow(start=str(getattr(split, name).start), end=str(getattr(split, name).end))
                       for name in ("train", "validation", "test")},
        rows={name: count for name, count, _ in stats},
        **split_label_facts(connection, model, file, stats),
        rows_without_label_excluded=unlabelled,
        label_windows=label_windows(connection, model, split, cut, names.table(entity.schema, entity.name)),
    )
    record = SnapshotRecord(training_run=training_run, model=model.name, snapshot_id=stored.sha256[:16],
                            spec_hash=spec_hash, path=stored.path, sha256=stored.sha256, manifest=manifest,
                            created_at=registry.now())
    registry.snapshots.add(connection, record)
    return Stored(record, reused=False)


def check_classes(connection: duckdb.DuckDBPyConnection, model: ModelSpec, file: str) -> None:
    """Fail naming the label values of a multiclass snapshot that label.classes does not list."""
    listed = ", ".join("'" + value.replace("'", "''") + "'" for value in model.label.classes)
    unknown = connection.execute(f"SELECT label, count(*) FROM {file} WHERE label NOT IN ({listed}) GROUP BY 1 "
                                 f"ORDER BY 2 DESC, 1 LIMIT 5").fetchall()
    if unknown:
        values = ", ".join(f"'{value}' ({count} rows)" for value, count in unknown)
        raise SnapshotError(f"label.expression of '{model.name}' gives values that label.classes does not list: "
                            f"{values} (allowed: {', '.join(model.label.classes)})")


def split_label_facts(connection: duckdb.DuckDBPyConnection, model: ModelSpec, file: str, stats: list) -> dict:
    """The manifest's label facts per split: positive rate (binary), label mean (regression), class shares."""
    if model.label.task == "binary_classification":
        return {"positive_rate": {name: round(rate, 6) for name, _, rate in stats}}
    if model.label.task == "regression":
        return {"label_mean": {name: round(mean, 6) for name, _, mean in stats}}
    shares = connection.execute(f"SELECT split, label, count(*) / sum(count(*)) OVER (PARTITION BY split) FROM {file} "
                                f"GROUP BY split, label").fetchall()
    by_split = {name: {value: 0.0 for value in model.label.classes} for name, _, _ in stats}
    for name, value, share in shares:
        by_split[name][value] = round(float(share), 6)
    return {"class_shares": by_split}


def read_snapshot(connection: duckdb.DuckDBPyConnection, artifacts: ArtifactStore, snapshot: SnapshotRecord,
                  splits: tuple[str, ...] | None = None) -> pd.DataFrame:
    """The snapshot's rows (of the given splits only, when named), after verifying the file's hash."""
    path = artifacts.verify(snapshot.path, snapshot.sha256)
    where = f" WHERE {split_condition(*splits)}" if splits is not None else ""
    return connection.execute(f"SELECT * FROM read_parquet('{path}'){where}").df()
