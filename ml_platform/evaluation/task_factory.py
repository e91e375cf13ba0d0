"""Build the `[model, "evaluation"]` asset of a regression or multiclass model, with its blocking checks.

It measures the run in money and in the task's metrics (evaluation.task_evaluation) and shows the report with its
plots inline; the run is registered in registry.task_evaluations with its five-check gate, which the deployment
verifies again before promoting it.
"""

import base64

import dagster as dg

from ml_platform import names
from ml_platform.errors import as_dagster_failure
from ml_platform.evaluation.report import money_interval
from ml_platform.evaluation.task_evaluation import evaluate_task_run
from ml_platform.evaluation.task_report import decision_text, render_task_report, task_headline_markdown
from ml_platform.partitions import training_runs
from ml_platform.records.tasks import TASK_CHECKS
from ml_platform.specs.catalog import Catalog
from ml_platform.specs.models import ModelSpec
from ml_platform.storage.artifacts import ArtifactStore
from ml_platform.storage.resources import Warehouse


def task_check_descriptions(model: ModelSpec) -> dict[str, str]:
    """What each check of a task evaluation requires, with the spec's values."""
    bounds = ", ".join(f"{name} {'≥ ' + format(bound.min, 'g') if bound.min is not None else ''}"
                       f"{' and ' if bound.min is not None and bound.max is not None else ''}"
                       f"{'≤ ' + format(bound.max, 'g') if bound.max is not None else ''}"
                       for name, bound in sorted((model.gate.metrics or {}).items()))
    return {
        "money_floor": f"Money on the test window is at least {model.gate.min_money:,.0f} {model.money.currency} "
                       f"(gate.min_money).",
        "metric_bounds": f"The test metrics lie within gate.metrics ({bounds or 'none given'}).",
        "beats_champion": f"Beats the live champion in {model.money.currency} on this run's test rows, the "
                          f"champion deciding with its own model and parameter, both valued with this spec's money: "
                          f"a gain of at least {model.gate.min_gain_over_champion} {model.money.currency} with its "
                          f"95% paired-bootstrap interval clear of 0 (gate.min_gain_over_champion; null waives it).",
        "no_leakage": f"No feature alone predicts the label on the training rows with a score of "
                      f"{model.gate.max_feature_roc_auc} or more (gate.max_feature_roc_auc; regression: concordance, "
                      f"multiclass: one-vs-rest ROC AUC).",
        "predictions_sane": "Predictions are finite and not constant (multiclass: probabilities summing to 1).",
    }


def build_task_evaluation_asset(catalog: Catalog, model: ModelSpec) -> dg.AssetsDefinition:
    """The evaluation asset of a regression or multiclass model."""
    key = names.stage_key("evaluation", model.name)
    descriptions = task_check_descriptions(model)

    @dg.asset(
        key=key,
        group_name=names.model_group(model.name),
        description=f"Evaluation of {model.name} ({model.label.task}) in {model.money.currency} on the test window "
                    f"of its run; the decision ({model.money.decision.kind}) is chosen on the validation window. "
                    f"Gate: money ≥ {model.gate.min_money:,.0f} {model.money.currency}, the task's metric bounds, "
                    f"beats the live champion in money, no leaking feature, sane predictions.",
        owners=[model.owner],
        kinds={"json"},
        partitions_def=training_runs(model),
        deps=[names.stage_key("model", model.name), names.stage_key("snapshot", model.name)],
        code_version=catalog.spec_hash(model),
        check_specs=[dg.AssetCheckSpec(name, asset=key, blocking=True, description=descriptions[name])
                     for name in TASK_CHECKS],
    )
    def evaluation(context: dg.AssetExecutionContext, warehouse: Warehouse,
                   artifacts: ArtifactStore) -> dg.MaterializeResult:
        with as_dagster_failure(), warehouse.get_connection() as connection:
            evaluated = evaluate_task_run(connection, artifacts, catalog, model, context.partition_key,
                                          say=context.log.info)
        measurement, record, plots = evaluated.measurement, evaluated.record, evaluated.plots
        checks = {name: (check.passed, check.why) for name, check in record.gate.checks()}
        images = "".join(f"\n\n![{name}](data:image/png;base64,{base64.b64encode(data).decode('ascii')})"
                         for name, data in plots.items())
        currency = measurement.currency
        metadata = {
            "headline": dg.MetadataValue.md(task_headline_markdown(measurement)),
            "report": dg.MetadataValue.md(render_task_report(measurement, evaluated.beside_champion) + images),
            f"money_{currency}": round(measurement.test_money),
            "money_interval_95": money_interval(measurement.test_money_interval_95, currency),
            "decision": f"{decision_text(measurement)} (chosen on the validation window)",
            **{name: round(value, 4) for name, value in measurement.test_metrics.items() if value == value},
            "gate": "passed" if record.gate_passed else
                    f"failed: {', '.join(name for name, _ in record.gate.failures())}",
            "evaluation": "stored earlier, reused" if evaluated.reused else "measured and stored",
            "report_file": dg.MetadataValue.path(artifacts.location_of(record.report_path)),
            "measurement_file": dg.MetadataValue.path(artifacts.location_of(record.measurement_path)),
        }
        return dg.MaterializeResult(metadata=metadata, check_results=[
            dg.AssetCheckResult(check_name=name, passed=bool(checks[name][0]), severity=dg.AssetCheckSeverity.ERROR,
                                description=checks[name][1]) for name in TASK_CHECKS])

    return evaluation
