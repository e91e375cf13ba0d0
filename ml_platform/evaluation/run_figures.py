"""The figures two runs are compared by, whatever their task: test money with its interval, the task's metrics,
the decision, money by slice and the global feature importance, read from a binary evaluation summary or a
regression/multiclass measurement, so that `ml-platform compare`, the evaluation report and the deployment page
set any two runs side by side through one code path."""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from ml_platform.records.evaluation import EvaluationSummary, GlobalImportance
from ml_platform.records.tasks import TaskEvaluationRecord, TaskMeasurement
from ml_platform.storage import registry
from ml_platform.storage.artifacts import ArtifactStore

# the binary metrics shown, in order, with their names in the summary's test window
BINARY_METRICS = (("ROC AUC", "roc_auc"), ("log loss", "log_loss"), ("Brier score", "brier"),
                  ("precision", "precision"), ("recall", "recall"), ("positive rate", "positive_rate"))
# the task metrics' display names (task_metrics.py computes them); a metric not listed shows by its own name
TASK_METRIC_NAMES = {"rmse": "RMSE", "mae": "MAE", "wape": "WAPE", "pinball": "pinball loss", "bias": "bias",
                     "r2": "R²", "log_loss": "log loss", "accuracy": "accuracy", "macro_f1": "macro F1",
                     "roc_auc": "ROC AUC", "brier": "Brier score"}
# a decision's parameter: its name in the comparison and its value's format
PARAMETER_TEXT = {"threshold": ("threshold", "{:.4f}"), "rows_per_day": ("rows a day", "top {:.0f}"),
                  "share_per_day": ("share of each day's rows", "top {:.1%}"), "offset": ("offset", "{:+g}")}
RULE_TEXT = {"most_money": "the class of highest expected money", "most_likely": "the most likely class"}
SLICES_SHOWN = 8


@dataclass(frozen=True)
class RunFigures:
    """One run's comparable figures on its own test window, valued with its own spec."""

    model_version: str
    task: str  # binary_classification, regression or multiclass
    currency: str
    test_money: float
    test_interval: tuple[float, float]  # 95%
    test_window: tuple[str, str]
    metrics: tuple[tuple[str, float], ...]  # (display name, test value), in the task's order
    decision: tuple[str, str]  # (what was chosen on validation, its value): ("threshold", "0.3120")
    validation_money: float
    decided_on_test: str | None  # binary: "123 of 4,567" rows flagged
    slices: dict[str, dict[str, float]]  # slice name ("" when unnamed) -> slice value -> test money
    importance: GlobalImportance | None
    importance_note: str | None  # why importance was not measured, when the run says


def summary_figures(summary: EvaluationSummary) -> RunFigures:
    """A binary evaluation's figures."""
    test = summary.test
    return RunFigures(
        model_version=summary.model_version, task="binary_classification", currency=summary.currency,
        test_money=test.money, test_interval=tuple(test.money_interval_95), test_window=tuple(test.window),
        metrics=tuple((name, getattr(test, field)) for name, field in BINARY_METRICS),
        decision=decision_words("threshold", "threshold", summary.threshold, None), validation_money=summary.validation.money,
        decided_on_test=f"{test.flagged:,} of {test.rows:,}",
        slices={table.name: {str(row.slice): row.money for row in table.rows}
                for table in summary.slice_tables() if table.binning == "values"},
        importance=summary.importance, importance_note=None)


def decision_words(decision: str, parameter_name: str | None, parameter: float | None,
                   rule: str | None) -> tuple[str, str]:
    """(what, value) of a decision: its parameter chosen on validation, or a class decision's rule."""
    if parameter_name is None or parameter is None:
        return "class rule" if decision == "class" else "decision", RULE_TEXT.get(rule or "", decision)
    name, value = PARAMETER_TEXT[parameter_name]
    return name, value.format(parameter)


def decision_rows(one: RunFigures, two: RunFigures) -> list[tuple[str, str, str]]:
    """(row name, first, second) of the two decisions: the parameter by name when both decide by the same one."""
    if one.decision[0] == two.decision[0]:
        return [(one.decision[0], one.decision[1], two.decision[1])]
    return [("decision", " ".join(one.decision), " ".join(two.decision))]


def metric_rows(one: RunFigures, two: RunFigures) -> list[tuple[str, float | None, float | None]]:
    """(metric, first, second) over both runs' metrics, in the first's order then the second's extra ones; None
    where a run does not measure it (two tasks compared)."""
    first, second = dict(one.metrics), dict(two.metrics)
    ordered = list(dict.fromkeys([*first, *second]))
    return [(name, first.get(name), second.get(name)) for name in ordered]


def slice_shifts(one: RunFigures, two: RunFigures,
                 shown: int = SLICES_SHOWN) -> list[tuple[str, int, list[tuple[str, float, float]]]]:
    """Per slice both runs break money down by: (slice name, shared slices, the `shown` shared slice values
    whose money moved most as (value, first, second)), in the second run's order of slices."""
    shifts = []
    for name, second in two.slices.items():
        first = one.slices.get(name)
        if first is None:
            continue
        shared = sorted(set(first) & set(second), key=lambda value: (-abs(second[value] - first[value]), value))
        shifts.append((name, len(shared), [(value, first[value], second[value]) for value in shared[:shown]]))
    return shifts


def measurement_figures(measurement: TaskMeasurement, model_version: str) -> RunFigures:
    """A regression or multiclass measurement's figures."""
    slices: dict[str, dict[str, float]] = {}
    for row in measurement.money_by_slice:
        slices.setdefault(row.slice_name or "", {})[row.slice] = row.money
    return RunFigures(
        model_version=model_version, task=measurement.task, currency=measurement.currency,
        test_money=measurement.test_money, test_interval=tuple(measurement.test_money_interval_95),
        test_window=tuple(measurement.test_window),
        metrics=tuple((TASK_METRIC_NAMES.get(name, name), value) for name, value in measurement.test_metrics.items()),
        decision=decision_words(measurement.decision, measurement.decision_parameter_name,
                                measurement.decision_parameter, measurement.decision_rule),
        validation_money=measurement.validation_money, decided_on_test=None, slices=slices,
        importance=measurement.importance, importance_note=measurement.importance_note)


def stored_measurement(artifacts: ArtifactStore, record: TaskEvaluationRecord) -> TaskMeasurement:
    """A task evaluation's measurement read back from its file, its hash verified."""
    path = artifacts.verify(record.measurement_path, record.measurement_sha256)
    return TaskMeasurement.model_validate_json(path.read_text(encoding="utf-8"))


def stored_figures(connection: duckdb.DuckDBPyConnection, artifacts: ArtifactStore, model: str,
                   training_run: str) -> RunFigures | None:
    """The figures of a training run's stored evaluation, binary or task; None when it was not evaluated."""
    evaluation = registry.evaluations.get(connection, model, training_run)
    if evaluation is not None:
        return summary_figures(evaluation.summary)
    task = registry.task_evaluations.get(connection, model, training_run)
    if task is not None:
        return measurement_figures(stored_measurement(artifacts, task), task.model_version)
    return None
