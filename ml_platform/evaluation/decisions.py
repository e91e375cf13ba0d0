"""Money for every task from one mechanism: the spec's decision, and its per-row value expression.

A row's money is `money.value` evaluated in DuckDB over the row's entity columns (the snapshot's money inputs),
its `label`, its `prediction` and the `decision` taken. The decision's free parameter is chosen on validation to
make the most money, and the same decision is then applied to the test rows:

- threshold (binary): act when the probability is at least t;
- top (binary, regression): act on the k rows of highest prediction of each day (or the top share of each day),
  k at most the spec's budget;
- quantity (regression): decide `prediction x scale + offset`, the offset taken from the spec's range;
- class (multiclass): decide the most likely class, or the class of highest expected money (no free parameter).

For a yes/no decision each row's money is two evaluations, acting and not acting (`OutcomeValues`), whatever the
parameter; for a quantity, the expression is evaluated over rows x candidate offsets in one query. The binary
`outcomes` shorthand is the threshold decision over the snapshot's four money columns, exactly as before.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd

from ml_platform.evaluation.money import MoneyError, OutcomeValues, best_threshold, candidate_thresholds, money_curve
from ml_platform.names import MONEY_INPUT_PREFIX
from ml_platform.specs.models import ModelSpec
from ml_platform.specs.tasks import value_inputs

SHARE_STEPS = 100  # shares tried for a top-share budget: 0, budget/100, ..., budget


@dataclass(frozen=True)
class ChosenDecision:
    """The decision chosen on validation: its kind, free parameter (None for a class decision) and the money curve
    over the candidates it was chosen from."""

    kind: str
    parameter_name: str | None  # threshold, rows_per_day, share_per_day, offset
    parameter: float | None
    validation_money: float
    candidates: tuple[float, ...]
    validation_curve: tuple[float, ...]


@dataclass(frozen=True)
class Decided:
    """A decision applied to rows: what was decided for each row, its money, and the money of knowing the label."""

    decisions: np.ndarray  # booleans (acted on), numbers (quantity) or class text
    per_row: np.ndarray
    # per row: the money of a decision made knowing the label (yes/no: the better of acting and not; quantity: the
    # label itself; class: the actual class), the ceiling a model is measured against
    perfect: np.ndarray

    def money(self) -> float:
        """Total money of the decisions."""
        return float(self.per_row.sum())


def _inputs(model: ModelSpec, rows: pd.DataFrame) -> pd.DataFrame:
    """The value expression's view of the rows: each money input under its entity column's name, and the label."""
    frame = pd.DataFrame({name: rows[MONEY_INPUT_PREFIX + name].to_numpy() for name in value_inputs(model)})
    frame["label"] = rows["label"].to_numpy()
    return frame


def _evaluate(model: ModelSpec, table: pd.DataFrame) -> pd.Series:
    """The value expression for each row of a frame, failing on rows where it gives no number."""
    connection = duckdb.connect()
    try:
        connection.register("money_rows", table)
        money = connection.execute(f"SELECT CAST(({model.money.value}) AS DOUBLE) AS money FROM money_rows").df()
    finally:
        connection.close()
    values = money["money"].to_numpy(dtype="float64", na_value=np.nan)
    missing = int((~np.isfinite(values)).sum())
    if missing:
        raise MoneyError(f"the spec's money.value gives no value (NULL or infinite) for {missing} row(s) of "
                         f"'{model.name}'")
    return values


def row_money(model: ModelSpec, rows: pd.DataFrame, prediction: np.ndarray, decision: np.ndarray) -> np.ndarray:
    """The value expression for each row with the given prediction and decision."""
    table = _inputs(model, rows)
    table["prediction"] = np.asarray(prediction, dtype="float64")
    table["decision"] = decision
    return _evaluate(model, table)


def outcome_values(model: ModelSpec, rows: pd.DataFrame, scores: np.ndarray) -> OutcomeValues:
    """Each row's money when acted on and when not (yes/no decisions): the four outcome columns of the shorthand,
    or the value expression evaluated with decision true and false."""
    if model.money.outcomes is not None:
        return OutcomeValues.from_frame(rows)
    acted = row_money(model, rows, scores, np.ones(len(rows), dtype=bool))
    not_acted = row_money(model, rows, scores, np.zeros(len(rows), dtype=bool))
    return OutcomeValues(acted, not_acted)


def day_ranks(rows: pd.DataFrame, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row's rank within its day by prediction, highest first (1, 2, ...; ties in row order), and its day's
    number of rows."""
    frame = pd.DataFrame({"day": rows["partition_date"].to_numpy(), "score": np.asarray(scores, dtype="float64"),
                          "position": np.arange(len(rows))})
    ordered = frame.sort_values(["day", "score", "position"], ascending=[True, False, True], kind="stable")
    ranks = np.empty(len(frame), dtype="int64")
    ranks[ordered["position"].to_numpy()] = ordered.groupby("day").cumcount().to_numpy() + 1
    sizes = frame.groupby("day")["score"].transform("size").to_numpy()
    return ranks, sizes


