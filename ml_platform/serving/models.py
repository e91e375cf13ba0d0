"""A served model as one immutable object: the champion's record, the spec it was trained with, its predictor and
its decision, loaded from the server's copy of the registry. A promotion or a rollback builds a new object; the
server swaps its reference, so a request sees one version from start to end."""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from ml_platform.code_version import code_version
from ml_platform.evaluation.decisions import ChosenDecision
from ml_platform.evaluation.task_comparison import chosen_of
from ml_platform.records.registry import ModelRecord, PromotionRecord
from ml_platform.scoring.score import uses_task_scoring
from ml_platform.serving.errors import ServingError
from ml_platform.specs.catalog import Catalog
from ml_platform.specs.models import ModelSpec
from ml_platform.storage import registry
from ml_platform.storage.artifacts import ArtifactStore
from ml_platform.training.algorithms import THREADS, LightGBMPredictor, Predictor
from ml_platform.training.fit import load_model
from ml_platform.training.inference import ScoringError, trained_spec


SHARED_ROWS = 512  # from this many rows on, a served prediction shares its rows out to `algorithms.THREADS`


class CallingThreadLightGBM(LightGBMPredictor):
    """A LightGBM predictor that predicts few rows on the calling thread alone.

    Batch scoring predicts with `algorithms.THREADS` OpenMP threads; a server answering one row at a time from
    several worker threads on two cores gains nothing from them and pays for waking them on every call (8-13 ms
    for one row on a busy 2-core machine, against 0.03 ms on the calling thread). A whole day's rows, scored once
    for the first request of that day (`scored_day.score_day`), do gain: 915 rows of the demo's 578-tree champion
    take 21 ms on one thread and 11.5 ms on two. So the threads are woken from SHARED_ROWS rows on. LightGBM
    computes each row's prediction on one thread whatever the thread count (its threads share the rows out), so
    the scores are the same bits: the parity tests compare them with the stored batch scores."""

    def predict_matrix(self, matrix):
        return self.booster.predict(matrix, num_threads=THREADS if len(matrix) >= SHARED_ROWS else 1)


def served_predictor(predictor: Predictor) -> Predictor:
    """The predictor a server scores with: a LightGBM booster predicting on the calling thread; any other as is."""
    if isinstance(predictor, LightGBMPredictor):
        return CallingThreadLightGBM(predictor.booster, predictor.layout)
    return predictor


@dataclass(frozen=True)
class LoadedModel:
    """One version of a model, ready to score: `threshold` for a binary threshold model, `decision` for a task."""

    name: str
    trained: ModelRecord
    promotion: PromotionRecord | None  # None for a shadow challenger
    spec: ModelSpec  # the spec it was trained with
    predictor: Predictor
    threshold: float | None
    decision: ChosenDecision | None
    code_version: str

    def provenance(self) -> dict:
        """The provenance columns of a served prediction, as batch predictions carry them."""
        return {"model_version": self.trained.model_version, "spec_hash": self.trained.spec_hash,
                "snapshot_id": self.trained.snapshot_id, "training_run": self.trained.training_run,
                "code_version": self.code_version,
                "promotion_id": self.promotion.promotion_id if self.promotion else None}


def load_version(connection: duckdb.DuckDBPyConnection, artifacts: ArtifactStore, catalog: Catalog,
                 trained: ModelRecord, promotion: PromotionRecord | None) -> LoadedModel:
    """A registered model version loaded from the copy's registry, its artifact's hash checked."""
    try:
        spec = trained_spec(connection, catalog, trained)
    except ScoringError as error:
        raise ServingError(str(error)) from error
    threshold, decision = None, None
    if uses_task_scoring(spec):
        record = registry.task_evaluations.get(connection, trained.model, trained.training_run)
        if record is None:
            raise ServingError(f"{trained.model_version} has no stored task evaluation: its decision is unknown")
        decision = chosen_of(record)
    else:
        evaluation = registry.evaluations.get(connection, trained.model, trained.training_run)
        if evaluation is None:
            raise ServingError(f"{trained.model_version} has no stored evaluation: its threshold is unknown")
        threshold = float(evaluation.summary.threshold)
    return LoadedModel(trained.model, trained, promotion, spec, served_predictor(load_model(artifacts, trained)),
                       threshold, decision, code_version())


def load_champion(connection: duckdb.DuckDBPyConnection, artifacts: ArtifactStore, catalog: Catalog,
                  model: str) -> LoadedModel | None:
    """The model's live champion (the latest entry of its promotion log), or None when none was deployed."""
    champion = registry.promotions.champion(connection, model)
    if champion is None:
        return None
    trained = registry.models.by_version(connection, champion.model_version)
    if trained is None:
        raise ServingError(f"champion {champion.model_version} of '{model}' has no registered model artifact")
    return load_version(connection, artifacts, catalog, trained, champion)
