"""Read back what monitoring stored: the drift alarm the retraining sensor asks about, and a window's summary."""

from __future__ import annotations

import datetime as dt

import duckdb
import pandas as pd

from ml_platform.monitoring.drift import PSI_ALARM, SCORE
from ml_platform.monitoring.store import read_days

ALARM_WINDOW_DAYS = 7  # scored days looked at, the latest first
ALARM_MIN_DAYS = 5  # drifted on at least this many of them: one odd day (a storm) is not a reason to retrain


def drift_alarm(connection: duckdb.DuckDBPyConnection, model_name: str, as_of: dt.date) -> str | None:
    """Why the model should be retrained because of drift as of a day, or None.

    Looks at the latest 7 measured days up to as_of, of the model version measured last: a feature (or the score)
    whose PSI is above 0.25 on at least 5 of them raises the alarm.
    """
    rows = read_days(connection, model_name, "drift", as_of - dt.timedelta(days=366), as_of)
    if rows.empty:
        return None
    latest = rows.sort_values(["day", "computed_at"]).iloc[-1]["model_version"]
    rows = rows[rows["model_version"] == latest]
    days = sorted(rows["day"].unique())[-ALARM_WINDOW_DAYS:]
    window = rows[rows["day"].isin(days)]
    above = window[window["psi"] > PSI_ALARM].groupby("feature").agg(days=("day", "nunique"), peak=("psi", "max"))
    above = above[above["days"] >= ALARM_MIN_DAYS].sort_values(["days", "peak"], ascending=False)
    if above.empty:
        return None
    reasons = [f"{'prediction drift: PSI of the score' if name == SCORE else f'feature drift: PSI of {name}'} above "
               f"{PSI_ALARM} on {int(row.days)} of the last {len(days)} scored days (max {row.peak:.2f})"
               for name, row in above.iterrows()]
    return f"{latest}: " + "; ".join(reasons)


def monitoring_summary(connection: duckdb.DuckDBPyConnection, model_name: str, start: dt.date,
                       end: dt.date) -> dict:
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
    labelled = outcomes[outcomes["status"].isin(["labelled", "partly labelled"])] if not outcomes.empty else outcomes
    for _, row in labelled.iterrows():
        days.setdefault(_text(row["day"]), {}).update({"realized_money": float(row["realized_money"]),
                                                       "promised_money": float(row["promised_money"])})
    return {
        "model": model_name, "start": start.isoformat(), "end": end.isoformat(),
        "days": [{"day": day, **values} for day, values in sorted(days.items())],
        "days_measured": int(drift["day"].nunique()) if not drift.empty else 0,
        "days_drifted": int(drift.loc[drift["psi"] > PSI_ALARM, "day"].nunique()) if not drift.empty else 0,
        "days_labelled": len(labelled),
        "realized_money": float(labelled["realized_money"].sum()) if len(labelled) else 0.0,
        "promised_money": float(labelled["promised_money"].sum()) if len(labelled) else 0.0,
        "currency": str(labelled["currency"].iloc[0]) if len(labelled) else None,
    }


def _text(day) -> str:
    return pd.Timestamp(day).date().isoformat()
