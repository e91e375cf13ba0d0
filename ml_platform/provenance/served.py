"""Explain a served (online) prediction from the server's append-only log: found by its request id, or the latest
one served for an entity row, then reported as `ml-platform explain` reports a batch prediction."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import duckdb

from ml_platform.names import REQUEST_ID_COLUMN, SERVING_FOLDER, served_log_name
from ml_platform.provenance.explain import (Explanation, _entity_keys, _key_values, explanation_of,
                                            explanation_text)
from ml_platform.provenance.contributions import DEFAULT_TOP
from ml_platform.provenance.records import ProvenanceInputError, recorded_spec
from ml_platform.storage.artifacts import ArtifactStore

ONLINE = "online"  # the dagster_run_id shown for a served prediction: no Dagster run made it


def served_rows(data_dir: Path, model: str) -> list[dict]:
    """Every champion row the server logged for the model, oldest first (shadow rows left out)."""
    path = data_dir / SERVING_FOLDER / served_log_name(model)
    if not path.exists():
        raise ProvenanceInputError(f"model '{model}' has no served predictions (no log at {path}): serve it with "
                                   f"`ml-platform serve` first")
    with open(path, encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle if line.strip()]
    return [row for row in rows if not row["shadow"]]


def _as_stored(row: dict, task: bool) -> dict:
    """A logged row in the shape of a batch predictions table's row, as explanation_text reads it."""
    stored = {**row, "partition_date": dt.date.fromisoformat(row["partition_date"]),
              "scored_at": dt.datetime.fromisoformat(row["served_at"]), "dagster_run_id": ONLINE}
    if task:
        stored.update(prediction=row["score"])
    else:
        stored.update(flagged=row["decision"], threshold=row["decision_parameter"])
    return stored


def explain_served(connection: duckdb.DuckDBPyConnection, data_dir: Path, model: str, key: str | None,
                   request_id: str | None, store: ArtifactStore) -> Explanation:
    """The explanation of one served prediction: of request_id (and key, when the request held several rows), or
    the latest served for key."""
    rows = served_rows(data_dir, model)
    entity, columns = _entity_keys(connection, model)
    keys = _key_values(key, columns, entity) if key is not None else None
    if request_id is not None:
        rows = [row for row in rows if row[REQUEST_ID_COLUMN] == request_id]
        if not rows:
            raise ProvenanceInputError(f"no prediction of '{model}' was served for request {request_id}")
    if keys is not None:
        # a population row's served keys name its partition too: KEY gives the entity's keys
        rows = [row for row in rows if {name: str(row["keys"].get(name)) for name in keys} == keys]
        if not rows:
            raise ProvenanceInputError(f"no prediction of '{model}' was served for {entity} "
                                       + ", ".join(f"{name} '{value}'" for name, value in keys.items())
                                       + (f" in request {request_id}" if request_id else ""))
    if len({json.dumps(row["keys"], sort_keys=True) for row in rows}) > 1:
        raise ProvenanceInputError(f"request {request_id} served {len(rows)} rows: give KEY too to choose one")
    latest = rows[-1]
    spec = recorded_spec(connection, latest["spec_hash"])
    task = not isinstance(latest["decision"], bool) or spec.payload["model"]["money"].get("decision") is not None
    return explanation_of(connection, store, model, {name: str(value) for name, value in latest["keys"].items()},
                          entity, _as_stored(latest, task), [])


def served_explanation_text(result: Explanation, full_spec: bool = False, top: int = DEFAULT_TOP) -> str:
    """The report of a served prediction: the batch report, its scoring line saying which request served it."""
    row = result.prediction
    text = explanation_text(result, full_spec, top)
    return text.replace(f"by Dagster run {ONLINE}",
                        f"online, request {row[REQUEST_ID_COLUMN]} (features {row['features_served']}"
                        f"{', prediction time ' + row['prediction_time'] if row['prediction_time'] else ''})")
