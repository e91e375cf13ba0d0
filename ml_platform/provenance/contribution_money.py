"""Contributions in money, where the decision makes it meaningful (docs/attributions.md, "Contributions in money").

Once a prediction's outcome is known (its label mature), the spec's money values say what the row's decision
made. For each top contribution, explain also values the decision the row would have got without it, the
prediction with that contribution taken out, on the same outcome:

- a threshold decision (binary): without a contribution the probability is `1 / (1 + exp(-(score - c)))` on the
  log-odds scale (`p - c` on the probability scale); the decision flips when that crosses the threshold, and the
  money of the flip is the money of the other decision on this row's outcome (the outcomes shorthand: flagging
  against not flagging; a value expression: evaluated at that prediction and decision). A contribution that does
  not flip the decision changes the money only where the value expression reads the prediction;
- a quantity decision (regression): without a contribution the prediction is `value - c` and the quantity
  `(value - c) x scale + offset` (the offset chosen on validation, as stored with the row); the money change is the
  value expression at that quantity minus at the quantity decided.

Top-k decisions depend on the day's other rows and class decisions on every class's raw score: explain says so
instead of valuing them. Before the label is mature, it says when it will be.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd

from ml_platform import names
from ml_platform.evaluation.decisions import ChosenDecision, decide, row_money
from ml_platform.evaluation.money import OutcomeValues
from ml_platform.evaluation.realized_rows import outcomes_sql
from ml_platform.features.labels import labels_known_through, local_today, matures_on
from ml_platform.names import quote
from ml_platform.provenance.contributions import PredictionContributions
from ml_platform.specs.catalog import Catalog
from ml_platform.specs.models import ModelSpec
from ml_platform.training.attributions import probability

# two predictions closer than this are the same prediction (the stored and the recomputed one)
SAME_PREDICTION = 1e-6


@dataclass(frozen=True)
class ContributionMoney:
    """What the row's decision would have been without one contribution, and its money on the row's outcome."""

    feature: str
    prediction_without: float  # probability (binary) or value (regression)
    decision_without: str
    money_without: float
    change: float  # money without it minus the money of the decision the row got


@dataclass(frozen=True)
class MoneyView:
    """The row's decision valued on its outcome, and each top contribution's part in that money; `why_not` says
    why it is not valued (a decision money cannot follow per contribution, or an outcome not known yet)."""

    currency: str
    kind: str = ""  # threshold or quantity, when valued
    decision: str = ""
    money: float | None = None
    contributions: tuple[ContributionMoney, ...] = ()
    why_not: str | None = None


def _outcome_row(connection: duckdb.DuckDBPyConnection, catalog: Catalog, model: ModelSpec, keys: dict[str, str],
                 day: dt.date) -> pd.DataFrame:
    """The row's label and what its money reads (evaluation.realized_rows), or no row."""
    where = " AND ".join(f"CAST({quote(name)} AS VARCHAR) = ?" for name in keys)
    return connection.execute(f"SELECT * FROM ({outcomes_sql(catalog, model, day, day)}) WHERE {where}",
                              list(keys.values())).df()


