"""The exact data versions a snapshot read, pinned in its manifest, and whether the warehouse still holds them.

A snapshot reads each daily source over [first training day - lookback, last test day] (the lookback of every
feature set that reads it, through used feature sets too), each reference source whole, and each feature set's
days. The versions come from the version index (`registry.partition_versions`), written in the same transaction
as the data they describe; nothing is re-hashed to build a snapshot.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

import duckdb

from ml_platform import grains, names
from ml_platform.errors import PlatformError
from ml_platform.features.versions import stale_days
from ml_platform.records.snapshots import PinnedVersions, SnapshotManifest
from ml_platform.specs.catalog import Catalog
from ml_platform.specs.models import ModelSpec, TimeSplit
from ml_platform.records.versions import PartitionVersion
from ml_platform.storage.versions import WHOLE, partition_versions

SHOWN_DAYS = 5


class MissingDataVersionError(PlatformError, RuntimeError):
    """A day the snapshot reads has no recorded data version, or its features are stale."""


def read_windows(catalog: Catalog, model: ModelSpec, split: TimeSplit) -> tuple[dict, dict]:
    """({daily source: (first, last)}, {feature set: (first, last)}) of the days a snapshot reads, within the
    days each source declares."""
    needed = {feature_set.name: split.train.start for feature_set in catalog.feature_sets_of(model)}
    pending = list(needed)
    while pending:  # a used set is read over its user's lookback too
        user = catalog.feature_sets[pending.pop()]
        for name in user.uses:
            start = needed[user.name] - dt.timedelta(days=user.lookback_days)
            if name in catalog.feature_sets and (name not in needed or start < needed[name]):
                needed[name] = start
                pending.append(name)
    sources = {name: _entity_reads_from(catalog, model.entity, split.train.start)
               for name in catalog.entity_rows(model.entity).reads()}
    for name, first in needed.items():
        feature_set = catalog.feature_sets[name]
        for source in {*catalog.entity_rows(feature_set.entity).reads(), *feature_set.reads}:
            start = first - dt.timedelta(days=feature_set.lookback_days)
            sources[source] = min(start, sources.get(source, start))
    windows = {}
    for name, first in sorted(sources.items()):
        partitioning = catalog.sources[name].partitioning
        if catalog.sources[name].is_daily:
            test_end = _last_day_read(catalog, model.entity, split.test.end)
            last = min(test_end, partitioning.end or test_end)
            windows[name] = (max(first, partitioning.start), last)
    return windows, {name: (first, split.test.end) for name, first in sorted(needed.items())}


def _entity_reads_from(catalog: Catalog, entity: str, first: dt.date) -> dt.date:
    """The first source day the entity rows of partitions from `first` read (a population's lookback)."""
    rows = catalog.entity_rows(entity)
    if not rows.is_population:
        return first
    return grains.lookback_start(rows.population.lookback, dt.datetime.combine(first, dt.time())).date()


def _last_day_read(catalog: Catalog, entity: str, last: dt.date) -> dt.date:
    """The last source day the entity rows of partitions up to `last` read (a population's period runs on)."""
    rows = catalog.entity_rows(entity)
    if not rows.is_population:
        return last
    start = grains.period_start(rows.grain, dt.datetime.combine(last, dt.time()))
    return (grains.shift(rows.grain, start, 1) - dt.timedelta(days=1)).date()


def _pin_days(versions: dict[str, PartitionVersion], first: dt.date, last: dt.date, what: str, trust: str | None = None,
              grain: str = "daily") -> PinnedVersions:
    """The per-partition versions of [first, last] (the partitions of the grain starting in it), with an aggregate
    hash; refuse when one has no version."""
    wanted = [day.isoformat() for day, _ in grains.partition_days(grain, first, last)]
    missing = [day for day in wanted if day not in versions]
    if missing:
        shown = ", ".join(missing[:SHOWN_DAYS]) + (f" and {len(missing) - SHOWN_DAYS} more" if len(missing) >
                                                    SHOWN_DAYS else "")
        raise MissingDataVersionError(f"{what} has no recorded data version for {len(missing)} day(s) the snapshot "
                                      f"reads ({shown}); materialize those partitions first")
    by_day = {day: versions[day].version for day in wanted}
    text = "".join(f"{day} {version}\n" for day, version in by_day.items())
    return PinnedVersions(days=len(by_day), trust=trust, first=wanted[0], last=wanted[-1],
                          versions_sha256=hashlib.sha256(text.encode()).hexdigest(), by_day=by_day)


def label_windows_read(catalog: Catalog, model: ModelSpec, split: TimeSplit,
                       labels_through: dt.date) -> dict[str, tuple[dt.date, dt.date]]:
    """{source: (first, last)} of the days the labels of rows through `labels_through` aggregate over."""
    if model.label.horizon is None:
        return {}
    reach = dt.timedelta(days=model.label.horizon.days)
    windows = {}
    for name in model.label.label_sources():
        partitioning = catalog.sources[name].partitioning
        first = max(split.train.start + dt.timedelta(days=1), partitioning.start)
        last = min(labels_through + reach, partitioning.end or labels_through + reach)
        windows[name] = (first, last)
    return windows


def pin_data_versions(connection: duckdb.DuckDBPyConnection, catalog: Catalog, model: ModelSpec,
                      split: TimeSplit, labels_through: dt.date | None = None
                      ) -> tuple[dict[str, PinnedVersions], dict[str, PinnedVersions]]:
    """({source: pinned versions}, {feature set: pinned versions}) of everything the snapshot reads (the label's
    aggregated sources over the windows of the labels of rows through `labels_through`); raises
    MissingDataVersionError when a day has no version or a feature day was computed from other data."""
    source_windows, feature_windows = read_windows(catalog, model, split)
    if labels_through is not None:
        for name, (first, last) in label_windows_read(catalog, model, split, labels_through).items():
            if name in source_windows:
                first, last = min(first, source_windows[name][0]), max(last, source_windows[name][1])
            source_windows[name] = (first, last)
    sources = {}
    for dependency in catalog.source_dependencies(model):
        name = dependency.source
        stored = partition_versions(connection, names.source_asset(name))
        if name in source_windows:
            sources[name] = _pin_days(stored, *source_windows[name], f"source '{name}'", trust=dependency.trust)
        elif WHOLE in stored:
            sources[name] = PinnedVersions(days=0, trust=dependency.trust, version=stored[WHOLE].version)
        else:
            raise MissingDataVersionError(f"source '{name}' has no recorded data version; materialize "
                                          f"{names.source_asset(name)} first")
    features = {}
    for name, (first, last) in feature_windows.items():
        _, stale = stale_days(connection, catalog, catalog.feature_sets[name], first, last)
        if stale:
            day = min(stale)
            raise MissingDataVersionError(
                f"feature set '{name}' is not up to date with its inputs on {len(stale)} day(s) the snapshot reads, "
                f"first {day} ({stale[day]}); materialize those partitions of features/{name} first")
        features[name] = _pin_days(partition_versions(connection, names.feature_asset(name)), first, last,
                                   f"feature set '{name}'",
                                   grain=catalog.entity_rows(catalog.feature_sets[name].entity).grain)
    return sources, features


def manifest_summary(manifest: SnapshotManifest) -> dict:
    """The manifest without its per-day versions, for a short display (the registry keeps the whole manifest)."""
    plain = manifest.plain()
    for key in ("source_data_versions", "feature_data_versions"):
        plain[key] = {name: {field: value for field, value in pinned.items() if field != "by_day"}
                      for name, pinned in plain.get(key, {}).items()}
    return plain


@dataclass(frozen=True)
class DataChange:
    """One pinned partition whose data the warehouse no longer holds as it was."""

    asset: str  # "source/weather" or "features/origin_weather_eve"
    day: str  # ISO date, or "" for a reference source
    pinned: str
    now: str  # the version recorded now, "absent", or "rows modified" when the rows no longer match it

    def __str__(self) -> str:
        where = f"{self.asset} {self.day}" if self.day else self.asset
        if self.now == "rows modified":
            return f"{where}: rows modified outside the platform (they no longer hash to version {self.pinned})"
        return f"{where}: pinned {self.pinned}, now {self.now}"


@dataclass(frozen=True)
class DataCheck:
    """What the warehouse holds of a snapshot's pinned data versions."""

    partitions: int
    changes: tuple[DataChange, ...]


def check_pinned_versions(connection: duckdb.DuckDBPyConnection, catalog: Catalog,
                          manifest: SnapshotManifest) -> DataCheck:
    """Compare a manifest's pinned versions with the version index and, for sources, with the stored rows."""
    from ml_platform.sources.loading import content_versions

    if manifest.source_data_versions is None or manifest.feature_data_versions is None:
        raise MissingDataVersionError(f"the snapshot manifest of training run '{manifest.training_run}' of "
                                      f"'{manifest.model}' pins no data versions")
    changes, partitions = [], 0
    for asset_of, pins in ((names.source_asset, manifest.source_data_versions),
                           (names.feature_asset, manifest.feature_data_versions)):
        for name, pinned in pins.items():
            asset = asset_of(name)
            stored = partition_versions(connection, asset)
            expected = pinned.by_day or {WHOLE: pinned.version}
            partitions += len(expected)
            rows = {}
            if asset_of is names.source_asset and name in catalog.sources:
                first, last = (dt.date.fromisoformat(pinned.first), dt.date.fromisoformat(pinned.last)) \
                    if pinned.by_day is not None else (None, None)
                rows = content_versions(connection, catalog.sources[name], first, last)
            for day, version in expected.items():
                now = stored.get(day)
                if now is None or now.version != version:
                    changes.append(DataChange(asset, day, version, now.version if now is not None else "absent"))
                elif rows and now.components.get("content") != rows.get(day):
                    changes.append(DataChange(asset, day, version, "rows modified"))
    return DataCheck(partitions, tuple(changes))


def data_check_text(check: DataCheck, shown: int = SHOWN_DAYS) -> str:
    """One line (and the first changes) saying whether the warehouse still holds the pinned data."""
    if not check.changes:
        return f"the warehouse still holds all {check.partitions:,} pinned partitions (sources and features)"
    assets = sorted({change.asset for change in check.changes})
    lines = [f"CHANGED since the snapshot: {len(check.changes)} of {check.partitions:,} pinned partitions "
             f"({', '.join(assets)}); the snapshot file keeps the data it was trained on"]
    lines += [f"    {change}" for change in check.changes[:shown]]
    if len(check.changes) > shown:
        lines.append(f"    and {len(check.changes) - shown} more")
    return "\n".join(lines)
