"""Evaluate a training run on its snapshot: threshold chosen on validation, every figure reported on test."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import duckdb
import numpy as np
import pandas as pd

from ml_platform.errors import PlatformError
from ml_platform.evaluation.importance import snapshot_importance
from ml_platform.evaluation.comparison import beats_champion
from ml_platform.evaluation.leakage_store import snapshot_leakage
from ml_platform.evaluation.metrics import calibration_table, classification_metrics, roc_points, sanity_problems
from ml_platform.evaluation.decisions import outcome_values
from ml_platform.evaluation.money import RESAMPLES, best_threshold, bootstrap_interval, money_curve
from ml_platform.evaluation.slices import money_by_slices, sliced_entity_columns
from ml_platform.partitions import run_split
from ml_platform.records.evaluation import (
    EvaluationSummary, MeasuredSummary, MoneyCurve, TestMetrics, WindowMetrics)
from ml_platform.records.gate import Gate, GateCheck, MoneyFloorDetails, RocAucFloorDetails, SanityDetails
from ml_platform.records.registry import SnapshotRecord
from ml_platform.records.snapshots import LabelWindows
from ml_platform.snapshots.build import read_snapshot
from ml_platform.specs.catalog import Catalog
from ml_platform.specs.models import GateSpec, ModelSpec, TimeSplit
from ml_platform.specs.tasks import require_judged_today
from ml_platform.storage import registry
from ml_platform.storage.artifacts import ArtifactStore
from ml_platform.training.fit import load_model

CURVE_POINTS = 101


class EvaluationError(PlatformError, RuntimeError):
    """The run has no model or snapshot to evaluate."""


@dataclass
class Evaluation:
    """A computed evaluation: its summary and the per-row predictions it was measured on (not yet stored)."""

    summary: EvaluationSummary
    predictions: pd.DataFrame


def interval_caveat(interval: tuple[float, float], passed: bool, currency: str) -> str:
    """What a passed money floor means when the money's 95% interval reaches below zero (else nothing)."""
    low = interval[0]
    if not passed or low >= 0:
        return ""
    return (f"; passed on the point estimate: the 95% interval reaches below zero ({low:,.0f} {currency}), so a "
            f"month like this one could lose money")


def gate_results(gate: GateSpec, summary: MeasuredSummary) -> dict[str, GateCheck]:
    """The absolute gate checks of a measured summary by name: money_floor, roc_auc_floor and predictions_sane."""
    test = summary.test
    currency = summary.currency
    money = test.money
    auc = test.roc_auc
    problems = summary.sanity_problems
    auc_passed = bool(np.isfinite(auc) and auc >= gate.min_roc_auc)
    caveat = interval_caveat(test.money_interval_95, money >= gate.min_money, currency)
    return {
        "money_floor": GateCheck[MoneyFloorDetails](
            passed=bool(money >= gate.min_money),
            why=f"test money {money:,.0f} {currency} {'≥' if money >= gate.min_money else '<'} floor "
                f"{gate.min_money:,.0f} {currency}{caveat}",
            details=MoneyFloorDetails(money=money, floor=gate.min_money, currency=currency)),
        "roc_auc_floor": GateCheck[RocAucFloorDetails](
            passed=auc_passed,
            why=f"test ROC AUC {auc:.4f} {'≥' if auc_passed else '<'} floor {gate.min_roc_auc}",
            details=RocAucFloorDetails(roc_auc=auc, floor=gate.min_roc_auc)),
        "predictions_sane": GateCheck[SanityDetails](
            passed=not problems,
            why="; ".join(problems) if problems else "finite, within [0, 1] and not constant",
            details=SanityDetails(problems=problems)),
    }


def summarize(model: ModelSpec, validation: pd.DataFrame, validation_scores: np.ndarray, test: pd.DataFrame,
              test_scores: np.ndarray, split: TimeSplit | None = None) -> MeasuredSummary:
    """Metrics and money of scored validation and test rows; the threshold is chosen on validation only.

    `split` is the training run's split (the spec's own when omitted); it names the reported windows.
    """
    split = split or model.split
    validation_values = outcome_values(model, validation, validation_scores)
    threshold, validation_money = best_threshold(validation_scores, validation_values)
    values = outcome_values(model, test, test_scores)
    flags = test_scores >= threshold
    test_label = test["label"].astype(int).to_numpy()
    money = values.money(flags)
    days = test["partition_date"].to_numpy()
    low, high = bootstrap_interval(flags, values, seed=model.algorithm.seed, groups=days)
    # for comparison only: resampling single rows ignores that flights of one day share its weather
    rows_low, rows_high = bootstrap_interval(flags, values, seed=model.algorithm.seed)
    do_nothing, perfect = values.do_nothing(), values.perfect()
    thresholds = np.round(np.linspace(0.0, 1.0, CURVE_POINTS), 4)
    return MeasuredSummary(
        model=model.name,
        currency=model.money.currency,
        threshold=threshold,
        threshold_chosen_on="validation",
        validation=WindowMetrics(
            **classification_metrics(validation["label"].to_numpy(), validation_scores, threshold),
            window=(str(split.validation.start), str(split.validation.end)),
            money=validation_money, money_do_nothing=validation_values.do_nothing(),
            money_perfect=validation_values.perfect()),
        test=TestMetrics(
            **classification_metrics(test_label, test_scores, threshold),
            window=(str(split.test.start), str(split.test.end)),
            money=money,
            money_interval_95=(low, high),
            money_interval_method=f"percentile bootstrap over the {len(np.unique(days))} test days "
                                  f"({RESAMPLES} resamples of whole days)",
            money_interval_95_rows=(rows_low, rows_high),
            money_do_nothing=do_nothing,
            money_perfect=perfect,
            share_of_perfect=(money - do_nothing) / (perfect - do_nothing) if perfect != do_nothing
            else float("nan")),
        money_by_threshold=MoneyCurve(
            thresholds=tuple(thresholds.tolist()),
            validation=tuple(round(float(value), 2) for value in
                             money_curve(validation_scores, validation_values, thresholds)),
            test=tuple(round(float(value), 2) for value in money_curve(test_scores, values, thresholds))),
        slices=money_by_slices(model, test, flags, values),
        roc_curve=roc_points(test_label, test_scores),
        calibration=calibration_table(test_label, test_scores),
        sanity_problems=sanity_problems(np.concatenate([validation_scores, test_scores])),
    )


