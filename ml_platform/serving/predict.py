"""Answer one predict request from one served state: find the requested rows, read or compute their features,
score them with the loaded model and decide as batch scoring decides."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import duckdb

from ml_platform.features.compute import entity_table
from ml_platform.features.timing import prediction_time
from ml_platform.names import PARTITION_START_COLUMN, quote
from ml_platform.serving.errors import BadRequestError
from ml_platform.serving.features import ON_DEMAND, FeatureReader
from ml_platform.serving.keys import identity, served_keys
from ml_platform.serving.models import LoadedModel
from ml_platform.serving.requests import PredictRequest, shown
from ml_platform.serving.scored_day import ServedRow
from ml_platform.specs.catalog import Catalog


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
    """The columns a request names a row by (`served_keys`) and their DuckDB types, as the copy stores them (read
    while the state is built: a DuckDB connection serves one call at a time, so requests use cursors of their
    own)."""
    keys = served_keys(catalog, model.spec.entity)
    relation = connection.sql(f"SELECT {', '.join(quote(key) for key in keys)} FROM "
                              f"{entity_table(catalog, model.spec.entity)} LIMIT 0")
    return {name: str(kind) for name, kind in zip(relation.columns, relation.types)}


def _row_days(served: Served, model: LoadedModel, request: PredictRequest) -> list:
    """Each requested row's day, in order; an unknown key is a 404 naming it."""
    keys = served_keys(served.catalog, model.spec.entity)
    days = served.reader.entity_days(model.spec.entity)
    found = [days.get(identity(values, keys)) for values in request.keys]
    unknown = [values for values, day in zip(request.keys, found) if day is None]
    if unknown:
        raise BadRequestError(f"unknown key: no row of '{model.spec.entity}' has "
                              f"{shown(unknown[0], served.key_types[model.name])}"
                              f"{f' (and {len(unknown) - 1} more unknown rows)' if len(unknown) > 1 else ''}", 404)
    return found


def _features_known_at(model: LoadedModel, catalog: Catalog, row_time: dt.date | dt.datetime) -> dt.datetime:
    """When every feature of a row of this time is known: the latest prediction time of the model's feature
    sets (a population row's time is its period's start: its hour, or its partition's first day)."""
    return max(prediction_time(feature_set.known_by, row_time)
               for feature_set in catalog.feature_sets_of(model.spec))


def _require_time(request: PredictRequest, served: Served, model: LoadedModel, days: list[dt.date]) -> None:
    if request.prediction_time is None:
        return
    until = served.data_until[model.name]
    if request.prediction_time > until:
        raise BadRequestError(f"prediction_time: {request.prediction_time.isoformat()} is in the future of the "
                              f"data: '{model.spec.entity}' holds rows up to {until.isoformat()}")
    hourly = PARTITION_START_COLUMN in served.key_types[model.name]
    times = sorted({values[PARTITION_START_COLUMN] for values in request.keys}) if hourly else days
    for row_time in times:
        known = _features_known_at(model, served.catalog, row_time)
        if request.prediction_time < known:
            rows = f"the row of {row_time.isoformat()}" if hourly else f"the rows of {row_time}"
            raise BadRequestError(f"prediction_time: {request.prediction_time.isoformat()} is before "
                                  f"{known.isoformat()}, when the features of {rows} are known; "
                                  f"they cannot be predicted yet")


def score_request(served: Served, model: LoadedModel, request: PredictRequest) -> list[ServedRow]:
    """One answered row per requested key, in the request's order: keys, partition_date, the inputs, score,
    decision, decision_parameter and how the features were served."""
    reader, catalog = served.reader, served.catalog
    keys = served_keys(catalog, model.spec.entity)
    found = _row_days(served, model, request)
    days = sorted(set(found))
    _require_time(request, served, model, days)
    how = reader.computed_days(model.spec, days, force=request.features == ON_DEMAND)
    scored = {day: reader.scored_day(model, day, how[day]) for day in days}
    answered = []
    for values, day in zip(request.keys, found):
        row = scored[day].get(identity(values, keys))
        if row is None:
            raise BadRequestError(f"key {shown(values, served.key_types[model.name])}: the row exists but model "
                                  f"'{model.name}' does not score it (its filter: {model.spec.filter})", 422)
        answered.append(row)
    return answered
