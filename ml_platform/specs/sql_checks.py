"""Check spec SQL at load time against empty tables shaped like the declared sources.

The same names resolve at load time and at run time: every source is a table `source.<name>` found through the
search path, and a feature set's rows of interest are the view `entity`.
"""

from __future__ import annotations

from typing import Mapping

import duckdb

from ml_platform.specs.models import SourceSpec

NUMERIC_TYPES = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "FLOAT", "DOUBLE", "UTINYINT", "USMALLINT",
                 "UINTEGER", "UBIGINT"}


def first_line(error: Exception) -> str:
    """DuckDB's error message without its multi-line context."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def only_one_select(connection: duckdb.DuckDBPyConnection, sql: str) -> str | None:
    """An error message unless sql is exactly one SELECT statement (spec SQL may only read)."""
    try:
        statements = connection.extract_statements(sql)
    except duckdb.Error as error:
        return f"SQL does not parse: {first_line(error)}"
    if len(statements) != 1:
        return f"must be exactly one SELECT statement, found {len(statements)} statements"
    if statements[0].type != duckdb.StatementType.SELECT:
        return f"must be a SELECT statement, found {statements[0].type.name}"
    return None


class SqlChecker:
    """An in-memory DuckDB holding empty tables with the declared sources' columns."""

    def __init__(self, sources: Mapping[str, SourceSpec]):
        self.connection = duckdb.connect(":memory:")
        self.connection.execute("CREATE SCHEMA source; CREATE SCHEMA raw")
        for source in sources.values():
            raw_columns = ", ".join(f'"{name}" {column.type}' for name, column in source.columns.items())
            self.connection.execute(f'CREATE TABLE raw."{source.name}" ({raw_columns})')
            all_columns = ", ".join(f'"{name}" {kind}' for name, kind in source.all_columns().items())
            self.connection.execute(f'CREATE TABLE source."{source.name}" ({all_columns})')
        self.connection.execute("SET search_path = 'source,main'")

    def close(self) -> None:
        """Release the in-memory database."""
        self.connection.close()

    def describe(self, sql: str) -> tuple[list[tuple[str, str]] | None, str | None]:
        """The (column, type) pairs a SELECT returns, or an error message."""
        problem = only_one_select(self.connection, sql)
        if problem:
            return None, problem
        try:
            rows = self.connection.execute(f"DESCRIBE {sql}").fetchall()
        except duckdb.Error as error:
            return None, first_line(error)
        return [(row[0], row[1]) for row in rows], None

    def expression_type(self, expression: str, table: str, schema: str = "source",
                        extra_select: str = "") -> tuple[str | None, str | None]:
        """The DuckDB type of an expression evaluated over a table's rows, or an error message."""
        inner = f'SELECT *{extra_select} FROM {schema}."{table}"'
        columns, problem = self.describe(f"SELECT ({expression}) AS value FROM ({inner})")
        if problem:
            return None, problem
        return columns[0][1], None

    def with_entity(self, entity: str):
        """Point the `entity` view at the given source for the next checks."""
        self.connection.execute(f'CREATE OR REPLACE TEMP VIEW entity AS SELECT * FROM source."{entity}"')


def is_numeric(duckdb_type: str) -> bool:
    """True for integer, floating and decimal DuckDB types."""
    return duckdb_type in NUMERIC_TYPES or duckdb_type.startswith("DECIMAL")
