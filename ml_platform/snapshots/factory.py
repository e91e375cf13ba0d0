"""Build the `["snapshot", model]` asset: one immutable snapshot per training run."""

import dagster as dg
from ml_platform.storage.resources import Warehouse

from ml_platform.features.factory import feature_key
from ml_platform.partitions import parse_training_run_key, training_run_key, training_runs, training_split
from ml_platform.snapshots.build import build_snapshot
from ml_platform.snapshots.pinning import manifest_summary
from ml_platform.sources.factory import source_key
from ml_platform.specs.catalog import Catalog
from ml_platform.specs.models import ModelSpec
from ml_platform.storage import registry
from ml_platform.storage.artifacts import ArtifactStore


def stage_key(stage: str, model: ModelSpec) -> dg.AssetKey:
    """Asset key of one stage of a model: `[stage, model]`."""
    return dg.AssetKey([stage, model.name])


def check_run_matches_spec(model: ModelSpec, training_run: str, spec_hash: str) -> None:
    """Refuse to build a run whose key is malformed, names another revision of the spec, or leaves no training days."""
    try:
        cutoff, run_hash = parse_training_run_key(training_run)
        training_split(model, cutoff)
    except ValueError as error:
        raise dg.Failure(description=f"training run '{training_run}' of '{model.name}' cannot be built: {error}") \
            from None
    if run_hash != spec_hash:
        raise dg.Failure(
            description=f"training run '{training_run}' was defined by another revision of the spec of "
                        f"'{model.name}' and has no stored snapshot; the current spec defines run "
                        f"'{training_run_key(model, spec_hash, cutoff)}' for the same cut-off")


def build_snapshot_asset(catalog: Catalog, model: ModelSpec) -> dg.AssetsDefinition:
    """The asset that writes one immutable training snapshot per training run."""
    spec_hash = catalog.spec_hash(model)
    all_days = dg.AllPartitionMapping()
    deps = [dg.AssetDep(feature_key(fs.name), partition_mapping=all_days) for fs in catalog.feature_sets_of(model)]
    deps.append(dg.AssetDep(source_key(model.entity), partition_mapping=all_days))

    @dg.asset(
        key=stage_key("snapshot", model),
        group_name=model.name,
        description=f"Immutable training snapshot of {model.name}: the exact rows, features, labels and money "
                    f"inputs of one training run, as content-addressed Parquet.",
        owners=[model.owner],
        kinds={"parquet"},
        partitions_def=training_runs(model),
        deps=deps,
        code_version=spec_hash,
        metadata={"spec_file": catalog.file_of("model", model.name), "spec_hash": spec_hash},
    )
    def snapshot(context: dg.AssetExecutionContext, warehouse: Warehouse,
                 artifacts: ArtifactStore) -> dg.MaterializeResult:
        with warehouse.get_connection() as connection:
            if registry.fetch_one(connection, "snapshots", model=model.name, training_run=context.partition_key) is None:
                check_run_matches_spec(model, context.partition_key, spec_hash)
                registry_spec = registry.fetch_one(connection, "specs", spec_hash=spec_hash)
                if registry_spec is None:
                    registry.insert(connection, "specs", {"spec_hash": spec_hash, "model": model.name,
                                                          "payload": catalog.model_payload(model),
                                                          "recorded_at": registry.now()})
            row = build_snapshot(connection, artifacts, catalog, model, context.partition_key, spec_hash)
        manifest = row["manifest"]
        return dg.MaterializeResult(metadata={
            "snapshot_id": row["snapshot_id"],
            "reused": f"snapshot {row['snapshot_id']} already stored for this run" if row["reused"] else "no",
            "dagster/row_count": sum(manifest["rows"].values()),
            "rows_by_split": dg.MetadataValue.json(manifest["rows"]),
            "positive_rate_by_split": dg.MetadataValue.json(manifest["positive_rate"]),
            "path": dg.MetadataValue.path(str(artifacts.path_of(row["path"]))),
            "sha256": row["sha256"],
            "spec_hash": row["spec_hash"],
            "manifest": dg.MetadataValue.json(manifest_summary(manifest)),  # per-day versions: registry.snapshots
        })

    return snapshot
