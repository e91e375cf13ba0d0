"""Records of the task metrics beyond binary classification: a multiclass confusion table, residuals by slice."""

from __future__ import annotations

import datetime as dt
from typing import Any

from ml_platform.records.base import Record
from ml_platform.records.evaluation import GlobalImportance
from ml_platform.records.search import SearchRecord
from ml_platform.records.gate import (
    ChampionComparison, GateCheck, LeakageDetails, MoneyFloorDetails, SanityDetails)


class ClassConfusion(Record):
    """Rows per actual class (rows of `counts`) and most likely class (columns), in the spec's order of classes."""

    classes: tuple[str, ...]
    counts: tuple[tuple[int, ...], ...]


class SliceResiduals(Record):
    """A regression's errors within one slice (a value of the spec's slice column)."""

    slice: str
    rows: int
    mean_residual: float  # label minus prediction: positive when the model predicts too low
    mae: float


class SliceTaskMoney(Record):
    """The test money of one slice under the chosen decision, and of deciding knowing the labels."""

    slice: str
    # the spec's slice this value belongs to (an entity column or a feature); absent in measurements stored when
    # only the first slice was broken down
    slice_name: str | None = None
    rows: int
    money: float
    perfect: float


class MetricCheck(Record):
    """One bound of gate.metrics judged on the test window."""

    passed: bool
    why: str
    value: float


class TaskMeasurement(Record):
    """A regression or multiclass model measured like a binary one: the decision's parameter chosen on validation,
    every figure on test, in money and in the task's own metrics."""

    model: str
    task: str
    objective: str
    currency: str
    decision: str  # threshold, top, quantity, class
    decision_parameter_name: str | None = None  # threshold, rows_per_day, share_per_day, offset
    decision_parameter: float | None = None
    decision_rule: str | None = None  # class decisions: most_likely or most_money
    chosen_on: str  # "validation"
    validation_window: tuple[str, str]
    test_window: tuple[str, str]
    validation_metrics: dict[str, float]
    test_metrics: dict[str, float]
    validation_money: float
    test_money: float
    test_money_interval_95: tuple[float, float]
    money_interval_method: str
    test_money_perfect: float
    curve_candidates: tuple[float, ...]  # empty for a class decision (no free parameter)
    curve_validation: tuple[float, ...]
    curve_test: tuple[float, ...]
    money_by_slice: tuple[SliceTaskMoney, ...]
    residuals_by_slice: tuple[SliceResiduals, ...]  # regression, with a slice column
    confusion: ClassConfusion | None = None  # multiclass
    metric_checks: dict[str, MetricCheck]
    sanity_problems: tuple[str, ...]
    # mean |contribution| per feature on the test rows (evaluation.task_importance); None when not measured
    importance: GlobalImportance | None = None
    importance_note: str | None = None  # why importance was not measured
    search: SearchRecord | None = None  # the model card's hyper-parameter search, when the spec declared one

    def task_text(self) -> str:
        """The task, with its objective when that says more: "regression (huber)", "multiclass"."""
        return self.task if self.objective == self.task else f"{self.task} ({self.objective})"


# the blocking checks of a regression or multiclass evaluation (its gate), in the order they are shown and verified
TASK_CHECKS = ("money_floor", "metric_bounds", "beats_champion", "no_leakage", "predictions_sane")


class MetricBoundsDetails(Record):
    """The metric_bounds check's figures: each bound of gate.metrics judged on the test window."""

    bounds: dict[str, MetricCheck]


class TaskGate(Record):
    """The five gate checks of a regression or multiclass evaluation by name (all required: task gates were
    stored with every check from the start). The same interface as records.gate.Gate, so promotion reads either."""

    money_floor: GateCheck[MoneyFloorDetails]
    metric_bounds: GateCheck[MetricBoundsDetails]
    beats_champion: GateCheck[ChampionComparison]
    no_leakage: GateCheck[LeakageDetails]
    predictions_sane: GateCheck[SanityDetails]

    def checks(self) -> tuple[tuple[str, GateCheck[Any]], ...]:
        """(name, check) of every check, in TASK_CHECKS."""
        return tuple((name, getattr(self, name)) for name in TASK_CHECKS)

    def failures(self) -> tuple[tuple[str, GateCheck[Any]], ...]:
        """(name, check) of every check that failed, in TASK_CHECKS."""
        return tuple((name, check) for name, check in self.checks() if not check.passed)

    def missing(self) -> tuple[str, ...]:
        """Always empty: every check is required (the same call as Gate.missing)."""
        return ()

    def passed(self) -> bool:
        """True when all five checks passed."""
        return not self.failures()


class TaskEvaluationRecord(Record):
    """registry.task_evaluations: a regression or multiclass training run's stored evaluation, its decision (the
    parameter chosen on validation), its files and its gate. Binary evaluations stay in registry.evaluations."""

    model: str
    training_run: str
    model_version: str
    task: str  # regression or multiclass
    decision: str  # threshold, top, quantity, class
    decision_parameter_name: str | None = None
    decision_parameter: float | None = None
    decision_rule: str | None = None  # class decisions: most_likely or most_money
    measurement_path: str  # the TaskMeasurement as JSON
    measurement_sha256: str
    report_path: str
    report_sha256: str
    plots: dict[str, tuple[str, str]]  # plot name -> (path, sha256)
    predictions_path: str  # the test rows' keys, day, label, prediction(s), decision and money (Parquet)
    predictions_sha256: str
    test_money: float
    test_money_interval_95: tuple[float, float]
    test_window: tuple[str, str]
    test_rows: int
    currency: str
    gate: TaskGate
    gate_passed: bool
    created_at: dt.datetime  # naive UTC
