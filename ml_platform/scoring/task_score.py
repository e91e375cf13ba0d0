"""Score days of production rows with a regression or multiclass model (or a binary `top` decision): the
prediction, the decision the model's evaluation chose on its validation window, and the inputs and provenance.

A task predictions table holds, beside the keys, the date, the `inputs` STRUCT and the provenance columns that
binary tables hold too: `prediction` (the predicted number, the probability, or the decided class's probability),
`decision` (a quantity, a yes/no of a top decision, or a class), `decision_parameter` (the offset, rows or share
per day, or NULL for a class decision) and, for a multiclass model, `probability__<class>` for each class. The
names live in ml_platform.names. Binary threshold models keep their own table layout (scoring.score).

A top decision ranks each day's rows, so a batch always holds whole days (features.compute.day_ranges). A class
decision of the most money reads the value expression's entity columns, taken from the entity's source table.
"""

from __future__ import annotations

import datetime as dt

import duckdb
import numpy as np
import pandas as pd

from ml_platform import names
from ml_platform.evaluation.decisions import decide
from ml_platform.evaluation.task_comparison import chosen_of
from ml_platform.features.compute import day_ranges, feature_matrix_sql
from ml_platform.names import MONEY_INPUT_PREFIX, quote
from ml_platform.records.registry import ModelRecord
from ml_platform.records.tasks import TaskEvaluationRecord
from ml_platform.scoring import contributions as stored_contributions
from ml_platform.scoring.inputs import COLUMN as INPUTS, packed_sql, writable_sql
from ml_platform.scoring.staging import BATCH_ROWS, VIEW as STAGED, require_insertion_order, staged_rows
from ml_platform.scoring.writes import latest_partition_by, prediction_writes
from ml_platform.specs.catalog import Catalog
from ml_platform.specs.models import ModelSpec
from ml_platform.specs.sql_reach import require_contained_model
from ml_platform.specs.tasks import value_inputs
from ml_platform.records.versions import PartitionVersion
from ml_platform.training.fit import load_model
from ml_platform.training.inference import ScoringError, require_features, trained_spec


def decision_summary(spec: ModelSpec, decisions: list[np.ndarray]) -> str:
    """What was decided for the scored rows, in words (the scoring's metadata)."""
    values = np.concatenate(decisions) if decisions else np.array([])
    if not len(values):
        return "no rows"
    kind = spec.money.decision.kind
    if kind == "quantity":
        numbers = values.astype("float64")
        return f"mean decision {numbers.mean():,.1f} (from {numbers.min():,.1f} to {numbers.max():,.1f})"
    if kind in ("top", "threshold"):
        return f"{int(values.astype(bool).sum()):,} of {len(values):,} rows acted on"
    counts = pd.Series(values).value_counts()
    return ", ".join(f"{name} {int(counts.get(name, 0)):,}" for name in spec.label.classes)


def _money_inputs(connection: duckdb.DuckDBPyConnection, catalog: Catalog, spec: ModelSpec,
                  rows: pd.DataFrame) -> pd.DataFrame:
    """The rows with the value expression's entity columns as `money_input__<column>` (a most-money class
    decision needs them; a left merge keeps the rows' order)."""
    needed = value_inputs(spec)
    if not needed:
        return rows
    keys = list(catalog.entity_rows(spec.entity).keys)
    selected = ", ".join([*(quote(key) for key in keys),
                          *(f"{quote(name)} AS {quote(MONEY_INPUT_PREFIX + name)}" for name in needed)])
    connection.register("task_scoring_keys", rows[keys])
    try:
        entity = connection.execute(
            f"SELECT {selected} FROM {names.source_table(spec.entity)} SEMI JOIN task_scoring_keys USING "
            f"({', '.join(quote(key) for key in keys)})").df()
    finally:
        connection.unregister("task_scoring_keys")
    return rows.merge(entity, on=keys, how="left", validate="one_to_one")


