"""Check spec SQL at load time against empty tables shaped like the declared sources.

The same names resolve at load time and at run time: every source is a table `source.<name>` found through the
search path, and a feature set's rows of interest are the view `entity`.
"""

from __future__ import annotations

import re
from typing import Iterable, Mapping

import duckdb

from ml_platform import names
from ml_platform.specs.errors import did_you_mean, unknown_name
from ml_platform.specs.models import SourceSpec

NUMERIC_TYPES = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "FLOAT", "DOUBLE", "UTINYINT", "USMALLINT",
                 "UINTEGER", "UBIGINT"}

# The parts of DuckDB's messages that the checks turn into the platform's own wording.
_ERROR_PREFIX = re.compile(r"^[A-Za-z ]+ Error: ")
_MISSING_TABLE = re.compile(r'Table with name "?([^"\s!]+)"? does not exist')
_MISSING_COLUMN = re.compile(r'Referenced column "([^"]+)" not found|does not have a column named "([^"]+)"')
_CANDIDATES = re.compile(r'Candidate bindings: [:\s]*(.*)')
_DID_YOU_MEAN = re.compile(r'^Did you mean (.*)\?$', re.MULTILINE)
_LINE = re.compile(r"^LINE (\d+):", re.MULTILINE)

RAW = "raw"  # the checker's own schema: each source's file columns, before casts and derived columns


def _qualified(schema: str, name: str) -> str:
    """A checked table's quoted name: the warehouse's own (names.table), or a raw file's."""
    return f"{RAW}.{names.quote(name)}" if schema == RAW else names.table(schema, name)


def first_line(error: Exception) -> str:
    """DuckDB's error message without its multi-line context."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _at_line(error: Exception, sql: str) -> str:
    """' (line N)' for an error in SQL of several lines, else an empty string."""
    match = _LINE.search(str(error))
    return f" (line {match.group(1)})" if match and "\n" in sql.strip() else ""


def spec_sql_connection() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB for checking spec SQL, which can reach no file, URL or other database: binding a table
    function such as read_csv already reads the file, so the load-time checks run where that is impossible."""
    return duckdb.connect(":memory:", config={"enable_external_access": False})


def only_one_select(connection: duckdb.DuckDBPyConnection, sql: str) -> str | None:
    """An error message unless sql is exactly one SELECT statement (spec SQL may only read)."""
    try:
        statements = connection.extract_statements(sql)
    except duckdb.Error as error:
        return f"SQL does not parse: {_ERROR_PREFIX.sub('', first_line(error))}{_at_line(error, sql)}"
    if len(statements) != 1:
        return f"must be exactly one SELECT statement, found {len(statements)} statements"
    if statements[0].type != duckdb.StatementType.SELECT:
        return f"must be a SELECT statement, found {statements[0].type.name}"
    return None


