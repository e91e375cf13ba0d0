"""Build one Dagster asset per feature set: `["features", name]`, partitioned like its entity source."""

import dagster as dg
from ml_platform.resources import Warehouse

from ml_platform.features.compute import compute_feature_set
from ml_platform.partitions import date_range, source_partitions
from ml_platform.sources.factory import source_key
from ml_platform.specs.catalog import Catalog
from ml_platform.specs.models import FeatureSetSpec


def feature_key(name: str) -> dg.AssetKey:
    """Asset key of a feature set."""
    return dg.AssetKey(["features", name])


def _source_dependency(catalog: Catalog, name: str, lookback_days: int) -> dg.AssetDep:
    source = catalog.sources[name]
    if not source.is_daily:
        return dg.AssetDep(source_key(name))
    mapping = dg.TimeWindowPartitionMapping(start_offset=-lookback_days, allow_nonexistent_upstream_partitions=True)
    return dg.AssetDep(source_key(name), partition_mapping=mapping)


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
        deps=[_source_dependency(catalog, name, feature_set.lookback_days) for name in reads],
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
            counts = compute_feature_set(connection, catalog, feature_set, start, end)
        return dg.MaterializeResult(metadata={
            "dagster/row_count": counts["rows"],
            "days": len(context.partition_keys),
            "feature_set_version": version,
        })

    return compute
