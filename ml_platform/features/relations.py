"""The relations feature SQL reads, bound on a connection: `entity`, each source by its bare name, `history.<source>`.

Feature SQL reads sources only through these: the bare names are temporary views that shadow the warehouse's
`source` schema on the search path, and `history.<source>` views are replaced on each binding. Each source relation
is cut at a moment (rows not yet known are absent, outcome columns not yet known read NULL) and carries each row's
`available_at`; `entity` carries each row's `prediction_time`, its own outcome columns masked at it.

The `history.<source>` views are the database's, shared by every connection to it: a binding of them and the SQL
that reads them hold the database's history lock (`history_bound`), so that steps computing at once on threads of
one process (adapters/threaded_executor.py) never read each other's cut. A set's relations bind only the history
views its SQL names.
"""

from __future__ import annotations

from contextlib import contextmanager
import datetime as dt
import json
import threading
from typing import Iterable, Iterator

import duckdb

from ml_platform.features.timing import cut_relation_sql, entity_relation_sql, prediction_time_sql
from ml_platform.names import ENTITY_ROWS_TABLE, PREDICTION_TIME_COLUMN, history_view, population_table, quote
from ml_platform.specs.catalog import Catalog
from ml_platform.specs.models import FeatureSetSpec
from ml_platform.storage.warehouse import database_key

_history_locks: dict[object, threading.RLock] = {}  # by database (`database_key`)
_history_locks_made = threading.Lock()
_history_held = threading.local()  # this thread's holds: {database key: how many nested}


class HistoryLockError(RuntimeError):
    """`history.` views bound without the database's history lock: a caller that binds them must hold it."""


@contextmanager
def history_bound(connection: duckdb.DuckDBPyConnection, names: Iterable[str]) -> Iterator[None]:
    """While the block runs, this thread alone in the process binds the database's `history.` views and runs SQL
    reading them (the history lock, reentrant); with no `names` (the SQL names no history view) nothing is held."""
    if not list(names):
        yield
        return
    key = database_key(connection)
    with _history_locks_made:
        lock = _history_locks.setdefault(key, threading.RLock())
    with lock:
        held = _history_held.__dict__.setdefault("depths", {})
        held[key] = held.get(key, 0) + 1
        try:
            yield
        finally:
            held[key] -= 1
            if not held[key]:
                del held[key]


def _holds_history(connection: duckdb.DuckDBPyConnection) -> bool:
    return database_key(connection) in _history_held.__dict__.get("depths", {})


def readable_sources(feature_set: FeatureSetSpec) -> list[str]:
    """The sources a feature set's SQL may read: its entity's and those it declares."""
    return sorted({feature_set.entity, *feature_set.reads})


def _table_references(tree) -> Iterator[tuple[str, str, str]]:
    """(catalog, schema, table) of every table a parsed statement names."""
    if isinstance(tree, dict):
        if tree.get("type") == "BASE_TABLE":
            yield tree.get("catalog_name", ""), tree.get("schema_name", ""), tree.get("table_name", "")
        for value in tree.values():
            yield from _table_references(value)
    elif isinstance(tree, list):
        for value in tree:
            yield from _table_references(value)


def reads_past_relations(connection: duckdb.DuckDBPyConnection, catalog: Catalog,
                         feature_set: FeatureSetSpec) -> list[str]:
    """The tables the feature set's SQL names that bypass the cut relations: a schema other than `history` (its
    readable sources) or `features` (the sets it uses), or a source it does not declare."""
    tree = json.loads(connection.execute("SELECT json_serialize_sql(?)", [feature_set.sql]).fetchall()[0][0])
    readable, used = set(readable_sources(feature_set)), set(feature_set.uses)
    bypassing = []
    for catalog_name, schema, table in _table_references(tree):
        allowed = (not catalog_name and (
            (schema == "history" and table in readable) or (schema == "features" and table in used)
            or (not schema and (table in readable or table not in catalog.sources))))
        if not allowed:
            bypassing.append(".".join(part for part in (catalog_name, schema, table) if part))
    return sorted(set(bypassing))


def history_reads(connection: duckdb.DuckDBPyConnection, feature_set: FeatureSetSpec) -> list[str]:
    """The sources whose `history.<source>` view the feature set's SQL names (every readable source when the SQL
    cannot be parsed: a caller binding only these never leaves the SQL a view of another cut)."""
    tree = json.loads(connection.execute("SELECT json_serialize_sql(?)", [feature_set.sql]).fetchall()[0][0])
    readable = readable_sources(feature_set)
    if not isinstance(tree, dict) or tree.get("error"):
        return readable
    named = {table for catalog_name, schema, table in _table_references(tree)
             if not catalog_name and schema == "history"}
    return [name for name in readable if name in named]


