"""Write a snapshot's rows to Parquet in bounded memory, in one deterministic order.

The feature matrix is joined a range of days at a time (at most CHUNK_ROWS entity rows each) into a temporary
table, then written sorted by day and entity keys. Over millions of rows at once, the chain of feature joins
holds hash tables that DuckDB cannot spill (it runs out of memory under the warehouse's limit); a temporary table
and a sort both spill to the warehouse's spill folder.

The same rows give the same bytes: the order is total (day, then the entity's keys), and the file's column types
and nullability (Parquet REQUIRED for a column without missing values) come from the rows themselves, however
the days were grouped.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from ml_platform.features.compute import day_ranges, feature_matrix_sql
from ml_platform.specs.catalog import Catalog
from ml_platform.specs.models import ModelSpec, TimeSplit
from ml_platform.names import quote
from ml_platform.storage.warehouse import date_literal

CHUNK_ROWS = 1_000_000
ROWS_TABLE = "temp.main.snapshot_rows"  # the connection's own, never a warehouse table


def split_sql(split: TimeSplit, matrix_sql: str, keep: str = "true") -> str:
    """The matrix's rows within the split's windows and with a label, each named by its window (`split`); only
    those for which the SQL condition `keep` holds (mature labels that stay in their split, see label_windows)."""
    case = (f"CASE WHEN partition_date BETWEEN {date_literal(split.train.start)} AND {date_literal(split.train.end)} "
            f"THEN 'train' WHEN partition_date BETWEEN {date_literal(split.validation.start)} "
            f"AND {date_literal(split.validation.end)} THEN 'validation' "
            f"WHEN partition_date BETWEEN {date_literal(split.test.start)} AND {date_literal(split.test.end)} "
            f"THEN 'test' END")
    return f"SELECT * FROM (SELECT {case} AS split, * FROM ({matrix_sql})) WHERE split IS NOT NULL AND label IS NOT NULL" + (
        f" AND {keep}" if keep != "true" else "")


def write_rows(connection: duckdb.DuckDBPyConnection, catalog: Catalog, model: ModelSpec, split: TimeSplit,
               path: Path, chunk_rows: int = CHUNK_ROWS, keep: str = "true") -> None:
    """Write the snapshot's rows of the split's windows (those `keep` holds for) to a Parquet file at path,
    joining at most about chunk_rows entity rows at a time."""
    keys = ", ".join(quote(key) for key in catalog.entity_rows(model.entity).keys)
    ranges = day_ranges(connection, catalog, model.entity, split.train.start, split.test.end, chunk_rows)
    try:
        for index, (first, last) in enumerate(ranges):
            rows = split_sql(split, feature_matrix_sql(catalog, model, first, last, True), keep)
            connection.execute(f"CREATE OR REPLACE TEMP TABLE {ROWS_TABLE} AS {rows}" if index == 0 else
                               f"INSERT INTO {ROWS_TABLE} {rows}")
        connection.execute(f"COPY (SELECT * FROM {ROWS_TABLE} ORDER BY partition_date, {keys}) TO '{path}' "
                           f"(FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 122880)")
    finally:
        connection.execute(f"DROP TABLE IF EXISTS {ROWS_TABLE}")
