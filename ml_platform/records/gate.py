"""The deployment gate of an evaluation: five named checks, each passed or not with a sentence saying why."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from ml_platform.records.base import Record

# the order in which the gate's checks are shown and verified (evaluation.evaluate.CHECK_ORDER)
CHECK_ORDER = ("money_floor", "roc_auc_floor", "beats_champion", "no_leakage", "predictions_sane")

Details = TypeVar("Details")


class GateCheck(Record, Generic[Details]):
    """One gate check: passed, why in words, and the figures it was decided on."""

    passed: bool
    why: str
    details: Details


class MoneyFloorDetails(Record):
    """The money_floor check's figures: test money against the spec's floor."""

    money: float
    floor: float
    currency: str


class RocAucFloorDetails(Record):
    """The roc_auc_floor check's figures: test ROC AUC (NaN with one class) against the spec's floor."""

    roc_auc: float
    floor: float


class SanityDetails(Record):
    """The predictions_sane check's findings: what is wrong with the predicted probabilities (empty when nothing)."""

    problems: tuple[str, ...]


class FeatureAuc(Record):
    """One feature's score alone, in the stronger direction (0.5 means no signal): ROC AUC for a binary label,
    concordance for a regression label, the largest one-vs-rest ROC AUC for a multiclass one (see
    evaluation.leakage), on the training rows and on the validation window's rows."""

    feature: str
    type: str  # "number" or "category"
    roc_auc: float  # on the training rows
    # on the validation window's rows, same method and seed; None before it was measured, or when the window's
    # rows hold a single label
    validation_roc_auc: float | None = None


class SignalCollapse(Record):
    """A feature whose single-feature signal (score - 0.5) collapses from the training rows to validation."""

    feature: str
    training: float  # the score on the training rows
    validation: float  # the score on the validation rows
    kept: float  # validation signal / training signal
    noise: float  # the allowance for chance: two standard errors of the comparison
    design_effects: tuple[float, float]  # variance factors on (training, validation): rows of one day correlate


class OutOfTimeSignal(Record):
    """The leakage guard's out-of-time warning (it never blocks): features whose signal collapses on validation.

    `judged` is False when the validation window could not be measured (a single label among its rows); `flagged`
    then is False too, and `why` says so.
    """

    rule: str  # the rule in words, as applied
    judged: bool
    flagged: bool
    why: str
    collapsed: tuple[SignalCollapse, ...]  # strongest training signal first; empty when nothing is flagged


class LeakageDetails(Record):
    """The no_leakage check's figures: the limit, the rows measured and the strongest single features."""

    limit: float
    rows_used: int
    rows_available: int | None = None  # absent before the guard could measure a sample
    strongest_features: tuple[FeatureAuc, ...]  # at most five, strongest first
    leaking_features: tuple[str, ...]
    score: str = "ROC AUC"  # the score's name: "ROC AUC", "concordance", "one-vs-rest ROC AUC"
    validation_rows_used: int | None = None  # absent before the guard measured the validation window
    validation_rows_available: int | None = None
    out_of_time: OutOfTimeSignal | None = None  # a warning, not part of passing: see OutOfTimeSignal


class ChampionComparison(Record):
    """The beats_champion check's figures; which keys are present depends on how far the comparison got.

    Always: margin, waived, currency, rows, compared_at, champion (None when nothing is deployed). When the
    champion was scored: champion_training_run .. window; champion_scores_from only when its stored predictions
    were used instead of scoring it again.
    """

    margin: float | None  # gate.min_gain_over_champion; None when the spec waives the comparison
    waived: bool
    currency: str
    rows: int
    compared_at: str  # ISO time, seconds
    champion: str | None  # the champion's model version
    champion_training_run: str | None = None
    champion_promotion_id: int | None = None
    champion_threshold: float | None = None
    rows_outside_champion_filter: int | None = None
    champion_scores_from: str | None = None
    challenger_money: float | None = None
    champion_money: float | None = None
    gain: float | None = None
    gain_interval_95: tuple[float, float] | None = None
    days: int | None = None
    window: tuple[str, str] | None = None
    # the champion's realized money in production over its last 7 judged days up to the window's end, when known
    champion_realized_verdict: str | None = None  # on track, above the expected range, below the interval, losing money
    champion_realized_money: float | None = None
    champion_realized_interval: tuple[float, float] | None = None  # the promise's 95% interval for those days
    champion_realized_window: tuple[str, str] | None = None
    rule: str | None = None  # "clearly better" (gain interval clear of 0) or "champion under water" (point estimate)


class Gate(Record):
    """The five gate checks by name; a check is None (and left out of JSON) when an older evaluation lacks it."""

    money_floor: GateCheck[MoneyFloorDetails] | None = None
    roc_auc_floor: GateCheck[RocAucFloorDetails] | None = None
    beats_champion: GateCheck[ChampionComparison] | None = None
    no_leakage: GateCheck[LeakageDetails] | None = None
    predictions_sane: GateCheck[SanityDetails] | None = None

    def checks(self) -> tuple[tuple[str, GateCheck[Any]], ...]:
        """(name, check) of every present check, in CHECK_ORDER."""
        return tuple((name, getattr(self, name)) for name in CHECK_ORDER if getattr(self, name) is not None)

    def failures(self) -> tuple[tuple[str, GateCheck[Any]], ...]:
        """(name, check) of every present check that failed, in CHECK_ORDER."""
        return tuple((name, check) for name, check in self.checks() if not check.passed)

    def missing(self) -> tuple[str, ...]:
        """Names of the checks this gate lacks (it was stored before they existed)."""
        return tuple(name for name in CHECK_ORDER if getattr(self, name) is None)

    def passed(self) -> bool:
        """True when all five checks are present and passed."""
        return not self.missing() and not self.failures()
