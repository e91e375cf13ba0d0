"""Read back what monitoring stored: the drift alarm the retraining sensor asks about, and a window's summary."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import duckdb
import pandas as pd

from ml_platform.monitoring.drift import PSI_ALARM, SCORE
from ml_platform.evaluation.realized import JUDGED, Verdict, verdict_of_rows
from ml_platform.monitoring.store import read_days

ALARM_WINDOW_DAYS = 7  # scored days looked at, the latest first
ALARM_MIN_DAYS = 5  # drifted on at least this many of them: one odd day (a storm) is not a reason to retrain


def drift_alarm(connection: duckdb.DuckDBPyConnection, model_name: str, as_of: dt.date) -> str | None:
    """Why the model should be retrained because of drift as of a day, or None.

    Looks at the latest 7 measured days up to as_of, of the model version measured last: the alarm is prediction
    drift, the score's PSI, pooled over the 7 days ending on each of them (see `drift`), above 0.25 on at least 5 of
    them. Feature drift alone does not raise it: a feature may move (November is colder than the training months)
    without the model's scores moving; its `feature_drift` check warns, and the alarm names the features drifting
    most as context.
    """
    return alarm_of(read_days(connection, model_name, "drift", as_of - dt.timedelta(days=366), as_of))


def alarm_of(rows: pd.DataFrame) -> str | None:
    """The drift alarm of stored drift rows (day, model_version, feature, psi, computed_at) up to a day, or None."""
    if rows.empty:
        return None
    latest = rows.sort_values(["day", "computed_at"]).iloc[-1]["model_version"]
    rows = rows[rows["model_version"] == latest]
    days = sorted(rows["day"].unique())[-ALARM_WINDOW_DAYS:]
    window = rows[rows["day"].isin(days)]
    scores = window[window["feature"] == SCORE]
    drifted = scores[scores["psi"] > PSI_ALARM]
    if drifted["day"].nunique() < ALARM_MIN_DAYS:
        return None
    features = window[(window["feature"] != SCORE) & (window["psi"] > PSI_ALARM)].groupby("feature")["day"] \
        .nunique().sort_values(ascending=False)
    context = ", ".join(f"{name} ({count} days)" for name, count in features.head(3).items())
    return (f"{latest}: prediction drift: PSI of the score (pooled over 7 days) above {PSI_ALARM} on "
            f"{drifted['day'].nunique()} of the last {len(days)} scored days (max {drifted['psi'].max():.2f})"
            + (f"; features drifting most: {context}" if context else ""))


@dataclass(frozen=True)
class MonitoredDay:
    """What monitoring stored of one day; a measure not taken (not measured, not labelled) is None."""

    day: str  # ISO date
    max_feature_psi: float | None = None
    top_feature: str | None = None  # the feature of max_feature_psi
    model_version: str | None = None  # the version that scored most of the day's rows
    rows: int | None = None
    prediction_psi: float | None = None
    realized_money: float | None = None
    promised_money: float | None = None


@dataclass(frozen=True)
class MonitoringSummary:
    """A window's drift and outcomes, day by day, and their totals."""

    model: str
    start: str  # ISO dates
    end: str
    days: tuple[MonitoredDay, ...]
    days_measured: int
    days_drifted: int  # days with some feature's (or the score's) pooled PSI above PSI_ALARM
    days_labelled: int
    realized_money: float
    promised_money: float
    currency: str | None  # None before a day is labelled
    verdicts: tuple[Verdict, ...] = ()  # realized against promised, one per model version judged, in order
    days_prediction_drift: int = 0  # days with the score's pooled PSI above PSI_ALARM
    drifting_features: tuple[str, ...] = ()  # "<feature> <psi> (<scope>)" above PSI_ALARM on the last day, worst first


def version_verdicts(labelled: pd.DataFrame, grain: str = "daily") -> tuple[Verdict, ...]:
    """The verdict of each model version's judged days among stored outcome rows, the first judged first."""
    if not len(labelled):
        return ()
    ordered = labelled.sort_values("day")
    versions = list(dict.fromkeys(ordered["model_version"]))
    return tuple(verdict_of_rows(ordered[ordered["model_version"] == version], grain) for version in versions)


def monitoring_summary(connection: duckdb.DuckDBPyConnection, model_name: str, start: dt.date,
                       end: dt.date, grain: str = "daily") -> MonitoringSummary:
    """Per day of [start, end]: the largest feature PSI, the score's PSI, realized and promised money; and totals."""
    drift = read_days(connection, model_name, "drift", start, end)
    outcomes = read_days(connection, model_name, "outcomes", start, end)
    days: dict[str, dict] = {}
    if not drift.empty:
        features = drift[drift["feature"] != SCORE]
        for day, group in features.groupby("day"):
            top = group.loc[group["psi"].idxmax()]
            days.setdefault(_text(day), {}).update({"max_feature_psi": float(top["psi"]), "top_feature": top["feature"],
                                                    "model_version": top["model_version"], "rows": int(top["rows"])})
        for _, row in drift[drift["feature"] == SCORE].iterrows():
            days.setdefault(_text(row["day"]), {})["prediction_psi"] = float(row["psi"])
    labelled = outcomes[outcomes["status"].isin(JUDGED)] if not outcomes.empty else outcomes
    for _, row in labelled.iterrows():
        days.setdefault(_text(row["day"]), {}).update({"realized_money": float(row["realized_money"]),
                                                       "promised_money": float(row["promised_money"])})
    return MonitoringSummary(
        model=model_name, start=start.isoformat(), end=end.isoformat(),
        days=tuple(MonitoredDay(day, **values) for day, values in sorted(days.items())),
        days_measured=int(drift["day"].nunique()) if not drift.empty else 0,
        days_drifted=int(drift.loc[drift["psi"] > PSI_ALARM, "day"].nunique()) if not drift.empty else 0,
        days_labelled=len(labelled),
        realized_money=float(labelled["realized_money"].sum()) if len(labelled) else 0.0,
        promised_money=float(labelled["promised_money"].sum()) if len(labelled) else 0.0,
        currency=str(labelled["currency"].iloc[0]) if len(labelled) else None,
        verdicts=version_verdicts(labelled, grain),
        days_prediction_drift=int(drift.loc[(drift["feature"] == SCORE) & (drift["psi"] > PSI_ALARM), "day"].nunique())
        if not drift.empty else 0,
        drifting_features=_drifting_on_the_last_day(drift))


def _drifting_on_the_last_day(drift: pd.DataFrame) -> tuple[str, ...]:
    if drift.empty:
        return ()
    last = drift[(drift["day"] == drift["day"].max()) & (drift["feature"] != SCORE) & (drift["psi"] > PSI_ALARM)]
    scope = last["scope"] if "scope" in last else pd.Series("rows", index=last.index)
    return tuple(f"{row.feature} {row.psi:.2f} ({scope[index]})"
                 for index, row in last.sort_values("psi", ascending=False).iterrows())


def _text(day) -> str:
    return pd.Timestamp(day).date().isoformat()
