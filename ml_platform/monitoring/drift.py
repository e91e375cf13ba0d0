"""Feature and prediction drift of scored days against the champion's training snapshot, as population stability.

A day's measure is pooled over a window: the rows of the day and of the days scored among the 6 before it (7
calendar days) that the same model version scored. Each feature is binned as the champion's training rows were (see
`bins`; a fixed-seed sample of REFERENCE_ROWS of them when its snapshot has more), and scores at the deciles of the
champion's scores on its evaluation test window; a snapshot's bins are binned once and stored (reference_store). Rule of thumb: below 0.1 stable, 0.1 to 0.25 moving, above 0.25 drifted.

A feature constant within a partition (one value per day, like the day of the week or the days to a holiday, or per
day and group, like the eve's weather per airport) says nothing within one day: all of a day's rows share one
value, so comparing them with the training rows measures that day, not drift. Such features are found in the
training rows (at least 99% of the days, or of the day-and-group cells for a feature with at most 20 values, hold one
value) and compared across partitions: the distribution of their per-partition values in training against the
window's per-partition values, in fewer bins (one per 5 partition values a window holds, 2 to 10).
"""

from __future__ import annotations

import datetime as dt
from contextlib import closing
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import duckdb
import numpy as np
import pandas as pd

from ml_platform import grains, names
from ml_platform.errors import PlatformError
from ml_platform.evaluation.predictions_file import read_predictions
from ml_platform.evaluation.task_comparison import stored_test_rows
from ml_platform.monitoring.bins import Bins, feature_psi, psi, score_psi
from ml_platform.monitoring import reference_store
from ml_platform.monitoring.reference_store import (REFERENCE_SEED, FeatureBins, FeatureBinsQuestion,
                                                    stored_feature_bins)
from ml_platform.monitoring.store import replace_days
from ml_platform.names import quote
from ml_platform.reuse import remembered
from ml_platform.scoring.inputs import COLUMN as INPUTS, stored_fields
from ml_platform.scoring.score import uses_task_scoring
from ml_platform.snapshots.columns import sample_split, split_condition
from ml_platform.specs.models import ModelSpec
from ml_platform.storage import registry
from ml_platform.storage.artifacts import ArtifactStore
from ml_platform.storage.warehouse import date_literal, table_exists

__all__ = ["PSI_ALARM", "SCORE", "WINDOW_DAYS", "DriftMeasure", "MonitoringError", "Reference", "champion_reference",
           "day_drift", "drift_frame", "feature_psi", "measure_drift", "partition_level", "psi", "reference_of", "score_psi",
           "scored_days", "window_drift"]

PSI_ALARM = 0.25  # the feature_drift and prediction_drift checks warn above it; drift_alarm counts days above it
WINDOW_DAYS = 7  # a day's drift pools the rows of the scored days among the 7 calendar days ending on it
CONSTANT_SHARE = 0.99  # a feature is constant within partitions when it holds one value in this share of them
GROUP_MAX_VALUES = 20  # a feature with at most this many values in training may group a day's rows into partitions
UNITS_PER_BIN = 5  # partition values per bin of a partition-level feature's window
SCORE = "__score__"  # the row of the drift table that holds prediction drift
_FIELD = "input:"  # prefix of the columns of scored_days' frames that hold a feature's value
_DAY = "__partition_day"  # the training rows' partition date, as the reference reads it
_STAGED = "monitored_rows"  # temporary table of the latest predictions of the days being measured


class MonitoringError(PlatformError, RuntimeError):
    """What monitoring needs is missing: no champion, a day not scored, or a reference that cannot be read."""


@dataclass
class Reference:
    """A version's reference populations, binned: each feature's training rows (or, for a feature constant within
    partitions, its training partitions' values), and its test-window scores."""

    model_version: str
    features: dict[str, Bins]
    scores: Bins
    partition_level: dict[str, tuple[str, ...]] = field(default_factory=dict)  # feature -> grouping features

    def scope(self, feature: str) -> str:
        """How a feature is compared: "rows", or "days" / "days x <group>" for a partition-level one."""
        if feature not in self.partition_level:
            return "rows"
        return " x ".join(["days", *self.partition_level[feature]])


