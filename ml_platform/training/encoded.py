"""The training and validation rows encoded once, for training the same algorithm many times (a search's trials).

`train` reads and encodes every column on each call; a search calls it once per trial on the same rows. Here the
feature layout, the two float64 matrices and the learner's targets are built once, and each LightGBM trial starts
from them: the same layout, the same matrices and the same LightGBM calls as `train`, so each trial's model is the
same bytes `train` gives with its parameters (the search's tests compare them). The LightGBM Dataset itself is
still built per trial, because its bins depend on the trial's parameters (min_child_samples pre-filters features).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from ml_platform.errors import PlatformError
from ml_platform.progress import silent
from ml_platform.specs.models import LabelSpec, LightGBMAlgorithm
from ml_platform.training.algorithms import (THREADS, FeatureLayout, LightGBMPredictor, Rows, TrainingResult,
                                             fit_lightgbm, lightgbm_train_set, targets)
from ml_platform.training.arrow_matrix import rows_matrix, training_matrix

class EncodedTrainingError(PlatformError, TypeError):
    """Encoded rows asked to train or predict what they cannot: another algorithm, or another model's layout."""


@dataclass(frozen=True)
class EncodedSplits:
    """The layout learnt from the training rows, both splits' input matrices and the learner's targets."""

    layout: FeatureLayout
    train_matrix: np.ndarray
    train_label: np.ndarray
    valid_matrix: np.ndarray
    valid_label: np.ndarray

    @classmethod
    def encode(cls, columns: list[str], categorical: list[str], train_rows: Rows, valid_rows: Rows,
               label: LabelSpec | None) -> "EncodedSplits":
        """Read and encode each column of both splits once, as `train` does on each call."""
        train_label = targets(label, train_rows.label, "train")
        valid_label = targets(label, valid_rows.label, "validation")
        layout, train_matrix = training_matrix(train_rows, columns, categorical)
        valid_matrix = rows_matrix(layout, valid_rows)
        return cls(layout, train_matrix, train_label, valid_matrix, valid_label)


def encodable(algorithm) -> bool:
    """Whether `train_encoded` trains this algorithm (LightGBM; scikit-learn pipelines encode their own inputs)."""
    return isinstance(algorithm, LightGBMAlgorithm)


def train_encoded(algorithm: LightGBMAlgorithm, encoded: EncodedSplits, label: LabelSpec | None = None,
                  threads: int = THREADS) -> TrainingResult:
    """Train LightGBM on the encoded training rows with early stopping on the encoded validation rows: the model
    `train` gives on the rows they were encoded from (with THREADS threads; fewer give other bytes)."""
    if not encodable(algorithm):
        raise EncodedTrainingError(f"train_encoded trains lightgbm, not {algorithm.kind!r}: use train")
    started = time.perf_counter()
    train_set = lightgbm_train_set(algorithm, label, encoded.layout, encoded.train_matrix, encoded.train_label,
                                   threads)
    result = fit_lightgbm(algorithm, label, encoded.layout, train_set, encoded.valid_matrix, encoded.valid_label,
                          silent(), threads)
    result.details["training_seconds"] = round(time.perf_counter() - started, 3)
    return result


def predict_validation(result: TrainingResult, encoded: EncodedSplits) -> np.ndarray:
    """The trained model's predictions of the encoded validation rows (what `predictor.predict` gives on them)."""
    predictor = result.predictor
    if not isinstance(predictor, LightGBMPredictor) or predictor.layout is not encoded.layout:
        raise EncodedTrainingError("predict_validation needs a LightGBM model trained on these encoded rows")
    return predictor.predict_matrix(encoded.valid_matrix)