def task_scores(connection: duckdb.DuckDBPyConnection, catalog: Catalog, spec: ModelSpec, predictor,
                 record: TaskEvaluationRecord, frame: pd.DataFrame) -> pd.DataFrame:
    """A task model's prediction, decision, parameter (and class probabilities) for `frame`'s rows, in order: what
    batch scoring stores, and what serving answers (the same function)."""
    predictions = predictor.predict(frame[list(spec.features)]) if len(frame) else np.array([], dtype="float64")
    multiclass = spec.label.task == "multiclass"
    if multiclass and not len(frame):
        predictions = np.zeros((0, len(spec.label.classes)))
    rows = _money_inputs(connection, catalog, spec, frame)
    decisions, value_prediction = decide(spec, chosen_of(record), rows, predictions)
    scores = pd.DataFrame({names.PREDICTION_COLUMN: np.asarray(value_prediction, dtype="float64"),
                           names.DECISION_COLUMN: decisions,
                           names.DECISION_PARAMETER_COLUMN: np.full(len(frame), np.nan if record.decision_parameter
                                                                   is None else record.decision_parameter)})
    if multiclass:
        scores[names.DECISION_COLUMN] = scores[names.DECISION_COLUMN].astype(object)
        for position, label_class in enumerate(spec.label.classes):
            scores[names.probability_column(label_class)] = predictions[:, position]
    return scores


def _output_sql(catalog: Catalog, spec: ModelSpec, columns: dict[str, str], inputs: str, scores: list[str],
                contributions: str = "") -> str:
    """The stored rows of the batch: each staged row with its scores (columns of the same staged table), the
    `contributions` item when stored, then the constants."""
    keys = ", ".join(quote(key) for key in catalog.entity_rows(spec.entity).keys)
    constants = "".join(f", CAST(? AS {kind}) AS {quote(name)}" for name, kind in columns.items())
    return (f"SELECT {keys}, CAST(CAST(partition_date AS DATE) AS TIMESTAMP) AS partition_date, "
            f"{', '.join(quote(name) for name in scores)}, {inputs} AS {INPUTS}{contributions}{constants} "
            f"FROM {STAGED}")


def score_task_into(connection: duckdb.DuckDBPyConnection, artifacts, catalog: Catalog, trained: ModelRecord,
                    record: TaskEvaluationRecord | None, start: dt.date, end: dt.date, name: str,
                    constants: dict, types: dict[str, str], latest: bool,
                    versions: dict[str, PartitionVersion] | None = None,
                    contributions: bool = False) -> tuple[int, str]:
    """Score [start, end] batch by batch into `predictions.<name>` (and, when `latest`, refresh its latest-per-row
    view), stored at once (scoring.writes), with each row's feature contributions when `contributions`
    (scoring.contributions); returns the rows written and what was decided, in words."""
    if record is None:
        raise ScoringError(f"{trained.model_version} has no stored task evaluation: its decision is unknown")
    spec = trained_spec(connection, catalog, trained)
    require_contained_model(spec)
    require_features(connection, catalog, spec, trained, start, end)
    require_insertion_order(connection)
    predictor = load_model(artifacts, trained)
    parameters = list(constants.values())
    contributed = stored_contributions.column_sql(predictor, spec) if contributions else ""
    rows, decided = 0, []
    latest_by = latest_partition_by(catalog, spec) if latest else None
    with prediction_writes(connection, name, latest_by, versions, spec.name) as writes:
        for first, last in day_ranges(connection, catalog, spec.entity, start, end, BATCH_ROWS):
            with staged_rows(connection, feature_matrix_sql(catalog, spec, first, last, False)) as staged:
                features = staged.features([name for name in staged.types if name in spec.features])
                frame = connection.sql(f"SELECT * FROM {STAGED}").df()
                scores = task_scores(connection, catalog, spec, predictor, record, frame)
                decided.append(scores[names.DECISION_COLUMN].to_numpy())
                columns = list(scores.columns)
                if contributions:
                    scores = pd.concat([scores.reset_index(drop=True), stored_contributions.batch_columns(
                        predictor, spec, frame, scores[names.DECISION_COLUMN].to_numpy())], axis=1)
                staged.add_frame(scores)
                empty = _output_sql(catalog, spec, types, packed_sql(spec.features), columns, contributed)
                connection.execute(f"{writes.create} AS SELECT * FROM ({empty}) LIMIT 0", parameters)
                if contributions:
                    stored_contributions.add_column(connection, writes.table)
                select = _output_sql(catalog, spec, types, writable_sql(connection, writes.table, features), columns,
                                     contributed)
                rows += connection.execute(f"INSERT INTO {writes.table} BY NAME {select}",
                                           parameters).fetchall()[0][0]
    return rows, decision_summary(spec, decided)
