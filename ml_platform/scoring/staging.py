"""A batch's feature rows read once from the warehouse, as Arrow, and seen by SQL as `scoring_rows`.

The rows leave DuckDB once: the predictor encodes its columns from the Arrow table (training.arrow_matrix), and the
write of the scores, inputs and provenance reads the same table back through the view `scoring_rows`, each column
cast to the type the feature query gave it, so that what is stored has the types a DuckDB table would have kept.
No temporary table is written and read again.

The batch's scores join its rows as columns of the same Arrow table (`StagedRows.add_columns`), so the write reads
one table, in its order, on every thread DuckDB has: a row and its scores cannot be paired wrongly, and no
positional join (which DuckDB runs on one thread, and which pads a shorter side with NULLs) is needed. The view
reads the table in its order (the caller checks that insertion order is preserved on its connection).
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator

import duckdb
import pandas as pd
import pyarrow as pa

from ml_platform.errors import PlatformError
from ml_platform.names import quote
from ml_platform.training.inference import ScoringError

VIEW = "scoring_rows"
_TABLE = "scoring_rows_arrow"
_FRAME = "scoring_rows_scores"
# rows scored at a time: bounds memory when a backfill scores millions of rows (predictions do not depend on it)
BATCH_ROWS = 1_000_000


def require_insertion_order(connection: duckdb.DuckDBPyConnection) -> None:
    """Scoring stages rows here only on a connection that reads tables in insertion order: scores computed from a
    frame read through the view become the staged table's columns by position, and the rows are stored in the
    staged order."""
    if not connection.execute("SELECT current_setting('preserve_insertion_order')").fetchall()[0][0]:
        raise ScoringError("scoring needs DuckDB's preserve_insertion_order setting on (its default): scores are "
                           "matched to their rows by position; it is off on this connection")


class StagingError(PlatformError, RuntimeError):
    """A batch's scores cannot be put beside its staged rows."""


@dataclass
class StagedRows:
    """The batch's rows as Arrow, and the DuckDB type of each feature query column (name: type), in order; after
    `add_columns`, the table holds the scores too."""

    table: pa.Table
    types: dict[str, str]
    _connection: duckdb.DuckDBPyConnection = field(repr=False)

    def features(self, names: list[str]) -> dict[str, str]:
        """The DuckDB type of each named feature, in the given order."""
        return {name: self.types[name] for name in names}

    def add_columns(self, columns: pa.Table) -> None:
        """Put `columns` (one row per staged row, in the rows' order: the batch's scores) beside the rows, seen by
        the view under their own names and types."""
        if columns.num_rows != self.table.num_rows:
            raise StagingError(f"the batch has {self.table.num_rows:,} rows but {columns.num_rows:,} scores: "
                               f"each row needs exactly one")
        clashing = sorted(set(columns.column_names) & set(self.table.column_names))
        if clashing:
            raise StagingError(f"score columns {clashing} are already columns of the batch's rows")
        table = self.table
        for name, column in zip(columns.column_names, columns.columns):
            table = table.append_column(columns.schema.field(name), column)
        self.table = table
        _expose(self._connection, table, self.types)

    def add_frame(self, frame: pd.DataFrame) -> None:
        """`add_columns` for scores held in a pandas frame (a task's decisions, TreeSHAP contributions): read
        through DuckDB's own scan of the frame, so each column has the type DuckDB gives a frame's column."""
        self._connection.register(_FRAME, frame)
        try:
            columns = self._connection.sql(f"SELECT * FROM {_FRAME}").to_arrow_table()
        finally:
            self._connection.unregister(_FRAME)
        self.add_columns(columns)


def _expose(connection: duckdb.DuckDBPyConnection, table: pa.Table, types: dict[str, str]) -> None:
    """Register `table` and (re)create the view: the feature query's columns cast to their types, then any others
    as they are."""
    connection.register(_TABLE, table)
    columns = [f"CAST({quote(name)} AS {kind}) AS {quote(name)}" for name, kind in types.items()]
    columns += [quote(name) for name in table.column_names if name not in types]
    connection.execute(f"CREATE OR REPLACE TEMP VIEW {VIEW} AS SELECT {', '.join(columns)} FROM {_TABLE}")


@contextmanager
def staged_rows(connection: duckdb.DuckDBPyConnection, sql: str) -> Iterator[StagedRows]:
    """Run `sql` once into Arrow and expose its rows as the view `scoring_rows` for the duration."""
    relation = connection.sql(sql)
    types = {name: str(kind) for name, kind in zip(relation.columns, relation.types)}
    table = relation.to_arrow_table()
    try:
        _expose(connection, table, types)
        yield StagedRows(table, types, connection)
    finally:
        connection.execute(f"DROP VIEW IF EXISTS {VIEW}")
        connection.unregister(_TABLE)
