"""The evaluation summary: metrics and money on validation and test, curves, slices, gate and stored files."""

from __future__ import annotations

from typing import Literal

from ml_platform.records.base import Record
from ml_platform.records.search import SearchRecord
from ml_platform.records.gate import FeatureAuc, Gate
from ml_platform.records.snapshots import LabelWindows


class WindowMetrics(Record):
    """Classification metrics and money of one window at the chosen threshold (validation)."""

    rows: int
    positive_rate: float  # NaN without rows
    roc_auc: float  # NaN with one class
    log_loss: float
    brier: float
    flagged: int
    precision: float  # NaN when nothing is flagged
    recall: float  # NaN without positives
    window: tuple[str, str]  # ISO first and last day
    money: float
    money_do_nothing: float
    money_perfect: float


class TestMetrics(WindowMetrics):
    """The test window's metrics and money, with bootstrap intervals of the money."""

    __test__ = False  # not a pytest test class, whatever its name

    money_interval_95: tuple[float, float]  # resampling whole test days
    money_interval_method: str
    money_interval_95_rows: tuple[float, float] | None = None  # resampling single rows, for comparison
    share_of_perfect: float  # NaN when perfect equals doing nothing


class MoneyCurve(Record):
    """Money at each threshold of a fixed grid, on validation and on test."""

    thresholds: tuple[float, ...]
    validation: tuple[float, ...]
    test: tuple[float, ...]


class SliceMoney(Record):
    """The test money of one slice: a value of what the spec slices by, or a bin of its values."""

    slice: str | bool | int | float  # the value, a bin such as "[1.5, 4)", or "(missing)"
    rows: int
    flagged: int
    money: float
    do_nothing: float
    perfect: float


class SliceTable(Record):
    """The test money broken down by one of the spec's slices: by value (most money first) or by decile (in order)."""

    name: str  # the entity column or feature; "" in summaries stored before `slices`, which did not name it
    binning: Literal["values", "deciles"]  # deciles of the test rows for numbers with more than 10 distinct values
    rows: tuple[SliceMoney, ...]


class RocCurve(Record):
    """The test ROC curve, thinned; both lists empty when the test rows hold one class."""

    false_positive_rate: tuple[float, ...]
    true_positive_rate: tuple[float, ...]


class CalibrationBin(Record):
    """Mean predicted versus observed positive rate of one score bin that holds rows."""

    bin: str  # "0.3-0.4"
    rows: int
    mean_predicted: float
    observed: float


class StoredFile(Record):
    """A content-addressed file in the artifact store."""

    path: str
    sha256: str
    size_bytes: int


class StoredPredictions(StoredFile):
    """The evaluation's per-row predictions file, with its row count."""

    rows: int


class EvaluationFiles(Record):
    """The files an evaluation stored beside its summary."""

    predictions: StoredPredictions
    plots: dict[str, StoredFile]  # plot name -> PNG
    report_markdown: StoredFile | None = None  # set after the report is rendered; always present once stored


class MeasuredSummary(Record):
    """What evaluation.evaluate.summarize measures: threshold chosen on validation, every figure on test."""

    model: str
    currency: str
    threshold: float
    threshold_chosen_on: str  # "validation"
    validation: WindowMetrics
    test: TestMetrics
    money_by_threshold: MoneyCurve
    money_by_slice: tuple[SliceMoney, ...] = ()  # the one slice of summaries stored before `slices`; now empty
    slices: tuple[SliceTable, ...] = ()  # one table per slice the spec declares, in its order
    roc_curve: RocCurve
    calibration: tuple[CalibrationBin, ...]
    sanity_problems: tuple[str, ...]

    def slice_tables(self) -> tuple[SliceTable, ...]:
        """The money by slice to show: `slices`, or the single unnamed slice of a summary stored before them."""
        if self.slices or not self.money_by_slice:
            return self.slices
        return (SliceTable(name="", binning="values", rows=self.money_by_slice),)


class FeatureImportance(Record):
    """One feature's global importance: its mean |contribution| over the rows measured, and its share of the sum."""

    feature: str
    mean_absolute: float
    share: float  # of the sum over features; NaN when every contribution is 0


class DependencePoints(Record):
    """Points of a dependence plot: a feature's value (numbers; categories as text) against its contribution."""

    feature: str
    kind: Literal["number", "category"]
    values: tuple[float | str | None, ...]  # None: missing
    contributions: tuple[float, ...]
    label_class: str | None = None  # multiclass: the class whose raw score the contributions are to


class GlobalImportance(Record):
    """Which features moved the model's output most over the test rows (training/attributions.py's methods)."""

    method: str
    scale: str  # "log-odds", "probability" or "value"
    rows: int  # test rows the contributions were computed on
    features: tuple[FeatureImportance, ...]  # largest first
    dependence: tuple[DependencePoints, ...]  # the top features, in order


class EvaluationSummary(MeasuredSummary):
    """A training run's evaluation, as stored in registry.evaluations.summary."""

    training_run: str
    model_version: str
    snapshot_id: str
    spec_hash: str
    single_feature_roc_auc: tuple[FeatureAuc, ...]  # strongest first
    gate: Gate
    gate_passed: bool
    artifacts: EvaluationFiles | None = None  # None until the evaluation's files are stored
    # the snapshot's rows left out for a label that looks forward (immature, purged); None without a horizon
    label_windows: LabelWindows | None = None
    # global feature importance on the test rows; None in summaries stored before it was measured
    importance: GlobalImportance | None = None
    search: SearchRecord | None = None  # the hyper-parameter search that chose the model's parameters, if any
