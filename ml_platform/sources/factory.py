"""Build one Dagster asset per source spec: `["source", name]`, daily-partitioned or loaded whole."""

import dagster as dg

from ml_platform.partitions import date_range, source_partitions
from ml_platform.resources import Warehouse
from ml_platform.sources.loading import content_versions, file_fingerprint, load_source
from ml_platform.specs.catalog import Catalog, canonical_json, short_hash
from ml_platform.specs.models import SourceSpec
from ml_platform.storage.versions import WHOLE, record_versions, source_asset, stored_versions, version_of
from ml_platform.storage.warehouse import rows_per_day, table


def source_key(name: str) -> dg.AssetKey:
    """Asset key of a source."""
    return dg.AssetKey(["source", name])


def column_schema(source: SourceSpec) -> dg.TableSchema:
    """The warehouse table's columns as Dagster metadata."""
    described = {name: column.description or column.known for name, column in source.columns.items()}
    described.update({name: derived.description or "derived" for name, derived in source.derived_columns.items()})
    return dg.TableSchema(
        columns=[dg.TableColumn(name, kind, description=described.get(name, "")) for name, kind in
                 source.all_columns().items()]
    )


def build_source_asset(catalog: Catalog, source: SourceSpec) -> dg.AssetsDefinition:
    """The asset that loads one source into `source.<name>` in the warehouse."""
    partitions = source_partitions(source)
    spec_hash = short_hash(canonical_json(source))

    @dg.asset(
        key=source_key(source.name),
        group_name="sources",
        description=source.description,
        owners=[source.owner],
        kinds={"duckdb"},
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run() if partitions else None,
        code_version=spec_hash,
        metadata={
            "trust": source.trust,
            "spec_file": catalog.file_of("source", source.name),
            "dagster/table_name": f"source.{source.name}",
            "dagster/column_schema": column_schema(source),
            "after_event_columns": ", ".join(source.after_event_columns()) or "none",
        },
    )
    def load(context: dg.AssetExecutionContext, warehouse: Warehouse) -> dg.MaterializeResult:
        start, end = date_range(context) if partitions else (None, None)
        keys = context.partition_keys if partitions else [WHOLE]
        fingerprint = {"spec": spec_hash, "file": file_fingerprint(source, catalog.project_dir)}
        asset = source_asset(source.name)
        with warehouse.get_connection() as connection:
            stored = stored_versions(connection, asset, keys)
            if all(stored.get(key, {}).get("components", {}).get("load") == fingerprint for key in keys):
                return dg.MaterializeResult(metadata={
                    "reused": f"{len(keys)} partition(s) already loaded from the same file and spec "
                              f"(file {fingerprint['file']}, spec {spec_hash}): nothing read",
                    "spec_hash": spec_hash,
                })
            written = load_source(connection, source, catalog.project_dir, start, end)
            contents = content_versions(connection, source, start, end)
            changed = [key for key in keys
                       if stored.get(key, {}).get("components", {}).get("content") != contents[key]]
            record_versions(connection, asset, {
                key: {"version": version_of({"content": contents[key]}),
                      "components": {"content": contents[key], "load": fingerprint}} for key in keys})
            per_day = rows_per_day(connection, table("source", source.name), start, end) if partitions else {}
        empty_days = [key for key in keys if partitions and per_day.get(key, 0) == 0]
        if empty_days:
            context.log.warning(f"source '{source.name}' has no rows for {len(empty_days)} day(s): {empty_days[:10]}")
        return dg.MaterializeResult(metadata={
            "dagster/row_count": written,
            "days": len(keys) if partitions else 0,
            "empty_days": len(empty_days),
            "reused": "no",
            "changed_partitions": len(changed),
            "file_sha256": fingerprint["file"],
            "spec_hash": spec_hash,
        })

    return load