def _threshold_money(model: ModelSpec, outcome: pd.DataFrame, predictions: np.ndarray, threshold: float
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Decisions (flagged) and money of a threshold decision at each prediction, on the row's outcome."""
    flags, _ = decide(model, ChosenDecision("threshold", "threshold", threshold, 0.0, (), ()),
                      pd.DataFrame(index=range(len(predictions))), predictions)
    rows = outcome.loc[outcome.index.repeat(len(predictions))].reset_index(drop=True)
    rows = rows.assign(label=rows["label"].astype(bool))
    if model.money.outcomes is not None:
        return flags, OutcomeValues.from_frame(rows).per_row(flags)
    return flags, np.asarray(row_money(model, rows, predictions, flags), dtype="float64")


def _quantity_money(model: ModelSpec, outcome: pd.DataFrame, predictions: np.ndarray, offset: float
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Quantities decided at each prediction and their money on the row's outcome."""
    rows = outcome.loc[outcome.index.repeat(len(predictions))].reset_index(drop=True)
    quantities, _ = decide(model, ChosenDecision("quantity", "offset", offset, 0.0, (), ()), rows, predictions)
    return quantities, np.asarray(row_money(model, rows, predictions, quantities), dtype="float64")


def _without(result: PredictionContributions, top: int) -> np.ndarray:
    """The reported prediction without each of the top contributions."""
    shown = result.contributions[:top]
    if result.scale == "log-odds":
        return np.array([probability(result.output - item.contribution) for item in shown], dtype="float64")
    return np.array([result.reported - item.contribution for item in shown], dtype="float64")


def contributions_money(connection: duckdb.DuckDBPyConnection, catalog: Catalog, model: ModelSpec,
                        keys: dict[str, str], row: dict, result: PredictionContributions, top: int) -> MoneyView:
    """The money view of a stored prediction's top contributions (see the module docstring)."""
    currency = model.money.currency
    kind = "threshold" if model.money.outcomes is not None else model.money.decision.kind
    if kind not in ("threshold", "quantity"):
        return MoneyView(currency, why_not=f"a {kind} decision is not valued per contribution ("
                         + ("it depends on the day's other rows" if kind == "top" else
                            "it weighs every class's score") + ")")
    if result.explained_class is not None or (kind == "quantity" and result.scale != "value"):
        return MoneyView(currency, why_not=f"the contributions are on the {result.scale} scale, not the "
                                           f"prediction this decision reads")
    if kind == "quantity" and abs(result.output - result.reported) > SAME_PREDICTION:
        return MoneyView(currency, why_not="the contributions add up to the raw score, which the objective's link "
                                           "turns into the value: removing one does not remove it from the value")
    day = pd.Timestamp(row["partition_date"]).date()
    if labels_known_through(connection, catalog, model, day, local_today(catalog, model)) is None:
        return MoneyView(currency, why_not=f"its outcome is not known yet (the label of {day} is mature on "
                                           f"{matures_on(catalog, model, day)})")
    outcome = _outcome_row(connection, catalog, model, keys, day)
    if len(outcome) != 1 or pd.isna(outcome["label"].iloc[0]):
        return MoneyView(currency, why_not=f"its outcome is not in the entity's rows of {day}")
    without = _without(result, top)
    reported = np.array([result.reported], dtype="float64")
    if kind == "threshold":
        threshold = float(row["threshold"] if "threshold" in row else row[names.DECISION_PARAMETER_COLUMN])
        decided, money = _threshold_money(model, outcome, reported, threshold)
        flags, values = _threshold_money(model, outcome, without, threshold)
        words = lambda flagged: "flagged" if flagged else "not flagged"
    else:
        offset = float(row[names.DECISION_PARAMETER_COLUMN])
        decided, money = _quantity_money(model, outcome, reported, offset)
        flags, values = _quantity_money(model, outcome, without, offset)
        words = lambda quantity: f"{quantity:.6g}"
    items = tuple(ContributionMoney(item.feature, float(prediction), words(decision), float(value),
                                    float(value - money[0]))
                  for item, prediction, decision, value in zip(result.contributions[:top], without, flags, values))
    return MoneyView(currency, kind, words(decided[0]), float(money[0]), items)


def money_text(view: MoneyView) -> list[str]:
    """The lines explain prints about the contributions' money."""
    if view.why_not is not None:
        return [f"In money: not valued: {view.why_not}"]
    lines = [f"In money (on this row's outcome, valued with the spec's money values): the decision taken, "
             f"{view.decision}, made {view.money:,.2f} {view.currency}; without each contribution:"]
    width = max([len(item.feature) for item in view.contributions] or [0])
    for item in view.contributions:
        flips = view.kind == "threshold" and item.decision_without != view.decision
        lines.append(f"  {item.feature:<{width}}  decision {item.decision_without}"
                     f"{' (flips)' if flips else ''}: {item.money_without:,.2f} {view.currency} "
                     f"({item.change:+,.2f} {view.currency})")
    return lines
