"""Compute a feature set for a range of its entity's daily partitions, and assemble feature matrices for models.

Training snapshots and production scoring both read features through `feature_matrix_sql`: one code path.
"""

from __future__ import annotations

import datetime as dt
from typing import Callable, Iterable

import duckdb

from ml_platform import grains
from ml_platform.errors import PlatformError
from ml_platform.reuse import remembered, reusing
from ml_platform.features.functions import register_functions
from ml_platform.features.labels import labelled_rows_sql
from ml_platform.features.slice_columns import slice_columns_sql
from ml_platform.specs.catalog import Catalog
from ml_platform.specs.sql_checks import only_one_select
from ml_platform.specs.sql_reach import feature_set_tables as tables_of, refuse_escapes
from ml_platform.specs.models import FeatureSetSpec, ModelSpec
from ml_platform.specs.tasks import value_inputs
from ml_platform.features.relations import (bind_entity, bind_sources, bound, history_bound, history_reads,
                                            readable_sources, reads_past_relations, unbind_names)
from ml_platform.features.timing import prediction_time
from ml_platform.names import (PREDICTION_TIME_COLUMN, feature_table, money_input_column, population_table, quote,
                               source_table, table_label)
from ml_platform.storage.warehouse import date_literal, replace_date_range, single_threaded, table_exists


class FeatureComputationError(PlatformError, RuntimeError):
    """A feature set's inputs are missing or its SQL broke the feature contract."""


def entity_table(catalog: Catalog, name: str) -> str:
    """The warehouse table of the rows an `entity:` field names: an entity spec's population or a source."""
    return population_table(name) if catalog.entity_rows(name).is_population else source_table(name)


def span_condition(start: dt.date, end: dt.date) -> str:
    """SQL selecting the entity rows of the days [start, end]."""
    return f"partition_date BETWEEN {date_literal(start)} AND {date_literal(end)}"


def require_tables(connection: duckdb.DuckDBPyConnection, schema: str, names: list[str], hint: str) -> None:
    """Fail with a clear message when any of the warehouse tables does not exist yet."""
    if not names:
        return
    present = {row[0] for row in connection.execute(  # one look at the catalog for all of them
        "SELECT table_name FROM information_schema.tables WHERE table_schema = ? AND list_contains(?, table_name)",
        [schema, list(names)]).fetchall()}
    missing = [name for name in names if name not in present]
    if missing:
        listed = ", ".join(table_label(schema, name) for name in missing)
        raise FeatureComputationError(f"{listed} not in the warehouse yet: {hint}")


def check_feature_set_sql(connection: duckdb.DuckDBPyConnection, catalog: Catalog,
                          feature_set: FeatureSetSpec) -> None:
    """Refuse SQL that is not one SELECT, escapes its relations or reads past the cut relations (it depends only
    on the feature set's spec and the catalog's source names: a caller computing many days of one catalog may
    check once). Inside `reuse.reused()` (a replay, which refreshes every feature set day after day) a spec
    checked already against the same source names passes without being parsed again; a refusal is never kept."""
    if reusing():
        key = (feature_set.model_dump_json(), tuple(sorted(catalog.sources)))
        remembered(f"feature set SQL checked: {feature_set.name}", key,
                   lambda: _check_feature_set_sql(connection, catalog, feature_set) or True)
        return
    _check_feature_set_sql(connection, catalog, feature_set)


def _check_feature_set_sql(connection: duckdb.DuckDBPyConnection, catalog: Catalog,
                           feature_set: FeatureSetSpec) -> None:
    problem = only_one_select(connection, feature_set.sql) or refuse_escapes(feature_set.sql, tables_of(feature_set))
    if problem:  # the loader rejects such SQL already; a spec built in code must not write either
        raise FeatureComputationError(f"feature set '{feature_set.name}': {problem}")
    bypassing = reads_past_relations(connection, catalog, feature_set)
    if bypassing:
        raise FeatureComputationError(
            f"feature set '{feature_set.name}': its SQL reads {', '.join(bypassing)}, past the relations that show "
            f"only what is known at each row's prediction time; read `entity`, the sources it declares by name or "
            f"as history.<source>, and the feature sets it uses by name")


def require_inputs(connection: duckdb.DuckDBPyConnection, catalog: Catalog, feature_set: FeatureSetSpec) -> None:
    """Fail with a clear message when a table the feature set reads (its sources, the feature sets it uses, its
    entity's population) does not exist yet."""
    entity = catalog.entity_rows(feature_set.entity)
    read = sorted({*feature_set.reads, *([] if entity.is_population else [entity.name])})
    require_tables(connection, "source", read, "materialize the sources this feature set reads first")
    require_tables(connection, "features", sorted(feature_set.uses),
                   "materialize the feature sets this feature set uses first")
    if entity.is_population:
        require_tables(connection, "population", [entity.name], f"materialize entity '{entity.name}' first")