def top_key(model: ModelSpec, rows: pd.DataFrame, scores: np.ndarray) -> tuple[str, np.ndarray, np.ndarray]:
    """A top decision as `acted when key <= parameter`: the parameter's name, each row's key and the candidates."""
    decision = model.money.decision
    ranks, sizes = day_ranks(rows, scores)
    if decision.count is not None:
        return "rows_per_day", ranks.astype("float64"), np.arange(decision.count + 1, dtype="float64")
    return "share_per_day", ranks / sizes, np.linspace(0.0, decision.share, SHARE_STEPS + 1)


def key_curve(key: np.ndarray, values: OutcomeValues, candidates: np.ndarray) -> np.ndarray:
    """Money at each candidate when a row is acted on if its key is at most the candidate."""
    order = np.argsort(key, kind="stable")
    gain = np.concatenate([[0.0], np.cumsum((values.if_flagged - values.if_not_flagged)[order])])
    return values.do_nothing() + gain[np.searchsorted(key[order], candidates, side="right")]


def offsets_money(model: ModelSpec, rows: pd.DataFrame, predictions: np.ndarray,
                   offsets: list[float]) -> np.ndarray:
    """Total money at each offset of a quantity decision: one query over rows x offsets."""
    decision = model.money.decision
    table = _inputs(model, rows)
    table["prediction"] = np.asarray(predictions, dtype="float64")
    candidates = pd.DataFrame({"candidate": np.arange(len(offsets)), "offset_value": offsets})
    select = (f"SELECT money_rows.*, prediction * {float(decision.scale)!r} + money_offsets.offset_value AS decision, "
              f"money_offsets.candidate FROM money_rows CROSS JOIN money_offsets")
    value = model.money.value
    connection = duckdb.connect()
    try:
        connection.register("money_rows", table)
        connection.register("money_offsets", candidates)
        result = connection.execute(
            f"SELECT candidate, sum(CAST(({value}) AS DOUBLE)) AS money, count(*) - count(CAST(({value}) AS DOUBLE)) "
            f"AS missing FROM ({select}) GROUP BY candidate ORDER BY candidate").df()
    finally:
        connection.close()
    if int(result["missing"].sum()) or len(result) != len(offsets):
        raise MoneyError(f"the spec's money.value gives no value (NULL) for {int(result['missing'].sum())} row "
                         f"evaluation(s) of '{model.name}' over the offsets tried")
    return result["money"].to_numpy(dtype="float64")


