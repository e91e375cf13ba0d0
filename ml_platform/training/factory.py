"""Build the `[model, "model"]` asset: one trained artifact per training run."""

import json

import dagster as dg

from ml_platform import names
from ml_platform.errors import as_dagster_failure
from ml_platform.partitions import training_runs
from ml_platform.progress import Progress
from ml_platform.records.outcomes import Stored
from ml_platform.records.registry import ModelRecord
from ml_platform.records.search import SearchRecord
from ml_platform.records.training import ModelCard
from ml_platform.specs.catalog import Catalog
from ml_platform.specs.dependencies import dependencies_markdown
from ml_platform.specs.models import ModelSpec
from ml_platform.storage.artifacts import ArtifactStore
from ml_platform.storage.resources import Warehouse
from ml_platform.training.fit import train_model
from ml_platform.training.search import SearchJudge


def _importance_table(card: ModelCard, top: int = 15) -> str:
    importance = card.feature_importance or {}
    total = sum(importance.values()) or 1.0
    rows = sorted(importance.items(), key=lambda item: -item[1])[:top]
    return (f"| feature | share of {card.importance_kind or 'importance'} |\n|---|---|\n"
            + "\n".join(f"| {name} | {value / total:.1%} |" for name, value in rows))


def model_metadata(artifacts: ArtifactStore, stored: Stored[ModelRecord]) -> dict:
    """The trained model's materialization metadata: version, file, training facts and its card."""
    record = stored.record
    card = record.card
    return {
        "model_version": record.model_version,
        "reused": f"model {record.model_version} already trained for this run" if stored.reused else "no",
        "snapshot_id": record.snapshot_id,
        "spec_hash": record.spec_hash,
        "sha256": record.sha256,
        "path": dg.MetadataValue.path(artifacts.location_of(record.path)),
        "training_rows": card.training_rows,
        "training_seconds": round(card.training_seconds, 1),
        "feature_importance": dg.MetadataValue.md(_importance_table(card)),
        "model_card": dg.MetadataValue.json(json.loads(card.model_dump_json(exclude={"feature_importance"}))),
        **({"search": dg.MetadataValue.md(search_markdown(card.search))} if card.search is not None else {}),
        **({"trained_on": trained_on_text(card)} if card.distributed or card.distributed_declined else {}),
    }


def trained_on_text(card: ModelCard) -> str:
    """Where a model trained, when the configuration asked for distributed training: the cluster, or why not."""
    if card.distributed is None:
        return f"this machine: {card.distributed_declined}"
    distributed = card.distributed
    return (f"{distributed.engine}: {distributed.workers} workers of {distributed.scheduler} "
            f"({', '.join(map(str, distributed.rows_per_worker))} rows), {distributed.rounds_trained} rounds trained, "
            f"{card.trees} kept by early stopping on the validation window; not bit-identical to single-machine "
            f"LightGBM: the platform states {distributed.tolerance}")


def search_markdown(search: SearchRecord) -> str:
    """The search's trials as a markdown table, the chosen one marked."""
    lines = [f"Optuna {search.library.get('optuna', '')}, {search.sampler}, objective {search.objective} "
             f"({search.direction}) on the validation window: {search.ending()} in {search.seconds:.1f} s; chose "
             f"trial {search.best_trial}.", "", "| trial | value | validation money | seconds | state | parameters |",
             "|---|---|---|---|---|---|"]
    for trial in search.trials:
        mark = " (chosen)" if trial.number == search.best_trial else ""
        value = "" if trial.value is None else f"{trial.value:,.4f}"
        money = "" if trial.validation_money is None else f"{trial.validation_money:,.0f}"
        parameters = ", ".join(f"{name}={value:.4g}" if isinstance(value, float) else f"{name}={value}"
                               for name, value in trial.parameters.items())
        lines.append(f"| {trial.number}{mark} | {value} | {money} | {trial.seconds:.2f} | {trial.state} | "
                     f"{parameters} |")
    return "\n".join(lines)


def build_model_asset(catalog: Catalog, model: ModelSpec, judge: SearchJudge | None = None) -> dg.AssetsDefinition:
    """The asset that trains the model of each training run from its snapshot; `judge` scores the trials of the
    spec's hyper-parameter search on the validation window (needed when the spec declares one)."""
    spec_hash = catalog.spec_hash(model)

    @dg.asset(
        key=names.stage_key("model", model.name),
        group_name=names.model_group(model.name),
        description=f"{model.name} trained with {model.algorithm.kind} (seed {model.algorithm.seed}) on the "
                    f"training window of its snapshot ({model.split.train.start} to {model.split.train.end} for the "
                    f"spec's own split; a retraining run moves the split to its cut-off, keeping the first day).\n\n"
                    f"**Data dependencies**: every source the model reads, through which feature sets, and the "
                    f"spec's opt-in for data that is not internal.\n\n{dependencies_markdown(catalog, model)}",
        owners=[model.owner],
        kinds={"lightgbm" if model.algorithm.kind == "lightgbm" else "sklearn"},
        partitions_def=training_runs(model),
        deps=[names.stage_key("snapshot", model.name)],
        code_version=spec_hash,
        metadata={"algorithm": model.algorithm.kind,
                  "parameters": dg.MetadataValue.json(model.algorithm.params.model_dump()),
                  "data_dependencies": dg.MetadataValue.md(dependencies_markdown(catalog, model))},
    )
    def trained_model(context: dg.AssetExecutionContext, warehouse: Warehouse,
                      artifacts: ArtifactStore) -> dg.MaterializeResult:
        with as_dagster_failure(), warehouse.get_connection() as connection:
            stored = train_model(connection, artifacts, catalog, model, context.partition_key,
                                 Progress(context.log.info), judge=judge)
        return dg.MaterializeResult(metadata=model_metadata(artifacts, stored))

    return trained_model
