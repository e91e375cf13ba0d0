"""Build the `["model", model]` asset: one trained artifact per training run."""

import dagster as dg
from ml_platform.storage.resources import Warehouse

from ml_platform.partitions import training_runs
from ml_platform.snapshots.factory import stage_key
from ml_platform.specs.catalog import Catalog
from ml_platform.specs.dependencies import dependencies_markdown
from ml_platform.specs.models import ModelSpec
from ml_platform.storage.artifacts import ArtifactStore
from ml_platform.training.fit import train_model


def _importance_table(card: dict, top: int = 15) -> str:
    importance = card.get("feature_importance", {})
    total = sum(importance.values()) or 1.0
    rows = sorted(importance.items(), key=lambda item: -item[1])[:top]
    return (f"| feature | share of {card.get('importance_kind', 'importance')} |\n|---|---|\n"
            + "\n".join(f"| {name} | {value / total:.1%} |" for name, value in rows))


def build_model_asset(catalog: Catalog, model: ModelSpec) -> dg.AssetsDefinition:
    """The asset that trains the model of each training run from its snapshot."""
    spec_hash = catalog.spec_hash(model)

    @dg.asset(
        key=stage_key("model", model),
        group_name=model.name,
        description=f"{model.name} trained with {model.algorithm.kind} (seed {model.algorithm.seed}) on the "
                    f"training window of its snapshot ({model.split.train.start} to {model.split.train.end} for the "
                    f"spec's own split; a retraining run moves the split to its cut-off, keeping the first day).\n\n"
                    f"**Data dependencies**: every source the model reads, through which feature sets, and the "
                    f"spec's opt-in for data that is not internal.\n\n{dependencies_markdown(catalog, model)}",
        owners=[model.owner],
        kinds={"lightgbm" if model.algorithm.kind == "lightgbm" else "sklearn"},
        partitions_def=training_runs(model),
        deps=[stage_key("snapshot", model)],
        code_version=spec_hash,
        metadata={"algorithm": model.algorithm.kind,
                  "parameters": dg.MetadataValue.json(model.algorithm.params.model_dump()),
                  "data_dependencies": dg.MetadataValue.md(dependencies_markdown(catalog, model))},
    )
    def trained_model(context: dg.AssetExecutionContext, warehouse: Warehouse,
                      artifacts: ArtifactStore) -> dg.MaterializeResult:
        with warehouse.get_connection() as connection:
            row = train_model(connection, artifacts, catalog, model, context.partition_key)
        card = row["card"]
        return dg.MaterializeResult(metadata={
            "model_version": row["model_version"],
            "reused": f"model {row['model_version']} already trained for this run" if row["reused"] else "no",
            "snapshot_id": row["snapshot_id"],
            "spec_hash": row["spec_hash"],
            "sha256": row["sha256"],
            "path": dg.MetadataValue.path(str(artifacts.path_of(row["path"]))),
            "training_rows": card["training_rows"],
            "training_seconds": card.get("training_seconds", 0.0),
            "feature_importance": dg.MetadataValue.md(_importance_table(card)),
            "model_card": dg.MetadataValue.json(
                {key: value for key, value in card.items() if key != "feature_importance"}),
        })

    return trained_model
