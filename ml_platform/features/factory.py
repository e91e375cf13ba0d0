"""Build one Dagster asset per feature set: `["features", name]`, partitioned like its entity source."""

import dagster as dg

from ml_platform.errors import as_dagster_failure
from ml_platform.features.proof import PointInTimeError
from ml_platform.features.refresh import FeatureRefresh
from ml_platform.features.tables import StoredFeatures, feature_table_store
from ml_platform import grains
from ml_platform.entities.factory import entity_partitions
from ml_platform.names import (FEATURES_GROUP, POINT_IN_TIME_CHECK, ROW_COUNT_METADATA, TABLE_NAME_METADATA,
                               entity_key, feature_key, source_key, table_label)
from ml_platform.partitions import date_range, source_partitions
from ml_platform.progress import Progress
from ml_platform.storage.resources import Warehouse
from ml_platform.specs.catalog import Catalog
from ml_platform.specs.models import FeatureSetSpec, Lookback



def _window(lookback_days: int, grain: str = "daily") -> dg.TimeWindowPartitionMapping:
    """Each partition depends on the upstream partitions from lookback_days before it to its end (Dagster counts
    the offset in the feature set's own periods: a week's 14 days of lookback are 2 weeks)."""
    periods = grains.lookback_periods(grain, Lookback(days=lookback_days)) if lookback_days else 0
    return dg.TimeWindowPartitionMapping(start_offset=-periods, allow_nonexistent_upstream_partitions=True)


def _source_dependency(catalog: Catalog, name: str, lookback_days: int, grain: str = "daily") -> dg.AssetDep:
    """A feature set's dependency on a source it reads: its lookback window of days, or the whole table."""
    source = catalog.sources[name]
    if not source.is_daily:
        return dg.AssetDep(source_key(name))
    return dg.AssetDep(source_key(name), partition_mapping=_window(lookback_days, grain))


def feature_partitions(catalog: Catalog, feature_set: FeatureSetSpec) -> dg.PartitionsDefinition:
    """A feature set's partitions: its entity's (a source's days, or an entity spec's periods)."""
    rows = catalog.entity_rows(feature_set.entity)
    if rows.is_population:
        return entity_partitions(rows.population)
    return source_partitions(catalog.sources[feature_set.entity])


def build_feature_asset(catalog: Catalog, feature_set: FeatureSetSpec) -> dg.AssetsDefinition:
    """The asset that computes one feature set into `features.<name>`."""
    rows = catalog.entity_rows(feature_set.entity)
    version = catalog.feature_set_hash(feature_set)
    reads = sorted({*feature_set.reads, *([] if rows.is_population else [feature_set.entity])})
    entity_dep = [dg.AssetDep(entity_key(rows.name))] if rows.is_population else []

    @dg.asset(
        key=feature_key(feature_set.name),
        group_name=FEATURES_GROUP,
        description=feature_set.description,
        owners=[feature_set.owner],
        kinds={"duckdb", "sql"},
        partitions_def=feature_partitions(catalog, feature_set),
        backfill_policy=dg.BackfillPolicy.single_run(),
        deps=entity_dep + [_source_dependency(catalog, name, feature_set.lookback_days, rows.grain)
                           for name in reads] + [
            dg.AssetDep(feature_key(name), partition_mapping=_window(feature_set.lookback_days, rows.grain))
            for name in feature_set.uses],
        code_version=version,
        check_specs=[dg.AssetCheckSpec(
            POINT_IN_TIME_CHECK, asset=feature_key(feature_set.name), blocking=True,
            description="every sampled stored value equals its value recomputed with every source cut at the "
                        "row's prediction time")],
        metadata={
            "spec_file": catalog.file_of("feature_set", feature_set.name),
            TABLE_NAME_METADATA: table_label("features", feature_set.name),
            "features": dg.MetadataValue.md(
                "| feature | type | description |\n|---|---|---|\n" + "\n".join(
                    f"| {name} | {feature.type} | {feature.description} |"
                    for name, feature in feature_set.features.items())),
            "known_by": feature_set.known_by.describe(),
            "sql": dg.MetadataValue.md(f"```sql\n{feature_set.sql}\n```"),
        },
    )
    def compute(context: dg.AssetExecutionContext, warehouse: Warehouse):
        start, end = date_range(context)
        try:
            with as_dagster_failure():
                stored = feature_table_store().refresh(warehouse, catalog, feature_set, start, end,
                                                       Progress(context.log.info))
        except dg.Failure as failure:
            if not isinstance(failure.__cause__, PointInTimeError):
                raise
            proof = failure.__cause__.proof
            yield dg.AssetCheckResult(check_name=POINT_IN_TIME_CHECK, passed=False, description=proof.message(),
                                      severity=dg.AssetCheckSeverity.ERROR, metadata=proof.metadata())
            raise
        refresh = stored.refresh
        context.log.info(f"features '{feature_set.name}': {refresh.why_recomputed()}")
        yield dg.MaterializeResult(metadata={**refresh_metadata(refresh, version), **commits_metadata(stored)},
                                   check_results=[proof_result(refresh)])

    return compute


def refresh_metadata(refresh: FeatureRefresh, definition_version: str) -> dict:
    """The materialization's metadata: days reused and recomputed, and why."""
    metadata = {
        "days": len(refresh.expected),
        "recomputed_days": len(refresh.stale),
        "reused_days": refresh.reused_days,
        "definition_version": definition_version,
        "reused": refresh.reused(),
        "why_recomputed": refresh.why_recomputed(),
    }
    if refresh.stale:
        metadata[ROW_COUNT_METADATA] = refresh.rows
    return metadata


def proof_result(refresh: FeatureRefresh) -> dg.AssetCheckResult:
    """The point-in-time check's verdict: the recomputed days' proof, or passed when every day was reused."""
    if refresh.proof is None:
        return dg.AssetCheckResult(check_name=POINT_IN_TIME_CHECK, passed=True,
                                   description="every day reused: proven when it was computed")
    return dg.AssetCheckResult(check_name=POINT_IN_TIME_CHECK, passed=refresh.proof.passed,
                               metadata=refresh.proof.metadata(), description=refresh.proof.message())


def commits_metadata(stored: StoredFeatures) -> dict:
    """The Delta commits of the partitions (none for the embedded warehouse): how many, on how many processes, and
    each partition's [start, commit] seconds, so that a reader sees which partitions ran at the same time."""
    if not stored.commits:
        return {}
    origin = min(commit.started_at for commit in stored.commits)
    return {
        "delta_commits": len(stored.commits),
        "delta_processes": len({(commit.host, commit.pid) for commit in stored.commits}),
        "delta_partitions": dg.MetadataValue.md(
            "| partition | rows | table version | process | start s | commit s |\n|---|---|---|---|---|---|\n"
            + "\n".join(f"| {commit.first_day} | {commit.rows} | {commit.table_version} | {commit.host}:{commit.pid} "
                        f"| {commit.started_at - origin:.2f} | {commit.committed_at - origin:.2f} |"
                        for commit in sorted(stored.commits, key=lambda commit: commit.first_day))),
    }
