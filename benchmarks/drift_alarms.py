"""How often the drift alarm fires on days scored by the demo's champion: the former measure (each day's rows alone)
against the pooled one (7 days, features constant within a day compared across days).

Run the demo with more scored days first, then measure its project (read only, nothing is stored):

    ml-platform --project DIR demo --score-days 61       # scores 2013-11-01 to 2013-12-31
    python -m benchmarks drift-alarms --project DIR

For each scored day it measures both ways, then asks the alarm rule the retraining sensor asks (the score's PSI above
0.25 on at least 5 of the last 7 measured days) on each day, as the sensor would have on that day.
"""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

import duckdb
import pandas as pd

from ml_platform.features.library import load_catalog
from ml_platform.monitoring.alarms import alarm_of
from ml_platform.monitoring.drift import PSI_ALARM, SCORE, WINDOW_DAYS, drift_frame
from ml_platform.project import Project
from ml_platform.storage.artifacts import ArtifactStore


def scored_range(connection: duckdb.DuckDBPyConnection, model: str) -> tuple[dt.date, dt.date]:
    """The first and last day of the model's production predictions."""
    first, last = connection.execute(f'SELECT min(partition_date), max(partition_date) FROM predictions."{model}"'
                                     ).fetchone()
    return pd.Timestamp(first).date(), pd.Timestamp(last).date()


def alarm_days(frame: pd.DataFrame) -> list[str]:
    """The days on which the alarm rule, asked that day, fires."""
    frame = frame.assign(computed_at=pd.Timestamp(0))
    days = sorted(frame["day"].unique())
    return [str(day) for day in days if alarm_of(frame[frame["day"] <= day])]


def describe(name: str, frame: pd.DataFrame) -> str:
    """One paragraph: days measured, days with the score or a feature above PSI_ALARM, days the alarm fires."""
    days = frame["day"].nunique()
    score = frame[(frame["feature"] == SCORE) & (frame["psi"] > PSI_ALARM)]["day"].nunique()
    feature = frame[(frame["feature"] != SCORE) & (frame["psi"] > PSI_ALARM)]["day"].nunique()
    fired = alarm_days(frame)
    top = frame[frame["feature"] != SCORE].groupby("feature")["psi"].median().sort_values(ascending=False).head(5)
    return (f"{name}: {days} scored days; score PSI above {PSI_ALARM} on {score}; some feature above it on "
            f"{feature}; the alarm fires on {len(fired)} of {days} days"
            + (f" ({fired[0]} to {fired[-1]})" if fired else "")
            + "\n  features with the highest median PSI: " + ", ".join(f"{n} {v:.2f}" for n, v in top.items()))


def main() -> None:
    """Measure a project's scored days both ways and print what the alarm would have said."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", required=True, help="a project folder the demo ran in")
    parser.add_argument("--model", default="flight_delay")
    arguments = parser.parse_args()
    project = Project.from_environment(Path(arguments.project))
    catalog = load_catalog(project.specs_dir, project.root)
    model = catalog.models[arguments.model]
    artifacts = ArtifactStore(root=str(project.storage.artifacts))
    with duckdb.connect(str(project.storage.warehouse), read_only=True) as connection:
        start, end = scored_range(connection, model.name)
        daily = drift_frame(connection, artifacts, model, start, end, window_days=1, by_partition=False)
        pooled = drift_frame(connection, artifacts, model, start, end, window_days=WINDOW_DAYS)
    print(f"{model.name}, days scored {start} to {end}:")
    print(describe("each day's rows alone (before)", daily))
    print(describe(f"pooled over {WINDOW_DAYS} days, constant features across days (now)", pooled))


if __name__ == "__main__":
    main()
