"""The feature rows of requested entities, through the same SQL as training and batch scoring.

A requested row's day is served from its precomputed feature partitions when the server's copy holds them,
otherwise that day's feature sets are computed on demand by `features.compute.compute_feature_set` (the batch's
own code: the entity bound to the day's rows, every source cut at the day's prediction time) into the copy, and
the rows are then read exactly as batch scoring reads them (`features.compute.feature_matrix_sql`). A day's
feature SQL may aggregate over the day's rows (departures from the same airport that day), so a day is computed
whole: restricting the entity to the requested rows would change such features.
"""

from __future__ import annotations

import datetime as dt
import threading

import duckdb
import pandas as pd

from ml_platform.features.compute import FeatureComputationError, compute_feature_set, feature_matrix_sql
from ml_platform.names import feature_table, quote
from ml_platform.serving.errors import ServingError
from ml_platform.specs.catalog import Catalog
from ml_platform.specs.models import FeatureSetSpec, ModelSpec
from ml_platform.storage.warehouse import date_literal, table_exists

PRECOMPUTED, ON_DEMAND = "precomputed", "on_demand"
REQUESTED = "served_keys"  # the registered frame of requested keys


def _has_day(connection: duckdb.DuckDBPyConnection, feature_set: str, day: dt.date) -> bool:
    if not table_exists(connection, "features", feature_set):
        return False
    return bool(connection.execute(f"SELECT count(*) FROM (SELECT 1 FROM {feature_table(feature_set)} WHERE "
                                   f"partition_date = {date_literal(day)} LIMIT 1)").fetchall()[0][0])


def _in_dependency_order(catalog: Catalog, feature_sets: list[FeatureSetSpec]) -> list[FeatureSetSpec]:
    """The feature sets and those they use, each after the sets it uses."""
    ordered: list[FeatureSetSpec] = []

    def visit(feature_set: FeatureSetSpec) -> None:
        if feature_set in ordered:
            return
        for used in feature_set.uses:
            visit(catalog.feature_sets[used])
        ordered.append(feature_set)

    for feature_set in feature_sets:
        visit(feature_set)
    return ordered


class FeatureReader:
    """Reads feature rows from the server's copy; computes missing days one at a time (the copy's feature tables
    are written by one computation at a time, as a Dagster run writes the warehouse's)."""

    def __init__(self, connection: duckdb.DuckDBPyConnection, catalog: Catalog):
        self.connection = connection
        self.catalog = catalog
        self._computing = threading.Lock()
        # one connection computes: the feature functions it registers stay bound to it (a function registered
        # on a closed cursor stays in the catalog but cannot be called)
        self._compute_cursor = connection.cursor()

    def computed_days(self, cursor: duckdb.DuckDBPyConnection, spec: ModelSpec, days: list[dt.date],
                      force: bool) -> dict[dt.date, str]:
        """{day: how its features are served}, computing the days whose partitions are missing (all when force)."""
        sets = self.catalog.feature_sets_of(spec)
        result = {}
        for day in days:
            missing = [fs for fs in sets if force or not _has_day(cursor, fs.name, day)]
            if not missing:
                result[day] = PRECOMPUTED
                continue
            with self._computing:
                for feature_set in _in_dependency_order(self.catalog, missing):
                    try:
                        compute_feature_set(self._compute_cursor, self.catalog, feature_set, day, day)
                    except FeatureComputationError as error:
                        raise ServingError(f"features of {day} cannot be computed on demand: {error}") from error
            result[day] = ON_DEMAND
        return result

    def rows(self, cursor: duckdb.DuckDBPyConnection, spec: ModelSpec, day: dt.date) -> pd.DataFrame:
        """The requested rows (registered as `served_keys`) of one day, as batch scoring reads them: keys,
        partition_date and the features, in the spec's order."""
        keys = ", ".join(quote(key) for key in self.catalog.entity_rows(spec.entity).keys)
        matrix = feature_matrix_sql(self.catalog, spec, day, day, with_outcomes=False)
        return cursor.execute(f"SELECT * FROM ({matrix}) SEMI JOIN {REQUESTED} USING ({keys})").df()
