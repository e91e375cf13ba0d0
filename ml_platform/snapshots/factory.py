"""Build the `[model, "snapshot"]` asset: one immutable snapshot per training run."""

import dagster as dg

from ml_platform import names
from ml_platform.errors import as_dagster_failure
from ml_platform.features.proof import Proof
from ml_platform.partitions import training_runs
from ml_platform.records.outcomes import Stored
from ml_platform.records.registry import SnapshotRecord
from ml_platform.snapshots.build import snapshot_run
from ml_platform.snapshots.pinning import manifest_summary
from ml_platform.snapshots.proof import SnapshotProofError, prove_training_run
from ml_platform.specs.catalog import Catalog
from ml_platform.specs.models import ModelSpec
from ml_platform.storage.artifacts import ArtifactStore
from ml_platform.storage.resources import Warehouse


def snapshot_metadata(artifacts: ArtifactStore, stored: Stored[SnapshotRecord]) -> dict:
    """The snapshot's materialization metadata: identity, rows and rates by split, file, and the short manifest."""
    record = stored.record
    manifest = record.manifest
    # the labels by split: positive rate (binary), mean (regression) or class shares (multiclass)
    label_facts = {f"{name}_by_split": dg.MetadataValue.json(dict(value)) for name, value in
                   (("positive_rate", manifest.positive_rate), ("label_mean", manifest.label_mean),
                    ("class_shares", manifest.class_shares)) if value is not None}
    return {
        "snapshot_id": record.snapshot_id,
        "reused": f"snapshot {record.snapshot_id} already stored for this run" if stored.reused else "no",
        names.ROW_COUNT_METADATA: sum(manifest.rows.values()),
        "rows_by_split": dg.MetadataValue.json(dict(manifest.rows)),
        **label_facts,
        "path": dg.MetadataValue.path(artifacts.location_of(record.path)),
        "sha256": record.sha256,
        "spec_hash": record.spec_hash,
        "manifest": dg.MetadataValue.json(manifest_summary(manifest)),  # per-day versions: registry.snapshots
    }


def build_snapshot_asset(catalog: Catalog, model: ModelSpec) -> dg.AssetsDefinition:
    """The asset that writes one immutable training snapshot per training run."""
    spec_hash = catalog.spec_hash(model)
    all_days = dg.AllPartitionMapping()
    deps = [dg.AssetDep(names.feature_key(fs.name), partition_mapping=all_days)
            for fs in catalog.feature_sets_of(model)]
    entity = names.entity_key(model.entity) if catalog.entity_rows(model.entity).is_population \
        else names.source_key(model.entity)
    deps.append(dg.AssetDep(entity, partition_mapping=all_days))

    @dg.asset(
        key=names.stage_key("snapshot", model.name),
        group_name=names.model_group(model.name),
        description=f"Immutable training snapshot of {model.name}: the exact rows, features, labels and money "
                    f"inputs of one training run, as content-addressed Parquet.",
        owners=[model.owner],
        kinds={"parquet"},
        partitions_def=training_runs(model),
        deps=deps,
        code_version=spec_hash,
        metadata={"spec_file": catalog.file_of("model", model.name), "spec_hash": spec_hash},
        check_specs=[dg.AssetCheckSpec(
            names.POINT_IN_TIME_CHECK, asset=names.stage_key("snapshot", model.name), blocking=True,
            description="a sample of the snapshot's feature values equals their values recomputed with every "
                        "source cut at each row's prediction time")],
    )
    def snapshot(context: dg.AssetExecutionContext, warehouse: Warehouse, artifacts: ArtifactStore):
        try:
            with as_dagster_failure(), warehouse.get_connection() as connection:
                proofs = prove_training_run(connection, catalog, model, context.partition_key)
                stored = snapshot_run(connection, artifacts, catalog, model, context.partition_key)
        except dg.Failure as failure:
            if isinstance(failure.__cause__, SnapshotProofError):
                yield proof_check(failure.__cause__.proofs)
            raise
        yield dg.MaterializeResult(metadata=snapshot_metadata(artifacts, stored), check_results=[proof_check(proofs)])

    return snapshot


def proof_check(proofs: list[Proof]) -> dg.AssetCheckResult:
    """The snapshot's point-in-time check: its feature sets' proofs, or passed when the snapshot was already stored."""
    if not proofs:
        return dg.AssetCheckResult(check_name=names.POINT_IN_TIME_CHECK, passed=True,
                                   description="snapshot already stored: proven when it was written")
    failed = [proof for proof in proofs if not proof.passed]
    metadata = {"cuts_checked": sum(len(proof.cuts) for proof in proofs),
                "rows_checked": sum(proof.rows for proof in proofs),
                "seconds": round(sum(proof.seconds for proof in proofs), 3),
                "sample": "; ".join(f"{proof.feature_set}: {proof.metadata()['sample']}" for proof in proofs)}
    description = (" || ".join(proof.message() for proof in failed) if failed else
                   f"{metadata['rows_checked']:,} row(s) at {metadata['cuts_checked']} prediction time(s) of "
                   f"{len(proofs)} feature set(s) recomputed with every source cut there: all values equal")
    return dg.AssetCheckResult(check_name=names.POINT_IN_TIME_CHECK, passed=not failed, metadata=metadata,
                               severity=dg.AssetCheckSeverity.ERROR, description=description)
