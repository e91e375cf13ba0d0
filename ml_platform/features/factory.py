"""Build one Dagster asset per feature set: `["features", name]`, partitioned like its entity source."""

from collections import Counter

import dagster as dg

from ml_platform.features.compute import compute_feature_set
from ml_platform.features.versions import segments, stale_days
from ml_platform.partitions import date_range, source_partitions
from ml_platform.storage.resources import Warehouse
from ml_platform.sources.factory import source_key
from ml_platform.specs.catalog import Catalog
from ml_platform.specs.models import FeatureSetSpec
from ml_platform.storage.versions import feature_asset, record_versions


def feature_key(name: str) -> dg.AssetKey:
    """Asset key of a feature set."""
    return dg.AssetKey(["features", name])


def _window(lookback_days: int) -> dg.TimeWindowPartitionMapping:
    """Each day depends on the upstream days [day - lookback_days, day]."""
    return dg.TimeWindowPartitionMapping(start_offset=-lookback_days, allow_nonexistent_upstream_partitions=True)


def _source_dependency(catalog: Catalog, name: str, lookback_days: int) -> dg.AssetDep:
    source = catalog.sources[name]
    if not source.is_daily:
        return dg.AssetDep(source_key(name))
    return dg.AssetDep(source_key(name), partition_mapping=_window(lookback_days))


def build_feature_asset(catalog: Catalog, feature_set: FeatureSetSpec) -> dg.AssetsDefinition:
    """The asset that computes one feature set into `features.<name>`."""
    entity = catalog.sources[feature_set.entity]
    version = catalog.feature_set_hash(feature_set)
    reads = sorted({feature_set.entity, *feature_set.reads})

    @dg.asset(
        key=feature_key(feature_set.name),
        group_name="features",
        description=feature_set.description,
        owners=[feature_set.owner],
        kinds={"duckdb", "sql"},
        partitions_def=source_partitions(entity),
        backfill_policy=dg.BackfillPolicy.single_run(),
        deps=[_source_dependency(catalog, name, feature_set.lookback_days) for name in reads] + [
            dg.AssetDep(feature_key(name), partition_mapping=_window(feature_set.lookback_days))
            for name in feature_set.uses],
        code_version=version,
        metadata={
            "spec_file": catalog.file_of("feature_set", feature_set.name),
            "dagster/table_name": f"features.{feature_set.name}",
            "features": dg.MetadataValue.md(
                "| feature | type | description |\n|---|---|---|\n" + "\n".join(
                    f"| {name} | {feature.type} | {feature.description} |"
                    for name, feature in feature_set.features.items())),
            "known_by": f"{feature_set.known_by.days_before} day(s) before, {feature_set.known_by.time}",
            "sql": dg.MetadataValue.md(f"```sql\n{feature_set.sql}\n```"),
        },
    )
    def compute(context: dg.AssetExecutionContext, warehouse: Warehouse) -> dg.MaterializeResult:
        start, end = date_range(context)
        with warehouse.get_connection() as connection:
            expected, stale = stale_days(connection, catalog, feature_set, start, end)
            rows = 0
            for first, last in segments(list(stale)):
                counts = compute_feature_set(connection, catalog, feature_set, first, last)
                rows += counts["rows"]
                record_versions(connection, feature_asset(feature_set.name),
                                {day: expected[day] for day in stale if first.isoformat() <= day <= last.isoformat()})
        reasons = Counter(stale.values())
        versions = sorted({entry["version"] for entry in expected.values()})
        metadata = {
            "days": len(expected),
            "recomputed_days": len(stale),
            "reused_days": len(expected) - len(stale),
            "definition_version": version,
            "reused": (f"all {len(expected)} day(s): versions already stored (e.g. {versions[0]})" if not stale
                       else f"{len(expected) - len(stale)} of {len(expected)} day(s)"),
            "why_recomputed": "; ".join(f"{count} day(s) {reason}" for reason, count in reasons.most_common())
                              or "nothing changed",
        }
        if stale:
            metadata["dagster/row_count"] = rows
        context.log.info(f"features '{feature_set.name}': {metadata['why_recomputed']}")
        return dg.MaterializeResult(metadata=metadata)

    return compute
