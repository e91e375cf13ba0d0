"""The judge of a hyper-parameter search's trials: money or the task's metric, on the validation window only.

The training floor runs the search and cannot know money; the build hands it this judge. The judge reads the
validation rows of the snapshot (and no other split) once, then scores each trial's validation predictions with the
evaluation's own mechanisms: the money at the decision chosen on those rows (`decisions.choose`, the number the
evaluation reports as validation money) and the task's metrics (`metrics`, `task_metrics`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ml_platform.evaluation.decisions import choose
from ml_platform.evaluation.metrics import classification_metrics
from ml_platform.evaluation.task_metrics import multiclass_metrics, regression_metrics
from ml_platform.snapshots.columns import SplitRows, split_condition
from ml_platform.specs.models import ModelSpec
from ml_platform.training.search import Judgement, Scorer, SearchError


def validation_frame(validation: SplitRows) -> pd.DataFrame:
    """Every column of the validation rows of a verified snapshot file (a split other than validation is refused)."""
    if validation.split != "validation":
        raise SearchError(f"the search's judge reads the validation window only, not the {validation.split} rows")
    return validation.connection.execute(
        f"SELECT * FROM read_parquet('{validation.path}') WHERE {split_condition('validation')}").df()


def metric(model: ModelSpec, frame: pd.DataFrame, predictions: np.ndarray, name: str) -> float:
    """A metric of the task on the validation rows."""
    task = model.label.task
    if task == "binary_classification":
        return classification_metrics(frame["label"].astype(bool).to_numpy(), predictions, 0.5)[name]
    if task == "regression":
        return regression_metrics(frame["label"].to_numpy(dtype="float64"), predictions)[name]
    return multiclass_metrics(frame["label"].to_numpy(dtype=object), predictions, list(model.label.classes))[name]


def search_judge(model: ModelSpec, validation: SplitRows) -> Scorer:
    """The scorer of a trial's validation predictions: its objective, and the money at the best decision (always
    measured, so that the report can plot money whatever the objective)."""
    frame = validation_frame(validation)
    objective = model.algorithm.search.objective

    def score(predictions: np.ndarray) -> Judgement:
        if len(predictions) != len(frame):
            raise SearchError(f"a trial gave {len(predictions)} predictions for {len(frame)} validation rows")
        money = choose(model, frame, predictions).validation_money
        value = money if objective == "money" else metric(model, frame, predictions, objective)
        return Judgement(float(value), float(money))

    return score
