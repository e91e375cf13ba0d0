"""Each prediction's feature contributions, stored by batch scoring when the spec asks (`scoring: {contributions:
true}`), so that `ml-platform explain` reads them instead of recomputing.

The column (names.CONTRIBUTIONS_COLUMN) is a STRUCT: the method, the scale, the expected value and a MAP of feature
-> contribution; expected value + the contributions = the raw score of the row (training/attributions.py). A
multiclass model's are those of the decided class's raw score, as `explain` shows them. They are exact TreeSHAP of
a LightGBM model (`Booster.predict(pred_contrib=True)` on the whole batch), moved into DuckDB as float64 columns of
one DataFrame, never row by row: the STRUCT is packed in SQL. Rows scored with contributions off hold NULL.
"""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd

from ml_platform.names import CONTRIBUTIONS_COLUMN, quote
from ml_platform.specs.models import ModelSpec
from ml_platform.training.algorithms import THREADS, LightGBMPredictor
from ml_platform.training.attributions import TREE_SHAP
from ml_platform.training.inference import ScoringError

COLUMN_TYPE = "STRUCT(method VARCHAR, scale VARCHAR, expected_value DOUBLE, features MAP(VARCHAR, DOUBLE))"
BASE = "contribution__expected_value"
PREFIX = "contribution__"


def stored_by(spec: ModelSpec) -> bool:
    """Whether scoring stores contributions for this model: its current spec says so (off by default)."""
    return spec.scoring is not None and spec.scoring.contributions


def _column(position: int) -> str:
    return f"{PREFIX}{position}"


def _lightgbm(predictor, spec: ModelSpec) -> LightGBMPredictor:
    if not isinstance(predictor, LightGBMPredictor):
        raise ScoringError(f"model '{spec.name}' asks for stored contributions (scoring.contributions: true), but "
                           f"the model that scores it is not a LightGBM model (artifact format {predictor.format}): "
                           f"contributions are stored for LightGBM models only; turn scoring.contributions off "
                           f"until a LightGBM model is live")
    return predictor


def scale_of(predictor: LightGBMPredictor) -> str:
    """The scale of a LightGBM model's raw score: log-odds for a binary objective, else the value (a class's raw
    score for multiclass)."""
    objective = str(predictor.booster.params.get("objective", "") or "")
    binary = predictor.booster.num_model_per_iteration() == 1 and objective.startswith(("binary", "cross_entropy"))
    return "log-odds" if binary else "value"


def batch_columns(predictor, spec: ModelSpec, frame: pd.DataFrame, decisions=None) -> pd.DataFrame:
    """The batch's contributions as float64 columns (expected value, then one per model column), one row per row
    of `frame`, in order; a multiclass model's are those of each row's decided class (`decisions`)."""
    predictor = _lightgbm(predictor, spec)
    width = len(predictor.layout.columns) + 1
    classes = predictor.booster.num_model_per_iteration()
    if len(frame):
        matrix = np.asarray(predictor.booster.predict(predictor.layout.matrix(frame), pred_contrib=True,
                                                      num_threads=THREADS))
    else:
        matrix = np.zeros((0, width * classes))
    if classes > 1:
        known = list(spec.label.classes or [])
        decided = pd.Series(np.asarray(decisions, dtype=object)).astype(str)
        unknown = sorted(set(decided) - set(known))
        if unknown:
            raise ScoringError(f"model '{spec.name}' decided classes {unknown} that are not its label's classes "
                               f"{known}: their contributions cannot be stored")
        index = decided.map({name: position for position, name in enumerate(known)}).to_numpy(dtype="int64")
        matrix = matrix.reshape(len(frame), classes, width)[np.arange(len(frame)), index]
    columns = {BASE: matrix[:, -1]}
    columns.update({_column(position): matrix[:, position] for position in range(width - 1)})
    return pd.DataFrame(columns, index=frame.index).reset_index(drop=True)


def column_sql(predictor, spec: ModelSpec) -> str:
    """The SELECT item that packs a batch's contribution columns into the stored STRUCT."""
    predictor = _lightgbm(predictor, spec)
    keys = ", ".join("'" + name.replace("'", "''") + "'" for name in predictor.layout.columns)
    values = ", ".join(quote(_column(position)) for position in range(len(predictor.layout.columns)))
    return (f", CAST(struct_pack(method := '{TREE_SHAP}', scale := '{scale_of(predictor)}', expected_value := "
            f"{quote(BASE)}, features := map([{keys}], [{values}])) AS {COLUMN_TYPE}) AS {CONTRIBUTIONS_COLUMN}")


def add_column(connection: duckdb.DuckDBPyConnection, target: str) -> None:
    """Give an existing predictions table the contributions column (its earlier rows hold NULL there)."""
    connection.execute(f"ALTER TABLE {target} ADD COLUMN IF NOT EXISTS {CONTRIBUTIONS_COLUMN} {COLUMN_TYPE}")

