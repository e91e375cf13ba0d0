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
from dataclasses import dataclass

import duckdb
import pandas as pd

from ml_platform import names
from ml_platform.errors import PlatformError
from ml_platform.evaluation.money import OutcomeValues
from ml_platform.monitoring.store import read_days, replace_days
from ml_platform.names import quote
from ml_platform.partitions import days as days_of
from ml_platform.scoring.shadow import outcomes_sql
from ml_platform.specs.catalog import Catalog
from ml_platform.specs.models import ModelSpec
from ml_platform.storage import registry
from ml_platform.records.versions import PartitionVersion
from ml_platform.storage.versions import partition_version, partition_versions, record_versions
from ml_platform.storage.warehouse import date_literal, table_exists

TRAILING_DAYS = 7
JUDGED = ("labelled", "partly labelled")  # the statuses of a day whose realized money is known
HISTORY_DAYS = 90  # stored days read back before a range, for the trailing days of the check


class OutcomesError(PlatformError, LookupError):
    """A scored model version lacks the recorded spec or evaluation its outcomes are judged against."""


@dataclass(frozen=True)
class Promise:
    """What an evaluation promised: money per test day and per scored row, with the day-bootstrap bounds per day."""

    test_days: int
    per_day: float
    per_row: float
    per_day_low: float
    per_day_high: float
    currency: str


def recorded_spec(connection: duckdb.DuckDBPyConnection, model_version: str) -> ModelSpec:
    """The spec a model version was trained with (its label and money are the ones its promise was measured with)."""
    trained = registry.models.by_version(connection, model_version)
    recorded = trained and registry.specs.get(connection, trained.spec_hash)
    if not recorded:
        raise OutcomesError(f"{model_version} has no recorded spec")
    return ModelSpec.model_validate(recorded.payload["model"])


def promise(connection: duckdb.DuckDBPyConnection, model_version: str) -> Promise:
    """The evaluation's promise per day and per row, with the per-day bounds of its day-bootstrap interval."""
    evaluation = registry.evaluations.find(connection, model_version=model_version)
    if evaluation is None:
        raise OutcomesError(f"{model_version} has no evaluation")
    test = evaluation.summary.test
    start, end = (dt.date.fromisoformat(day) for day in test.window)
    days = (end - start).days + 1
    low, high = test.money_interval_95
    return Promise(test_days=days, per_day=test.money / days, per_row=test.money / max(test.rows, 1),
                   per_day_low=low / days, per_day_high=high / days, currency=evaluation.summary.currency)


