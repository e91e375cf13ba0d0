"""The version each feature partition should have: its definition, the code computing it, and its inputs' data.

A feature partition for day D reads its daily sources over [D - lookback_days, D] and its reference sources
whole, so its version hashes the stored data versions of exactly those source partitions.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
from pathlib import Path

import duckdb

from ml_platform import grains
from ml_platform.names import feature_asset, population_asset, source_asset
from ml_platform.partitions import days
from ml_platform.records.versions import PartitionVersion
from ml_platform.specs.catalog import Catalog
from ml_platform.specs.models import FeatureSetSpec
from ml_platform.storage.versions import WHOLE, explain_change, partition_version, partition_versions

ABSENT = "absent"


@functools.lru_cache(maxsize=1)
def feature_code_version() -> str:
    """Hash of the platform code that computes feature values."""
    folder = Path(__file__).resolve().parent
    source = b"".join((folder / name).read_bytes() for name in ("compute.py", "relations.py", "timing.py"))
    return hashlib.sha256(source).hexdigest()[:12]


def expected_versions(connection: duckdb.DuckDBPyConnection, catalog: Catalog, feature_set: FeatureSetSpec,
                      start: dt.date, end: dt.date) -> dict[str, PartitionVersion]:
    """{day: version} that the feature set's partitions of [start, end] should have."""
    lookback = dt.timedelta(days=feature_set.lookback_days)
    rows = catalog.entity_rows(feature_set.entity)
    inputs = {}
    for name in sorted({*rows.reads(), *feature_set.reads}):
        stored = partition_versions(connection, source_asset(name))
        inputs[name] = (catalog.sources[name].is_daily, {key: entry.version for key, entry in stored.items()})
    population = {key: entry.version for key, entry in
                  partition_versions(connection, population_asset(rows.name)).items()} if rows.is_population else {}
    used = {name: {key: entry.version for key, entry in partition_versions(connection, feature_asset(name)).items()}
            for name in sorted(feature_set.uses)}
    definition = catalog.feature_set_hash(feature_set)
    result = {}
    for day, last_day in grains.partition_days(rows.grain, start, end):
        components = {"definition": definition, "code": feature_code_version()}
        if rows.is_population:
            components[f"entity {rows.name}"] = population.get(day.isoformat(), ABSENT)
        for name, (daily, versions) in inputs.items():
            if daily:
                window = [versions.get(other.isoformat(), ABSENT) for other in days(day - lookback, last_day)]
                components[f"source {name}"] = hashlib.sha256("|".join(window).encode()).hexdigest()[:16]
            else:
                components[f"source {name}"] = versions.get(WHOLE, ABSENT)
        for name, versions in used.items():
            window = [versions.get(other.isoformat(), ABSENT) for other in days(day - lookback, last_day)]
            components[f"features {name}"] = hashlib.sha256("|".join(window).encode()).hexdigest()[:16]
        result[day.isoformat()] = partition_version(components)
    return result


def stale_days(connection: duckdb.DuckDBPyConnection, catalog: Catalog, feature_set: FeatureSetSpec,
               start: dt.date, end: dt.date) -> tuple[dict[str, PartitionVersion], dict[str, str]]:
    """Expected versions of [start, end], and {day: why} for the days whose stored version differs."""
    expected = expected_versions(connection, catalog, feature_set, start, end)
    stored = partition_versions(connection, feature_asset(feature_set.name), expected)
    stale = {day: explain_change(stored.get(day), entry) for day, entry in expected.items()
             if day not in stored or stored[day].version != entry.version}
    return expected, stale


def segments(day_keys: list[str]) -> list[tuple[dt.date, dt.date]]:
    """Consecutive runs of days, as (first, last) pairs."""
    result: list[list[dt.date]] = []
    for day in sorted(dt.date.fromisoformat(key) for key in day_keys):
        if result and day - result[-1][1] == dt.timedelta(days=1):
            result[-1][1] = day
        else:
            result.append([day, day])
    return [(first, last) for first, last in result]