class SqlChecker:
    """An in-memory DuckDB holding empty tables with the declared sources' columns."""

    def __init__(self, sources: Mapping[str, SourceSpec], unreadable: Iterable[str] = (),
                 connection: duckdb.DuckDBPyConnection | None = None,
                 feature_tables: Mapping[str, Mapping[str, str]] | None = None, before_event_only: bool = False):
        """Tables for `sources`; `unreadable` names sources that exist but that this SQL has not declared.

        `feature_tables` adds `features.<name>` tables ({column: type}) for the feature sets the SQL may use.
        With `before_event_only`, the source tables (and `entity`) lack the columns known only after the event;
        every column stays readable through `history.<source>`, for outcomes of earlier events.
        A given in-memory `connection` is reset and reused (connecting costs more than every check of a spec).
        """
        self.owns_connection = connection is None
        self.connection = connection if connection is not None else spec_sql_connection()
        self.connection.execute("DROP VIEW IF EXISTS entity; " + "".join(
            f"DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}; "
            for schema in ("source", RAW, "features", "history")))
        self.columns: dict[tuple[str, str], list[str]] = {}
        self.tables = sorted(sources) + sorted(feature_tables or {})
        self.unreadable = set(unreadable) - set(sources)
        self.registered: list[str] = []
        for source in sources.values():
            raw_columns = ", ".join(f'"{name}" {column.type}' for name, column in source.columns.items())
            self.connection.execute(f"CREATE TABLE {_qualified(RAW, source.name)} ({raw_columns})")
            hidden = set(source.after_event_columns()) if before_event_only else set()
            visible = {name: kind for name, kind in source.all_columns().items() if name not in hidden}
            # feature SQL reads each source with the time its row became known (features/relations.py)
            timed = {names.AVAILABLE_AT_COLUMN: "TIMESTAMP"} if before_event_only else {}
            self._create("source", source.name, {**visible, **timed})
            self._create("history", source.name, {**source.all_columns(), **timed})
            self.columns[(RAW, source.name)] = list(source.columns)
        for name, columns in (feature_tables or {}).items():
            self._create("features", name, columns)
        self.connection.execute("SET search_path = 'source,features,main'")

    def _create(self, schema: str, name: str, columns: Mapping[str, str]) -> None:
        listed = ", ".join(f'"{column}" {kind}' for column, kind in columns.items())
        self.connection.execute(f"CREATE TABLE {_qualified(schema, name)} ({listed})")
        self.columns[(schema, name)] = list(columns)

    def register(self, functions) -> None:
        """Make registered Python functions callable for the next checks (removed again by close())."""
        for function in functions:
            self.connection.create_function(function.name, function.function, list(function.parameters),
                                            function.returns)
            self.registered.append(function.name)

    def close(self) -> None:
        """Release the in-memory database, unless it was lent (then only forget the registered functions)."""
        for name in self.registered:
            self.connection.remove_function(name)
        self.registered.clear()
        if self.owns_connection:
            self.connection.close()

    def describe(self, sql: str,
                 columns: Iterable[str] | None = None) -> tuple[list[tuple[str, str]] | None, str | None]:
        """The (column, type) pairs a SELECT returns, or an error message (`columns`: the ones it may name)."""
        problem = only_one_select(self.connection, sql)
        if problem:
            return None, problem
        try:
            rows = self.connection.execute(f"DESCRIBE {sql}").fetchall()
        except duckdb.Error as error:
            return None, self._explain(error, sql, columns)
        return [(row[0], row[1]) for row in rows], None

    def expression_type(self, expression: str, table: str, schema: str = "source",
                        extra_columns: Mapping[str, str] | None = None,
                        columns: list[str] | None = None) -> tuple[str | None, str | None]:
        """The DuckDB type of an expression over a table's rows (only `columns` of them when given, plus named
        extra expressions), or an error."""
        try:
            statements = self.connection.extract_statements(f"SELECT {expression}")
        except duckdb.Error as error:
            return None, f"SQL does not parse: {_ERROR_PREFIX.sub('', first_line(error))}{_at_line(error, expression)}"
        if len(statements) != 1:
            return None, "must be one SQL expression, not several statements"
        extra = "".join(f', ({sql}) AS "{name}"' for name, sql in (extra_columns or {}).items())
        selected = ", ".join(f'"{column}"' for column in columns) if columns is not None else "*"
        inner = f"SELECT {selected}{extra} FROM {_qualified(schema, table)}"
        allowed = (columns if columns is not None else self.columns[(schema, table)]) + list(extra_columns or {})
        described, problem = self.describe(f"SELECT ({expression}) AS value FROM ({inner})", allowed)
        if problem:
            return None, problem
        return described[0][1], None

    def with_entity(self, entity: str):
        """Point the `entity` view at the given source for the next checks."""
        self.connection.execute(f"CREATE OR REPLACE TEMP VIEW entity AS SELECT * EXCLUDE ({names.AVAILABLE_AT_COLUMN}), "
                                f"CAST(NULL AS TIMESTAMP) AS {names.PREDICTION_TIME_COLUMN} "
                                f"FROM {names.source_table(entity)}")
        self.tables = sorted({*self.tables, "entity"})

    def _explain(self, error: duckdb.Error, sql: str, columns: Iterable[str] | None) -> str:
        """DuckDB's error in the platform's words: the unknown name, a "did you mean" and what is allowed."""
        text = str(error)
        where = _at_line(error, sql)
        table = _MISSING_TABLE.search(text)
        if table:
            name = table.group(1)
            if name in self.unreadable:
                return f"reads source '{name}', which is not listed in 'reads'{where}"
            return (f"unknown table '{name}'{did_you_mean(name, self.tables)}{where} "
                    f"(sources it may read: {', '.join(self.tables)})")
        column = _MISSING_COLUMN.search(text)
        if column:
            name = column.group(1) or column.group(2)
            if columns is not None:
                return unknown_name("column", name, columns) + where
            candidates = _CANDIDATES.search(text)
            names = re.findall(r'"([^"]+)"', candidates.group(1)) if candidates else []
            return f"unknown column '{name}'{did_you_mean(name, names)}{where}"
        hint = _DID_YOU_MEAN.search(text)
        suggestion = "; did you mean " + hint.group(1).replace('"', "'") + "?" if hint else ""
        return f"{first_line(error).rstrip('!') if suggestion else first_line(error)}{suggestion}{where}"


def is_numeric(duckdb_type: str) -> bool:
    """True for integer, floating and decimal DuckDB types."""
    return duckdb_type in NUMERIC_TYPES or duckdb_type.startswith("DECIMAL")
