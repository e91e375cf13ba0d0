"""Evaluate a training run on its snapshot: threshold chosen on validation, every figure reported on test."""

from __future__ import annotations

import json

import duckdb
import numpy as np
import pandas as pd

from ml_platform.evaluation.metrics import calibration_table, classification_metrics, sanity_problems
from ml_platform.evaluation.money import OutcomeValues, best_threshold, bootstrap_interval, money_curve
from ml_platform.snapshots.build import read_snapshot
from ml_platform.specs.models import GateSpec, ModelSpec
from ml_platform.storage import registry
from ml_platform.storage.artifacts import ArtifactStore
from ml_platform.training.fit import load_model


class EvaluationError(RuntimeError):
    """The run has no model or snapshot to evaluate."""


def gate_results(gate: GateSpec, summary: dict) -> dict[str, dict]:
    """Each gate check's outcome for an evaluation summary: passed, and a sentence saying why."""
    test = summary["test"]
    currency = summary["currency"]
    money = test["money"]
    auc = test["roc_auc"]
    problems = summary["sanity_problems"]
    return {
        "money_floor": {
            "passed": money >= gate.min_money,
            "why": f"test money {money:,.0f} {currency} {'≥' if money >= gate.min_money else '<'} floor "
                   f"{gate.min_money:,.0f} {currency}",
        },
        "roc_auc_floor": {
            "passed": bool(np.isfinite(auc) and auc >= gate.min_roc_auc),
            "why": f"test ROC AUC {auc:.4f} {'≥' if auc >= gate.min_roc_auc else '<'} floor {gate.min_roc_auc}",
        },
        "predictions_sane": {
            "passed": not problems,
            "why": "; ".join(problems) if problems else "finite, within [0, 1] and not constant",
        },
    }


def _slice_money(frame: pd.DataFrame, flags: np.ndarray, values: OutcomeValues) -> list[dict]:
    if "slice" not in frame:
        return []
    per_row = np.where(flags, values.if_flagged, values.if_not_flagged)
    table = pd.DataFrame({"slice": frame["slice"].fillna("(missing)").to_numpy(), "money": per_row,
                          "flagged": flags, "perfect": np.maximum(values.if_flagged, values.if_not_flagged)})
    grouped = table.groupby("slice").agg(rows=("money", "size"), flagged=("flagged", "sum"), money=("money", "sum"),
                                         perfect=("perfect", "sum")).reset_index()
    grouped = grouped.sort_values("money", ascending=False)
    return [{key: (value.item() if hasattr(value, "item") else value) for key, value in row.items()}
            for row in grouped.to_dict("records")]


def evaluate(connection: duckdb.DuckDBPyConnection, artifacts: ArtifactStore, model: ModelSpec,
             training_run: str) -> dict:
    """Compute the run's evaluation summary (not yet stored)."""
    model_row = registry.fetch_one(connection, "models", model=model.name, training_run=training_run)
    snapshot = registry.fetch_one(connection, "snapshots", model=model.name, training_run=training_run)
    if model_row is None or snapshot is None:
        raise EvaluationError(f"training run '{training_run}' of '{model.name}' has no trained model yet")
    predictor = load_model(artifacts, model_row)
    frame = read_snapshot(connection, artifacts, snapshot)
    validation = frame[frame["split"] == "validation"].reset_index(drop=True)
    test = frame[frame["split"] == "test"].reset_index(drop=True)
    if test.empty:
        raise EvaluationError(f"the test window of '{model.name}' has no rows")
    validation_scores = predictor.predict(validation)
    test_scores = predictor.predict(test)
    threshold, validation_money = best_threshold(validation_scores, OutcomeValues.from_frame(validation))
    values = OutcomeValues.from_frame(test)
    flags = test_scores >= threshold
    test_label = test["label"].astype(int).to_numpy()
    money = values.money(flags)
    low, high = bootstrap_interval(flags, values, seed=model.algorithm.seed)
    curve_thresholds = np.round(np.linspace(0.0, 1.0, 41), 3)
    summary = {
        "model": model.name,
        "training_run": training_run,
        "model_version": model_row["model_version"],
        "snapshot_id": snapshot["snapshot_id"],
        "spec_hash": snapshot["spec_hash"],
        "currency": model.money.currency,
        "threshold": threshold,
        "threshold_chosen_on": "validation",
        "validation": {**classification_metrics(validation["label"].to_numpy(), validation_scores, threshold),
                       "money": validation_money},
        "test": {
            **classification_metrics(test_label, test_scores, threshold),
            "window": [str(model.split.test.start), str(model.split.test.end)],
            "money": money,
            "money_interval_95": [low, high],
            "money_do_nothing": values.do_nothing(),
            "money_perfect": values.perfect(),
            "share_of_perfect": (money - values.do_nothing()) / (values.perfect() - values.do_nothing())
            if values.perfect() != values.do_nothing() else float("nan"),
        },
        "money_by_threshold": {str(t): float(m) for t, m in
                               zip(curve_thresholds, money_curve(test_scores, values, curve_thresholds))},
        "money_by_slice": _slice_money(test, flags, values),
        "calibration": calibration_table(test_label, test_scores),
        "sanity_problems": sanity_problems(np.concatenate([validation_scores, test_scores])),
    }
    summary["gate"] = gate_results(model.gate, summary)
    summary["gate_passed"] = all(check["passed"] for check in summary["gate"].values())
    return summary


def store_evaluation(connection: duckdb.DuckDBPyConnection, artifacts: ArtifactStore, summary: dict,
                     report_markdown: str) -> dict:
    """Write the report files and the registry row once; return the row."""
    existing = registry.fetch_one(connection, "evaluations", model=summary["model"],
                                  training_run=summary["training_run"])
    if existing is not None:
        return {**existing, "reused": True}
    document = json.dumps({"summary": summary, "report_markdown": report_markdown}, sort_keys=True, indent=1,
                          default=float)
    stored = artifacts.write(f"reports/{summary['model']}", ".json",
                             lambda path: path.write_text(document, encoding="utf-8"))
    row = {
        "model": summary["model"], "training_run": summary["training_run"],
        "model_version": summary["model_version"], "report_path": stored.path, "report_sha256": stored.sha256,
        "summary": json.loads(json.dumps(summary, default=float)), "gate_passed": summary["gate_passed"],
        "created_at": registry.now(),
    }
    registry.insert(connection, "evaluations", row)
    return {**row, "reused": False}
