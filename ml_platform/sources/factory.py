"""Build one Dagster asset per source spec: `["source", name]`, daily-partitioned or loaded whole."""

import dagster as dg

from ml_platform.partitions import date_range, source_partitions
from ml_platform.storage.resources import Warehouse
from ml_platform.sources.checks import CHECK_NAMES, CheckOutcome, check_staged
from ml_platform.sources.loading import content_versions, file_fingerprint, publish_staged, stage_source
from ml_platform.hashing import canonical_json, short_hash
from ml_platform.specs.catalog import Catalog
from ml_platform.specs.models import SourceSpec
from ml_platform.storage.versions import WHOLE, record_versions, source_asset, stored_versions, version_of


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
    check_names = ["schema", "row_count"] + (["unique_keys"] if source.checks.unique_keys else []) + (
        ["not_null"] if source.checks.not_null else []) + (["value_ranges"] if source.checks.ranges else []) + (
        ["distribution_shift", "null_surge"] if partitions else [])

    @dg.asset(
        key=source_key(source.name),
        group_name="sources",
        description=source.description,
        owners=[source.owner],
        kinds={"duckdb"},
        tags={"trust": source.trust},
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run() if partitions else None,
        code_version=spec_hash,
        check_specs=[dg.AssetCheckSpec(name, asset=source_key(source.name), blocking=True,
                                       description=CHECK_NAMES[name]) for name in check_names],
        metadata={
            "trust": source.trust,
            "spec_file": catalog.file_of("source", source.name),
            "dagster/table_name": f"source.{source.name}",
            "dagster/column_schema": column_schema(source),
            "after_event_columns": ", ".join(source.after_event_columns()) or "none",
        },
    )
    def load(context: dg.AssetExecutionContext, warehouse: Warehouse):
        start, end = date_range(context) if partitions else (None, None)
        keys = context.partition_keys if partitions else [WHOLE]
        fingerprint = {"spec": spec_hash, "file": file_fingerprint(source, catalog.project_dir)}
        asset = source_asset(source.name)
        with warehouse.get_connection() as connection:
            stored = stored_versions(connection, asset, keys)
            if all(stored.get(key, {}).get("components", {}).get("load") == fingerprint for key in keys):
                yield dg.MaterializeResult(metadata={
                    "reused": f"{len(keys)} partition(s) already loaded from the same file and spec "
                              f"(file {fingerprint['file']}, spec {spec_hash}): nothing read",
                    "spec_hash": spec_hash,
                }, check_results=[dg.AssetCheckResult(check_name=name, passed=True,
                                                      description="unchanged data, checked when loaded")
                                  for name in check_names])
                return
            staged, problems = stage_source(connection, source, catalog.project_dir, start, end)
            outcomes = [CheckOutcome("schema", not problems, "; ".join(problems) or "declared columns and types")]
            if not problems:
                outcomes += check_staged(connection, source, staged, keys if partitions else [])
            results = [dg.AssetCheckResult(check_name=outcome.name, passed=outcome.passed,
                                           severity=dg.AssetCheckSeverity.ERROR, description=outcome.message)
                       for outcome in outcomes if outcome.name in check_names]
            failed = [outcome for outcome in outcomes if not outcome.passed]
            if failed:
                yield from results
                raise dg.Failure(description=f"source '{source.name}' rejected, nothing written: " + "; ".join(
                    f"{outcome.name}: {outcome.message}" for outcome in failed))
            written = publish_staged(connection, source, staged, start, end)
            contents = content_versions(connection, source, start, end)
            changed = [key for key in keys
                       if stored.get(key, {}).get("components", {}).get("content") != contents[key]]
            record_versions(connection, asset, {
                key: {"version": version_of({"content": contents[key]}),
                      "components": {"content": contents[key], "load": fingerprint}} for key in keys})
        yield dg.MaterializeResult(metadata={
            "dagster/row_count": written,
            "days": len(keys) if partitions else 0,
            "reused": "no",
            "changed_partitions": len(changed),
            "file_sha256": fingerprint["file"],
            "spec_hash": spec_hash,
        }, check_results=results)

    return load
