"""Build the `["predictions", model]` asset: daily production scores from the champion, with provenance."""

import dagster as dg
from ml_platform.resources import Warehouse

from ml_platform.features.factory import feature_key
from ml_platform.partitions import date_range, source_partitions
from ml_platform.scoring.score import ScoringError, score_days
from ml_platform.snapshots.factory import stage_key
from ml_platform.specs.catalog import Catalog
from ml_platform.specs.models import ModelSpec
from ml_platform.storage.artifacts import ArtifactStore


def build_predictions_asset(catalog: Catalog, model: ModelSpec) -> dg.AssetsDefinition:
    """The asset that scores each day of the entity with the live champion."""
    predict_at = model.cadence.predict_at
    deps = [dg.AssetDep(feature_key(fs.name)) for fs in catalog.feature_sets_of(model)]
    deps.append(dg.AssetDep(stage_key("deployment", model), partition_mapping=dg.AllPartitionMapping()))

    @dg.asset(
        key=stage_key("predictions", model),
        group_name=model.name,
        description=f"Production predictions of {model.name}, one partition per {model.entity} date, made "
                    f"{predict_at.days_before} day(s) before at {predict_at.time} by the champion. Every row "
                    f"carries model version, spec hash, snapshot id and code version.",
        owners=[model.owner],
        kinds={"duckdb"},
        partitions_def=source_partitions(catalog.sources[model.entity]),
        backfill_policy=dg.BackfillPolicy.single_run(),
        deps=deps,
        metadata={"dagster/table_name": f"predictions.{model.name}",
                  "latest_view": f"predictions.{model.name}__latest"},
    )
    def predictions(context: dg.AssetExecutionContext, warehouse: Warehouse,
                    artifacts: ArtifactStore) -> dg.MaterializeResult:
        start, end = date_range(context)
        with warehouse.get_connection() as connection:
            try:
                result = score_days(connection, artifacts, catalog, model, start, end, context.run.run_id)
            except ScoringError as error:
                raise dg.Failure(description=str(error)) from error
        return dg.MaterializeResult(metadata={
            "dagster/row_count": result["rows"],
            "flagged": result["flagged"],
            "model_version": result["model_version"],
            "spec_hash": result["spec_hash"],
            "snapshot_id": result["snapshot_id"],
            "code_version": result["code_version"],
            "scored_at": result["scored_at"],
        })

    return predictions