def _units(frame: pd.DataFrame, day: str, groups: list[str], feature: str) -> pd.Series:
    """One value per partition (day, or day and group): the first value present in it (missing if none is)."""
    return frame.groupby([day, *groups], dropna=False, sort=True)[feature].first().reset_index(drop=True)


def partition_level(train: pd.DataFrame, features: list[str], day: str = "partition_date") -> dict[str, tuple]:
    """The features constant within partitions of the training rows, each with the features that group a day's rows
    into those partitions: () for one value per day, (group,) for one value per day and group (see the module's
    docstring)."""
    if train.empty:
        return {}

    codes = {name: pd.factorize(train[name], use_na_sentinel=True)[0] for name in features}  # missing: -1
    days = pd.factorize(train[day], use_na_sentinel=False)[0]

    def constant(groups: list[str]) -> set[str]:
        candidates = [name for name in features if name not in groups]
        cells = days
        for group in groups:  # a missing group value is a cell of its own, as in a groupby with dropna=False
            values = pd.factorize(train[group], use_na_sentinel=False)[0]
            cells = pd.factorize(cells.astype(np.int64) * (int(values.max()) + 1) + values)[0]
        order = np.argsort(cells, kind="stable")
        starts = np.flatnonzero(np.r_[True, np.diff(cells[order]) != 0])
        found = set()
        for name in candidates:  # a cell holds at most one value when its largest code is at most its smallest
            ordered = codes[name][order]
            largest = np.maximum.reduceat(ordered, starts)
            smallest = np.minimum.reduceat(np.where(ordered < 0, np.iinfo(ordered.dtype).max, ordered), starts)
            if float((largest <= smallest).mean()) >= CONSTANT_SHARE:
                found.add(name)
        return found

    found: dict[str, tuple[str, ...]] = {name: () for name in constant([])}
    sizes = pd.Series({name: int(codes[name].max()) + 1 for name in features})  # distinct values present
    groups = sorted((name for name in features if name not in found and 1 < sizes[name] <= GROUP_MAX_VALUES),
                    key=lambda name: (sizes[name], name))
    for group in groups:
        for name in sorted(constant([group]) - set(found) - set(groups)):
            found[name] = (group,)
    return found


