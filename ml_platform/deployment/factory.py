"""Build the `[model, "deployment"]` asset: promote a training run's model when its evaluation passed the gate."""

import dagster as dg

from ml_platform import names
from ml_platform.deployment.promotion import promote
from ml_platform.deployment.side_by_side import promotion_comparison
from ml_platform.errors import as_dagster_failure
from ml_platform.partitions import training_runs
from ml_platform.records.outcomes import PromotionOutcome
from ml_platform.specs.catalog import Catalog
from ml_platform.specs.models import ModelSpec
from ml_platform.storage.artifacts import ArtifactStore
from ml_platform.storage.resources import Warehouse
from ml_platform.tags import tick_time


def promotion_metadata(outcome: PromotionOutcome, comparison: str | None = None) -> dict:
    """The deployment's materialization metadata: the champion, its promotion and how it came about, and beside
    the champion it was compared with (`comparison`, Markdown) when there was one."""
    record = outcome.record
    metadata = {
        "champion": record.model_version,
        "promotion": f"#{record.promotion_id}",  # an id, not a number to chart
        "promoted_at": str(record.promoted_at),
        "outcome": "already the champion" if outcome.already_champion else "promoted",
    }
    if outcome.recompared:
        metadata["compared_again"] = record.gate.beats_champion.why
    if comparison is not None:
        metadata["comparison"] = dg.MetadataValue.md(comparison)
    return metadata


def build_deployment_asset(catalog: Catalog, model: ModelSpec) -> dg.AssetsDefinition:
    """The asset that appends a promotion to the log; the gate is verified again from the stored evaluation."""

    @dg.asset(
        key=names.stage_key("deployment", model.name),
        group_name=names.model_group(model.name),
        description=f"Promotes the training run's {model.name} model to champion through the append-only "
                    f"promotion log, only if its stored evaluation passed every gate check (compared again with "
                    f"the champion when another version was promoted since the evaluation).",
        owners=[model.owner],
        kinds={"duckdb"},
        partitions_def=training_runs(model),
        deps=[names.stage_key("evaluation", model.name)],
        code_version=catalog.spec_hash(model),
    )
    def deployment(context: dg.AssetExecutionContext, warehouse: Warehouse,
                   artifacts: ArtifactStore) -> dg.MaterializeResult:
        requested_because = context.run.tags.get(names.REASON_TAG)
        reason = f"gate passed for training run {context.partition_key}" + (
            f" ({requested_because})" if requested_because else "")
        with as_dagster_failure(), warehouse.get_connection() as connection:
            outcome = promote(connection, artifacts, catalog, model, context.partition_key, context.run.run_id,
                              reason=reason, promoted_at=tick_time(context.run.tags))
            comparison = promotion_comparison(connection, artifacts, outcome)
        return dg.MaterializeResult(metadata=promotion_metadata(outcome, comparison))

    return deployment
