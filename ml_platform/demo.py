"""The demo's closing summary: what `ml-platform demo` prints once the chain has run."""

from __future__ import annotations

from ml_platform.chain.model_chain import ChainResult
from ml_platform.evaluation.evaluate import interval_caveat
from ml_platform.evaluation.plots import plot_names
from ml_platform.evaluation.task_report import decision_text
from ml_platform.monitoring.drift import PSI_ALARM
from ml_platform.names import latest_view_name, monitoring_table_name, table_label
from ml_platform.project import Project
from ml_platform.records.tasks import TaskEvaluationRecord, TaskMeasurement
from ml_platform.storage.delta_tables import PREDICTIONS, delta_store_from_environment


def task_lines(project: Project, record: TaskEvaluationRecord, measurement: TaskMeasurement,
               entity: str) -> list[str]:
    """The summary of a regression or multiclass evaluation: money, decision, metrics and gate."""
    low, high = record.test_money_interval_95
    currency = record.currency
    metrics = ", ".join(f"{name} {value:.4g}" for name, value in measurement.test_metrics.items())
    lines = [
        f"Money on the test window {record.test_window[0]} to {record.test_window[1]}: {record.test_money:,.0f} "
        f"{currency} (95% interval {low:,.0f} to {high:,.0f}; deciding knowing the label "
        f"{measurement.test_money_perfect:,.0f}) over {record.test_rows:,} test rows of '{entity}'",
        f"{measurement.task_text()}; decision: {decision_text(measurement)}, chosen on "
        f"validation; test {metrics}",
        "Gate: " + ", ".join(f"{name} {'passed' if check.passed else 'FAILED'}" for name, check in record.gate.checks()),
    ]
    lines += [f"  {name}: {check.why}" for name, check in record.gate.failures()]
    lines.append(f"Report: {project.storage.artifacts / record.report_path}")
    return lines


def summary_text(project: Project, result: ChainResult) -> str:
    """The closing summary printed by `ml-platform demo`."""
    lines = ["", f"== {result.model}: done in {result.seconds:.0f} s, {len(result.runs)} Dagster runs =="]
    evaluation = result.evaluation
    if evaluation:
        test = evaluation.test
        low, high = test.money_interval_95
        lines += [
            f"Money on the test window {test.window[0]} to {test.window[1]}: {test.money:,.0f} {evaluation.currency} "
            f"(95% interval {low:,.0f} to {high:,.0f}; doing nothing {test.money_do_nothing:,.0f}, "
            f"perfect {test.money_perfect:,.0f})",
            f"ROC AUC {test.roc_auc:.3f}; threshold {evaluation.threshold:.3f} chosen on validation; "
            f"flags {test.flagged:,} of {test.rows:,} test rows of '{result.entity}'",
            "Gate: " + ", ".join(f"{name} {'passed' if check.passed else 'FAILED'}"
                                 for name, check in evaluation.gate.checks()),
        ]
        lines += [f"  {name}: {check.why}" for name, check in evaluation.gate.failures()]
        floor = evaluation.gate.money_floor
        caveat = interval_caveat(test.money_interval_95, bool(floor and floor.passed), evaluation.currency)
        if caveat:
            lines.append(f"  money_floor {caveat.removeprefix('; ')}")
        files = evaluation.artifacts
        if files is not None and files.report_markdown is not None:
            lines.append(f"Report: {project.storage.artifacts / files.report_markdown.path}")
        lines += [f"  plot {name}: {project.storage.artifacts / files.plots[name].path}"
                  for name in plot_names(evaluation) if files is not None and name in files.plots]
    if result.task_evaluation is not None:
        lines += task_lines(project, result.task_evaluation, result.task_measurement, result.entity)
    if result.champion:
        lines.append(f"Deployed model: {result.champion.model_version} "
                     f"(promotion #{result.champion.promotion_id}, training run {result.champion.training_run})")
    else:
        lines.append("Deployed model: none (the gate did not pass)")
    latest = table_label("predictions", latest_view_name(result.model))
    outcomes = table_label("monitoring", monitoring_table_name(result.model, "outcomes"))
    drift = table_label("monitoring", monitoring_table_name(result.model, "drift"))
    store = delta_store_from_environment()  # the cluster configuration: the rows are in the Delta store
    where = (f"(the Delta table {store.uri(PREDICTIONS.path(result.model))})" if store is not None
             else f"of {project.storage.warehouse}")
    if result.scored_rows:
        lines.append(f"Predictions: {result.scored_rows:,} rows for {result.score_window[0]} to "
                     f"{result.score_window[1]} in table {latest} {where}")
    if result.degraded:
        lines.append(f"DEGRADED: {len(result.degraded)} scored day/feature(s) with a feature missing far more than in "
                     f"training (scored, but not as evaluated; check feature_missing):")
        lines += [f"  {text}" for text in result.degraded]
    monitored = result.monitoring
    if monitored and monitored.days_labelled:
        lines.append(f"Realized on those days, once their labels were known: {monitored.realized_money:,.0f} "
                     f"{monitored.currency} against the {monitored.promised_money:,.0f} the evaluation "
                     f"promised for {monitored.days_labelled} days (table {outcomes})")
        lines += [f"  verdict ({verdict_line.model_version}): {verdict_line.text()}"
                  for verdict_line in monitored.verdicts]
    if monitored and monitored.days_measured:
        lines.append(f"Prediction drift (the score's PSI pooled over the 7 days ending on each day, against the "
                     f"test window's scores): above {PSI_ALARM} on {monitored.days_prediction_drift} of "
                     f"{monitored.days_measured} scored days (table {drift})")
        if monitored.drifting_features:
            shown = ", ".join(monitored.drifting_features[:5])
            more = len(monitored.drifting_features) - 5
            lines.append(f"  features above {PSI_ALARM} on the last day (pooled; per day, or per day and group, for "
                         f"features constant within a day): {shown}" + (f" and {more} more" if more > 0 else ""))
    lines += [
        f"Open the UI: ml-platform ui   (or: DAGSTER_HOME={result.dagster_home} dagster dev -w workspace.yaml)",
        f"  then http://127.0.0.1:3000/locations/ml_platform/asset-groups/{result.model} shows every asset "
        f"this run materialized.",
    ]
    return "\n".join(lines)

