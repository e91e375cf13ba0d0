"""Bring a feature set's daily partitions of a range up to date: recompute only the days whose version changed.

A day's version (see `versions.py`) names what it is computed from; a day already stored at that version is
reused as it is, the others are computed again, a run of consecutive days at a time, and their versions recorded
in the same warehouse as their rows.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass

import duckdb

from ml_platform.features.compute import compute_feature_set
from ml_platform.features.proof import PointInTimeError, Proof, prove_feature_set
from ml_platform.features.versions import segments, stale_days
from ml_platform.names import feature_asset, feature_table
from ml_platform.progress import Progress, silent
from ml_platform.records.versions import PartitionVersion
from ml_platform.specs.catalog import Catalog
from ml_platform.specs.models import FeatureSetSpec
from ml_platform.storage.lanes import LANES
from ml_platform.storage.versions import forget_versions, partition_version, record_versions
from ml_platform.storage.warehouse import date_literal, transaction


@dataclass(frozen=True)
class FeatureRefresh:
    """What bringing a range of a feature set up to date did: the expected versions, the stale days and why."""

    expected: dict[str, PartitionVersion]  # {day: the version it has now}
    stale: dict[str, str]  # {day: why it was recomputed}, empty when every day was reused
    rows: int  # rows written for the recomputed days
    proof: Proof | None = None  # the point-in-time proof of the recomputed days (None when every day was reused)

    @property
    def reused_days(self) -> int:
        """Days already stored at their version."""
        return len(self.expected) - len(self.stale)

    def why_recomputed(self) -> str:
        """The reasons for recomputing, most common first, with their counts of days."""
        reasons = Counter(self.stale.values())
        return "; ".join(f"{count} day(s) {reason}" for reason, count in reasons.most_common()) or "nothing changed"

    def reused(self) -> str:
        """How many days were reused, in words."""
        if self.stale:
            return f"{self.reused_days} of {len(self.expected)} day(s)"
        example = min(entry.version for entry in self.expected.values())
        return f"all {len(self.expected)} day(s): versions already stored (e.g. {example})"


RANGE_DAYS = 31  # a backfill computes at most this many consecutive days at a time, and says how far it got


def ranges(stale: list[str], size: int = RANGE_DAYS) -> list[tuple[dt.date, dt.date]]:
    """The consecutive runs of stale days, cut into ranges of at most `size` days."""
    result = []
    for first, last in segments(stale):
        while first <= last:
            end = min(last, first + dt.timedelta(days=size - 1))
            result.append((first, end))
            first = end + dt.timedelta(days=1)
    return result


def refresh_feature_set(connection: duckdb.DuckDBPyConnection, catalog: Catalog, feature_set: FeatureSetSpec,
                        start: dt.date, end: dt.date, progress: Progress | None = None) -> FeatureRefresh:
    """Recompute the stale days of [start, end] and record their versions; the days already up to date are kept.
    Each range of days is committed with its versions marked as awaiting the point-in-time proof, which runs on
    a sample of all the recomputed days at the end: passed, the days get their versions; failed, their rows and
    versions are dropped. `progress` hears how far a long backfill got."""
    progress = progress if progress is not None else silent()
    expected, stale = stale_days(connection, catalog, feature_set, start, end)
    rows = 0
    todo = ranges(list(stale))
    for index, (first, last) in enumerate(todo, start=1):
        # the SQL checks depend on the SQL and the catalog only: the first range's hold for the others
        rows += compute_feature_set(connection, catalog, feature_set, first, last, sql_checked=index > 1)
        # recorded as awaiting the proof: a run that dies before the proof leaves these days stale, never reused
        record_versions(connection, feature_asset(feature_set.name),
                        {day: awaiting_proof(expected[day]) for day in stale
                         if first.isoformat() <= day <= last.isoformat()})
        progress.tick(lambda: f"features '{feature_set.name}': {index} of {len(todo)} ranges of days computed, "
                              f"up to {last} ({rows:,} rows), {progress.elapsed:.0f} s")
    if not stale:
        return FeatureRefresh(expected, stale, rows)
    recomputed = [dt.date.fromisoformat(day) for day in stale]
    # the range's rows are committed: the proof's cursors see them
    proof = prove_feature_set(connection, catalog, feature_set, min(recomputed), max(recomputed), days=recomputed,
                              lanes=LANES)
    if not proof.passed:  # unproven rows are not kept: nothing downstream may read them, the next run recomputes
        with transaction(connection):
            for first, last in todo:
                connection.execute(f"DELETE FROM {feature_table(feature_set.name)} WHERE partition_date BETWEEN "
                                   f"{date_literal(first)} AND {date_literal(last)}")
            forget_versions(connection, feature_asset(feature_set.name), stale)
        raise PointInTimeError(proof)
    record_versions(connection, feature_asset(feature_set.name), {day: expected[day] for day in stale})
    return FeatureRefresh(expected, stale, rows, proof)


def awaiting_proof(version: PartitionVersion) -> PartitionVersion:
    """The version a computed day holds until the point-in-time proof passed: never the one a run expects."""
    return partition_version({**version.components, "point_in_time": "awaiting the proof"})
