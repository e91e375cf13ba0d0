"""Build one Dagster asset per source spec: `["source", name]`, daily-partitioned or loaded whole."""

from pathlib import Path

import dagster as dg

from ml_platform.errors import as_dagster_failure
from ml_platform.names import (COLUMN_SCHEMA_METADATA, ROW_COUNT_METADATA, SOURCES_GROUP, TABLE_NAME_METADATA,
                               TRUST_TAG, source_key, table_label)
from ml_platform.partitions import date_range, source_partitions
from ml_platform.sources.checks import CHECK_NAMES, declared_checks
from ml_platform.sources.delta_load import staging_connection
from ml_platform.sources.loading import source_spec_hash
from ml_platform.sources.refresh import SourceLoad, refresh_source
from ml_platform.specs.catalog import Catalog
from ml_platform.specs.models import SourceSpec
from ml_platform.storage.delta_tables import delta_store_from_environment
from ml_platform.storage.resources import Warehouse
from ml_platform.storage.versions import WHOLE



def column_schema(source: SourceSpec) -> dg.TableSchema:
    """The warehouse table's columns as Dagster metadata."""
    described = {name: column.description or column.known for name, column in source.columns.items()}
    described.update({name: derived.description or "derived" for name, derived in source.derived_columns.items()})
    return dg.TableSchema(
        columns=[dg.TableColumn(name, kind, description=described.get(name, "")) for name, kind in
                 source.all_columns().items()]
    )


def build_source_asset(catalog: Catalog, source: SourceSpec) -> dg.AssetsDefinition:
    """The asset that loads one source into `source.<name>` in the warehouse (into its Delta table when the
    environment names the Delta store: docs/scale-out.md)."""
    partitions = source_partitions(source)
    spec_hash = source_spec_hash(source)
    check_names = declared_checks(source)

    @dg.asset(
        key=source_key(source.name),
        group_name=SOURCES_GROUP,
        description=source.description,
        owners=[source.owner],
        kinds={"duckdb"},
        tags={TRUST_TAG: source.trust},
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run() if partitions else None,
        code_version=spec_hash,
        check_specs=[dg.AssetCheckSpec(name, asset=source_key(source.name), blocking=True,
                                       description=CHECK_NAMES[name]) for name in check_names],
        metadata={
            TRUST_TAG: source.trust,
            "spec_file": catalog.file_of("source", source.name),
            TABLE_NAME_METADATA: table_label("source", source.name),
            COLUMN_SCHEMA_METADATA: column_schema(source),
            "after_event_columns": ", ".join(source.after_event_columns()) or "none",
        },
    )
    def load(context: dg.AssetExecutionContext, warehouse: Warehouse):
        start, end = date_range(context) if partitions else (None, None)
        keys = context.partition_keys if partitions else [WHOLE]
        with as_dagster_failure():
            # the cluster configuration's source (daily or reference): staged apart and committed to its Delta
            # table, the warehouse file neither opened nor locked
            store = delta_store_from_environment()
            with (warehouse.get_connection() if store is None else
                  staging_connection(store, source, Path(warehouse.database))) as connection:
                loaded = refresh_source(connection, source, catalog.project_dir, keys, start, end, store)
        results = check_results(loaded, check_names)
        if loaded.failures():
            yield from results
            raise dg.Failure(description=loaded.rejection(source.name))
        yield dg.MaterializeResult(metadata=load_metadata(loaded, source), check_results=results)

    return load


def check_results(loaded: SourceLoad, check_names: list[str]) -> list[dg.AssetCheckResult]:
    """The declared checks' results: their verdicts on the staged rows, or passed when nothing was read."""
    if loaded.reused:
        return [dg.AssetCheckResult(check_name=name, passed=True, description="unchanged data, checked when loaded")
                for name in check_names]
    return [dg.AssetCheckResult(check_name=outcome.name, passed=outcome.passed, severity=dg.AssetCheckSeverity.ERROR,
                                description=outcome.message)
            for outcome in loaded.outcomes if outcome.name in check_names]


def load_metadata(loaded: SourceLoad, source: SourceSpec) -> dict:
    """The materialization's metadata: what was read and written, or why nothing was."""
    fingerprint = loaded.fingerprint
    if loaded.reused:
        return {"reused": f"{len(loaded.keys)} partition(s) already loaded from the same file and spec "
                          f"(file {fingerprint['file']}, spec {fingerprint['spec']}): nothing read",
                "spec_hash": fingerprint["spec"]}
    metadata = {
        ROW_COUNT_METADATA: loaded.written,
        "days": len(loaded.keys) if source.is_daily else 0,
        "reused": "no",
        "changed_partitions": loaded.changed,
        "file_sha256": fingerprint["file"],
        "spec_hash": fingerprint["spec"],
    }
    if loaded.delta_version is not None:  # the cluster configuration: the Delta table's version holding the rows
        metadata["delta_table_version"] = loaded.delta_version
    return metadata
