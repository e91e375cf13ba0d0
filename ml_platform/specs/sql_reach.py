"""What spec SQL may read: its declared sources and the platform's relations, nothing else (an allow-list).

Every piece of SQL a spec carries (a feature set's `sql`, a model's label, filter and money outcome expressions, a
source's derived column expressions and `partitioning.date`) is parsed by DuckDB (`json_serialize_sql`) and every
node of the tree is walked before the SQL runs, at load time and again at run time:

- a table reference must name a CTE in scope or one of the tables the spec may read (`allowed_tables`); a string
  literal as a table (`FROM 'x.csv'`, DuckDB's replacement scan), a name of another database (`other.main.t`) or an
  undeclared source is refused;
- a table function must be one of `TABLE_FUNCTIONS`; every other one reaches files, URLs, settings, the catalog or
  other databases (`read_csv`, `read_parquet`, `glob`, `query`, `sqlite_scan`, `duckdb_settings`, ...);
- a scalar function that reads the environment, the session or the catalog, or has side effects, is refused
  (`REFUSED_FUNCTIONS`, `REFUSED_PREFIXES`), and so is a function qualified by another schema or database;
- a table reference or query node of a kind not listed here (`DESCRIBE`/`SUMMARIZE`/`SHOW` in a subquery, ...)
  is refused, so that a kind a later DuckDB adds is refused until someone judges it;
- statements other than one SELECT are refused by `only_one_select` (`COPY`, `ATTACH`, `SET`, `PRAGMA`, ...).
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterable, Iterator

import duckdb

from ml_platform import names
from ml_platform.errors import PlatformError
from ml_platform.specs.errors import did_you_mean
from ml_platform.specs.models import DailyPartitioning, FeatureSetSpec, ModelSpec, SourceSpec
from ml_platform.specs.sql_checks import only_one_select, spec_sql_connection

# The table functions spec SQL may call: each computes rows from its arguments alone and reads nothing else.
TABLE_FUNCTIONS = {
    "range": "a sequence of numbers or timestamps from its arguments (e.g. the days of a window)",
    "generate_series": "the same as range, with the end included",
    "unnest": "the elements of a list given as its argument, as rows",
}

# Scalar functions that reach beyond the rows: the environment, the session's settings and variables, the catalog,
# or state outside the query (sequences, sleeping). Reading them makes features depend on the machine that ran them.
REFUSED_FUNCTIONS = {
    "getenv": "reads the process environment",
    "current_setting": "reads the session's settings",
    "getvariable": "reads the session's variables",
    "current_query": "reads the text of the running statement",
    "current_database": "reads the session's catalog",
    "current_catalog": "reads the session's catalog",
    "current_schema": "reads the session's search path",
    "current_schemas": "reads the session's search path",
    "in_search_path": "reads the session's search path",
    "current_user": "reads the session's user",
    "current_role": "reads the session's user",
    "session_user": "reads the session's user",
    "user": "reads the session's user",
    "version": "reads the DuckDB version of the machine that runs it",
    "current_connection_id": "reads the session's state",
    "current_query_id": "reads the session's state",
    "current_transaction_id": "reads the session's state",
    "txid_current": "reads the session's state",
    "nextval": "changes a sequence of the database",
    "currval": "reads a sequence of the database",
    "setseed": "changes the session's random state",
    "sleep_ms": "stalls the run",
    "pg_sleep": "stalls the run",
    "json_deserialize_sql": "turns text into SQL that would escape this check",
    "json_execute_serialized_sql": "runs SQL given as text, which would escape this check",
    "query": "runs SQL given as text, which would escape this check",
    "query_table": "reads a table named by a string, which would escape this check",
}
REFUSED_PREFIXES = {
    "duckdb_": "reads DuckDB's catalog or settings",
    "pragma_": "reads DuckDB's catalog or settings",
    "pg_": "reads the catalog (PostgreSQL compatibility functions)",
    "has_": "reads the catalog's privileges",
}

_QUERY_NODES = {"SELECT_NODE", "SET_OPERATION_NODE", "RECURSIVE_CTE_NODE", "CTE_NODE"}
_TABLE_REFS = {"BASE_TABLE", "TABLE_FUNCTION", "JOIN", "SUBQUERY", "EXPRESSION_LIST", "EMPTY", "PIVOT"}
_KIND_WORDS = {"SHOW_REF": "DESCRIBE, SUMMARIZE or SHOW", "COLUMN_DATA": "materialized data",
               "DELIM_GET": "an internal relation"}

@dataclass(frozen=True)
class Escape:
    """The first thing in spec SQL that reaches beyond what it may read."""

    kind: str  # "table", "table_function", "function", "node" or "statement"
    name: str
    message: str


def feature_set_tables(feature_set: FeatureSetSpec) -> frozenset[str]:
    """The tables a feature set's SQL may read: `entity`, its entity and `reads` by name and as `history.<name>`
    (the relations cut at each row's prediction time; `source.<name>` would read past them), and the feature sets it
    `uses` (also as `features.<name>`)."""
    sources = {feature_set.entity, *feature_set.reads}
    return frozenset({names.ENTITY_VIEW, *sources, *(f"history.{name}" for name in sources),
                      *feature_set.uses, *(f"features.{name}" for name in feature_set.uses)})


def model_tables(model: ModelSpec, field: str) -> frozenset[str]:
    """The tables a model expression may read in a subquery: the label and money (outcomes or value) judge the row's
    outcome and may read their entity source; the filter selects the rows to score before outcomes exist and reads
    none."""
    if field == "filter" or field.startswith("label.aggregates."):
        # a label aggregate reads only the rows of its source's label window, which the platform selects: a
        # subquery of its own could read days the label's maturity does not wait for
        return frozenset()
    return frozenset({model.entity, f"source.{model.entity}"})


def model_expressions(model: ModelSpec) -> list[tuple[str, str]]:
    """(field, expression) of every SQL expression of a model spec."""
    found = [("label.expression", model.label.expression)]
    found += [(f"label.aggregates.{name}.expression", aggregate.expression)
              for name, aggregate in model.label.aggregates.items()]
    if model.filter is not None:
        found.append(("filter", model.filter))
    if model.money.outcomes is not None:
        found += [(f"money.outcomes.{outcome}", expression)
                  for outcome, expression in model.money.outcomes.model_dump().items()]
    if model.money.value is not None:
        found.append(("money.value", model.money.value))
    return found


@contextmanager
def _parser() -> Iterator[duckdb.DuckDBPyConnection]:
    """An in-memory DuckDB to parse spec SQL with, closed afterwards."""
    connection = spec_sql_connection()
    try:
        yield connection
    finally:
        connection.close()


class SpecSqlEscapeError(PlatformError, RuntimeError):
    """Spec SQL about to run reaches beyond its declared sources (a spec built in code, or a recorded one)."""


def source_expressions(source: SourceSpec) -> list[tuple[str, str]]:
    """(field, expression) of every SQL expression of a source spec; none of them may read a table."""
    found = [(f"derived_columns.{name}.expression", derived.expression)
             for name, derived in source.derived_columns.items()]
    if isinstance(source.partitioning, DailyPartitioning):
        found.append(("partitioning.date", source.partitioning.date))
    return found


def require_contained_source(source: SourceSpec) -> None:
    """Raise before a source's expressions run if any reaches beyond the row it computes from."""
    with _parser() as connection:
        problems = [f"field '{field}': {problem}" for field, expression in source_expressions(source)
                    if (problem := refuse_escapes(expression, (), True, connection))]
    if problems:
        raise SpecSqlEscapeError(f"source '{source.name}', {'; '.join(problems)}")


def require_contained_model(model: ModelSpec) -> None:
    """Raise before a model's label, filter or money expressions run if any reaches beyond what it may read."""
    with _parser() as connection:
        problems = [f"field '{field}': {problem}" for field, expression in model_expressions(model)
                    if (problem := refuse_escapes(expression, model_tables(model, field), True, connection))]
    if problems:
        raise SpecSqlEscapeError(f"model '{model.name}', {'; '.join(problems)}")


def refuse_escapes(sql: str, allowed_tables: Iterable[str], expression: bool = False,
                   connection: duckdb.DuckDBPyConnection | None = None) -> str | None:
    """Why `sql` (one SELECT, or one expression with `expression`) reaches beyond `allowed_tables` and the
    platform's own relations, or None when it reads only those (`connection`: an in-memory one to parse with)."""
    found = find_escape(sql, allowed_tables, expression, connection)
    return found.message if found else None


def find_escape(sql: str, allowed_tables: Iterable[str], expression: bool = False,
                connection: duckdb.DuckDBPyConnection | None = None) -> Escape | None:
    """The first node of `sql` that reads something it may not (see the module's docstring), or None."""
    allowed = frozenset(name.lower() for name in allowed_tables)
    text = f"SELECT {sql}" if expression else sql
    parser = connection if connection is not None else spec_sql_connection()
    try:
        problem = only_one_select(parser, text)
        if problem:
            if expression:
                problem = "must be one SQL expression, not several statements" if "statements" in problem else problem
            return Escape("statement", "", problem)
        tree = json.loads(parser.execute("SELECT json_serialize_sql(?)", [text]).fetchone()[0])
    finally:
        if connection is None:
            parser.close()
    if tree.get("error"):
        return Escape("statement", "", f"SQL does not parse: {tree.get('error_message', 'unknown error')}")
    node = tree["statements"][0]["node"]
    if expression and (node.get("from_table", {}).get("type") != "EMPTY" or len(node.get("select_list", [])) != 1
                       or node.get("type") != "SELECT_NODE"):
        return Escape("statement", "", "must be one SQL expression, not a query")
    return _Walk(allowed).node(node, frozenset())


class _Walk:
    """A walk over DuckDB's JSON tree of a SELECT, with the CTE names in scope at each node."""

    def __init__(self, allowed: frozenset[str]):
        self.allowed = allowed

    def node(self, value: Any, scope: frozenset[str]) -> Escape | None:
        if isinstance(value, list):
            for item in value:
                if found := self.node(item, scope):
                    return found
            return None
        if not isinstance(value, dict):
            return None
        if "cte_map" in value and "modifiers" in value:
            return self.query(value, scope)
        if "class" in value:
            if value["class"] == "FUNCTION" and (found := self.function(value)):
                return found
            return self.children(value, scope)
        kind = value.get("type")
        if "sample" in value and "alias" in value:  # a table reference
            if kind == "BASE_TABLE":
                return self.table(value, scope) or self.children(value, scope)
            if kind == "TABLE_FUNCTION":
                return self.table_function(value, scope)
            if kind not in _TABLE_REFS:
                return Escape("node", kind, f"uses {_KIND_WORDS.get(kind, kind)} in a FROM clause, which spec SQL "
                                            f"may not: it reads only its declared sources")
        return self.children(value, scope)

    def children(self, value: dict, scope: frozenset[str], skip: Iterable[str] = ()) -> Escape | None:
        for key, child in value.items():
            if key not in skip and isinstance(child, (dict, list)) and (found := self.node(child, scope)):
                return found
        return None

    def query(self, value: dict, scope: frozenset[str]) -> Escape | None:
        """A query node: its CTEs are in scope in its body and in the CTEs declared after them."""
        kind = value.get("type")
        if kind not in _QUERY_NODES:
            return Escape("node", kind, f"uses a {kind} query, which spec SQL may not")
        visible = scope
        for entry in value["cte_map"].get("map", []):
            name, body = entry["key"].lower(), entry["value"]["query_node"]
            own = {name} if body.get("type") == "RECURSIVE_CTE_NODE" else set()
            if found := self.node(body, visible | own):
                return found
            visible = visible | {name}
        if kind == "RECURSIVE_CTE_NODE" and value.get("ctename"):
            visible = visible | {value["ctename"].lower()}
        return self.children(value, visible, skip=("cte_map",))

    def table(self, value: dict, scope: frozenset[str]) -> Escape | None:
        catalog, schema, name = value.get("catalog_name", ""), value.get("schema_name", ""), value["table_name"]
        shown = ".".join(part for part in (catalog, schema, name) if part)
        if not catalog and not schema and name.lower() in scope:
            return None
        if not catalog and shown.lower() in self.allowed:
            return None
        plain = sorted(name for name in self.allowed if "." not in name)
        if not catalog and not schema and names.IDENTIFIER.match(name.lower()):  # a typo or an undeclared source
            return Escape("table", shown, f"unknown table '{shown}'{did_you_mean(shown.lower(), plain)} (sources it "
                                          f"may read: {', '.join(plain) or 'none'})")
        listing = ", ".join(sorted(self.allowed)) or "none"
        return Escape("table", shown, f"reads '{shown}', which is not among the tables it may read ({listing}): "
                                      f"spec SQL reads only its declared sources, never files, URLs or other "
                                      f"databases")

    def table_function(self, value: dict, scope: frozenset[str]) -> Escape | None:
        function = value.get("function") or {}
        name = (function.get("function_name") or "").lower()
        qualified = function.get("catalog") or function.get("schema")
        if qualified or name not in TABLE_FUNCTIONS:
            shown = ".".join(part for part in (function.get("catalog"), function.get("schema"), name) if part)
            return Escape("table_function", shown,
                          f"calls table function '{shown}', which can reach files, URLs, settings or other "
                          f"databases; spec SQL may call only the table functions "
                          f"{', '.join(sorted(TABLE_FUNCTIONS))}")
        return self.children(function, scope) or self.children(value, scope, skip=("function",))

    def function(self, value: dict) -> Escape | None:
        name = (value.get("function_name") or "").lower()
        catalog, schema = value.get("catalog") or "", value.get("schema") or ""
        if catalog or schema not in ("", "main"):
            shown = ".".join(part for part in (catalog, schema, name) if part)
            return Escape("function", shown, f"calls '{shown}', a function of another schema or database; spec "
                                             f"SQL calls only DuckDB's functions and its declared functions")
        reason = REFUSED_FUNCTIONS.get(name) or next(
            (why for prefix, why in REFUSED_PREFIXES.items() if name.startswith(prefix)), None)
        if reason:
            return Escape("function", name, f"calls '{name}', which {reason}; spec SQL may compute only from the "
                                            f"rows of its declared sources")
        return None
