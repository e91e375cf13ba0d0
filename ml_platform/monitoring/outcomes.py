"""Realized money: what the champion's production decisions of a day made, once the day's labels are known, against
what its evaluation promised.

The promise is the evaluation's test money per test day (and per scored row). Its uncertainty is the day-resampled
bootstrap interval of the test total: divided by the N test days it bounds the mean money of N days; the mean of k
days varies sqrt(N / k) times more, so the `realized_money` check widens the half-width below the mean by that factor
before it compares the trailing k (at most 7) labelled days with k times the promise. A shortfall below that bound is
unlikely (about 2.5 %) for a model that performs as evaluated, so it warns, without blocking anything.
"""

from __future__ import annotations

import datetime as dt
import math

import duckdb
import pandas as pd

from ml_platform.evaluation.money import OutcomeValues
from ml_platform.scoring.score import latest_view
from ml_platform.scoring.shadow import outcomes_sql
from ml_platform.specs.catalog import Catalog
from ml_platform.specs.models import ModelSpec
from ml_platform.storage import registry
from ml_platform.storage.warehouse import date_literal, quote, table_exists

TRAILING_DAYS = 7


def recorded_spec(connection: duckdb.DuckDBPyConnection, model_version: str) -> ModelSpec:
    """The spec a model version was trained with (its label and money are the ones its promise was measured with)."""
    model_row = registry.fetch_one(connection, "models", model_version=model_version)
    recorded = model_row and registry.fetch_one(connection, "specs", spec_hash=model_row["spec_hash"])
    if not recorded:
        raise LookupError(f"{model_version} has no recorded spec")
    return ModelSpec.model_validate(recorded["payload"]["model"])


def promise(connection: duckdb.DuckDBPyConnection, model_version: str) -> dict:
    """The evaluation's promise per day and per row, with the per-day bounds of its day-bootstrap interval."""
    evaluation = registry.fetch_one(connection, "evaluations", model_version=model_version)
    if evaluation is None:
        raise LookupError(f"{model_version} has no evaluation")
    test = evaluation["summary"]["test"]
    start, end = (dt.date.fromisoformat(day) for day in test["window"])
    days = (end - start).days + 1
    low, high = test["money_interval_95"]
    return {"test_days": days, "per_day": test["money"] / days, "per_row": test["money"] / max(test["rows"], 1),
            "per_day_low": low / days, "per_day_high": high / days, "currency": evaluation["summary"]["currency"]}


def day_outcomes(connection: duckdb.DuckDBPyConnection, catalog: Catalog, model: ModelSpec,
                 day: dt.date) -> dict:
    """The day's realized money and counts, or a dict with `status` saying why there is nothing to report yet."""
    if not table_exists(connection, "predictions", model.name):
        return {"status": f"not scored: predictions.{model.name} does not exist yet"}
    keys = ", ".join(quote(key) for key in catalog.sources[model.entity].keys)
    versions = connection.execute(f"SELECT model_version, count(*) FROM {latest_view(model)} WHERE partition_date = "
                                  f"{date_literal(day)} GROUP BY 1 ORDER BY 2 DESC").fetchall()
    if not versions:
        return {"status": f"not scored: no production predictions of {day}"}
    version = versions[0][0]
    spec = recorded_spec(connection, version)
    frame = connection.execute(
        f"WITH production AS (SELECT {keys}, flagged FROM {latest_view(model)} WHERE partition_date = "
        f"{date_literal(day)} AND model_version = ?), outcomes AS ({outcomes_sql(catalog, spec, day, day)}) "
        f"SELECT * FROM production LEFT JOIN outcomes USING ({keys})", [version]).df()
    labelled = frame[frame["label"].notna()].reset_index(drop=True)
    if labelled.empty:
        return {"status": f"no labels yet: none of the {len(frame)} rows scored on {day} has a known label",
                "model_version": version, "rows_scored": len(frame)}
    flags = labelled["flagged"].to_numpy(dtype=bool)
    label = labelled["label"].to_numpy(dtype=bool)
    money = OutcomeValues.from_frame(labelled).money(flags)
    promised = promise(connection, version)
    return {"status": "labelled" if len(labelled) == len(frame) else "partly labelled", "model_version": version,
            "rows_scored": len(frame), "labelled_rows": len(labelled), "flagged": int(flags.sum()),
            "true_positives": int((flags & label).sum()), "false_positives": int((flags & ~label).sum()),
            "realized_money": money, "promised_money": promised["per_day"],
            "promised_money_by_rows": promised["per_row"] * len(labelled), "promised_low": promised["per_day_low"],
            "promised_high": promised["per_day_high"], "test_days": promised["test_days"],
            "currency": promised["currency"]}


def shortfall(days: pd.DataFrame, trailing: int = TRAILING_DAYS) -> dict | None:
    """The trailing days' realized money against the widened lower bound of the promise (see the module docstring).

    `days` holds the stored outcome rows, oldest first; None when no labelled day is stored.
    """
    labelled = days[days["status"].isin(["labelled", "partly labelled"])].tail(trailing)
    if labelled.empty:
        return None
    k = len(labelled)
    last = labelled.iloc[-1]
    mean = float(last["promised_money"])
    widening = math.sqrt(float(last["test_days"]) / k)
    bound = k * (mean - (mean - float(last["promised_low"])) * widening)
    realized = float(labelled["realized_money"].sum())
    return {"days": k, "first_day": str(labelled["day"].iloc[0])[:10], "last_day": str(labelled["day"].iloc[-1])[:10],
            "realized": realized, "promised": k * mean, "lower_bound": bound, "below": bool(realized < bound),
            "currency": str(last["currency"])}


def shortfall_text(result: dict) -> str:
    """One sentence for the realized_money check."""
    currency = result["currency"]
    return (f"{result['days']} labelled day(s) {result['first_day']} to {result['last_day']}: realized "
            f"{result['realized']:,.0f} {currency} against a promise of {result['promised']:,.0f} {currency} "
            f"(lower bound {result['lower_bound']:,.0f} {currency}: the evaluation's day-bootstrap 95% interval, "
            f"widened for {result['days']} day(s))" + (": below the promise" if result["below"] else ""))