def day_outcomes(connection: duckdb.DuckDBPyConnection, catalog: Catalog, model: ModelSpec,
                 day: dt.date) -> dict:
    """The day's realized money and counts, or a dict with `status` saying why there is nothing to report yet."""
    if not table_exists(connection, "predictions", model.name):
        return {"status": f"not scored: {names.table_label('predictions', model.name)} does not exist yet"}
    keys = ", ".join(quote(key) for key in catalog.sources[model.entity].keys)
    latest = names.latest_view(model.name)
    versions = connection.execute(f"SELECT model_version, count(*) FROM {latest} WHERE partition_date = "
                                  f"{date_literal(day)} GROUP BY 1 ORDER BY 2 DESC").fetchall()
    if not versions:
        return {"status": f"not scored: no production predictions of {day}"}
    version = versions[0][0]
    spec = recorded_spec(connection, version)
    frame = connection.execute(
        f"WITH production AS (SELECT {keys}, flagged FROM {latest} WHERE partition_date = "
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
    return {"status": JUDGED[0] if len(labelled) == len(frame) else JUDGED[1], "model_version": version,
            "rows_scored": len(frame), "labelled_rows": len(labelled), "flagged": int(flags.sum()),
            "true_positives": int((flags & label).sum()), "false_positives": int((flags & ~label).sum()),
            "realized_money": money, "promised_money": promised.per_day,
            "promised_money_by_rows": promised.per_row * len(labelled), "promised_low": promised.per_day_low,
            "promised_high": promised.per_day_high, "test_days": promised.test_days,
            "currency": promised.currency}


@dataclass(frozen=True)
class Shortfall:
    """The trailing labelled days' realized money against the widened lower bound of the promise."""

    days: int
    first_day: str
    last_day: str
    realized: float
    promised: float
    lower_bound: float
    below: bool
    currency: str

    def figures(self) -> dict[str, float]:
        """The numbers of the judgement, as the realized_money check's metadata."""
        return {"days": self.days, "realized": self.realized, "promised": self.promised,
                "lower_bound": self.lower_bound, "below": self.below}


def shortfall(days: pd.DataFrame, trailing: int = TRAILING_DAYS) -> Shortfall | None:
    """The trailing days' realized money against the widened lower bound of the promise (see the module docstring).

    `days` holds the stored outcome rows, oldest first; None when no labelled day is stored.
    """
    labelled = days[days["status"].isin(JUDGED)].tail(trailing)
    if labelled.empty:
        return None
    k = len(labelled)
    last = labelled.iloc[-1]
    mean = float(last["promised_money"])
    widening = math.sqrt(float(last["test_days"]) / k)
    bound = k * (mean - (mean - float(last["promised_low"])) * widening)
    realized = float(labelled["realized_money"].sum())
    return Shortfall(days=k, first_day=str(labelled["day"].iloc[0])[:10], last_day=str(labelled["day"].iloc[-1])[:10],
                     realized=realized, promised=k * mean, lower_bound=bound, below=bool(realized < bound),
                     currency=str(last["currency"]))


def shortfall_text(result: Shortfall) -> str:
    """One sentence for the realized_money check."""
    currency = result.currency
    return (f"{result.days} labelled day(s) {result.first_day} to {result.last_day}: realized "
            f"{result.realized:,.0f} {currency} against a promise of {result.promised:,.0f} {currency} "
            f"(lower bound {result.lower_bound:,.0f} {currency}: the evaluation's day-bootstrap 95% interval, "
            f"widened for {result.days} day(s))" + (": below the promise" if result.below else ""))


def judged_versions(connection: duckdb.DuckDBPyConnection, catalog: Catalog, model: ModelSpec, start: dt.date,
                    end: dt.date) -> dict[str, PartitionVersion]:
    """{day: version} of the outcomes of [start, end] if judged now: the version of the day's production predictions
    (model and feature data, see scoring.score.scored_versions) and the data version of the entity's day, where
    the labels come from. A day stored at this version was judged from the same predictions and labels."""
    predictions = partition_versions(connection, names.stage_asset("predictions", model.name))
    labels = partition_versions(connection, names.source_asset(model.entity))
    result = {}
    for day in days_of(start, end):
        key = day.isoformat()
        result[key] = partition_version({
            "predictions": predictions[key].version if key in predictions else "absent",
            "labels": labels[key].version if key in labels else "absent"})
    return result


@dataclass(frozen=True)
class JudgedDays:
    """The outcomes of a range of days as stored, and the trailing days judged against the promise."""

    frame: pd.DataFrame  # one row per day of the range (day_outcomes' fields), as stored
    labelled: pd.DataFrame  # the rows of days whose labels are known
    not_judged: str  # "<day>: <status>" of each day not judged, "; "-separated; empty when every day was
    judged: Shortfall | None  # None before any labelled day is stored


def judge_days(connection: duckdb.DuckDBPyConnection, catalog: Catalog, model: ModelSpec, start: dt.date,
               end: dt.date, run_id: str) -> JudgedDays:
    """Value each day of [start, end] in money, store it (replacing those days), and judge the trailing days."""
    versions = judged_versions(connection, catalog, model, start, end)
    rows = [{"day": day, **day_outcomes(connection, catalog, model, day)} for day in days_of(start, end)]
    frame = pd.DataFrame(rows)
    frame["computed_at"], frame["run_id"] = registry.now(), run_id
    replace_days(connection, model.name, "outcomes", frame, days_of(start, end))
    record_versions(connection, names.stage_asset("outcomes", model.name), versions)
    history = read_days(connection, model.name, "outcomes", start - dt.timedelta(days=HISTORY_DAYS), end)
    notes = "; ".join(f"{row['day']}: {row['status']}" for row in rows if row["status"] not in JUDGED)
    return JudgedDays(frame, frame[frame["status"].isin(JUDGED)], notes, shortfall(history))
