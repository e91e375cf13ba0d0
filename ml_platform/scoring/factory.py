"""Build the `[model, "predictions"]` asset: daily production scores from the champion, with provenance."""

import dagster as dg

from ml_platform import names
from ml_platform.entities.factory import entity_partitions_of
from ml_platform.errors import as_dagster_failure
from ml_platform.partitions import date_range
from ml_platform.scoring.missing import (
    CHECK_NAME, MAX_EXTRA_MISSING, MissingFeature, degraded_features, degraded_text)
from ml_platform.scoring.score import ScoringResult, score_days
from ml_platform.scoring.shadow import ShadowOutcome, comparison_text, shadow_scoring
from ml_platform.specs.catalog import Catalog
from ml_platform.specs.models import ModelSpec
from ml_platform.storage import registry
from ml_platform.storage.artifacts import ArtifactStore
from ml_platform.storage.resources import Warehouse


def scoring_metadata(result: ScoringResult) -> dict:
    """The metadata of a production scoring: rows, flagged and the provenance every row carries."""
    provenance = result.provenance
    decided = {"flagged": result.flagged} if result.flagged is not None else {"decisions": result.decisions}
    return {names.ROW_COUNT_METADATA: result.rows, **decided,
            "model_version": provenance.model_version, "spec_hash": provenance.spec_hash,
            "snapshot_id": provenance.snapshot_id, "code_version": provenance.code_version,
            "scored_at": provenance.scored_at.isoformat(timespec="seconds")}


def shadow_metadata(model: ModelSpec, outcome: ShadowOutcome) -> dict:
    """The metadata of the challenger's shadow scoring and of its comparison with production."""
    if outcome.challenger is None:
        return {"shadow": "no challenger: every run that passed the gate has been promoted"}
    if outcome.scored is None:
        return {"shadow": f"challenger {outcome.challenger} not scored: {outcome.not_scored}"}
    shadow = names.table_label("predictions", names.shadow_table_name(model.name))
    metadata = {"shadow": f"challenger {outcome.challenger} scored {outcome.scored.rows:,} rows into {shadow}",
                "shadow_model_version": outcome.challenger, "shadow_rows": outcome.scored.rows,
                **({"shadow_flagged": outcome.scored.flagged} if outcome.scored.flagged is not None else
                   {"shadow_decisions": outcome.scored.decisions})}
    comparison = outcome.comparison
    if comparison is None:
        return {**metadata, "shadow_comparison": outcome.not_compared}
    return {**metadata, "shadow_comparison": comparison_text(comparison),
            f"shadow_gain_{comparison['currency']}": round(comparison["gain"]),  # whole units
            "shadow_comparison_detail": dg.MetadataValue.json(comparison)}


def degraded_table(found: list[MissingFeature]) -> str:
    """The degraded days and features as a markdown table (the check's metadata in the UI)."""
    if not found:
        return "no degraded day"
    return ("| day | feature | missing | in training | rows |\n|---|---|---|---|---|\n"
            + "\n".join(f"| {item.day} | {item.feature} | {item.share:.0%} | {item.training_share:.1%} | "
                        f"{item.rows:,} |" for item in found))


def build_predictions_asset(catalog: Catalog, model: ModelSpec) -> dg.AssetsDefinition:
    """The asset that scores each day of the entity with the live champion."""
    predict_at = model.cadence.predict_at
    deps = [dg.AssetDep(names.feature_key(fs.name)) for fs in catalog.feature_sets_of(model)]
    # the champion comes from the promotion log, the shadow challenger from the stored evaluations
    deps += [dg.AssetDep(names.stage_key(stage, model.name), partition_mapping=dg.AllPartitionMapping())
             for stage in ("deployment", "evaluation")]
    shadow = names.table_label("predictions", names.shadow_table_name(model.name))

    @dg.asset(
        key=names.stage_key("predictions", model.name),
        group_name=names.model_group(model.name),
        description=f"Production predictions of {model.name}, one partition per {model.entity} date, made "
                    f"{predict_at.days_before} day(s) before at {predict_at.time} by the champion. Every row "
                    f"carries model version, spec hash, snapshot id and code version. The challenger (the newest "
                    f"run that passed the gate but was never promoted) scores the same rows in shadow, into "
                    f"{shadow}, and is compared with production in money.",
        owners=[model.owner],
        kinds={"duckdb"},
        partitions_def=entity_partitions_of(catalog, model.entity),
        backfill_policy=dg.BackfillPolicy.single_run(),
        deps=deps,
        check_specs=[dg.AssetCheckSpec(
            CHECK_NAME, asset=names.stage_key("predictions", model.name),
            description=f"Warns when a scored day has a feature missing on more than {MAX_EXTRA_MISSING:.0%} more "
                        f"of its rows than of the champion's training rows: the day is scored, but degraded.")],
        metadata={names.TABLE_NAME_METADATA: names.table_label("predictions", model.name),
                  names.LATEST_VIEW_METADATA: names.table_label("predictions", names.latest_view_name(model.name)),
                  names.SHADOW_TABLE_METADATA: shadow},
    )
    def predictions(context: dg.AssetExecutionContext, warehouse: Warehouse,
                    artifacts: ArtifactStore) -> dg.MaterializeResult:
        start, end = date_range(context)
        with warehouse.get_connection() as connection:
            with as_dagster_failure():
                result = score_days(connection, artifacts, catalog, model, start, end, context.run.run_id)
                trained = registry.models.by_version(connection, result.provenance.model_version)
                degraded = degraded_features(connection, artifacts, catalog, trained, start, end)
            outcome = shadow_scoring(connection, artifacts, catalog, model, start, end, context.run.run_id)
        if outcome.warning is not None:
            context.log.warning(outcome.warning)
        grain = catalog.entity_rows(model.entity).grain
        if degraded:
            context.log.warning(degraded_text(degraded, grain))
        check = dg.AssetCheckResult(
            check_name=CHECK_NAME, passed=not degraded, severity=dg.AssetCheckSeverity.WARN,
            description=degraded_text(degraded, grain),
            metadata={"degraded_days": len({item.day for item in degraded}),
                      "degraded": dg.MetadataValue.md(degraded_table(degraded))})
        metadata = {**scoring_metadata(result), **shadow_metadata(model, outcome)}
        if degraded:
            metadata["degraded_days"] = ", ".join(sorted({str(item.day) for item in degraded}))
        return dg.MaterializeResult(metadata=metadata, check_results=[check])

    return predictions
