"""Realized money of stored production decisions once their labels are known, for every money form: the binary
outcomes shorthand (the four outcome expressions) and the value expression of any task, evaluated per row at the
decision and prediction that were stored when the row was scored.

Scoring reads nothing of the label; this module joins the stored decisions to the entity's labelled rows (of the
recorded spec's label) and values them exactly as the evaluation did (evaluation.decisions.row_money).
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from ml_platform.evaluation.decisions import row_money
from ml_platform.evaluation.money import OutcomeValues
from ml_platform.features.labels import labelled_rows_sql
from ml_platform.names import MONEY_INPUT_PREFIX, quote
from ml_platform.specs.catalog import Catalog
from ml_platform.specs.models import ModelSpec
from ml_platform.specs.sql_reach import require_contained_model
from ml_platform.specs.tasks import value_inputs

OUTCOMES = ("true_positive", "false_positive", "false_negative", "true_negative")


def outcomes_sql(catalog: Catalog, model: ModelSpec, start: dt.date, end: dt.date) -> str:
    """SQL giving each entity row of [start, end] its keys, label and what its money needs: the value of every
    outcome (the binary shorthand) or the value expression's entity columns as `money_input__<column>`."""
    require_contained_model(model)  # the loader refuses such SQL already; a spec built in code must not run it
    rows = catalog.entity_rows(model.entity)
    # a population's keys name a row within its partition, so its rows are matched on the partition too
    keys = ", ".join([*(quote(key) for key in rows.keys), *(["partition_date"] if rows.is_population else [])])
    outcomes = model.money.outcomes
    if outcomes is not None:
        money = "".join(f", CAST(({getattr(outcomes, name)}) AS DOUBLE) AS money_{name}" for name in OUTCOMES)
    else:
        money = "".join(f", {quote(name)} AS {quote(MONEY_INPUT_PREFIX + name)}" for name in value_inputs(model))
    return f"SELECT {keys}, label{money} FROM {labelled_rows_sql(catalog, model, start, end)} AS base"


def realized_per_row(model: ModelSpec, rows: pd.DataFrame, prediction: str, decision: str) -> np.ndarray:
    """Each labelled row's money at its stored decision: `rows` holds the columns of outcomes_sql and the stored
    prediction and decision columns named (a binary threshold model's are `score` and `flagged`)."""
    if model.money.outcomes is not None:
        return OutcomeValues.from_frame(rows).per_row(rows[decision].to_numpy(dtype=bool))
    decisions = rows[decision].to_numpy()
    if model.label.task == "regression" and model.money.decision.kind == "quantity":
        decisions = decisions.astype("float64")
    elif model.label.task != "multiclass":
        decisions = decisions.astype(bool)
    labels = rows["label"].to_numpy()
    if model.label.task == "binary_classification":
        rows = rows.assign(label=labels.astype(bool))
    return np.asarray(row_money(model, rows, rows[prediction].to_numpy(dtype="float64"), decisions),
                      dtype="float64")