def _prediction_rows(model: ModelSpec, frame: pd.DataFrame, keys: list[str], scores: np.ndarray,
                     threshold: float) -> pd.DataFrame:
    """The rows a figure was measured on: keys, date, split, label, score, decision and its money."""
    values = outcome_values(model, frame, scores)
    rows = frame[keys + ["partition_date", "split"]].copy()
    rows["label"] = frame["label"].astype(bool).to_numpy()
    rows["score"] = scores
    rows["flagged"] = scores >= threshold
    rows["money_if_flagged"] = values.if_flagged
    rows["money_if_not_flagged"] = values.if_not_flagged
    rows["money"] = values.per_row(rows["flagged"].to_numpy())
    for column in sliced_entity_columns(frame):
        rows[column] = frame[column].to_numpy()
    return rows


def evaluate(connection: duckdb.DuckDBPyConnection, artifacts: ArtifactStore, catalog: Catalog, model: ModelSpec,
             training_run: str, say: Callable[[str], None] | None = None) -> Evaluation:
    """Compute the run's evaluation: summary, gate checks (against the live champion too) and per-row predictions.
    The leakage guard's figures are read back when an earlier evaluation measured the same snapshot file with the
    same features, limit, seed and code (leakage_store.py); `say` is told so."""
    require_judged_today(model, "evaluation")
    trained = registry.models.get(connection, model.name, training_run)
    snapshot = registry.snapshots.get(connection, model.name, training_run)
    if trained is None or snapshot is None:
        raise EvaluationError(f"training run '{training_run}' of '{model.name}' has no trained model yet")
    predictor = load_model(artifacts, trained)
    frame = read_snapshot(connection, artifacts, snapshot, splits=("validation", "test"))
    split = {name: frame[frame["split"] == name].reset_index(drop=True) for name in ("validation", "test")}
    del frame
    if split["test"].empty or split["validation"].empty:
        raise EvaluationError(f"the validation or test window of '{model.name}' has no rows")
    validation_scores = predictor.predict(split["validation"])
    test_scores = predictor.predict(split["test"])
    measured = summarize(model, split["validation"], validation_scores, split["test"], test_scores,
                         run_split(model, training_run))
    threshold = measured.threshold

    # the file's hash was verified by read_snapshot above
    guard = snapshot_leakage(connection, artifacts, catalog, model, snapshot, say)
    aucs, leakage = guard.aucs, guard.check

    test = split["test"]
    comparison = beats_champion(connection, artifacts, catalog, model, trained.model_version, test,
                                outcome_values(model, test, test_scores), test_scores >= threshold,
                                seed=model.algorithm.seed)
    gate = Gate(**gate_results(model.gate, measured), beats_champion=comparison, no_leakage=leakage)
    summary = EvaluationSummary(**dict(measured), training_run=training_run, model_version=trained.model_version,
                                snapshot_id=snapshot.snapshot_id, spec_hash=snapshot.spec_hash,
                                single_feature_roc_auc=aucs, gate=gate, gate_passed=gate.passed(),
                                label_windows=_forward_label_windows(snapshot),
                                importance=snapshot_importance(connection, artifacts, snapshot, predictor, test),
                                search=trained.card.search)

    keys = list(catalog.entity_rows(model.entity).keys)
    predictions = pd.concat([_prediction_rows(model, split["validation"], keys, validation_scores, threshold),
                             _prediction_rows(model, test, keys, test_scores, threshold)], ignore_index=True)
    return Evaluation(summary, predictions)


def _forward_label_windows(snapshot: SnapshotRecord) -> LabelWindows | None:
    """The snapshot's rows left out for a label that looks forward; None for a label of the row's own day."""
    windows = snapshot.manifest.label_windows
    return windows if windows is not None and windows.horizon_days > 0 else None
