"""Build the `["predictions", model]` asset: daily production scores from the champion, with provenance."""

import dagster as dg
from ml_platform.storage.resources import Warehouse

from ml_platform.deployment.promotion import challenger
from ml_platform.evaluation.money import MoneyError
from ml_platform.features.factory import feature_key
from ml_platform.partitions import date_range, source_partitions
from ml_platform.scoring.inputs import InputsColumnError
from ml_platform.scoring.score import score_days, score_shadow_days
from ml_platform.training.inference import ScoringError
from ml_platform.scoring.shadow import comparison_text, shadow_comparison
from ml_platform.snapshots.factory import stage_key
from ml_platform.specs.catalog import Catalog
from ml_platform.specs.models import ModelSpec
from ml_platform.storage.artifacts import ArtifactStore


def shadow_metadata(context: dg.AssetExecutionContext, connection, artifacts: ArtifactStore, catalog: Catalog,
                    model: ModelSpec, start, end) -> dict:
    """Score the challenger in shadow beside the champion, and compare both in money where labels are known.

    Shadow scoring never fails production scoring: when the challenger cannot score, the metadata says why.
    """
    candidate = challenger(connection, model.name)
    if candidate is None:
        return {"shadow": "no challenger: every run that passed the gate has been promoted"}
    try:
        shadow = score_shadow_days(connection, artifacts, catalog, model, candidate, start, end, context.run.run_id)
    except (ScoringError, InputsColumnError) as error:
        context.log.warning(f"challenger {candidate.model_version} not scored in shadow: {error}")
        return {"shadow": f"challenger {candidate.model_version} not scored: {error}"}
    metadata = {"shadow": f"challenger {shadow['model_version']} scored {shadow['rows']:,} rows into "
                          f"predictions.{model.name}__shadow",
                "shadow_model_version": shadow["model_version"], "shadow_rows": shadow["rows"],
                "shadow_flagged": shadow["flagged"]}
    try:
        comparison = shadow_comparison(connection, catalog, model, shadow["model_version"], seed=model.algorithm.seed)
    except MoneyError as error:
        context.log.warning(f"shadow comparison not made: {error}")
        metadata["shadow_comparison"] = f"not made: {error}"
        return metadata
    if comparison is None:
        metadata["shadow_comparison"] = "no labelled rows scored by both yet"
    else:
        currency = comparison["currency"]
        metadata.update({"shadow_comparison": comparison_text(comparison),
                         f"shadow_gain_{currency}": round(comparison["gain"], 2),
                         "shadow_comparison_detail": dg.MetadataValue.json(comparison)})
    return metadata


def build_predictions_asset(catalog: Catalog, model: ModelSpec) -> dg.AssetsDefinition:
    """The asset that scores each day of the entity with the live champion."""
    predict_at = model.cadence.predict_at
    deps = [dg.AssetDep(feature_key(fs.name)) for fs in catalog.feature_sets_of(model)]
    # the champion comes from the promotion log, the shadow challenger from the stored evaluations
    deps += [dg.AssetDep(stage_key(stage, model), partition_mapping=dg.AllPartitionMapping())
             for stage in ("deployment", "evaluation")]

    @dg.asset(
        key=stage_key("predictions", model),
        group_name=model.name,
        description=f"Production predictions of {model.name}, one partition per {model.entity} date, made "
                    f"{predict_at.days_before} day(s) before at {predict_at.time} by the champion. Every row "
                    f"carries model version, spec hash, snapshot id and code version. The challenger (the newest "
                    f"run that passed the gate but was never promoted) scores the same rows in shadow, into "
                    f"predictions.{model.name}__shadow, and is compared with production in money.",
        owners=[model.owner],
        kinds={"duckdb"},
        partitions_def=source_partitions(catalog.sources[model.entity]),
        backfill_policy=dg.BackfillPolicy.single_run(),
        deps=deps,
        metadata={"dagster/table_name": f"predictions.{model.name}",
                  "latest_view": f"predictions.{model.name}__latest",
                  "shadow_table": f"predictions.{model.name}__shadow"},
    )
    def predictions(context: dg.AssetExecutionContext, warehouse: Warehouse,
                    artifacts: ArtifactStore) -> dg.MaterializeResult:
        start, end = date_range(context)
        with warehouse.get_connection() as connection:
            try:
                result = score_days(connection, artifacts, catalog, model, start, end, context.run.run_id)
            except (ScoringError, InputsColumnError) as error:
                raise dg.Failure(description=str(error)) from error
            shadow = shadow_metadata(context, connection, artifacts, catalog, model, start, end)
        return dg.MaterializeResult(metadata={
            "dagster/row_count": result["rows"],
            "flagged": result["flagged"],
            "model_version": result["model_version"],
            "spec_hash": result["spec_hash"],
            "snapshot_id": result["snapshot_id"],
            "code_version": result["code_version"],
            "scored_at": result["scored_at"],
            **shadow,
        })

    return predictions
