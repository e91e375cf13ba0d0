"""Score a model version on given rows: the spec it was trained with, and its scores through the same feature code.

Beneath evaluation (a champion scored on a challenger's test rows), deployment (a rollback target must still
score) and production scoring.
"""

from __future__ import annotations

import datetime as dt

import duckdb
import pandas as pd

from ml_platform.errors import PlatformError
from ml_platform.features.compute import feature_matrix_sql, missing_feature_days
from ml_platform.records.registry import ModelRecord
from ml_platform.specs.catalog import Catalog
from ml_platform.specs.models import ModelSpec
from ml_platform.specs.tasks import require_judged_today
from ml_platform.storage import registry
from ml_platform.storage.artifacts import ArtifactStore
from ml_platform.training.algorithms import Predictor
from ml_platform.training.fit import load_model


class ScoringError(PlatformError, RuntimeError):
    """There is no model to score with, or its inputs are missing."""


def trained_spec(connection: duckdb.DuckDBPyConnection, catalog: Catalog, model: ModelRecord) -> ModelSpec:
    """The spec a model version was trained with, after checking its feature sets still compute the same features.

    A deployed model scores with the features, filter and entity of its own spec revision, not of today's spec;
    a feature set whose definition changed since would feed it values it never saw in training, so that fails.
    """
    recorded = registry.specs.get(connection, model.spec_hash)
    snapshot = registry.snapshots.get(connection, model.model, model.training_run)
    if recorded is None or snapshot is None:
        raise ScoringError(f"{model.model_version} has no recorded spec or snapshot in the registry")
    spec = ModelSpec.model_validate(recorded.payload["model"])
    for name, trained_version in snapshot.manifest.feature_set_versions.items():
        current = catalog.feature_sets.get(name)
        if current is None:
            raise ScoringError(f"feature set '{name}', which {model.model_version} was trained on, is no "
                               f"longer declared; retrain the model or restore the feature set")
        if catalog.feature_set_hash(current) != trained_version:
            raise ScoringError(
                f"feature set '{name}' changed since {model.model_version} was trained (version "
                f"{trained_version} then, {catalog.feature_set_hash(current)} now): scoring would feed the model "
                f"features it never saw; retrain and deploy a new version first")
    return spec


def require_features(connection: duckdb.DuckDBPyConnection, catalog: Catalog, spec: ModelSpec, model: ModelRecord,
                     start: dt.date, end: dt.date) -> None:
    """Fail naming the feature days a model version would need for [start, end] that are not stored."""
    missing = missing_feature_days(connection, catalog, spec, start, end)
    if missing:
        details = "; ".join(f"{name}: {', '.join(days[:5])}" for name, days in missing.items())
        raise ScoringError(f"features missing for scoring {model.model_version} ({details}); "
                           f"materialize them first")


def _scored_frame(connection: duckdb.DuckDBPyConnection, catalog: Catalog, spec: ModelSpec, predictor: Predictor,
                  threshold: float, start: dt.date, end: dt.date) -> pd.DataFrame:
    require_judged_today(spec, "scoring")
    frame = connection.execute(feature_matrix_sql(catalog, spec, start, end, with_outcomes=False)).df()
    frame["score"] = predictor.predict(frame) if len(frame) else []
    frame["flagged"] = frame["score"] >= threshold
    frame["threshold"] = float(threshold)
    return frame


def score_rows(connection: duckdb.DuckDBPyConnection, artifacts: ArtifactStore, catalog: Catalog, model: ModelRecord,
               threshold: float, start: dt.date, end: dt.date) -> tuple[ModelSpec, pd.DataFrame]:
    """A model version's spec and its scores for the rows of [start, end] that its own spec keeps.

    The frame holds the entity keys, partition_date, every feature of that spec, score, flagged and threshold.
    """
    spec = trained_spec(connection, catalog, model)
    require_features(connection, catalog, spec, model, start, end)
    predictor = load_model(artifacts, model)
    return spec, _scored_frame(connection, catalog, spec, predictor, threshold, start, end)
