"""Build the `[model, "evaluation"]` asset and its blocking gate checks."""

import json

import dagster as dg

from ml_platform import names
from ml_platform.errors import as_dagster_failure
from ml_platform.evaluation.evaluate import EvaluationError
from ml_platform.evaluation.leakage import LEAKAGE_ROWS
from ml_platform.evaluation.report import headline_markdown, money_interval, readable_money
from ml_platform.evaluation.side_by_side import compared_champion
from ml_platform.evaluation.store import evaluation_of_run, report_with_inline_plots
from ml_platform.evaluation.task_factory import build_task_evaluation_asset
from ml_platform.specs.tasks import judged_by_decision
from ml_platform.partitions import training_runs
from ml_platform.records.evaluation import EvaluationSummary
from ml_platform.records.gate import CHECK_ORDER, Gate, GateCheck, MoneyFloorDetails
from ml_platform.records.outcomes import Stored
from ml_platform.records.registry import EvaluationRecord
from ml_platform.specs.catalog import Catalog
from ml_platform.specs.models import ModelSpec
from ml_platform.storage.artifacts import ArtifactStore
from ml_platform.storage.resources import Warehouse


def check_descriptions(model: ModelSpec) -> dict[str, str]:
    """What each gate check requires, with the spec's values, as the UI shows it."""
    gate, currency = model.gate, model.money.currency
    return {
        "money_floor": f"Money on the test window is at least {gate.min_money:,.0f} {currency} (gate.min_money).",
        "roc_auc_floor": f"ROC AUC on the test window is at least {gate.min_roc_auc} (gate.min_roc_auc).",
        "beats_champion": (f"Beats the live champion in {currency} on this run's test window, the champion scored "
                           f"on the same rows with its own spec and threshold, by at least "
                           f"{gate.min_gain_over_champion:,.0f} {currency} (gate.min_gain_over_champion), with the "
                           f"paired-bootstrap 95% interval of the gain (resampling days) above zero. Passes when "
                           f"nothing is deployed." if gate.min_gain_over_champion is not None else
                           "Waived by the spec (gate.min_gain_over_champion is null): the comparison with the live "
                           "champion is reported but does not block."),
        "no_leakage": f"No feature alone predicts the label on the training rows (a fixed-seed sample of "
                      f"{LEAKAGE_ROWS:,} of them when there are more) with ROC AUC of {gate.max_feature_roc_auc} "
                      f"or more in either direction (gate.max_feature_roc_auc).",
        "predictions_sane": "Predictions are finite, within [0, 1] and not constant.",
    }


MONEY_DETAILS = ("money", "floor", "margin", "challenger_money", "champion_money", "gain")  # in the currency


def _detail_text(name: str, value, currency: str | None) -> str | dg.MetadataValue:
    """A check's measured detail as text a person reads (a detail is not a series worth a chart)."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if currency and name in MONEY_DETAILS and isinstance(value, (int, float)):
        return readable_money(value, currency)
    if currency and name == "gain_interval_95" and isinstance(value, list):
        return money_interval(tuple(value), currency)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return "n/a" if value != value else f"{value:.4f}"
    if isinstance(value, str):
        return value
    return dg.MetadataValue.json(value)


def check_metadata(check: GateCheck) -> dict:
    """A check's reason and its measured details, as text the UI lists."""
    details = json.loads(check.details.model_dump_json())
    currency = details.get("currency") if isinstance(details.get("currency"), str) else None
    if isinstance(check.details, MoneyFloorDetails):
        currency = check.details.currency
    return {"why": check.why, **{name: _detail_text(name, value, currency) for name, value in details.items()}}


def check_results(gate: Gate) -> list[dg.AssetCheckResult]:
    """One result per gate check, in CHECK_ORDER; EvaluationError when the stored gate lacks a check."""
    if gate.missing():
        raise EvaluationError(f"the stored gate lacks the check(s) {', '.join(gate.missing())}")
    return [dg.AssetCheckResult(check_name=name, passed=check.passed, severity=dg.AssetCheckSeverity.ERROR,
                                description=check.why, metadata=check_metadata(check))
            for name, check in gate.checks()]


