"""Build the `["deployment", model]` asset: promote a training run's model when its evaluation passed the gate."""

import dagster as dg
from ml_platform.storage.resources import Warehouse

from ml_platform.tags import REASON_TAG, tick_time
from ml_platform.deployment.promotion import GateRefusedError, promote
from ml_platform.partitions import training_runs
from ml_platform.snapshots.factory import stage_key
from ml_platform.specs.catalog import Catalog
from ml_platform.specs.models import ModelSpec
from ml_platform.storage.artifacts import ArtifactStore


def build_deployment_asset(catalog: Catalog, model: ModelSpec) -> dg.AssetsDefinition:
    """The asset that appends a promotion to the log; the gate is verified again from the stored evaluation."""

    @dg.asset(
        key=stage_key("deployment", model),
        group_name=model.name,
        description=f"Promotes the training run's {model.name} model to champion through the append-only "
                    f"promotion log, only if its stored evaluation passed every gate check (compared again with "
                    f"the champion when another version was promoted since the evaluation).",
        owners=[model.owner],
        kinds={"duckdb"},
        partitions_def=training_runs(model),
        deps=[stage_key("evaluation", model)],
        code_version=catalog.spec_hash(model),
    )
    def deployment(context: dg.AssetExecutionContext, warehouse: Warehouse,
                   artifacts: ArtifactStore) -> dg.MaterializeResult:
        with warehouse.get_connection() as connection:
            try:
                requested_because = context.run.tags.get(REASON_TAG)
                row = promote(connection, artifacts, catalog, model, context.partition_key, context.run.run_id,
                              reason=f"gate passed for training run {context.partition_key}"
                                     + (f" ({requested_because})" if requested_because else ""),
                              promoted_at=tick_time(context.run.tags))
            except GateRefusedError as error:
                raise dg.Failure(description=str(error)) from error
        metadata = {
            "champion": row["model_version"],
            "promotion_id": int(row["promotion_id"]),
            "promoted_at": str(row["promoted_at"]),
            "outcome": "already the champion" if row["already_champion"] else "promoted",
        }
        if row["recompared"]:
            metadata["compared_again"] = row["gate"]["beats_champion"]["why"]
        return dg.MaterializeResult(metadata=metadata)

    return deployment
