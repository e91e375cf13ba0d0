"""Bring a source's partitions up to date: load them again only when the file or the spec changed.

A load stages the file's rows, checks them, and replaces the stored rows only when every check passes; the
version index then records, per partition, the file and spec it was loaded from ("load") and a hash of its
stored rows ("content"), which is what the feature sets reading it depend on.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import duckdb

from ml_platform.names import source_asset
from ml_platform.records.versions import PartitionVersion
from ml_platform.sources.checks import CheckOutcome, check_staged
from ml_platform.sources.delta_load import commit_days, commit_whole
from ml_platform.sources.loading import content_versions, load_fingerprint, publish_staged, stage_source
from ml_platform.specs.models import SourceSpec
from ml_platform.storage.delta_tables import DeltaStore
from ml_platform.storage.versions import partition_versions, record_versions, version_of


@dataclass(frozen=True)
class SourceLoad:
    """What bringing a source's partitions up to date did."""

    keys: tuple[str, ...]  # the partitions asked for
    fingerprint: dict[str, str]  # {"spec", "file"}: the spec and file loaded from
    reused: bool  # every partition was already loaded from this file and spec: nothing was read
    outcomes: tuple[CheckOutcome, ...] = ()  # the data checks' verdicts on the staged rows (none when reused)
    written: int = 0  # rows written
    changed: int = 0  # partitions whose stored rows changed
    delta_version: int | None = None  # the version of the source's Delta table holding the rows (Delta only)

    def failures(self) -> list[CheckOutcome]:
        """The data checks that failed: then nothing was written."""
        return [outcome for outcome in self.outcomes if not outcome.passed]

    def rejection(self, source: str) -> str:
        """Why the load was rejected, in words."""
        return f"source '{source}' rejected, nothing written: " + "; ".join(
            f"{outcome.name}: {outcome.message}" for outcome in self.failures())


def stale_partitions(stored: dict[str, PartitionVersion], keys: list[str], fingerprint: dict[str, str]) -> list[str]:
    """The partitions (of `keys`) whose stored version was not loaded from this file and spec."""
    return [key for key in keys if key not in stored or stored[key].components.get("load") != fingerprint]


def refresh_source(connection: duckdb.DuckDBPyConnection, source: SourceSpec, project_dir: Path, keys: list[str],
                   start: dt.date | None = None, end: dt.date | None = None,
                   store: DeltaStore | None = None) -> SourceLoad:
    """Load the source's partitions (`keys`, the days of [start, end] for a daily source) unless already loaded.

    Without `store`, into the warehouse `connection` is open on. With `store` (the cluster configuration),
    `connection` is a private one (`delta_load.staging_connection`) where the rows are staged and checked the same
    way, and the checked rows (a daily source's days, a reference source's whole table) and then their versions are
    committed to the source's Delta tables.
    """
    fingerprint = load_fingerprint(source, project_dir)
    asset = source_asset(source.name)
    stored = partition_versions(connection, asset, keys)
    if not stale_partitions(stored, keys, fingerprint):
        return SourceLoad(tuple(keys), fingerprint, reused=True)
    staged, problems = stage_source(connection, source, project_dir, start, end)
    outcomes = [CheckOutcome("schema", not problems, "; ".join(problems) or "declared columns and types")]
    if not problems:
        outcomes += check_staged(connection, source, staged, keys if source.is_daily else [])
    if any(not outcome.passed for outcome in outcomes):
        if staged:
            connection.execute(f"DROP TABLE {staged}")
        return SourceLoad(tuple(keys), fingerprint, reused=False, outcomes=tuple(outcomes))
    if store is None:
        written = publish_staged(connection, source, staged, start, end)
        contents = content_versions(connection, source, start, end)
    else:  # the staged rows are the ones committed: hashed before they leave, as the embedded path hashes its table
        contents = content_versions(connection, source, start, end, table=staged)
    changed = [key for key in keys if key not in stored or stored[key].components.get("content") != contents[key]]
    # the version hashes the rows only: a file rewritten with the same rows leaves the feature sets reading it as
    # they are
    versions = {key: PartitionVersion(version=version_of({"content": contents[key]}),
                                      components={"content": contents[key], "load": fingerprint}) for key in keys}
    delta_version = None
    if store is None:
        record_versions(connection, asset, versions)
    elif source.is_daily:
        written, delta_version = commit_days(store, connection, source, staged, start, end, versions)
    else:
        written, delta_version = commit_whole(store, connection, source, staged, versions)
    return SourceLoad(tuple(keys), fingerprint, reused=False, outcomes=tuple(outcomes), written=written,
                      changed=len(changed), delta_version=delta_version)
