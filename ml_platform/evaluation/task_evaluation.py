"""Measure a regression or multiclass model on its validation and test rows: the decision chosen on validation,
money with its bootstrap interval, the money curve, the task's metrics and its gate metric bounds on test."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd

from ml_platform import names
from ml_platform.errors import PlatformError

from ml_platform.evaluation.decisions import (
    ChosenDecision, Decided, key_curve, offsets_money, top_key, apply, choose, outcome_values)
from ml_platform.evaluation.leakage_store import snapshot_leakage
from ml_platform.evaluation.money import RESAMPLES, bootstrap_totals, money_curve, percentile_interval
from ml_platform.evaluation.side_by_side import task_side_by_side
from ml_platform.evaluation.slices import slice_column_of
from ml_platform.evaluation.task_metrics import confusion, metric_bound_problems, residuals_by_slice, task_metrics
from ml_platform.evaluation.task_report import draw_task_plots, render_task_report
from ml_platform.partitions import run_split
from ml_platform.evaluation.predictions_file import write_predictions
from ml_platform.evaluation.task_comparison import task_beats_champion
from ml_platform.evaluation.task_importance import NOT_MEASURED, task_importance
from ml_platform.records.gate import ChampionComparison, GateCheck, LeakageDetails, MoneyFloorDetails, SanityDetails
from ml_platform.records.tasks import (
    MetricBoundsDetails, MetricCheck, SliceTaskMoney, TaskEvaluationRecord, TaskGate, TaskMeasurement)
from ml_platform.snapshots.build import read_snapshot
from ml_platform.specs.catalog import Catalog
from ml_platform.specs.models import MetricBound, ModelSpec, TimeSplit
from ml_platform.storage import registry
from ml_platform.storage.artifacts import ArtifactStore
from ml_platform.training.fit import load_model


class TaskEvaluationError(PlatformError, RuntimeError):
    """The run has no model or snapshot to evaluate, or a window without rows."""


def test_curve(model: ModelSpec, chosen: ChosenDecision, rows: pd.DataFrame, predictions: np.ndarray) -> np.ndarray:
    """Money on these rows at every candidate the decision was chosen from (for the plot beside validation's)."""
    candidates = np.asarray(chosen.candidates, dtype="float64")
    if chosen.kind == "quantity":
        return offsets_money(model, rows, predictions, list(chosen.candidates))
    if chosen.kind == "threshold":
        return money_curve(predictions, outcome_values(model, rows, predictions), candidates)
    if chosen.kind == "top":
        _, key, _ = top_key(model, rows, predictions)
        return key_curve(key, outcome_values(model, rows, predictions), candidates)
    return np.array([])


def prediction_problems(task: str, predictions: np.ndarray) -> tuple[str, ...]:
    """What is wrong with a task's predictions: not finite, constant, or (multiclass) not probabilities."""
    problems = []
    if not np.isfinite(predictions).all():
        problems.append(f"{int((~np.isfinite(predictions)).sum())} prediction(s) are not finite")
    if task == "multiclass" and len(predictions):
        if not np.allclose(predictions.sum(axis=1), 1.0, atol=1e-6) or (predictions < 0).any():
            problems.append("class probabilities do not sum to 1 per row")
        if len(np.unique(predictions.argmax(axis=1))) == 1:
            problems.append("every row gets the same most likely class")
    elif len(predictions) and np.ptp(predictions[np.isfinite(predictions)]) == 0:
        problems.append("every prediction is the same number")
    return tuple(problems)


def first_slice(model: ModelSpec, rows: pd.DataFrame) -> np.ndarray | None:
    """The values of the spec's first slice on these rows (entity column or feature), or None without slices."""
    slices = model.slice_names()
    return slice_column_of(model, slices[0], rows).to_numpy() if slices else None


def money_by_every_slice(model: ModelSpec, rows: pd.DataFrame, decided: Decided) -> tuple[SliceTaskMoney, ...]:
    """Test money under the decision for each value of every slice the spec declares, slice by slice in the
    spec's order."""
    return tuple(row for name in model.slice_names()
                 for row in _slices(slice_column_of(model, name, rows).to_numpy(), decided, name))


def _slices(values: np.ndarray | None, decided: Decided, name: str | None = None) -> tuple[SliceTaskMoney, ...]:
    if values is None:
        return ()
    table = pd.DataFrame({"slice": pd.Series(values, dtype=object).fillna("(missing)").astype(str).to_numpy(),
                          "money": decided.per_row, "perfect": decided.perfect})
    grouped = table.groupby("slice").agg(rows=("money", "size"), money=("money", "sum"),
                                         perfect=("perfect", "sum")).reset_index()
    grouped = grouped.sort_values(["money", "slice"], ascending=[False, True])
    return tuple(SliceTaskMoney(slice=row.slice, slice_name=name, rows=int(row.rows), money=float(row.money),
                                perfect=float(row.perfect)) for row in grouped.itertuples())


def metric_bounds(model: ModelSpec) -> dict[str, MetricBound]:
    """The bounds the metric_bounds check applies: gate.metrics, and for a binary model gate.min_roc_auc as the
    least ROC AUC (unless gate.metrics bounds roc_auc itself), as its binary threshold gate would."""
    bounds = dict(model.gate.metrics or {})
    if model.label.task == "binary_classification" and "roc_auc" not in bounds:
        bounds["roc_auc"] = MetricBound(min=model.gate.min_roc_auc)
    return bounds


def measure_task(model: ModelSpec, validation: pd.DataFrame, validation_predictions: np.ndarray,
                 test: pd.DataFrame, test_predictions: np.ndarray, split: TimeSplit | None = None) -> TaskMeasurement:
    """Choose the decision on validation and report every figure on test (see the module docstring)."""
    return measure_and_decide(model, validation, validation_predictions, test, test_predictions, split)[0]


def measure_and_decide(model: ModelSpec, validation: pd.DataFrame, validation_predictions: np.ndarray,
                       test: pd.DataFrame, test_predictions: np.ndarray, split: TimeSplit | None = None
                       ) -> tuple[TaskMeasurement, Decided]:
    """The measurement, and the decision applied to each test row (what the champion comparison and the stored
    predictions need)."""
    split = split or model.split
    chosen = choose(model, validation, validation_predictions)
    decided = apply(model, chosen, test, test_predictions)
    days = test["partition_date"].to_numpy()
    low, high = percentile_interval(bootstrap_totals(decided.per_row, model.algorithm.seed, groups=days))
    test_metrics = task_metrics(model.label, test["label"].to_numpy(), test_predictions)
    checks = metric_bound_problems(metric_bounds(model), test_metrics)
    slice_values = first_slice(model, test)  # residuals are broken down by the first of the spec's slices
    return TaskMeasurement(
        model=model.name, task=model.label.task, objective=model.label.objective_kind(),
        currency=model.money.currency, decision=chosen.kind, decision_parameter_name=chosen.parameter_name,
        decision_parameter=chosen.parameter, chosen_on="validation",
        decision_rule=model.money.decision.rule if chosen.kind == "class" else None,
        validation_window=(str(split.validation.start), str(split.validation.end)),
        test_window=(str(split.test.start), str(split.test.end)),
        validation_metrics=task_metrics(model.label, validation["label"].to_numpy(), validation_predictions),
        test_metrics=test_metrics, validation_money=chosen.validation_money, test_money=decided.money(),
        test_money_interval_95=(low, high),
        money_interval_method=f"percentile bootstrap over the {len(np.unique(days))} test days ({RESAMPLES} "
                              f"resamples of whole days)",
        test_money_perfect=float(decided.perfect.sum()),
        curve_candidates=chosen.candidates, curve_validation=chosen.validation_curve,
        curve_test=tuple(float(value) for value in test_curve(model, chosen, test, test_predictions)),
        money_by_slice=money_by_every_slice(model, test, decided),
        residuals_by_slice=residuals_by_slice(slice_values, test["label"].to_numpy(), test_predictions)
        if model.label.task == "regression" and slice_values is not None else (),
        confusion=confusion(test["label"].to_numpy(), test_predictions, list(model.label.classes))
        if model.label.task == "multiclass" else None,
        metric_checks={name: MetricCheck(passed=passed, why=why, value=test_metrics[name])
                       for name, (passed, why) in checks.items()},
        sanity_problems=prediction_problems(model.label.task,
                                            np.concatenate([validation_predictions, test_predictions])),
    ), decided


@dataclass(frozen=True)
class TaskRunEvaluation:
    """A task run's stored evaluation: its registry record, measurement and plots (PNG bytes); `reused` when it
    was stored by an earlier materialization; the report's lines setting it beside the champion its gate compared
    with (none without one)."""

    record: TaskEvaluationRecord
    measurement: TaskMeasurement
    plots: dict[str, bytes]
    reused: bool
    beside_champion: tuple[str, ...] = ()


def _prediction_rows(model: ModelSpec, keys: list[str], test: pd.DataFrame, predictions: np.ndarray,
                     decided: Decided) -> pd.DataFrame:
    """The stored test rows: keys, day, label, the prediction(s), the decision and its money."""
    rows = test[keys + ["partition_date"]].copy()
    rows["label"] = test["label"].to_numpy()
    if model.label.task == "multiclass":  # `prediction` is the decided class's probability, as scoring stores it
        classes = list(model.label.classes)
        rows[names.PREDICTION_COLUMN] = predictions[np.arange(len(test)),
                                                    [classes.index(value) for value in decided.decisions]]
        for position, name in enumerate(classes):
            rows[names.probability_column(name)] = predictions[:, position]
    else:
        rows[names.PREDICTION_COLUMN] = np.asarray(predictions, dtype="float64")
    rows[names.DECISION_COLUMN] = decided.decisions
    rows["money"] = decided.per_row
    return rows


def _stored_run(connection: duckdb.DuckDBPyConnection, artifacts: ArtifactStore,
                record: TaskEvaluationRecord) -> TaskRunEvaluation:
    """A stored task evaluation read back: its measurement and plots from their files, hashes verified."""
    measurement = TaskMeasurement.model_validate_json(
        artifacts.verify(record.measurement_path, record.measurement_sha256).read_text(encoding="utf-8"))
    plots = {name: artifacts.verify(path, sha256).read_bytes() for name, (path, sha256) in record.plots.items()}
    beside = tuple(task_side_by_side(connection, artifacts, measurement, record.model_version,
                                     record.gate.beats_champion))
    return TaskRunEvaluation(record, measurement, plots, reused=True, beside_champion=beside)


def evaluate_task_run(connection: duckdb.DuckDBPyConnection, artifacts: ArtifactStore, catalog: Catalog,
                      model: ModelSpec, training_run: str,
                      say: Callable[[str], None] | None = None) -> TaskRunEvaluation:
    """Measure a regression or multiclass training run on its snapshot, compare it with the live champion in money
    (evaluation.task_comparison), run the leakage guard of its task, store the measurement, report, plots and test
    predictions as content-addressed files and register it in registry.task_evaluations, once: a run already
    evaluated is read back."""
    existing = registry.task_evaluations.get(connection, model.name, training_run)
    if existing is not None:
        return _stored_run(connection, artifacts, existing)
    trained = registry.models.get(connection, model.name, training_run)
    snapshot = registry.snapshots.get(connection, model.name, training_run)
    if trained is None or snapshot is None:
        raise TaskEvaluationError(f"training run '{training_run}' of '{model.name}' has no trained model yet")
    predictor = load_model(artifacts, trained)
    frame = read_snapshot(connection, artifacts, snapshot, splits=("validation", "test"))
    split = {name: frame[frame["split"] == name].reset_index(drop=True) for name in ("validation", "test")}
    if split["test"].empty or split["validation"].empty:
        raise TaskEvaluationError(f"the validation or test window of '{model.name}' has no rows")
    test_predictions = predictor.predict(split["test"])
    measurement, decided = measure_and_decide(model, split["validation"], predictor.predict(split["validation"]),
                                              split["test"], test_predictions, run_split(model, training_run))
    importance = task_importance(connection, artifacts, snapshot, model, predictor, split["test"])
    measurement = measurement.model_copy(update={"importance": importance,
                                                 "importance_note": None if importance else NOT_MEASURED,
                                                 "search": trained.card.search})
    plots = draw_task_plots(measurement, split["test"]["label"].to_numpy(), test_predictions)
    folder = f"evaluations/{model.name}"
    written = artifacts.write(folder, ".json", lambda path: path.write_text(measurement.model_dump_json(),
                                                                             encoding="utf-8"))
    stored_plots = {name: artifacts.write(f"{folder}/plots", ".png", lambda path, data=data: path.write_bytes(data))
                    for name, data in plots.items()}
    keys = list(catalog.entity_rows(model.entity).keys)
    rows = _prediction_rows(model, keys, split["test"], test_predictions, decided)
    predictions = write_predictions(connection, artifacts, model.name, rows)
    # regression: concordance on training and validation rows, with the out-of-time warning; multiclass:
    # one-vs-rest ROC AUC on the training rows (leakage_store), measured once per snapshot and question
    leakage = snapshot_leakage(connection, artifacts, catalog, model, snapshot, say).check
    comparison = task_beats_champion(connection, artifacts, catalog, model, trained.model_version, split["test"],
                                     decided.per_row, seed=model.algorithm.seed)
    gate = task_gate(model, measurement, comparison, leakage)
    beside = tuple(task_side_by_side(connection, artifacts, measurement, trained.model_version, comparison))
    report = artifacts.write(folder, ".md", lambda path: path.write_text(render_task_report(measurement, beside),
                                                                          encoding="utf-8"))
    record = TaskEvaluationRecord(
        model=model.name, training_run=training_run, model_version=trained.model_version, task=model.label.task,
        decision=measurement.decision, decision_parameter_name=measurement.decision_parameter_name,
        decision_parameter=measurement.decision_parameter, decision_rule=measurement.decision_rule,
        measurement_path=written.path, measurement_sha256=written.sha256, report_path=report.path,
        report_sha256=report.sha256, plots={name: (plot.path, plot.sha256) for name, plot in stored_plots.items()},
        predictions_path=predictions.path, predictions_sha256=predictions.sha256,
        test_money=measurement.test_money, test_money_interval_95=measurement.test_money_interval_95,
        test_window=measurement.test_window, test_rows=int(len(split["test"])), currency=measurement.currency, gate=gate,
        gate_passed=gate.passed(), created_at=registry.now())
    registry.task_evaluations.add(connection, record)
    return TaskRunEvaluation(record, measurement, plots, reused=False, beside_champion=beside)


def task_gate(model: ModelSpec, measurement: TaskMeasurement, comparison: GateCheck[ChampionComparison],
              leakage: GateCheck[LeakageDetails]) -> TaskGate:
    """The five checks of a task evaluation (TASK_GATE_ORDER) with the figures they were decided on."""
    checks = task_checks(model, measurement)
    return TaskGate(
        money_floor=GateCheck[MoneyFloorDetails](
            passed=bool(checks["money_floor"][0]), why=checks["money_floor"][1],
            details=MoneyFloorDetails(money=measurement.test_money, floor=model.gate.min_money,
                                      currency=measurement.currency)),
        metric_bounds=GateCheck[MetricBoundsDetails](
            passed=bool(checks["metric_bounds"][0]), why=checks["metric_bounds"][1],
            details=MetricBoundsDetails(bounds=measurement.metric_checks)),
        beats_champion=comparison,
        no_leakage=leakage,
        predictions_sane=GateCheck[SanityDetails](
            passed=bool(checks["predictions_sane"][0]), why=checks["predictions_sane"][1],
            details=SanityDetails(problems=measurement.sanity_problems)))


def task_checks(model: ModelSpec, measurement: TaskMeasurement) -> dict[str, tuple[bool, str]]:
    """The blocking checks of a task evaluation (TASK_CHECKS): the money floor, the metric bounds, sane predictions."""
    floor, money, currency = model.gate.min_money, measurement.test_money, measurement.currency
    bounds = measurement.metric_checks
    failed = [name for name, check in bounds.items() if not check.passed]
    return {
        "money_floor": (money >= floor, f"test money {money:,.0f} {currency} {'≥' if money >= floor else '<'} "
                                        f"floor {floor:,.0f} {currency}"),
        "metric_bounds": (not failed, "; ".join(check.why for check in bounds.values()) or
                          "no bounds in gate.metrics"),
        "predictions_sane": (not measurement.sanity_problems, "; ".join(measurement.sanity_problems) or
                             "finite and not constant"),
    }
