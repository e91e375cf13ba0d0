"""Which rows of a training run may carry their label: mature ones, and none whose label window reaches a later split.

A row's label window is (day, day + horizon]. A training row whose window reaches the validation window's first day
would have learned from the validation period's outcomes (and a validation row reaching the test window from the
test's): such rows are purged. A row whose label is not mature when the snapshot is made (see
`ml_platform.features.labels`) is left out. Both are counted per split in the manifest's `label_windows`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import duckdb

from ml_platform.errors import PlatformError
from ml_platform.features.labels import (horizon_days, label_lag_days, label_source_names, labels_known_through,
                                         local_today, window_offset)
from ml_platform.names import source_table
from ml_platform.records.snapshots import LabelWindows
from ml_platform.specs.catalog import Catalog
from ml_platform.specs.models import ModelSpec, TimeSplit
from ml_platform.storage.warehouse import date_literal

SPLITS = ("train", "validation", "test")


class ImmatureLabelsError(PlatformError, RuntimeError):
    """A training run whose test window has no row with a mature label yet."""


@dataclass(frozen=True)
class LabelCut:
    """The rows of a run's windows whose labels it may use."""

    horizon: int
    mature_through: dt.date
    as_of: dt.date
    offset: int = 1  # days from a row's day to its window's first: 1 for a source's row, 0 for a population's

    def split_case(self, split: TimeSplit) -> str:
        """SQL naming a row's split by its partition_date (NULL outside the windows)."""
        return " ".join(f"WHEN partition_date BETWEEN {date_literal(getattr(split, name).start)} AND "
                        f"{date_literal(getattr(split, name).end)} THEN '{name}'" for name in SPLITS)

    def purge_condition(self, split: TimeSplit, column: str = "partition_date") -> str:
        """SQL true for a row (with `split` named) whose label window reaches the next split's first day."""
        if self.horizon == 0:
            return "false"
        reach = f"{column} + INTERVAL {self.offset + self.horizon - 1} DAY"  # the window's last day
        return (f"((split = 'train' AND {reach} >= {date_literal(split.validation.start)}) OR "
                f"(split = 'validation' AND {reach} >= {date_literal(split.test.start)}))")

    def keep_condition(self, split: TimeSplit) -> str:
        """SQL keeping a row (with `split` named) whose label is mature and whose window stays in its split."""
        return f"partition_date <= {date_literal(self.mature_through)} AND NOT {self.purge_condition(split)}"


def label_cut(connection: duckdb.DuckDBPyConnection, catalog: Catalog, model: ModelSpec, split: TimeSplit,
              training_run: str) -> LabelCut:
    """The label cut of a run made now (by the platform's clock); raises ImmatureLabelsError when not one test
    day's label is usable yet."""
    today = local_today(catalog, model)
    through = labels_known_through(connection, catalog, model, split.train.start, today)
    if through is None or through < split.test.start:
        lag = label_lag_days(catalog, model)
        reads = ", ".join(label_source_names(model, catalog))
        raise ImmatureLabelsError(
            f"training run '{training_run}' of '{model.name}': no row of its test window ({split.test.start} to "
            f"{split.test.end}) has a usable label on {today}: a row's label is mature {lag} day(s) after its day "
            f"(horizon {horizon_days(model)} day(s), then the day's end) and needs every day of its window stored in "
            f"{reads}; labels are usable through {through or 'no day yet'}")
    return LabelCut(horizon=horizon_days(model), mature_through=min(through, split.test.end), as_of=today,
                    offset=window_offset(catalog, model))


def label_windows(connection: duckdb.DuckDBPyConnection, model: ModelSpec, split: TimeSplit,
                  cut: LabelCut, entity_table: str | None = None) -> LabelWindows:
    """The manifest's account of the cut: rows (kept by the model's filter) left out per split, and why."""
    condition = f" AND ({model.filter})" if model.filter else ""
    rows = connection.execute(
        f"SELECT split, count(*) FILTER (WHERE partition_date > {date_literal(cut.mature_through)}), "
        f"count(*) FILTER (WHERE partition_date <= {date_literal(cut.mature_through)} AND "
        f"{cut.purge_condition(split)}) FROM (SELECT CASE {cut.split_case(split)} END AS split, partition_date "
        f"FROM {entity_table or source_table(model.entity)} AS base "
        f"WHERE partition_date BETWEEN {date_literal(split.train.start)} "
        f"AND {date_literal(split.test.end)}{condition}) WHERE split IS NOT NULL GROUP BY split").fetchall()
    immature = {name: 0 for name in SPLITS}
    purged = {name: 0 for name in SPLITS[:2]}
    for name, late, reaching in rows:
        immature[name] = late
        if name in purged:
            purged[name] = reaching
    return LabelWindows(horizon_days=cut.horizon, mature_through=cut.mature_through.isoformat(),
                        as_of=cut.as_of.isoformat(), immature_excluded=immature, purged=purged)