def prepare_feature_set(connection: duckdb.DuckDBPyConnection, catalog: Catalog, feature_set: FeatureSetSpec) -> None:
    """What computing a feature set needs before any day, once per connection: its SQL checked, its input tables
    present and its functions registered on the connection (a caller computing day after day on one connection
    whose tables stay, as the server does, prepares once and passes `prepared=True`)."""
    check_feature_set_sql(connection, catalog, feature_set)
    require_inputs(connection, catalog, feature_set)
    register_functions(connection, list(feature_set.functions))


def compute_feature_set(connection: duckdb.DuckDBPyConnection, catalog: Catalog, feature_set: FeatureSetSpec,
                        start: dt.date, end: dt.date, sql_checked: bool = False, prepared: bool = False,
                        writes: Callable[[Callable[[], int]], int] | None = None,
                        history: Iterable[str] | None = None) -> int:
    """Write features.<name> for [start, end] (one row per entity row); returns the rows written. `sql_checked`:
    the caller ran `check_feature_set_sql` on this feature set and catalog already; `prepared`: it ran
    `prepare_feature_set` on this connection (the SQL checked, the inputs present, the functions registered).
    `writes(write)` does the write of the computed rows (and only that) and answers its rows: a caller computing
    ranges on several cursors at once makes their writes wait for each other there. `history`: the sources whose
    `history.` views are bound, as `bind_sources` takes it (by default those its SQL names)."""
    if catalog.entity_rows(feature_set.entity).is_population and start != end:
        if writes is not None:  # it would be called once per partition: a range takes one
            raise ValueError("compute_feature_set: `writes` is for one range's write; a population's range is "
                             "written a partition at a time")
        # a population's keys name a row within one partition, so its SQL sees one partition at a time
        return sum(compute_feature_set(connection, catalog, feature_set, day, day, sql_checked, prepared,
                                       history=history)
                   for day, _ in grains.partition_days(catalog.entity_rows(feature_set.entity).grain, start, end))
    if not (sql_checked or prepared):
        check_feature_set_sql(connection, catalog, feature_set)
    if not prepared:
        require_inputs(connection, catalog, feature_set)
        register_functions(connection, list(feature_set.functions))
    histories = history_reads(connection, feature_set) if history is None else list(history)
    with history_bound(connection, histories), bound(connection, feature_set):
        return _compute(connection, catalog, feature_set, start, end, writes, histories)


def _compute(connection: duckdb.DuckDBPyConnection, catalog: Catalog, feature_set: FeatureSetSpec,
             start: dt.date, end: dt.date, writes: Callable[[Callable[[], int]], int] | None = None,
             history: Iterable[str] | None = None) -> int:
    """Bind the relations (every source cut at the range's latest prediction time), run the SQL, write the rows."""
    _bind_range(connection, catalog, feature_set, start, end, history)
    return _write_bound(connection, catalog, feature_set, start, end, writes)


def _bind_range(connection: duckdb.DuckDBPyConnection, catalog: Catalog, feature_set: FeatureSetSpec,
                start: dt.date, end: dt.date, history: Iterable[str] | None = None) -> dt.datetime:
    """Bind `entity` to the range's rows and every readable source of the feature set at the range's latest
    prediction time (returned: the cut); `history` as `bind_sources` takes it."""
    # `entity` is read several times below (its latest prediction time, the row checks, the join that writes):
    # its rows are computed once
    bind_entity(connection, catalog, feature_set, span_condition(start, end), materialized=True)
    # no row or outcome known only after the last prediction time of the range is reachable; the point-in-time
    # proof (proof.py) covers the earlier rows of a range of several days
    latest = connection.execute(f"SELECT max({PREDICTION_TIME_COLUMN}) FROM entity").fetchall()[0][0]
    # no entity row in the range: nothing is computed, any cut gives the same empty result
    cut = latest or prediction_time(feature_set.known_by, end)
    bind_sources(connection, catalog, feature_set, cut, history=history)
    return cut


def day_groups(feature_sets: list[FeatureSetSpec]) -> list[list[FeatureSetSpec]]:
    """The feature sets (in the order given, each after the sets it uses) cut into runs of consecutive sets of
    the same entity and `known_by`: what `compute_group` binds once. Computing the groups in order on one
    connection computes each set as `compute_feature_set` does, with fewer bindings."""
    groups: list[list[FeatureSetSpec]] = []
    for feature_set in feature_sets:
        if groups and (groups[-1][0].entity, groups[-1][0].known_by) == (feature_set.entity, feature_set.known_by):
            groups[-1].append(feature_set)
        else:
            groups.append([feature_set])
    return groups


