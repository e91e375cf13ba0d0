"""Partition definitions derived from specs, and partition keys read back as dates."""

from __future__ import annotations

import calendar
import datetime as dt
import re

import dagster as dg

from ml_platform.errors import PlatformError
from ml_platform.names import training_runs_name
from ml_platform.specs.models import DAYS_AHEAD, DailyPartitioning, ModelSpec, SourceSpec, TimeSplit, Window

RUN_KEY_PATTERN = re.compile(r"^(\d{4}-\d{2}-\d{2})_([0-9a-f]{12})$")


def daily_partitions(partitioning: DailyPartitioning) -> dg.DailyPartitionsDefinition:
    """One partition per local event date, from the source's first to its last day.

    Dagster creates a day's partition only once the day is over; models predict days ahead (the spec's
    `cadence.predict_at`), so partitions exist up to DAYS_AHEAD days beyond today.
    """
    end = (partitioning.end + dt.timedelta(days=1)).isoformat() if partitioning.end else None
    return dg.DailyPartitionsDefinition(
        start_date=partitioning.start.isoformat(), end_date=end, timezone=partitioning.timezone,
        end_offset=DAYS_AHEAD + 1,
    )


def source_partitions(source: SourceSpec) -> dg.DailyPartitionsDefinition | None:
    """The source's daily partitions, or None for a table loaded whole."""
    return daily_partitions(source.partitioning) if isinstance(source.partitioning, DailyPartitioning) else None


def training_runs(model: ModelSpec) -> dg.DynamicPartitionsDefinition:
    """One partition per training run of a model, shared by its snapshot, model, evaluation and deployment."""
    return dg.DynamicPartitionsDefinition(name=training_runs_name(model.name))


def training_run_key(model: ModelSpec, spec_hash: str, cutoff: dt.date | None = None) -> str:
    """The key of a training run: its data cut-off (the last day of its test window) and its spec revision.

    Without a cut-off the run is the one the spec's own split defines; a retraining run rolls the split forward
    (or back) to its cut-off, see `training_split`.
    """
    return f"{(cutoff or model.split.test.end).isoformat()}_{spec_hash}"


class TrainingRunKeyError(PlatformError, ValueError):
    """A training run key that does not name a cut-off date and a spec hash."""


def parse_training_run_key(key: str) -> tuple[dt.date, str]:
    """The cut-off date and spec hash a training run key names."""
    match = RUN_KEY_PATTERN.match(key)
    if match is None:
        raise TrainingRunKeyError(f"training run key '{key}' is not '<YYYY-MM-DD>_<12 hex digits of spec hash>'")
    try:
        return dt.date.fromisoformat(match.group(1)), match.group(2)
    except ValueError as error:
        raise TrainingRunKeyError(f"training run key '{key}' names an impossible date: {error}") from None


class TrainingSplitError(PlatformError, ValueError):
    """A training run's cut-off that leaves its model no training days."""


def _month_end(day: dt.date) -> bool:
    return day.day == calendar.monthrange(day.year, day.month)[1]


def _whole_months(window: Window) -> bool:
    return window.start.day == 1 and _month_end(window.end)


def _add_months(day: dt.date, months: int, to_end: bool) -> dt.date:
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return dt.date(year, month + 1, last if to_end else min(day.day, last))


def training_split(model: ModelSpec, cutoff: dt.date) -> TimeSplit:
    """The split of a training run whose test window ends on `cutoff`.

    The spec's split is moved so that its test window ends on the cut-off; validation and test keep their
    lengths (in calendar months when the spec's windows are whole months and the cut-off ends a month, in days
    otherwise); the training window keeps its first day and ends as far before validation as in the spec, so it
    grows as time passes (an expanding window).
    Raises TrainingSplitError (a ValueError) when the cut-off leaves no training days.
    """
    split = model.split
    if cutoff == split.test.end:
        return split
    by_months = all(_whole_months(window) for window in (split.train, split.validation, split.test)) \
        and _month_end(cutoff)
    if by_months:
        months = (cutoff.year * 12 + cutoff.month) - (split.test.end.year * 12 + split.test.end.month)

        def move(window: Window) -> Window:
            return Window(start=_add_months(window.start, months, False), end=_add_months(window.end, months, True))
    else:
        shift = cutoff - split.test.end

        def move(window: Window) -> Window:
            return Window(start=window.start + shift, end=window.end + shift)
    validation, test = move(split.validation), move(split.test)
    train_end = move(split.train).end
    if train_end < split.train.start:
        raise TrainingSplitError(
            f"a training run of '{model.name}' cut off on {cutoff} would have no training days: training would end "
            f"on {train_end}, before split.train.start ({split.train.start})")
    return TimeSplit(train=Window(start=split.train.start, end=train_end), validation=validation, test=test)


def run_split(model: ModelSpec, training_run: str) -> TimeSplit:
    """The split of a training run, from the cut-off its key names."""
    cutoff, _ = parse_training_run_key(training_run)
    return training_split(model, cutoff)


def date_range(context: dg.AssetExecutionContext) -> tuple[dt.date, dt.date]:
    """First and last day of the daily partitions this step materializes."""
    keys = context.partition_key_range
    return dt.date.fromisoformat(keys.start), dt.date.fromisoformat(keys.end)


def days(start: dt.date, end: dt.date) -> list[dt.date]:
    """Every day of the inclusive range."""
    return [start + dt.timedelta(days=offset) for offset in range((end - start).days + 1)]
