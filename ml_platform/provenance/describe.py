"""Short texts for registry facts that several provenance commands print: rows, windows, times, money."""

from __future__ import annotations

import datetime as dt

from ml_platform.records.evaluation import TestMetrics
from ml_platform.records.snapshots import SnapshotManifest

SPLITS = ("train", "validation", "test")


def timestamp(value: dt.datetime | str | None) -> str:
    """A registry time (UTC) to the second."""
    if value is None:
        return "-"
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return f"{value:%Y-%m-%d %H:%M:%S}"


def snapshot_rows(manifest: SnapshotManifest) -> str:
    """Total rows of a snapshot and its rows per split."""
    rows = manifest.rows
    per_split = ", ".join(f"{name} {rows[name]:,}" for name in SPLITS if name in rows)
    return f"{sum(rows.values()):,} rows ({per_split})"


def snapshot_windows(manifest: SnapshotManifest) -> str:
    """The date windows of a snapshot's splits."""
    windows = manifest.split_windows
    return ", ".join(f"{name} {windows[name].start} to {windows[name].end}" for name in SPLITS if name in windows)


def money(value: float, currency: str) -> str:
    """An amount in whole units of its currency."""
    return f"{value:,.0f} {currency}"


def money_with_interval(test: TestMetrics, currency: str) -> str:
    """Test money and its 95% interval."""
    low, high = test.money_interval_95
    return f"{test.money:,.0f} {currency} (95% {low:,.0f} to {high:,.0f})"


def day(value: dt.date | dt.datetime | str) -> str:
    """An event date, without a time of day even when the column holds timestamps."""
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    return str(value)


def count(number: int, noun: str) -> str:
    """'1 feature set', '2 feature sets'."""
    return f"{number:,} {noun}{'' if number == 1 else 's'}"
