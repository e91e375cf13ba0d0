"""Records of the task metrics beyond binary classification: a multiclass confusion table, residuals by slice."""

from __future__ import annotations

from ml_platform.records.base import Record


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


# the blocking checks of a regression or multiclass evaluation, in the order they are shown
TASK_CHECKS = ("money_floor", "metric_bounds", "no_leakage", "predictions_sane")


class StoredTaskEvaluation(Record):
    """Where a task measurement's files are: its JSON, its report and its plots (content-addressed)."""

    measurement_path: str
    measurement_sha256: str
    report_path: str
    report_sha256: str
    plots: dict[str, str]  # plot name -> path
