"""Build the `["evaluation", model]` asset and its blocking gate checks."""

import dagster as dg
from ml_platform.resources import Warehouse

from ml_platform.evaluation.evaluate import evaluate, store_evaluation
from ml_platform.evaluation.report import render_report
from ml_platform.partitions import training_runs
from ml_platform.snapshots.factory import stage_key
from ml_platform.specs.catalog import Catalog
from ml_platform.specs.models import ModelSpec
from ml_platform.storage import registry
from ml_platform.storage.artifacts import ArtifactStore

GATE_CHECKS = {
    "money_floor": "money on the test window is at least the spec's gate.min_money",
    "roc_auc_floor": "ROC AUC on the test window is at least the spec's gate.min_roc_auc",
    "predictions_sane": "predictions are finite, within [0, 1] and not constant",
}


def build_evaluation_asset(catalog: Catalog, model: ModelSpec) -> dg.AssetsDefinition:
    """The asset that evaluates each training run in money, with the gate as blocking checks."""
    key = stage_key("evaluation", model)
    gate = model.gate

    @dg.asset(
        key=key,
        group_name=model.name,
        description=f"Evaluation of {model.name} in {model.money.currency} on the test window "
                    f"{model.split.test.start} to {model.split.test.end}; the decision threshold is chosen on "
                    f"the validation window. Gate: money ≥ {gate.min_money:,.0f} {model.money.currency}, "
                    f"ROC AUC ≥ {gate.min_roc_auc}.",
        owners=[model.owner],
        kinds={"json"},
        partitions_def=training_runs(model),
        deps=[stage_key("model", model), stage_key("snapshot", model)],
        code_version=catalog.spec_hash(model),
        check_specs=[dg.AssetCheckSpec(name, asset=key, blocking=True, description=description)
                     for name, description in GATE_CHECKS.items()],
    )
    def evaluation(context: dg.AssetExecutionContext, warehouse: Warehouse,
                   artifacts: ArtifactStore) -> dg.MaterializeResult:
        with warehouse.get_connection() as connection:
            existing = registry.fetch_one(connection, "evaluations", model=model.name,
                                          training_run=context.partition_key)
            summary = existing["summary"] if existing else evaluate(connection, artifacts, model, context.partition_key)
            report = render_report(summary)
            row = store_evaluation(connection, artifacts, summary, report)
        test = summary["test"]
        return dg.MaterializeResult(
            metadata={
                "report": dg.MetadataValue.md(report),
                "reused": "evaluation already stored for this run" if row["reused"] else "no",
                "model_version": summary["model_version"],
                f"money_{summary['currency']}": round(test["money"], 2),
                f"money_low_{summary['currency']}": round(test["money_interval_95"][0], 2),
                f"money_high_{summary['currency']}": round(test["money_interval_95"][1], 2),
                "threshold": round(summary["threshold"], 6),
                "roc_auc": round(test["roc_auc"], 6),
                "log_loss": round(test["log_loss"], 6),
                "precision": round(test["precision"], 6) if test["precision"] == test["precision"] else 0.0,
                "recall": round(test["recall"], 6) if test["recall"] == test["recall"] else 0.0,
                "gate_passed": summary["gate_passed"],
                "report_file": dg.MetadataValue.path(str(artifacts.path_of(row["report_path"]))),
            },
            check_results=[
                dg.AssetCheckResult(check_name=name, passed=bool(check["passed"]),
                                    severity=dg.AssetCheckSeverity.ERROR,
                                    description=check["why"], metadata={"why": check["why"]})
                for name, check in summary["gate"].items()
            ],
        )

    return evaluation
