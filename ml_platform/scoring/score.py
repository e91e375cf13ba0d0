"""Score days of production rows with the live champion, through the same feature code as training.

The challenger (the newest run that passed the gate but was never promoted) can score the same days in shadow,
into `predictions.<model>__shadow`, so that it is judged on live rows before anyone promotes it.
"""

from __future__ import annotations

import datetime as dt

import duckdb
import pandas as pd

from ml_platform.code_version import code_version
from ml_platform.features.compute import feature_matrix_sql, missing_feature_days
from ml_platform.specs.catalog import Catalog
from ml_platform.specs.models import ModelSpec
from ml_platform.storage import registry
from ml_platform.storage.artifacts import ArtifactStore
from ml_platform.storage.faults import pause_point
from ml_platform.storage.warehouse import quote, table
from ml_platform.training.fit import load_model

PROVENANCE = ("model_version", "spec_hash", "snapshot_id", "training_run", "code_version", "scored_at",
              "promotion_id", "dagster_run_id")


class ScoringError(RuntimeError):
    """There is no model to score with, or its inputs are missing."""


def trained_spec(connection: duckdb.DuckDBPyConnection, catalog: Catalog, model_row: dict) -> ModelSpec:
    """The spec a model version was trained with, after checking its feature sets still compute the same features.

    A deployed model scores with the features, filter and entity of its own spec revision, not of today's spec;
    a feature set whose definition changed since would feed it values it never saw in training, so that fails.
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


champion_spec = trained_spec  # the name the champion's scoring has always used


def latest_view(model: ModelSpec) -> str:
    """The view holding the latest prediction of each row."""
    return table("predictions", f"{model.name}__latest")


def shadow_table(model: ModelSpec) -> str:
    """The table holding the challenger's shadow predictions."""
    return table("predictions", f"{model.name}__shadow")


def score_rows(connection: duckdb.DuckDBPyConnection, artifacts: ArtifactStore, catalog: Catalog, model_row: dict,
               threshold: float, start: dt.date, end: dt.date) -> tuple[ModelSpec, pd.DataFrame]:
    """A model version's spec and its scores for the rows of [start, end] that its own spec keeps.

    The frame holds the entity keys, partition_date, every feature of that spec, score, flagged and threshold.
    """
    spec = trained_spec(connection, catalog, model_row)
    missing = missing_feature_days(connection, catalog, spec, start, end)
    if missing:
        details = "; ".join(f"{name}: {', '.join(days[:5])}" for name, days in missing.items())
        raise ScoringError(f"features missing for scoring {model_row['model_version']} ({details}); "
                           f"materialize them first")
    frame = connection.execute(feature_matrix_sql(catalog, spec, start, end, with_outcomes=False)).df()
    predictor = load_model(artifacts, model_row)
    frame["score"] = predictor.predict(frame) if len(frame) else []
    frame["flagged"] = frame["score"] >= threshold
    frame["threshold"] = float(threshold)
    return spec, frame


def _with_inputs(connection: duckdb.DuckDBPyConnection, catalog: Catalog, spec: ModelSpec,
                 scored: pd.DataFrame) -> pd.DataFrame:
    """Keys, date, score, decision and the exact feature values the model saw, as JSON (to explain it later)."""
    keys = ", ".join(quote(key) for key in catalog.sources[spec.entity].keys)
    inputs = ", ".join(f"{quote(name)} := {quote(name)}" for name in spec.features)
    connection.register("scored_rows", scored)
    try:
        return connection.execute(
            f"SELECT {keys}, CAST(partition_date AS DATE) AS partition_date, score, flagged, threshold, "
            f"CAST(to_json(struct_pack({inputs})) AS VARCHAR) AS inputs FROM scored_rows").df()
    finally:
        connection.unregister("scored_rows")


def _provenance(model_row: dict, promotion_id: int | None, dagster_run_id: str) -> dict:
    return {
        "model_version": model_row["model_version"], "spec_hash": model_row["spec_hash"],
        "snapshot_id": model_row["snapshot_id"], "training_run": model_row["training_run"],
        "code_version": code_version(), "scored_at": registry.now(),
        "promotion_id": promotion_id, "dagster_run_id": dagster_run_id,
    }