def _partition_bins(train: pd.DataFrame, feature: str, groups: tuple[str, ...], day: str) -> Bins:
    """Bins of a partition-level feature's training partition values, as many as a full window's values allow."""
    units = _units(train, day, list(groups), feature)
    per_day = len(units) / max(train[day].nunique(), 1)
    bins = int(min(10, max(2, per_day * WINDOW_DAYS // UNITS_PER_BIN)))
    return Bins.of(units, bins=bins)


def champion_reference(connection: duckdb.DuckDBPyConnection, artifacts: ArtifactStore, model: str,
                       model_version: str, by_partition: bool = True) -> Reference:
    """A model version's training rows (from its verified snapshot) and test-window scores (from its evaluation),
    binned; with `by_partition`, the features constant within partitions by their partitions' values. The features'
    bins are binned once per snapshot and stored (reference_store): a later run, or a training run reusing the
    snapshot, reads them back. Inside `reuse.reused()` (a replay, which scores a day with the same champion for
    weeks) built once per version: its snapshot and evaluation are content-addressed and never rewritten."""
    return remembered("drift reference", (str(artifacts.root), model, model_version, by_partition),
                      lambda: _champion_reference(connection, artifacts, model, model_version, by_partition))


def _champion_reference(connection: duckdb.DuckDBPyConnection, artifacts: ArtifactStore, model: str,
                        model_version: str, by_partition: bool) -> Reference:
    trained = registry.models.by_version(connection, model_version)
    if trained is None:
        raise MonitoringError(f"{model_version} of '{model}' is not in the model registry")
    snapshot = registry.snapshots.get(connection, model, trained.training_run)
    evaluation = registry.evaluations.get(connection, model, trained.training_run)
    task_evaluation = registry.task_evaluations.get(connection, model, trained.training_run)
    if snapshot is None or (evaluation is None and task_evaluation is None):
        raise MonitoringError(f"{model_version} has no recorded snapshot or evaluation to compare with")
    if evaluation is not None and evaluation.summary.artifacts is None:
        raise MonitoringError(f"the evaluation of {model_version} kept no per-row predictions")
    path = artifacts.verify(snapshot.path, snapshot.sha256)  # the snapshot file's hash first
    features = tuple(snapshot.manifest.features)
    question = FeatureBinsQuestion(snapshot.sha256, features, by_partition)
    bins, levels = stored_feature_bins(Path(artifacts.root), question,
                                       lambda: snapshot_feature_bins(connection, path, list(features), by_partition))
    if task_evaluation is not None:  # its stored rows are the test window's, with the prediction drift reads
        scores = stored_test_rows(connection, artifacts, task_evaluation)[names.PREDICTION_COLUMN]
    else:
        evaluated = read_predictions(connection, artifacts, evaluation.summary)
        scores = evaluated.loc[evaluated["split"] == "test", "score"]
    return Reference(model_version, bins, Bins.of(pd.Series(scores.to_numpy(dtype=float))), levels)


def snapshot_feature_bins(connection: duckdb.DuckDBPyConnection, path: Path, features: list[str],
                          by_partition: bool) -> FeatureBins:
    """The bins of the training rows of the snapshot file at path (its hash verified by the caller), and, with
    `by_partition`, its features constant within partitions with their groupings; of a fixed-seed sample of
    REFERENCE_ROWS training rows when the snapshot has more (a snapshot of millions of rows, read whole into
    pandas, would take minutes and more memory than the training run)."""
    available = connection.execute(f"SELECT count(*) FROM read_parquet(?) WHERE {split_condition('train')}",
                                   [str(path)]).fetchone()[0]
    rows_at_most = reference_store.REFERENCE_ROWS  # read at the call: tests lower it
    if available > rows_at_most:
        train, _ = sample_split(connection, path, "train", ["partition_date", *features], rows_at_most,
                                seed=REFERENCE_SEED)
        # the partition's day, as CAST(partition_date AS DATE) gives it below (an hourly partition's day)
        train.insert(0, _DAY, pd.to_datetime(train.pop("partition_date")).dt.floor("D"))
        return feature_bins(train, features, by_partition, _DAY)
    # every row is read, as the whole snapshot would be: pandas types a column by its values (NULLs among them)
    rows = connection.execute(f"SELECT split, CAST(partition_date AS DATE) AS {_DAY}, "
                              f"{', '.join(quote(name) for name in features)} FROM read_parquet(?)", [str(path)]).df()
    train = rows[rows["split"] == "train"].reset_index(drop=True)
    return feature_bins(train, features, by_partition, _DAY)


def feature_bins(train: pd.DataFrame, features: list[str], by_partition: bool = True,
                 day: str = "partition_date") -> FeatureBins:
    """Each feature's bins over the training rows (with their partition day in column `day`): a feature constant
    within partitions (`by_partition`) by its partitions' values; and those features' groupings."""
    levels = partition_level(train, features, day) if by_partition else {}
    bins = {name: _partition_bins(train, name, levels[name], day) if name in levels else Bins.of(train[name])
            for name in features}
    return bins, levels


def reference_of(model_version: str, train: pd.DataFrame, features: list[str], scores: pd.Series,
                 by_partition: bool = True, day: str = "partition_date") -> Reference:
    """A version's reference from its training rows (with their partition day in column `day`) and test scores."""
    bins, levels = feature_bins(train, features, by_partition, day)
    return Reference(model_version, bins, Bins.of(pd.Series(scores.to_numpy(dtype=float))), levels)


def _score_sql(model: ModelSpec) -> str:
    """The stored column whose drift is the prediction's: `score` (binary threshold tables) or `prediction` (a
    task's tables: the predicted number, probability, or the decided class's probability), as `score`."""
    return f"{quote(names.PREDICTION_COLUMN)} AS score" if uses_task_scoring(model) else "score"


def scored_days(connection: duckdb.DuckDBPyConnection, model: ModelSpec, start: dt.date,
                end: dt.date, grain: str = "daily") -> Iterator[tuple[dt.date, pd.DataFrame]]:
    """Each day of [start, end] and the latest production prediction of each of its rows: model_version, score and
    the inputs the model saw (a column `input:<feature>` per stored field). Close it when done: the range's rows
    are staged once (one pass over the latest-per-row view), then read a day at a time, so pandas holds one day's
    rows at a time."""
    partitions = [day for day, _ in grains.partition_days(grain, start, end)]  # a weekly entity's Mondays, ...
    if not table_exists(connection, "predictions", model.name):
        for day in partitions:
            yield day, pd.DataFrame(columns=["model_version", "score"])
        return
    fields = list(stored_fields(connection, names.predictions_table(model.name)))
    # the struct's fields are split into columns in SQL: no row's inputs become a Python dict to unpack
    inputs = ", ".join(f"{INPUTS}.{quote(name)}" for name in fields)
    columns = ["model_version", "score", *(f"{_FIELD}{name}" for name in fields)]
    connection.execute(
        f"CREATE OR REPLACE TEMP TABLE {_STAGED} AS SELECT CAST(partition_date AS DATE) AS day, model_version, "
        f"{_score_sql(model)}, {INPUTS} FROM {names.latest_view(model.name)} "
        f"WHERE partition_date BETWEEN {date_literal(start)} AND {date_literal(end)}")
    try:
        for day in partitions:
            frame = connection.execute(f"SELECT model_version, score, {inputs} FROM {_STAGED} WHERE day = ?",
                                       [day]).df()
            frame.columns = columns
            yield day, frame
    finally:
        connection.execute(f"DROP TABLE IF EXISTS {_STAGED}")


@dataclass(frozen=True)
class BinCounts:
    """The bin counts of some days' rows that one version scored (every feature's, a partition-level one's over
    the days' partition values, and the score's), the rows counted and on how many days: a window's counts are the
    sum of its days' (bincounts add up, and a partition value belongs to one day), so each day is binned once, not
    once for every window it falls in."""

    features: dict[str, np.ndarray]
    score: np.ndarray
    rows: int
    days: int

    def __add__(self, other: "BinCounts") -> "BinCounts":
        return BinCounts({name: counts + other.features[name] for name, counts in self.features.items()},
                         self.score + other.score, self.rows + other.rows, self.days + other.days)


def bin_counts(reference: Reference, rows: pd.DataFrame) -> BinCounts:
    """The bin counts of the rows (scored_days' frames with a `day` column) that the reference's version scored."""
    rows = rows[rows["model_version"] == reference.model_version].reset_index(drop=True)
    counts = {}
    for name, bins in reference.features.items():
        groups = reference.partition_level.get(name)
        values = rows[f"{_FIELD}{name}"] if groups is None else \
            _units(rows, "day", [f"{_FIELD}{group}" for group in groups], f"{_FIELD}{name}")
        counts[name] = bins.counts(values.reset_index(drop=True))
    return BinCounts(counts, reference.scores.counts(rows["score"].to_numpy(dtype=float)), len(rows),
                     int(rows["day"].nunique()) if len(rows) else 0)


def counts_drift(reference: Reference, counts: BinCounts) -> pd.DataFrame:
    """PSI of every feature and of the score of a population given by its bin counts."""
    measures = [{"feature": name, "psi": bins.psi_of_counts(counts.features[name]), "scope": reference.scope(name)}
                for name, bins in reference.features.items()]
    measures.append({"feature": SCORE, "psi": reference.scores.psi_of_counts(counts.score), "scope": "rows"})
    frame = pd.DataFrame(measures)
    frame["window_rows"] = counts.rows
    frame["window_days"] = counts.days
    return frame


def window_drift(reference: Reference, window: pd.DataFrame) -> pd.DataFrame:
    """PSI of every feature and of the score over the pooled rows of a window (scored_days' frames with a `day`
    column) that the reference's version scored: row-level features over the rows, partition-level ones over the
    window's partition values."""
    return counts_drift(reference, bin_counts(reference, window))


def day_drift(reference: Reference, scored: pd.DataFrame) -> pd.DataFrame:
    """PSI of every feature and of the score, for the rows of one day (of scored_days) that the reference's version
    scored: a window of that day alone."""
    frame = window_drift(reference, scored.assign(day=0))
    frame["rows"] = frame["window_rows"]
    return frame.drop(columns=["window_rows", "window_days", "scope"])


def drift_frame(connection: duckdb.DuckDBPyConnection, artifacts: ArtifactStore, model: ModelSpec, start: dt.date,
                end: dt.date, window_days: int = WINDOW_DAYS, by_partition: bool = True,
                grain: str = "daily") -> pd.DataFrame:
    """PSI of every feature and of the score for each day of [start, end], pooled over the scored days among the
    `window_days` calendar days ending on it, against the version that scored most of the day's rows; fails naming
    what is missing. `window_days=1, by_partition=False` is the former measure, each day's rows alone."""
    if registry.promotions.champion(connection, model.name) is None:
        raise MonitoringError(f"no version of '{model.name}' has been deployed: nothing is scored, nothing to monitor")
    references, frames, unscored = {}, [], []
    # the window's scored days: each day's rows, and its bin counts per version, made when a window first needs them
    recent: deque[tuple[dt.date, pd.DataFrame, dict[str, BinCounts]]] = deque()
    first = start - dt.timedelta(days=window_days - 1)
    with closing(scored_days(connection, model, first, end, grain)) as scored:
        for day, rows in scored:
            while recent and (day - recent[0][0]).days >= window_days:
                recent.popleft()
            if not rows.empty:
                recent.append((day, rows.assign(day=day), {}))
            if day < start:
                continue
            if rows.empty:
                unscored.append(day.isoformat())
                continue
            version = rows["model_version"].mode().iloc[0]  # the version that scored most of the day's rows
            if version not in references:
                references[version] = champion_reference(connection, artifacts, model.name, version, by_partition)
            reference = references[version]
            parts = [counted.get(version) or counted.setdefault(version, bin_counts(reference, day_rows))
                     for _, day_rows, counted in recent]
            drift = counts_drift(reference, sum(parts[1:], parts[0]))
            drift["rows"] = int((rows["model_version"] == version).sum())
            drift["day"], drift["model_version"] = day, version
            frames.append(drift)
    if unscored:
        raise MonitoringError(f"{len(unscored)} {_unit(grain)} of '{model.name}' not scored yet "
                              f"({', '.join(unscored[:5])}): "
                              f"materialize {model.name}/predictions for them first")
    return pd.concat(frames, ignore_index=True)


@dataclass(frozen=True)
class DriftMeasure:
    """The drift of a range of days as stored, with the largest PSI of a feature and of the score, and where."""

    # one row per day and feature (SCORE for the score): psi (pooled over the window), scope, rows (of the day),
    # window_rows, window_days, model_version, day
    frame: pd.DataFrame
    feature_psi: float
    feature_where: str  # "<feature> over the <n> scored day(s) (week(s), ...) to <day>[, compared per <scope>]"
    score_psi: float
    score_where: str  # "the score over the <n> scored day(s) to <day>"


def _worst(frame: pd.DataFrame, grain: str) -> tuple[float, str]:
    row = frame.loc[frame["psi"].idxmax()]
    scope = "" if row["scope"] == "rows" else f", compared per {row['scope']}"
    return float(row["psi"]), (f"{row['feature']} over the {int(row['window_days'])} scored {_unit(grain)} to "
                               f"{pd.Timestamp(row['day']).date()}{scope}")


def _unit(grain: str) -> str:
    """The partitions of a grain counted in words: "day(s)", "week(s)" or "month(s)"."""
    return f"{grains.PERIOD_NOUN[grain]}(s)"


def measure_drift(connection: duckdb.DuckDBPyConnection, artifacts: ArtifactStore, model: ModelSpec,
                  start: dt.date, end: dt.date, run_id: str, grain: str = "daily") -> DriftMeasure:
    """Measure the drift of each day of [start, end] and store it (replacing those days), stamped with the run."""
    frame = drift_frame(connection, artifacts, model, start, end, grain=grain)
    frame["computed_at"], frame["run_id"] = registry.now(), run_id
    replace_days(connection, model.name, "drift", frame, [day for day, _ in grains.partition_days(grain, start, end)])
    largest_feature, feature_where = _worst(frame[frame["feature"] != SCORE], grain)
    largest_score, score_where = _worst(frame[frame["feature"] == SCORE], grain)
    return DriftMeasure(frame, largest_feature, feature_where, largest_score, score_where.replace(SCORE, "the score"))