def evaluation_metadata(artifacts: ArtifactStore, stored: Stored[EvaluationRecord],
                        champion: EvaluationSummary | None = None) -> dict:
    """The evaluation's materialization metadata: the headline first (shown inline), the full report, the metrics
    worth a chart across training runs (money, ROC AUC, log loss), the gate and the files; nothing else numeric."""
    summary = stored.record.summary
    test, currency, files = summary.test, summary.currency, summary.artifacts
    comparison = summary.gate.beats_champion.details
    metadata = {
        "headline": dg.MetadataValue.md(headline_markdown(summary)),
        "report": dg.MetadataValue.md(report_with_inline_plots(artifacts, summary, champion)),
        f"money_{currency}": round(test.money),
        "money_interval_95": money_interval(test.money_interval_95, currency),
        "threshold": f"{summary.threshold:.3f} (chosen on the validation window)",
        "flagged": f"{test.flagged:,} of {test.rows:,} test rows",
        "roc_auc": round(test.roc_auc, 4),
        "log_loss": round(test.log_loss, 4),
        "precision": "n/a (nothing flagged)" if test.precision != test.precision else f"{test.precision:.1%}",
        "recall": "n/a (no positives)" if test.recall != test.recall else f"{test.recall:.1%}",
        "gate": "passed" if summary.gate_passed else
                f"failed: {', '.join(name for name, _ in summary.gate.failures()) or 'checks missing'}",
        "champion_compared": comparison.champion or "none (nothing deployed)",
        "model_version": summary.model_version,
        "reused": "evaluation already stored for this run" if stored.reused else "no",
        "report_file": dg.MetadataValue.path(artifacts.location_of(files.report_markdown.path)),
        "summary_file": dg.MetadataValue.path(artifacts.location_of(stored.record.report_path)),
        "predictions_file": dg.MetadataValue.path(artifacts.location_of(files.predictions.path)),
    }
    if comparison.gain is not None:
        metadata[f"gain_over_champion_{currency}"] = round(comparison.gain)
    return metadata


def build_evaluation_asset(catalog: Catalog, model: ModelSpec) -> dg.AssetsDefinition:
    """The asset that evaluates each training run in money, with the gate as blocking checks."""
    if judged_by_decision(model):
        return build_task_evaluation_asset(catalog, model)
    key = names.stage_key("evaluation", model.name)
    gate = model.gate
    descriptions = check_descriptions(model)

    @dg.asset(
        key=key,
        group_name=names.model_group(model.name),
        description=f"Evaluation of {model.name} in {model.money.currency} on the test window of its run "
                    f"({model.split.test.start} to {model.split.test.end} for the spec's own split; a retraining "
                    f"run's test window ends on its cut-off); the decision threshold is chosen on "
                    f"the validation window. Keeps the per-row predictions, a report with plots, and the gate: "
                    f"money ≥ {gate.min_money:,.0f} {model.money.currency}, ROC AUC ≥ {gate.min_roc_auc}, "
                    + (f"beats the champion by ≥ {gate.min_gain_over_champion:,.0f} {model.money.currency}, "
                       if gate.min_gain_over_champion is not None else "")
                    + "no leaking feature, sane predictions.",
        owners=[model.owner],
        kinds={"json", "parquet"},
        partitions_def=training_runs(model),
        deps=[names.stage_key("model", model.name), names.stage_key("snapshot", model.name)],
        code_version=catalog.spec_hash(model),
        check_specs=[dg.AssetCheckSpec(name, asset=key, blocking=True, description=descriptions[name])
                     for name in CHECK_ORDER],
    )
    def evaluation(context: dg.AssetExecutionContext, warehouse: Warehouse,
                   artifacts: ArtifactStore) -> dg.MaterializeResult:
        with as_dagster_failure(), warehouse.get_connection() as connection:
            stored = evaluation_of_run(connection, artifacts, catalog, model, context.partition_key,
                                       say=context.log.info)
            checks = check_results(stored.record.summary.gate)
            champion = compared_champion(connection, stored.record.summary)
        return dg.MaterializeResult(metadata=evaluation_metadata(artifacts, stored, champion), check_results=checks)

    return evaluation