def _append(connection: duckdb.DuckDBPyConnection, target: str, output: pd.DataFrame, view: str | None,
            keys: list[str]) -> None:
    """Append rows to target (and refresh the latest-per-row view) in one transaction."""
    key_list = ", ".join(quote(key) for key in keys)
    connection.register("new_rows", output)
    connection.execute("BEGIN TRANSACTION")
    try:
        connection.execute(f"CREATE TABLE IF NOT EXISTS {target} AS SELECT * FROM new_rows LIMIT 0")
        connection.execute(f"INSERT INTO {target} BY NAME SELECT * FROM new_rows")
        if view is not None:
            connection.execute(
                f"CREATE OR REPLACE VIEW {view} AS SELECT * FROM {target} QUALIFY row_number() OVER "
                f"(PARTITION BY {key_list} ORDER BY scored_at DESC, promotion_id DESC) = 1")
        pause_point("predictions-written")
        connection.execute("COMMIT")
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    finally:
        connection.unregister("new_rows")


def score_days(connection: duckdb.DuckDBPyConnection, artifacts: ArtifactStore, catalog: Catalog,
               model: ModelSpec, start: dt.date, end: dt.date, dagster_run_id: str) -> dict:
    """Append predictions for [start, end] to predictions.<model>, each row carrying its provenance."""
    champion = registry.champion(connection, model.name)
    if champion is None:
        raise ScoringError(f"no version of '{model.name}' has been deployed yet: train it and pass the gate first")
    model_row = registry.fetch_one(connection, "models", model_version=champion["model_version"])
    evaluation = registry.fetch_one(connection, "evaluations", model=model.name,
                                    training_run=champion["training_run"])
    spec, scored = score_rows(connection, artifacts, catalog, model_row, float(evaluation["summary"]["threshold"]),
                              start, end)
    output = _with_inputs(connection, catalog, spec, scored)
    provenance = _provenance(model_row, int(champion["promotion_id"]), dagster_run_id)
    for name, value in provenance.items():
        output[name] = value
    _append(connection, table("predictions", model.name), output, latest_view(model),
            list(catalog.sources[model.entity].keys))
    return {"rows": len(output), "flagged": int(output["flagged"].sum()), **provenance,
            "scored_at": provenance["scored_at"].isoformat(timespec="seconds")}


def score_shadow_days(connection: duckdb.DuckDBPyConnection, artifacts: ArtifactStore, catalog: Catalog,
                      model: ModelSpec, challenger: dict, start: dt.date, end: dt.date, dagster_run_id: str) -> dict:
    """Append the challenger's predictions for [start, end] to predictions.<model>__shadow, with provenance.

    `challenger` is the challenger's evaluation row. Shadow rows carry the same provenance columns as production
    rows (promotion_id is empty: the challenger was never promoted) plus the champion version they shadowed.
    """
    model_row = registry.fetch_one(connection, "models", model_version=challenger["model_version"])
    if model_row is None:
        raise ScoringError(f"challenger {challenger['model_version']} has no registered model artifact")
    spec, scored = score_rows(connection, artifacts, catalog, model_row, float(challenger["summary"]["threshold"]),
                              start, end)
    output = _with_inputs(connection, catalog, spec, scored)
    provenance = _provenance(model_row, None, dagster_run_id)
    for name, value in provenance.items():
        output[name] = value
    output["promotion_id"] = pd.array([None] * len(output), dtype="Int64")
    champion = registry.champion(connection, model.name)
    output["shadowing"] = pd.array([champion["model_version"] if champion else None] * len(output), dtype="string")
    _append(connection, shadow_table(model), output, None, list(catalog.sources[model.entity].keys))
    return {"rows": len(output), "flagged": int(output["flagged"].sum()), **provenance,
            "scored_at": provenance["scored_at"].isoformat(timespec="seconds")}