def bind_entity(connection: duckdb.DuckDBPyConnection, catalog: Catalog, feature_set: FeatureSetSpec,
                condition: str, materialized: bool = False) -> None:
    """Point the view `entity` at the entity rows meeting `condition` (SQL over the entity's columns).
    `materialized`: the rows are computed once into a temporary table that the view reads (the same rows in the
    same order), for a caller that reads `entity` several times (a computation counts, joins and checks it)."""
    rows = catalog.entity_rows(feature_set.entity)
    if rows.is_population:  # its columns are all known at its period's start; each row has its own time
        row_time = f"CAST({quote(rows.population.time)} AS TIMESTAMP)"
        select = (f"SELECT *, {prediction_time_sql(feature_set.known_by, row_time)} AS {PREDICTION_TIME_COLUMN} "
                  f"FROM {population_table(feature_set.entity)} WHERE {condition}")
    else:
        select = entity_relation_sql(catalog.sources[feature_set.entity], feature_set.known_by, condition)
    if materialized:
        connection.execute(f"CREATE OR REPLACE TEMP TABLE {ENTITY_ROWS_TABLE} AS {select}")
        select = f"SELECT * FROM temp.main.{ENTITY_ROWS_TABLE}"
    connection.execute(f"CREATE OR REPLACE TEMP VIEW entity AS {select}")


def _local_time_source(catalog: Catalog, feature_set: FeatureSetSpec):
    """The source whose local time the entity's rows are in: the entity itself, or for an entity spec the first
    daily source it reads (load checks hold an entity spec to its daily sources' time zone)."""
    rows = catalog.entity_rows(feature_set.entity)
    if not rows.is_population:
        return catalog.sources[feature_set.entity]
    daily = [catalog.sources[name] for name in rows.reads() if catalog.sources[name].is_daily]
    return daily[0] if daily else catalog.sources[rows.reads()[0]]


def bind_sources(connection: duckdb.DuckDBPyConnection, catalog: Catalog, feature_set: FeatureSetSpec,
                 cut: dt.datetime | None, uncut: Iterable[str] = (), sources: Iterable[str] | None = None,
                 history: Iterable[str] | None = None) -> None:
    """Point every source relation of the feature set (or those of them named in `sources`) at its rows and
    columns known at `cut`; the sources named in `uncut` (and all of them when `cut` is None) show every row and
    column. `history`: the sources whose `history.<source>` view is bound too (by default those the SQL names,
    `history_reads`); binding any needs the database's history lock held (`history_bound`), since these views
    are shared by every connection of the database."""
    entity = _local_time_source(catalog, feature_set)
    uncut = set(uncut)
    chosen = readable_sources(feature_set) if sources is None else \
        [name for name in readable_sources(feature_set) if name in set(sources)]
    histories = set(history_reads(connection, feature_set) if history is None else history)
    if histories & set(chosen) and not _holds_history(connection):
        raise HistoryLockError(f"feature set '{feature_set.name}': history views "
                               f"{', '.join(sorted(histories & set(chosen)))} bound without the history lock")
    for name in [name for name in chosen if name in catalog.sources]:
        relation = cut_relation_sql(catalog.sources[name], entity, None if name in uncut else cut)
        connection.execute(f"CREATE OR REPLACE TEMP VIEW {quote(name)} AS {relation}")
        if name in histories:
            connection.execute(f"CREATE OR REPLACE VIEW {history_view(name)} AS {relation}")


def unbind(connection: duckdb.DuckDBPyConnection, feature_set: FeatureSetSpec) -> None:
    """Drop the temporary views, so that bare names resolve to the warehouse's tables again."""
    unbind_names(connection, readable_sources(feature_set))


def unbind_names(connection: duckdb.DuckDBPyConnection, sources: Iterable[str]) -> None:
    """Drop the temporary views of the named sources and of `entity`, and the entity's rows."""
    for name in [*sources, "entity"]:
        connection.execute(f"DROP VIEW IF EXISTS temp.main.{quote(name)}")
    connection.execute(f"DROP TABLE IF EXISTS temp.main.{ENTITY_ROWS_TABLE}")


@contextmanager
def bound(connection: duckdb.DuckDBPyConnection, feature_set: FeatureSetSpec) -> Iterator[None]:
    """Drop the feature set's temporary views when the block ends, however it ends."""
    try:
        yield
    finally:
        unbind(connection, feature_set)
