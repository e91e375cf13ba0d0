"""Dagster's clock: the time its scheduler, sensors and logs read, and a way to freeze it at a simulated moment.

Written for Dagster 1.13.27: Dagster reads the time through `dagster._time.get_current_datetime` and
`get_current_timestamp`, which call `_mockable_get_current_datetime` and `_mockable_get_current_timestamp`;
its log records take their time from `DagsterLogManager.makeRecord` (dagster._core.log_manager). Freezing patches
these the way Dagster's own test utility `freeze_time` does, which product code does not import. Re-check all
three on another version (ml_platform_tests/adapters/test_dagster_version.py).
"""

from __future__ import annotations

import datetime as dt
import logging
from contextlib import contextmanager
from typing import Iterator
from unittest import mock

from dagster._core.log_manager import DagsterLogManager
from dagster._time import get_current_datetime, get_current_timestamp


def current_time() -> dt.datetime:
    """Dagster's current time (UTC, aware): wall time, or the frozen moment inside `frozen_clock`."""
    return get_current_datetime()


class _FrozenLogManager(DagsterLogManager):
    """Dagster's log manager stamping each record with Dagster's clock instead of the wall clock."""

    def makeRecord(self, *arguments, **keywords) -> logging.LogRecord:  # noqa: N802 (logging's name)
        record = super().makeRecord(*arguments, **keywords)
        record.created = get_current_timestamp()
        record.msecs = (record.created - int(record.created)) * 1000
        record.relativeCreated = record.created
        return record


@contextmanager
def frozen_clock(at: dt.datetime) -> Iterator[None]:
    """Dagster's clock stopped at `at` (an aware time) for the duration: ticks and logs read that moment."""
    if at.tzinfo is None:
        raise ValueError(f"frozen_clock needs an aware time, got {at}")
    with (mock.patch("dagster._time._mockable_get_current_datetime", return_value=at),
          mock.patch("dagster._time._mockable_get_current_timestamp", return_value=at.timestamp()),
          mock.patch("dagster._core.log_manager.DagsterLogManager", new=_FrozenLogManager)):
        yield
