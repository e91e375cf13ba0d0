"""The model card: how a model was trained, on what, with which software, and what training found."""

from __future__ import annotations

from typing import Any

from ml_platform.records.base import Record
from ml_platform.records.search import SearchRecord


class DistributedTraining(Record):
    """How a model was trained on dask.distributed (lightgbm.dask), and the tolerance the platform states for it."""

    engine: str  # "dask.distributed (lightgbm.dask)"
    scheduler: str  # the scheduler's address
    workers: int  # the workers that held a share of the training rows and trained together
    threads_per_worker: tuple[int, ...]  # LightGBM's num_threads on each of them (the worker's threads)
    rows_per_worker: tuple[int, ...]
    threshold_rows: int  # the configured size from which training is distributed
    rounds_trained: int  # every round the spec allows; the rounds kept are chosen on the validation window
    validation_metric: str  # LightGBM's metric of the objective, on the whole validation window
    validation_loss: float  # of the rounds kept
    tolerance: str  # how far from single-machine LightGBM on the same rows the platform states it to be


class ModelCard(Record):
    """Facts about a trained model, as stored in registry.models.card."""

    algorithm: str
    seed: int
    parameters: dict[str, Any]  # the hyper-parameters trained with: the spec's params, or the search's choice
    artifact_format: str
    artifact_bytes: int
    training_rows: int
    validation_rows: int
    training_positive_rate: float | None = None  # binary classification
    training_label_mean: float | None = None  # regression
    training_class_shares: dict[str, float] | None = None  # multiclass: class -> share of the training rows
    features: tuple[str, ...]  # the model's input columns, in order
    categories: dict[str, int]  # category feature -> size of its training vocabulary
    # the training environment (provenance.environment); older cards may lack it
    python: str | None = None
    platform: str | None = None
    library_versions: dict[str, str] | None = None
    code_version: str | None = None
    # what the trainer reports (training.algorithms): library and training_seconds always, the rest by algorithm
    library: dict[str, str]  # {"lightgbm": version} or {"scikit-learn": version}
    training_seconds: float
    trees: int | None = None  # LightGBM: boosting rounds kept
    stopped_early: bool | None = None  # LightGBM
    iterations: int | None = None  # scikit-learn estimators with n_iter_
    feature_importance: dict[str, float] | None = None  # encoded column -> importance
    importance_kind: str | None = None  # "total gain", "impurity decrease", "absolute standardised coefficient"
    search: SearchRecord | None = None  # the spec's hyper-parameter search, when it declares one
    distributed: DistributedTraining | None = None  # trained on dask.distributed (training.distributed)
    # the training window reached the distributed size, but this model trained on one machine, and why
    distributed_declined: str | None = None

    def environment(self) -> dict[str, Any]:
        """The recorded training environment in the shape provenance.environment compares (absent parts left out)."""
        return {name: getattr(self, name) for name in ("python", "platform", "library_versions", "code_version")
                if getattr(self, name) is not None}
