"""Build one Dagster asset per entity spec: `["entity", name]`, partitioned by the entity's grain (an hourly entity
by day, each day's partition holding its hours)."""


from pathlib import Path

import dagster as dg

from ml_platform import grains
from ml_platform.entities.delta_populations import build_delta_partitions
from ml_platform.entities.population import build_partition
from ml_platform.errors import as_dagster_failure
from ml_platform.names import ENTITIES_GROUP, ROW_COUNT_METADATA, TABLE_NAME_METADATA, entity_key, source_key, \
    table_label
from ml_platform.partitions import source_partitions
from ml_platform.specs.catalog import Catalog, partition_grain
from ml_platform.specs.models import EntitySpec
from ml_platform.storage.delta_tables import delta_store_from_environment
from ml_platform.storage.resources import Warehouse


def entity_partitions(entity: EntitySpec) -> dg.TimeWindowPartitionsDefinition:
    """The entity's partitions: one per period of its grain (a day of hours for an hourly entity), from its start
    to the period holding its end."""
    return grains.partitions_definition(partition_grain(entity.grain), entity.start, entity.end, entity.timezone)


def _source_dependency(catalog: Catalog, entity: EntitySpec, name: str) -> dg.AssetDep:
    """A daily source's days from the lookback before a partition to its end; a reference source whole."""
    if not catalog.sources[name].is_daily:
        return dg.AssetDep(source_key(name))
    mapping = dg.TimeWindowPartitionMapping(start_offset=-grains.lookback_periods(partition_grain(entity.grain),
                                                                                 entity.lookback),
                                            allow_nonexistent_upstream_partitions=True)
    return dg.AssetDep(source_key(name), partition_mapping=mapping)


def build_entity_asset(catalog: Catalog, entity: EntitySpec) -> dg.AssetsDefinition:
    """The asset that builds an entity's population into `population.<name>` (into its Delta table when the
    environment names the Delta store: docs/scale-out.md)."""

    @dg.asset(
        key=entity_key(entity.name),
        group_name=ENTITIES_GROUP,
        description=entity.description,
        owners=[entity.owner],
        kinds={"duckdb", "sql"},
        partitions_def=entity_partitions(entity),
        backfill_policy=dg.BackfillPolicy.single_run(),
        deps=[_source_dependency(catalog, entity, name) for name in entity.reads],
        code_version=catalog.entity_hash(entity),
        metadata={
            "spec_file": catalog.file_of("entity", entity.name),
            TABLE_NAME_METADATA: table_label("population", entity.name),
            "grain": entity.grain,
            "keys": ", ".join(entity.keys),
            "time": entity.time,
            "lookback": grains.describe_lookback(entity.lookback),
            "population": dg.MetadataValue.md(f"```sql\n{entity.population}\n```"),
        },
    )
    def population(context: dg.AssetExecutionContext, warehouse: Warehouse) -> dg.MaterializeResult:
        with as_dagster_failure():
            store = delta_store_from_environment()
        delta = {}
        if store is None:
            with warehouse.get_connection() as connection, as_dagster_failure():
                built = [build_partition(connection, catalog, entity, key) for key in context.partition_keys]
        else:  # the cluster configuration: computed apart and committed to its Delta table, the file never written
            with as_dagster_failure():
                build = build_delta_partitions(store, catalog, entity, context.partition_keys,
                                               Path(warehouse.database))
            built = build.partitions
            delta = {"reused": "yes" if build.reused else "no"}
            if build.table_version is not None:
                delta["delta_table_version"] = build.table_version
        rows = [partition.rows for partition in built]
        context.log.info(f"entity '{entity.name}': {sum(rows)} {entity.grain} row(s) in {len(built)} "
                         f"{partition_grain(entity.grain)} partition(s)")
        return dg.MaterializeResult(metadata={
            ROW_COUNT_METADATA: sum(rows),
            "partitions": len(built),
            "rows_per_partition": f"min {min(rows)}, max {max(rows)}" if rows else "none",
            "empty_partitions": sum(1 for count in rows if count == 0),
            **delta,
        })

    return population


def entity_partitions_of(catalog: Catalog, name: str) -> dg.PartitionsDefinition:
    """The partitions of the rows an `entity:` field names: a daily source's days or an entity spec's periods;
    every asset of a model that holds one partition per entity partition (features, predictions, monitoring,
    outcomes) takes these."""
    rows = catalog.entity_rows(name)
    return entity_partitions(rows.population) if rows.is_population else source_partitions(rows.source)