def compute_group(connection: duckdb.DuckDBPyConnection, catalog: Catalog, group: list[FeatureSetSpec],
                  day: dt.date, history: dict[str, list[str]] | None = None) -> dict[str, int]:
    """Write one day of prepared feature sets of one daily-source entity and `known_by`, in the order given;
    {name: rows written}. `history`: per set, the sources whose `history.` views it names (`history_reads`;
    by default those its SQL names, as `compute_feature_set` binds them).

    Each set's rows are computed exactly as `compute_feature_set` computes them; what only depends on the day,
    the entity and `known_by` (the entity's rows, their latest prediction time, the cut source relations) is
    bound once for the group instead of once per set: the relations a set reads are the same, and its SQL cannot
    name a source it does not declare (`check_feature_set_sql`), so the other sets' bound sources are out of its
    reach."""
    first = group[0]
    if any((feature_set.entity, feature_set.known_by) != (first.entity, first.known_by) for feature_set in group):
        raise FeatureComputationError(f"feature sets {', '.join(fs.name for fs in group)}: not one entity and "
                                      f"known_by; cut them into groups with day_groups")
    if catalog.entity_rows(first.entity).is_population:
        raise FeatureComputationError(f"feature set '{first.name}': its entity '{first.entity}' is a population; "
                                      f"a day of it is computed by compute_feature_set")
    # each set's history views, its SQL parsed once (by default)
    histories = {fs.name: history_reads(connection, fs) if history is None else history[fs.name] for fs in group}
    written: dict[str, int] = {}
    # the first set's sources with the history views any set of the group names (once, at the group's cut)
    named = [name for name in readable_sources(first) if any(name in histories[fs.name] for fs in group)]
    bound_sources, bound_histories = list(readable_sources(first)), set(named)
    with history_bound(connection, {name for names in histories.values() for name in names}):
        try:
            cut = _bind_range(connection, catalog, first, day, day, named)
            for feature_set in group:
                missing = [name for name in readable_sources(feature_set) if name not in bound_sources]
                unbound = [name for name in histories[feature_set.name] if name not in bound_histories]
                if missing or unbound:  # the relations this set reads that the group's earlier sets do not
                    bind_sources(connection, catalog, feature_set, cut, sources={*missing, *unbound},
                                 history=unbound)
                bound_sources += missing
                bound_histories.update(unbound)
                written[feature_set.name] = _write_bound(connection, catalog, feature_set, day, day)
        finally:
            unbind_names(connection, bound_sources)
    return written


def _write_bound(connection: duckdb.DuckDBPyConnection, catalog: Catalog, feature_set: FeatureSetSpec,
                 start: dt.date, end: dt.date, writes: Callable[[Callable[[], int]], int] | None = None) -> int:
    """Run the SQL over the bound relations, check its rows against `entity`, write them."""
    entity = catalog.entity_rows(feature_set.entity)
    for used in feature_set.uses:
        missing = connection.execute(
            f"SELECT DISTINCT partition_date FROM entity EXCEPT SELECT DISTINCT partition_date "
            f"FROM {feature_table(used)} WHERE partition_date BETWEEN {date_literal(start)} AND "
            f"{date_literal(end)} ORDER BY 1").fetchall()
        if missing:
            raise FeatureComputationError(
                f"feature set '{feature_set.name}' uses '{used}', which has no rows yet for {len(missing)} day(s) "
                f"from {missing[0][0]}: materialize it first")
    keys = ", ".join(quote(key) for key in entity.keys)
    with single_threaded(connection):  # identical feature values on every rebuild (see single_threaded)
        connection.execute(f"CREATE OR REPLACE TEMP TABLE feature_result AS {feature_set.sql}")
    entity_rows, result_rows, distinct_keys, matched = connection.execute(
        f"SELECT (SELECT count(*) FROM entity), (SELECT count(*) FROM feature_result), "
        f"(SELECT count(*) FROM (SELECT DISTINCT {keys} FROM feature_result)), "
        f"(SELECT count(*) FROM feature_result JOIN entity USING ({keys}))"
    ).fetchall()[0]
    if result_rows != distinct_keys:
        raise FeatureComputationError(
            f"feature set '{feature_set.name}' returned {result_rows - distinct_keys} duplicate row(s) for the same "
            f"key ({keys}); its SQL must return one row per entity row")
    if matched != entity_rows or result_rows != entity_rows:
        raise FeatureComputationError(
            f"feature set '{feature_set.name}' returned {result_rows} rows ({matched} matching an entity row) for "
            f"{entity_rows} rows of '{entity.name}'; its SQL must return exactly one row per row of `entity`")
    features = ", ".join(f"feature_result.{quote(name)}" for name in feature_set.features)
    select = (f"SELECT {', '.join('entity.' + quote(key) for key in entity.keys)}, {features}, entity.partition_date "
              f"FROM feature_result JOIN entity USING ({keys})")
    # the write on one thread too, on every path: the rows' stored order then depends on the rows alone (a
    # parallel insert of more than a row group may store them in another order), as a later set's SQL that sums
    # over this table on one thread adds them in stored order
    def write() -> int:
        with single_threaded(connection):
            return replace_date_range(connection, feature_table(feature_set.name), select, start, end)

    written = write() if writes is None else writes(write)
    connection.execute("DROP TABLE feature_result")
    return written


