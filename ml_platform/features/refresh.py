"""Bring a feature set's daily partitions of a range up to date: recompute only the days whose version changed.

A day's version (see `versions.py`) names what it is computed from; a day already stored at that version is
reused as it is, the others are computed again, a run of consecutive days at a time, and their versions recorded
in the same warehouse as their rows.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator

import duckdb

from ml_platform.features.compute import check_feature_set_sql, compute_feature_set, prepare_feature_set
from ml_platform.features.relations import history_reads
from ml_platform.features.proof import PointInTimeError, Proof, prove_feature_set
from ml_platform.features.versions import segments, stale_days
from ml_platform.names import feature_asset, feature_table
from ml_platform.progress import Progress, silent
from ml_platform.records.versions import PartitionVersion
from ml_platform.specs.catalog import Catalog
from ml_platform.specs.models import FeatureSetSpec
from ml_platform.storage.lanes import LANES, lane_cursors, private_objects, run_on_cursors
from ml_platform.storage.versions import forget_versions, partition_version, record_versions
from ml_platform.storage.warehouse import date_literal, single_threaded, transaction


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
    todo = ranges(list(stale))
    rows = 0  # written so far, in the ranges' order

    def written(cursor: duckdb.DuckDBPyConnection, number: int, first: dt.date, last: dt.date, count: int) -> None:
        """Range `number` (from 1) of `count` rows written: its versions recorded, the progress told."""
        nonlocal rows
        # recorded as awaiting the proof: a run that dies before the proof leaves these days stale, never reused
        record_versions(cursor, feature_asset(feature_set.name),
                        {day: awaiting_proof(expected[day]) for day in stale
                         if first.isoformat() <= day <= last.isoformat()})
        rows += count
        total = rows
        progress.tick(lambda: f"features '{feature_set.name}': {number} of {len(todo)} ranges of days computed, "
                              f"up to {last} ({total:,} rows), {progress.elapsed:.0f} s")

    if _side_by_side(connection, catalog, feature_set, todo):
        # the SQL checked, the inputs present and the functions registered once, on the connection: its cursors
        # call its functions (registering them on a cursor would race with the other cursor's registration)
        prepare_feature_set(connection, catalog, feature_set)
        turns = _Turns()

        def piece(index: int, first: dt.date, last: dt.date) -> Callable[[duckdb.DuckDBPyConnection], int]:
            def computed(cursor: duckdb.DuckDBPyConnection) -> int:
                with turns.failing(index):
                    # no `history.` view: the SQL names none, and these views are shared by every cursor
                    return compute_feature_set(
                        cursor, catalog, feature_set, first, last, prepared=True, history=(),
                        writes=lambda write: turns.turn(index, write, lambda count: written(
                            cursor, index + 1, first, last, count)))
            return computed

        # each range's SQL on one thread as always, so the same bits on either cursor; the writes in order
        with single_threaded(connection), lane_cursors(connection, LANES) as cursors:
            run_on_cursors(cursors, [piece(index, first, last) for index, (first, last) in enumerate(todo)])
    else:
        if todo:  # the SQL checks depend on the SQL and the catalog only: once for every range
            check_feature_set_sql(connection, catalog, feature_set)
        for number, (first, last) in enumerate(todo, start=1):
            written(connection, number, first, last,
                    compute_feature_set(connection, catalog, feature_set, first, last, sql_checked=True))
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


def _side_by_side(connection: duckdb.DuckDBPyConnection, catalog: Catalog, feature_set: FeatureSetSpec,
                  todo: list[tuple[dt.date, dt.date]]) -> bool:
    """True when the ranges can be computed on LANES cursors at once: there are several; the entity is a daily
    source (a population's partitions are computed one by one); the SQL names no `history.` view (these views are
    the database's, shared by every cursor, and each range binds them at its own cut); the connection holds no
    temporary table or view, nor a registered object, that a cursor could not read (`private_objects`)."""
    return (len(todo) > 1 and not catalog.entity_rows(feature_set.entity).is_population
            and not history_reads(connection, feature_set) and not private_objects(connection))


class _Turns:
    """The ranges' writes one after another in the ranges' order, whichever cursor computed them first, so the
    table's rows are stored in the order one loop over the ranges stores them; a range whose earlier range failed
    is not written (as a loop stops at the failure), the ranges before it are."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._next = 0  # the range whose write is next
        self._failed: int | None = None  # the earliest range that failed

    def turn(self, index: int, write: Callable[[], int], after: Callable[[int], None]) -> int:
        """Wait until every earlier range is written, then `write()`, `after(its rows)`, pass the turn on; the
        rows written."""
        with self._condition:
            self._condition.wait_for(lambda: self._next == index or (
                self._failed is not None and self._failed < index))
            if self._next != index:
                raise _EarlierRangeFailed(f"range {index + 1} not written: range {self._failed + 1} failed")
        count = write()
        after(count)
        with self._condition:
            self._next = index + 1
            self._condition.notify_all()
        return count

    @contextmanager
    def failing(self, index: int) -> Iterator[None]:
        """Mark the range failed when the block raises, so that the later ranges' writes stop waiting."""
        try:
            yield
        except BaseException:
            with self._condition:
                self._failed = index if self._failed is None else min(self._failed, index)
                self._condition.notify_all()
            raise


class _EarlierRangeFailed(RuntimeError):
    """A range's write did not happen because an earlier range failed (that range's error is the one raised)."""


def awaiting_proof(version: PartitionVersion) -> PartitionVersion:
    """The version a computed day holds until the point-in-time proof passed: never the one a run expects."""
    return partition_version({**version.components, "point_in_time": "awaiting the proof"})
