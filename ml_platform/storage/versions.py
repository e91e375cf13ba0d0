"""The version of every stored partition: what it was computed from, so unchanged work is never redone.

This is a cache index, not history: a partition's row is replaced, in the same transaction as its data, when the
partition is recomputed. A version is a hash of its inputs' components (definition, code, input data versions).
"""

from __future__ import annotations

import json
from typing import Iterable

import duckdb

from ml_platform import clock
from ml_platform.hashing import canonical_json, short_hash
from ml_platform.names import registry_table
from ml_platform.records.versions import PartitionVersion

WHOLE = ""  # the partition key of an unpartitioned asset
TABLE = registry_table("partition_versions")

CREATE = f"""
    CREATE TABLE IF NOT EXISTS {TABLE} (
        asset VARCHAR NOT NULL, partition_key VARCHAR NOT NULL, version VARCHAR NOT NULL,
        components JSON NOT NULL, recorded_at TIMESTAMP NOT NULL, PRIMARY KEY (asset, partition_key))"""


def create_versions_table(connection: duckdb.DuckDBPyConnection) -> None:
    """Create the version index when missing."""
    connection.execute(CREATE)


def version_of(components: dict) -> str:
    """The version named by a set of components."""
    return short_hash(canonical_json(components), 16)


def partition_version(components: dict) -> PartitionVersion:
    """The version of a partition computed from these components."""
    return PartitionVersion(version=version_of(components), components=components)


def partition_versions(connection: duckdb.DuckDBPyConnection, asset: str,
                       keys: Iterable[str] | None = None) -> dict[str, PartitionVersion]:
    """Stored {partition key: PartitionVersion} of an asset (all, or those of the given keys)."""
    rows = connection.execute(
        f"SELECT partition_key, version, components FROM {TABLE} WHERE asset = ?", [asset]).fetchall()
    wanted = set(keys) if keys is not None else None
    return {key: PartitionVersion(version=version, components=json.loads(components))
            for key, version, components in rows if wanted is None or key in wanted}


def version_names(connection: duckdb.DuckDBPyConnection, asset: str) -> dict[str, str]:
    """Stored {partition key: version} of an asset, without their components: what comparing versions needs, at
    a fraction of the cost of `partition_versions` on thousands of partitions."""
    return dict(connection.execute(f"SELECT partition_key, version FROM {TABLE} WHERE asset = ?", [asset]).fetchall())


def record_versions(connection: duckdb.DuckDBPyConnection, asset: str, versions: dict[str, PartitionVersion]) -> None:
    """Replace the stored versions of the given partitions (call inside the transaction that wrote their data)."""
    if not versions:
        return
    now = clock.now()
    keys = list(versions)
    # one statement each, with the rows as lists: executemany costs about a millisecond per row
    connection.execute(f"DELETE FROM {TABLE} WHERE asset = ? AND list_contains(?, partition_key)", [asset, keys])
    connection.execute(
        f"INSERT INTO {TABLE} SELECT ?, unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), "
        f"CAST(unnest(?::VARCHAR[]) AS JSON), ?",
        [asset, keys, [versions[key].version for key in keys],
         [json.dumps(versions[key].components, sort_keys=True) for key in keys], now])


def explain_change(old: PartitionVersion | None, new: PartitionVersion) -> str:
    """Why a partition's version changed, in words: which components differ."""
    if old is None:
        return "never computed"
    changed = sorted(name for name in set(old.components) | set(new.components)
                     if old.components.get(name) != new.components.get(name))
    return "changed: " + ", ".join(changed) if changed else "unchanged"


def forget_versions(connection: duckdb.DuckDBPyConnection, asset: str, keys: Iterable[str]) -> None:
    """Drop the stored versions of the given partitions: they are computed again on the next run."""
    connection.execute(f"DELETE FROM {TABLE} WHERE asset = ? AND list_contains(?, partition_key)", [asset, list(keys)])