def choose(model: ModelSpec, rows: pd.DataFrame, predictions: np.ndarray) -> ChosenDecision:
    """The decision's free parameter that makes the most money on these rows (validation only), with its curve;
    ties go to acting on fewer rows (the higher threshold, the smaller budget) and to the smaller offset."""
    decision = model.money.decision
    kind = "threshold" if decision is None else decision.kind
    if kind == "threshold":
        values = outcome_values(model, rows, predictions)
        threshold, money = best_threshold(predictions, values)
        candidates = candidate_thresholds(predictions)
        return ChosenDecision(kind, "threshold", threshold, money, tuple(candidates.tolist()),
                              tuple(money_curve(predictions, values, candidates).tolist()))
    if kind == "top":
        values = outcome_values(model, rows, predictions)
        name, key, candidates = top_key(model, rows, predictions)
        curve = key_curve(key, values, candidates)
        best = int(np.flatnonzero(curve == curve.max())[0])
        return ChosenDecision(kind, name, float(candidates[best]), float(curve[best]), tuple(candidates.tolist()),
                              tuple(curve.tolist()))
    if kind == "quantity":
        offsets = decision.offset.values()
        curve = offsets_money(model, rows, predictions, offsets)
        best = int(np.flatnonzero(curve == curve.max())[0])
        return ChosenDecision(kind, "offset", offsets[best], float(curve[best]), tuple(offsets), tuple(curve.tolist()))
    decided = apply(model, ChosenDecision(kind, None, None, 0.0, (), ()), rows, predictions)
    return ChosenDecision(kind, None, None, decided.money(), (), ())


def _class_decisions(model: ModelSpec, rows: pd.DataFrame, probabilities: np.ndarray) -> np.ndarray:
    """The class decided for each row: the most likely, or the one of highest expected money."""
    classes = np.array(model.label.classes, dtype=object)
    if model.money.decision.rule == "most_likely":
        return classes[np.argmax(probabilities, axis=1)]
    expected = np.zeros(probabilities.shape)
    for position, decided in enumerate(classes):  # K x K evaluations per row: each decision under each label
        for actual_position, actual in enumerate(classes):
            table = rows.assign(label=actual)
            money = row_money(model, table, probabilities[:, position], np.full(len(rows), decided, dtype=object))
            expected[:, position] += probabilities[:, actual_position] * money
    return classes[np.argmax(expected, axis=1)]


def decide(model: ModelSpec, chosen: ChosenDecision, rows: pd.DataFrame,
           predictions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The chosen decision for each row, without its label (what production scoring stores), and the `prediction`
    the value expression reads with it: the probability or number, or the decided class's probability."""
    kind = chosen.kind
    if kind == "threshold":
        return np.asarray(predictions) >= chosen.parameter, np.asarray(predictions, dtype="float64")
    if kind == "top":
        _, key, _ = top_key(model, rows, predictions)
        return key <= chosen.parameter, np.asarray(predictions, dtype="float64")
    if kind == "quantity":
        quantities = np.asarray(predictions, dtype="float64") * model.money.decision.scale + chosen.parameter
        return quantities, np.asarray(predictions, dtype="float64")
    classes = list(model.label.classes)
    decided = _class_decisions(model, rows, predictions)
    return decided, predictions[np.arange(len(rows)), [classes.index(value) for value in decided]]


def apply(model: ModelSpec, chosen: ChosenDecision, rows: pd.DataFrame, predictions: np.ndarray) -> Decided:
    """The chosen decision applied to rows (the test window's, or production's once labels are known)."""
    kind = chosen.kind
    decisions, value_prediction = decide(model, chosen, rows, predictions)
    if kind in ("threshold", "top"):
        values = outcome_values(model, rows, predictions)
        return Decided(decisions, values.per_row(decisions), np.maximum(values.if_flagged, values.if_not_flagged))
    if kind == "quantity":
        labels = rows["label"].to_numpy(dtype="float64")
        return Decided(decisions, row_money(model, rows, predictions, decisions),
                       row_money(model, rows, predictions, labels))
    classes = list(model.label.classes)
    actual = rows["label"].to_numpy(dtype=object)
    actual_probability = predictions[np.arange(len(rows)), [classes.index(value) for value in actual]]
    return Decided(decisions, row_money(model, rows, value_prediction, decisions),
                   row_money(model, rows, actual_probability, actual))
