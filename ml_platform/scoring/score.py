"""Score days of production rows with the live champion, through the same feature code as training."""

from __future__ import annotations

import datetime as dt

import duckdb

from ml_platform.code_version import code_version
from ml_platform.features.compute import feature_matrix_sql, missing_feature_days
from ml_platform.specs.catalog import Catalog
from ml_platform.specs.models import ModelSpec
from ml_platform.storage import registry
from ml_platform.storage.artifacts import ArtifactStore
from ml_platform.storage.warehouse import quote, table, table_exists
from ml_platform.training.fit import load_model

PROVENANCE = ("model_version", "spec_hash", "snapshot_id", "training_run", "code_version", "scored_at",
              "promotion_id", "dagster_run_id")


class ScoringError(RuntimeError):
    """There is no champion to score with, or its inputs are missing."""


def champion_spec(connection: duckdb.DuckDBPyConnection, catalog: Catalog, model_row: dict) -> ModelSpec:
    """The spec the champion was trained with, after checking its feature sets still compute the same features.

    The champion scores with the features, filter and entity of its own spec revision, not of today's spec; a
    feature set whose definition changed since would feed it values it never saw in training, so that fails.
    """
    recorded = registry.fetch_one(connection, "specs", spec_hash=model_row["spec_hash"])
    snapshot = registry.fetch_one(connection, "snapshots", model=model_row["model"],
                                  training_run=model_row["training_run"])
    if recorded is None or snapshot is None:
        raise ScoringError(f"{model_row['model_version']} has no recorded spec or snapshot in the registry")
    spec = ModelSpec.model_validate(recorded["payload"]["model"])
    for name, trained_version in snapshot["manifest"]["feature_set_versions"].items():
        current = catalog.feature_sets.get(name)
        if current is None:
            raise ScoringError(f"feature set '{name}', which {model_row['model_version']} was trained on, is no "
                               f"longer declared; retrain the model or restore the feature set")
        if catalog.feature_set_hash(current) != trained_version:
            raise ScoringError(
                f"feature set '{name}' changed since {model_row['model_version']} was trained (version "
                f"{trained_version} then, {catalog.feature_set_hash(current)} now): scoring would feed the model "
                f"features it never saw; retrain and deploy a new version first")
    return spec


def latest_view(model: ModelSpec) -> str:
    """The view holding the latest prediction of each row."""
    return table("predictions", f"{model.name}__latest")


def score_days(connection: duckdb.DuckDBPyConnection, artifacts: ArtifactStore, catalog: Catalog,
               model: ModelSpec, start: dt.date, end: dt.date, dagster_run_id: str) -> dict:
    """Append predictions for [start, end] to predictions.<model>, each row carrying its provenance."""
    champion = registry.champion(connection, model.name)
    if champion is None:
        raise ScoringError(f"no version of '{model.name}' has been deployed yet: train it and pass the gate first")
    model_row = registry.fetch_one(connection, "models", model_version=champion["model_version"])
    evaluation = registry.fetch_one(connection, "evaluations", model=model.name,
                                    training_run=champion["training_run"])
    trained_spec = champion_spec(connection, catalog, model_row)
    missing = missing_feature_days(connection, catalog, trained_spec, start, end)
    if missing:
        details = "; ".join(f"{name}: {', '.join(days[:5])}" for name, days in missing.items())
        raise ScoringError(f"features missing for scoring '{model.name}' ({details}); materialize them first")
    frame = connection.execute(feature_matrix_sql(catalog, trained_spec, start, end, with_outcomes=False)).df()
    predictor = load_model(artifacts, model_row)
    threshold = float(evaluation["summary"]["threshold"])
    keys = list(catalog.sources[model.entity].keys)
    scored = frame.copy()
    scored["score"] = predictor.predict(frame) if len(frame) else []
    scored["flagged"] = scored["score"] >= threshold
    scored["threshold"] = threshold
    # the exact feature values the model saw, as JSON, so that any prediction can be explained later
    inputs = ", ".join(f"{quote(name)} := {quote(name)}" for name in trained_spec.features)
    output = connection.execute(
        f"SELECT {', '.join(quote(key) for key in keys)}, partition_date, score, flagged, threshold, "
        f"CAST(to_json(struct_pack({inputs})) AS VARCHAR) AS inputs FROM scored").df()
    provenance = {
        "model_version": model_row["model_version"], "spec_hash": model_row["spec_hash"],
        "snapshot_id": model_row["snapshot_id"], "training_run": model_row["training_run"],
        "code_version": code_version(), "scored_at": registry.now(),
        "promotion_id": int(champion["promotion_id"]), "dagster_run_id": dagster_run_id,
    }
    for name, value in provenance.items():
        output[name] = value
    target = table("predictions", model.name)
    key_list = ", ".join(quote(key) for key in keys)
    connection.execute("BEGIN TRANSACTION")
    try:
        connection.execute(f"CREATE TABLE IF NOT EXISTS {target} AS SELECT * FROM output LIMIT 0")
        connection.execute(f"INSERT INTO {target} BY NAME SELECT * FROM output")
        connection.execute(
            f"CREATE OR REPLACE VIEW {latest_view(model)} AS SELECT * FROM {target} "
            f"QUALIFY row_number() OVER (PARTITION BY {key_list} ORDER BY scored_at DESC, promotion_id DESC) = 1")
        connection.execute("COMMIT")
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    return {"rows": len(output), "flagged": int(output["flagged"].sum()), **provenance,
            "scored_at": provenance["scored_at"].isoformat(timespec="seconds")}


def has_predictions(connection: duckdb.DuckDBPyConnection, model: ModelSpec) -> bool:
    """True once the model has scored anything."""
    return table_exists(connection, "predictions", model.name)