def feature_matrix_sql(catalog: Catalog, model: ModelSpec, start: dt.date, end: dt.date,
                       with_outcomes: bool) -> str:
    """SQL giving one row per kept entity row of [start, end]: keys, date, features (and label and money)."""
    entity = catalog.entity_rows(model.entity)
    keys = ", ".join(quote(key) for key in entity.keys)
    span = f"partition_date BETWEEN {date_literal(start)} AND {date_literal(end)}"
    condition = f"base.{span}"
    if model.filter:
        condition += f" AND ({model.filter})"
    index = catalog.feature_index()
    # a population's keys name a row within its partition: its rows and features also match on the partition
    matched = f"{keys}, partition_date" if entity.is_population else keys
    # a feature row is dated as the entity row it was computed for (compute_feature_set), so only the range's
    # feature rows can match: reading just those skips the other days' row groups instead of scanning every day
    joins = "".join(f" LEFT JOIN (SELECT * FROM {feature_table(fs.name)} WHERE {span}) AS {quote(fs.name)} "
                    f"USING ({matched})" for fs in catalog.feature_sets_of(model))
    features = ", ".join(f"{quote(index[name])}.{quote(name)}" for name in model.features)
    columns = f"{keys}, base.partition_date, {features}"
    if with_outcomes:
        outcomes = model.money.outcomes
        columns += ", base.label"
        if outcomes is not None:
            columns += (f", CAST(({outcomes.true_positive}) AS DOUBLE) AS money_true_positive"
                        f", CAST(({outcomes.false_positive}) AS DOUBLE) AS money_false_positive"
                        f", CAST(({outcomes.false_negative}) AS DOUBLE) AS money_false_negative"
                        f", CAST(({outcomes.true_negative}) AS DOUBLE) AS money_true_negative")
        columns += "".join(f", base.{quote(name)} AS {quote(money_input_column(name))}"
                           for name in value_inputs(model))
        columns += slice_columns_sql(model)
    base = labelled_rows_sql(catalog, model, start, end) if with_outcomes else entity_table(catalog, entity.name)
    return (f"SELECT {columns} FROM {base} AS base{joins} WHERE {condition} "
            f"ORDER BY base.partition_date, {keys}")


def missing_feature_days(connection: duckdb.DuckDBPyConnection, catalog: Catalog, model: ModelSpec,
                         start: dt.date, end: dt.date) -> dict[str, list[str]]:
    """Days of [start, end] that have entity rows but no rows yet in a feature set the model reads."""
    entity = entity_table(catalog, model.entity)
    span = f"partition_date BETWEEN {date_literal(start)} AND {date_literal(end)}"
    missing = {}
    for feature_set in catalog.feature_sets_of(model):
        if not table_exists(connection, "features", feature_set.name):
            missing[feature_set.name] = ["all days"]
            continue
        rows = connection.execute(
            f"SELECT DISTINCT partition_date FROM {entity} WHERE {span} EXCEPT "
            f"SELECT DISTINCT partition_date FROM {feature_table(feature_set.name)} WHERE {span} ORDER BY 1"
        ).fetchall()
        if rows:
            missing[feature_set.name] = [row[0].isoformat() for row in rows]
    return missing


def day_ranges(connection: duckdb.DuckDBPyConnection, catalog: Catalog, entity: str, start: dt.date, end: dt.date,
               rows: int) -> list[tuple[dt.date, dt.date]]:
    """Consecutive day ranges covering [start, end], each holding at most `rows` rows of the entity (a day with
    more is a range of its own)."""
    counts = connection.execute(
        f"SELECT partition_date, count(*) FROM {entity_table(catalog, entity)} WHERE partition_date BETWEEN "
        f"{date_literal(start)} AND {date_literal(end)} GROUP BY 1 ORDER BY 1").fetchall()
    ranges, first, held = [], start, 0
    for day, count in counts:
        if held and held + count > rows:
            ranges.append((first, day - dt.timedelta(days=1)))
            first, held = day, 0
        held += count
    ranges.append((first, end))
    return ranges
