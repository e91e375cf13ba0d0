"""Answer one predict request from one served state: find the requested rows, read or compute their features,
score them with the loaded model and decide as batch scoring decides."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd

from ml_platform import names
from ml_platform.features.timing import prediction_time
from ml_platform.names import quote
from ml_platform.scoring.task_score import _task_scores as task_scores
from ml_platform.serving.errors import BadRequestError
from ml_platform.serving.features import ON_DEMAND, FeatureReader, identity
from ml_platform.serving.models import LoadedModel
from ml_platform.serving.requests import PredictRequest
from ml_platform.specs.catalog import Catalog
from ml_platform.storage import registry



@dataclass(frozen=True)
class Served:
    """Everything one request reads, swapped as a whole: the copy of the warehouse, its feature reader, the
    champion (and shadow challenger) of each model, and how far the data reaches."""

    connection: duckdb.DuckDBPyConnection
    reader: FeatureReader
    catalog: Catalog
    champions: dict[str, LoadedModel]
    shadows: dict[str, LoadedModel]
    data_until: dict[str, dt.datetime]  # per model: the end of the last day its entity holds rows for
    key_types: dict[str, dict[str, str]]  # per model: its entity's key columns and their DuckDB types


def key_types(connection: duckdb.DuckDBPyConnection, catalog: Catalog, model: LoadedModel) -> dict[str, str]:
    """The entity's key columns and their DuckDB types, as the copy stores them (read while the state is built:
    a DuckDB connection serves one call at a time, so requests use cursors of their own)."""
    rows = catalog.entity_rows(model.spec.entity)
    relation = connection.sql(f"SELECT {', '.join(quote(key) for key in rows.keys)} FROM "
                              f"{names.source_table(rows.name)} LIMIT 0")
    return {name: str(kind) for name, kind in zip(relation.columns, relation.types)}


def _row_days(reader: FeatureReader, catalog: Catalog, model: LoadedModel, request: PredictRequest) -> list:
    """Each requested row's day, in order; an unknown key is a 404 naming it."""
    keys = list(catalog.entity_rows(model.spec.entity).keys)
    days = reader.entity_days(model.spec.entity)
    found = [days.get(identity(values, keys)) for values in request.keys]
    unknown = [values for values, day in zip(request.keys, found) if day is None]
    if unknown:
        raise BadRequestError(f"unknown key: no row of '{model.spec.entity}' has {unknown[0]}"
                              f"{f' (and {len(unknown) - 1} more unknown rows)' if len(unknown) > 1 else ''}", 404)
    return found


def _features_known_at(model: LoadedModel, catalog: Catalog, day: dt.date) -> dt.datetime:
    """When every feature of a row of `day` is known: the latest prediction time of the model's feature sets."""
    return max(prediction_time(feature_set.known_by, day) for feature_set in catalog.feature_sets_of(model.spec))


def _require_time(request: PredictRequest, served: Served, model: LoadedModel, days: list[dt.date]) -> None:
    if request.prediction_time is None:
        return
    until = served.data_until[model.name]
    if request.prediction_time > until:
        raise BadRequestError(f"prediction_time: {request.prediction_time.isoformat()} is in the future of the "
                              f"data: '{model.spec.entity}' holds rows up to {until.isoformat()}")
    for day in days:
        known = _features_known_at(model, served.catalog, day)
        if request.prediction_time < known:
            raise BadRequestError(f"prediction_time: {request.prediction_time.isoformat()} is before "
                                  f"{known.isoformat()}, when the features of the rows of {day} are known; "
                                  f"they cannot be predicted yet")


def _decide(cursor: duckdb.DuckDBPyConnection, catalog: Catalog, model: LoadedModel,
            rows: pd.DataFrame) -> pd.DataFrame:
    """score, decision and decision_parameter per row, as batch scoring decides (the same functions)."""
    if model.threshold is not None:
        scores = model.predictor.predict(rows[list(model.spec.features)])
        return pd.DataFrame({"score": scores, "decision": scores >= model.threshold,
                             "decision_parameter": model.threshold})
    record = registry.task_evaluations.get(cursor, model.trained.model, model.trained.training_run)
    decided = task_scores(cursor, catalog, model.spec, model.predictor, record, rows)
    return decided.rename(columns={names.PREDICTION_COLUMN: "score", names.DECISION_COLUMN: "decision",
                                   names.DECISION_PARAMETER_COLUMN: "decision_parameter"})


def score_request(served: Served, model: LoadedModel, request: PredictRequest) -> pd.DataFrame:
    """One row per requested key, in the request's order: keys, partition_date, the features, score, decision,
    decision_parameter and how the features were served."""
    reader, catalog = served.reader, served.catalog
    keys = list(catalog.entity_rows(model.spec.entity).keys)
    found = _row_days(reader, catalog, model, request)
    days = sorted(set(found))
    _require_time(request, served, model, days)
    how = reader.computed_days(model.spec, days, force=request.features == ON_DEMAND)
    parts = []
    with served.connection.cursor() as cursor:
        for day in days:
            wanted = [identity(values, keys) for values, row_day in zip(request.keys, found) if row_day == day]
            rows = reader.rows(model.spec, model.trained.model_version, day, wanted)
            if len(rows):
                rows = pd.concat([rows, _decide(cursor, catalog, model, rows)], axis=1)
                rows["features_served"] = how[day]
                parts.append(rows)
    scored = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0] if parts else \
        pd.DataFrame(columns=keys)
    if len(scored) < len(request.keys):
        present = {identity(values, keys) for values in scored[keys].to_dict(orient="records")}
        first = next(values for values in request.keys if identity(values, keys) not in present)
        raise BadRequestError(f"key {first}: the row exists but model '{model.name}' does not score it (its "
                              f"filter: {model.spec.filter})", 422)
    order = {identity(values, keys): position for position, values in enumerate(request.keys)}
    positions = [order[identity(values, keys)] for values in scored[keys].to_dict(orient="records")]
    return scored.iloc[np.argsort(positions, kind="stable")].reset_index(drop=True)
