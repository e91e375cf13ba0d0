"""One model version's answers for one day, computed once: the day's feature matrix as batch scoring reads it
(`features.compute.feature_matrix_sql`), scored as a whole by the same predictor and decided by the same
functions as batch scoring, then held by key, a row made JSON-ready when a request asks for it.

Scoring the whole day is what the batch does, and a tree model scores each row on its own, so a served score is
bit-identical to the batch score of the same row; the day is scored once (about 12 ms for 900 rows of the demo's
578-tree champion on the machine's two threads: `models.CallingThreadLightGBM`) instead of once per request.
Scoring only a first request's rows (tried) was no faster for a burst of first requests: the same feature matrix
kept to a few keys costs about half the whole day's, and each later request then paid for its own rows or the day.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd

from ml_platform import names
from ml_platform.features.compute import feature_matrix_sql
from ml_platform.scoring.task_score import task_scores
from ml_platform.serving.keys import held, served_keys
from ml_platform.serving.log import plain
from ml_platform.serving.models import LoadedModel
from ml_platform.specs.catalog import Catalog
from ml_platform.storage import registry


@dataclass(frozen=True)
class ServedRow:
    """One answered row, JSON-ready: the entity keys, its day, the inputs the model saw, score and decision."""

    keys: dict
    partition_date: str
    inputs: dict
    score: object
    decision: object
    decision_parameter: object
    features_served: str


def _as_is(value):
    return value


def _float(value):
    return None if value != value else value  # NaN is the one value != itself


def _day(value) -> str:
    return pd.Timestamp(value).date().isoformat()


def _column(values: pd.Series) -> tuple[list, object]:
    """A column's values as Python objects (one `tolist`, in C) and how one of them becomes JSON-ready, as
    `log.plain_values` converts it: floats with NaN as null, integers and booleans as they are, others by
    `log.plain`."""
    dtype = values.dtype
    if isinstance(dtype, np.dtype) and dtype.kind == "f":
        return values.tolist(), _float
    if isinstance(dtype, np.dtype) and dtype.kind in "iub":
        return values.tolist(), _as_is
    return values.tolist(), plain


class ScoredDay:
    """The answers of one model version for every row of one day its filter keeps, found by key identity.

    The day is scored whole, but a request reads a few of its rows: each column is kept as one list and a row is
    made JSON-ready when it is first asked for (`get`, then kept), not every row of the day before the first
    answer leaves (that was about 9 ms of the first request of a day of 900 rows and 25 features)."""

    def __init__(self, positions: dict, keys: dict, inputs: dict, date: tuple, answers: dict, features_served: str):
        self._positions = positions  # key identity (a value, or a tuple of values) -> row position
        self._keys, self._inputs, self._date, self._answers = keys, inputs, date, answers
        self._features_served = features_served
        self._made: dict[int, ServedRow] = {}  # by position: rows already made (racing requests make equal rows)

    def __len__(self) -> int:
        return len(self._positions)

    def get(self, identity) -> ServedRow | None:
        """The answered row of this key identity, or None when the day holds no such row."""
        position = self._positions.get(identity)
        if position is None:
            return None
        made = self._made.get(position)
        if made is None:
            made = self._made[position] = self._make(position)
        return made

    def _make(self, position: int) -> ServedRow:
        """The row at `position` with JSON-ready values, converted as `log.plain_values` converts a column."""
        def plain_of(columns: dict) -> dict:
            return {name: convert(values[position]) for name, (values, convert) in columns.items()}

        answers = plain_of(self._answers)
        values, convert = self._date
        return ServedRow(keys=plain_of(self._keys), partition_date=convert(values[position]),
                         inputs=plain_of(self._inputs), score=answers["score"], decision=answers["decision"],
                         decision_parameter=answers["decision_parameter"], features_served=self._features_served)


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


def score_day(cursor: duckdb.DuckDBPyConnection, catalog: Catalog, model: LoadedModel, day: dt.date,
              features_served: str) -> ScoredDay:
    """Read, score and decide every row of `day` for the model version, as batch scoring does."""
    keys = served_keys(catalog, model.spec.entity)
    frame = cursor.execute(feature_matrix_sql(catalog, model.spec, day, day, with_outcomes=False)).df()
    if not len(frame):
        return ScoredDay({}, {}, {}, ([], _day), {}, features_served)
    decided = _decide(cursor, catalog, model, frame)
    # a population row's partition is part of its key: given and answered as a day
    key_columns = {key: (frame[key].tolist(), _day) if key == "partition_date" else _column(frame[key])
                   for key in keys}
    found = held(list(zip(*(key_columns[key][0] for key in keys))))  # a DATE key as requests hold it
    if len(keys) == 1:
        positions = {row[0]: position for position, row in enumerate(found)}
    else:
        positions = {identity: position for position, identity in enumerate(found)}
    return ScoredDay(positions, key_columns, {name: _column(frame[name]) for name in model.spec.features},
                     (frame["partition_date"].tolist(), _day),
                     {name: _column(decided[name]) for name in ("score", "decision", "decision_parameter")},
                     features_served)
