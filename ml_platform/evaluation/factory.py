"""Build the `[model, "evaluation"]` asset and its blocking gate checks."""

import json

import dagster as dg

from ml_platform import names
from ml_platform.errors import as_dagster_failure
from ml_platform.evaluation.evaluate import EvaluationError
from ml_platform.evaluation.leakage import LEAKAGE_ROWS
from ml_platform.evaluation.plots import PLOTS
from ml_platform.evaluation.store import evaluation_of_run, report_with_inline_plots
from ml_platform.partitions import training_runs
from ml_platform.records.gate import CHECK_ORDER, Gate, GateCheck
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


def _check_metadata(check: GateCheck) -> dict:
    """A check's reason and its measured details, as metadata the UI lists."""
    metadata = {"why": check.why}
    for name, value in json.loads(check.details.model_dump_json()).items():
        if isinstance(value, bool) or value is None:
            metadata[name] = str(value)
        elif isinstance(value, (int, float, str)):
            metadata[name] = value
        else:
            metadata[name] = dg.MetadataValue.json(value)
    return metadata


def check_results(gate: Gate) -> list[dg.AssetCheckResult]:
    """One result per gate check, in CHECK_ORDER; EvaluationError when the stored gate lacks a check."""
    if gate.missing():
        raise EvaluationError(f"the stored gate lacks the check(s) {', '.join(gate.missing())}")
    return [dg.AssetCheckResult(check_name=name, passed=check.passed, severity=dg.AssetCheckSeverity.ERROR,
                                description=check.why, metadata=_check_metadata(check))
            for name, check in gate.checks()]


def evaluation_metadata(artifacts: ArtifactStore, stored: Stored[EvaluationRecord]) -> dict:
    """The evaluation's materialization metadata: the report, money and metrics, the gate and the files."""
    summary = stored.record.summary
    test, currency, files = summary.test, summary.currency, summary.artifacts
    comparison = summary.gate.beats_champion.details
    metadata = {
        "report": dg.MetadataValue.md(report_with_inline_plots(artifacts, summary)),
        "reused": "evaluation already stored for this run" if stored.reused else "no",
        "model_version": summary.model_version,
        f"money_{currency}": round(test.money, 2),
        f"money_low_{currency}": round(test.money_interval_95[0], 2),
        f"money_high_{currency}": round(test.money_interval_95[1], 2),
        "threshold": round(summary.threshold, 6),
        "roc_auc": round(test.roc_auc, 6),
        "log_loss": round(test.log_loss, 6),
        "precision": round(test.precision, 6) if test.precision == test.precision else 0.0,
        "recall": round(test.recall, 6) if test.recall == test.recall else 0.0,
        "gate_passed": summary.gate_passed,
        "failed_checks": ", ".join(name for name, _ in summary.gate.failures()) or "none",
        "champion_compared": comparison.champion or "none (nothing deployed)",
        "summary_file": dg.MetadataValue.path(str(artifacts.path_of(stored.record.report_path))),
        "report_file": dg.MetadataValue.path(str(artifacts.path_of(files.report_markdown.path))),
        "predictions_file": dg.MetadataValue.path(str(artifacts.path_of(files.predictions.path))),
        "predictions_rows": files.predictions.rows,
    }
    if comparison.gain is not None:
        metadata[f"gain_over_champion_{currency}"] = round(comparison.gain, 2)
    for name in (name for name in PLOTS if name in files.plots):
        metadata[f"plot_{name}"] = dg.MetadataValue.path(str(artifacts.path_of(files.plots[name].path)))
    return metadata


def build_evaluation_asset(catalog: Catalog, model: ModelSpec) -> dg.AssetsDefinition:
    """The asset that evaluates each training run in money, with the gate as blocking checks."""
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
            stored = evaluation_of_run(connection, artifacts, catalog, model, context.partition_key)
            checks = check_results(stored.record.summary.gate)
        return dg.MaterializeResult(metadata=evaluation_metadata(artifacts, stored), check_results=checks)

    return evaluation
