"""A batch's feature rows read once from the warehouse, as Arrow, and seen by SQL as `scoring_rows`.

The rows leave DuckDB once: the predictor encodes its columns from the Arrow table (training.arrow_matrix), and the
write of the scores, inputs and provenance reads the same table back through the view `scoring_rows`, each column
cast to the type the feature query gave it, so that what is stored has the types a DuckDB table would have kept.
No temporary table is written and read again. The view reads the table in its order, so rows line up with their
scores by position (the caller checks that insertion order is preserved on its connection).
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import duckdb
import pyarrow as pa

from ml_platform.names import quote

VIEW = "scoring_rows"
_TABLE = "scoring_rows_arrow"


@dataclass(frozen=True)
class StagedRows:
    """The batch's rows as Arrow, and the DuckDB type of each column (name: type), in order."""

    table: pa.Table
    types: dict[str, str]

    def features(self, names: list[str]) -> dict[str, str]:
        """The DuckDB type of each named feature, in the given order."""
        return {name: self.types[name] for name in names}


@contextmanager
def staged_rows(connection: duckdb.DuckDBPyConnection, sql: str) -> Iterator[StagedRows]:
    """Run `sql` once into Arrow and expose its rows as the view `scoring_rows` for the duration."""
    relation = connection.sql(sql)
    types = {name: str(kind) for name, kind in zip(relation.columns, relation.types)}
    table = relation.to_arrow_table()
    connection.register(_TABLE, table)
    try:
        casts = ", ".join(f"CAST({quote(name)} AS {kind}) AS {quote(name)}" for name, kind in types.items())
        connection.execute(f"CREATE OR REPLACE TEMP VIEW {VIEW} AS SELECT {casts} FROM {_TABLE}")
        yield StagedRows(table, types)
    finally:
        connection.execute(f"DROP VIEW IF EXISTS {VIEW}")
        connection.unregister(_TABLE)
