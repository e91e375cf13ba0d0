"""Realistic records built by the platform's own code on small synthetic rows, for the record and registry tests."""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ml_platform.evaluation.comparison import beats_champion
from ml_platform.evaluation.evaluate import gate_results, summarize
from ml_platform.evaluation.leakage import leakage_result, single_feature_aucs
from ml_platform.evaluation.money import OutcomeValues
from ml_platform.records.evaluation import EvaluationSummary
from ml_platform.records.gate import Gate
from ml_platform.training.environment import training_environment
from ml_platform.specs.models import LogisticRegressionAlgorithm, ModelSpec, RandomForestAlgorithm
from ml_platform.training.algorithms import train
from ml_platform_tests.helpers import january_model

TRAINING_RUN = "2013-01-31_0123456789ab"
MODEL_VERSION = "flight_delay-0123456789ab"
CREATED = dt.datetime(2026, 11, 28, 9, 30, 15, 123456)


def spec() -> ModelSpec:
    """The demo model on the January slice."""
    return ModelSpec.model_validate(january_model())


def split_rows(days: list[str], seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Scored rows of a window: calibrated scores, money per outcome and a slice column."""
    generator = np.random.default_rng(seed)
    rows = 300 * len(days)
    scores = generator.random(rows)
    frame = pd.DataFrame({
        "label": generator.random(rows) < scores, "partition_date": pd.to_datetime(np.repeat(days, 300)),
        "money_true_positive": 400.0, "money_false_positive": -100.0,
        "money_false_negative": 0.0, "money_true_negative": 0.0,
        "slice": generator.choice(["AA", "B6", "UA"], rows), "distance": generator.random(rows) * 1000,
        "carrier": generator.choice(["AA", "B6"], rows)})
    return frame, scores


def evaluation_summary(connection) -> dict:
    """A summary as evaluation.evaluate.evaluate builds it, before store_evaluation adds its files, as plain data."""
    model = spec()
    validation, validation_scores = split_rows(["2013-01-21", "2013-01-22"], seed=1)
    test, test_scores = split_rows(["2013-01-26", "2013-01-27", "2013-01-28"], seed=2)
    measured = summarize(model, validation, validation_scores, test, test_scores)
    aucs = single_feature_aucs(validation, {"distance": "number", "carrier": "category"},
                               validation["label"].to_numpy(), seed=0)
    flags = test_scores >= measured.threshold
    # with nothing promoted the champion comparison needs neither the catalog nor the artifact store
    comparison = beats_champion(connection, None, None, model, MODEL_VERSION, test, OutcomeValues.from_frame(test),
                                flags, seed=0)
    gate = Gate(**gate_results(model.gate, measured), beats_champion=comparison,
                no_leakage=leakage_result(aucs, 0.95, len(validation), 10 * len(validation)))
    return EvaluationSummary(**dict(measured), training_run=TRAINING_RUN, model_version=MODEL_VERSION,
                             snapshot_id="0123456789abcdef", spec_hash="0123456789ab", single_feature_roc_auc=aucs,
                             gate=gate, gate_passed=gate.passed()).plain()


def stored_summary(connection) -> dict:
    """The summary as store_evaluation keeps it: with its files, through JSON (as its plain copy is)."""
    summary = evaluation_summary(connection)
    stored = {"path": "reports/flight_delay/plots/ab.png", "sha256": "ab" * 32, "size_bytes": 1234}
    summary["artifacts"] = {
        "predictions": {"path": "evaluations/flight_delay/cd.parquet", "sha256": "cd" * 32, "size_bytes": 99,
                        "rows": 1500},
        "plots": {"money_by_threshold": stored, "calibration": stored},
        "report_markdown": {"path": "reports/flight_delay/ef.md", "sha256": "ef" * 32, "size_bytes": 4321}}
    return json.loads(json.dumps(summary, default=float))


@dataclass
class FrameRows:
    """A split's rows for training.algorithms.train."""

    frame: pd.DataFrame

    @property
    def label(self) -> np.ndarray:
        return self.frame["label"].to_numpy(dtype=int)

    def column(self, name: str) -> pd.Series:
        return self.frame[name]


def model_card(algorithm=None) -> dict:
    """A model card as training.fit.train_model writes it, from a real (tiny) training."""
    algorithm = algorithm or spec().algorithm
    train_frame, _ = split_rows(["2013-01-01"], seed=3)
    valid_frame, _ = split_rows(["2013-01-21"], seed=4)
    result = train(algorithm, ["distance", "carrier"], ["carrier"], FrameRows(train_frame), FrameRows(valid_frame))
    layout = result.predictor.layout
    return {
        "algorithm": algorithm.kind, "seed": algorithm.seed, "parameters": algorithm.params.model_dump(),
        "artifact_format": result.predictor.format, "artifact_bytes": 2048, "training_rows": len(train_frame),
        "validation_rows": len(valid_frame),
        "training_positive_rate": round(float(train_frame["label"].mean()), 6),
        "features": list(layout.columns),
        "categories": {name: len(values) for name, values in layout.categories.items()},
        **training_environment(), **result.details,
    }


OTHER_ALGORITHMS = (LogisticRegressionAlgorithm(kind="logistic_regression"),
                    RandomForestAlgorithm(kind="random_forest", params={"n_estimators": 5}))


def manifest() -> dict:
    """A snapshot manifest in the shape snapshots.build and snapshots.pinning write it."""
    by_day = {"2013-01-01": "aaaa000011112222", "2013-01-02": "bbbb000011112222"}
    daily = {"days": 2, "first": "2013-01-01", "last": "2013-01-02", "versions_sha256": "12" * 32, "by_day": by_day}
    return {
        "model": "flight_delay", "training_run": TRAINING_RUN, "spec_hash": "0123456789ab",
        "snapshot_sha256": "0123456789abcdef" + "0" * 48, "size_bytes": 123456, "entity": "flights",
        "keys": ["flight_id"], "features": ["distance", "carrier"],
        "feature_set_versions": {"flight_basics": "feedbeef"},
        "source_data_versions": {"flights": {"trust": "verified", **daily},
                                 "airports": {"trust": "verified", "days": 0, "version": "cccc000011112222"}},
        "feature_data_versions": {"flight_basics": daily},
        "split_windows": {name: {"start": start, "end": end} for name, start, end in (
            ("train", "2013-01-01", "2013-01-20"), ("validation", "2013-01-21", "2013-01-25"),
            ("test", "2013-01-26", "2013-01-31"))},
        "rows": {"train": 1000, "validation": 300, "test": 400},
        "positive_rate": {"train": 0.213457, "validation": 0.2, "test": 0.1875},
        "rows_without_label_excluded": 7,
    }


def same(first, second) -> bool:
    """Equal as JSON values, NaN equal to NaN and 5 to 5.0 (lists and tuples alike)."""
    if isinstance(first, dict) and isinstance(second, dict):
        return first.keys() == second.keys() and all(same(first[key], second[key]) for key in first)
    if isinstance(first, (list, tuple)) and isinstance(second, (list, tuple)):
        return len(first) == len(second) and all(same(a, b) for a, b in zip(first, second))
    if isinstance(first, float) and isinstance(second, float) and math.isnan(first) and math.isnan(second):
        return True
    return first == second and isinstance(first, bool) == isinstance(second, bool)
