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
from ml_platform.names import feature_table, quote, source_table
from ml_platform.serving.errors import ServingError
from ml_platform.specs.catalog import Catalog
from ml_platform.specs.models import FeatureSetSpec, ModelSpec
from ml_platform.storage.warehouse import table_exists

PRECOMPUTED, ON_DEMAND = "precomputed", "on_demand"


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


def identity(values: dict, keys: list[str]):
    """A row's key as a dictionary key: the value of a single key column, else the tuple of values."""
    return values[keys[0]] if len(keys) == 1 else tuple(values[key] for key in keys)


class FeatureReader:
    """Reads feature rows from the server's copy; computes missing days one at a time (the copy's feature tables
    are written by one computation at a time, as a Dagster run writes the warehouse's).

    It keeps, per model version and day, that day's feature matrix as `feature_matrix_sql` returned it (pandas,
    indexed by key), so that a request takes its rows by key: the values and types batch scoring reads, read once.
    """

    def __init__(self, connection: duckdb.DuckDBPyConnection, catalog: Catalog):
        self.connection = connection
        self.catalog = catalog
        self._computing = threading.Lock()
        # one connection computes: the feature functions it registers stay bound to it (a function registered
        # on a closed cursor stays in the catalog but cannot be called)
        self._compute_cursor = connection.cursor()
        self._stored_days = {name: {row[0] for row in connection.execute(
            f"SELECT DISTINCT CAST(partition_date AS DATE) FROM {feature_table(name)}").fetchall()}
            for name in catalog.feature_sets if table_exists(connection, "features", name)}
        self._matrices: dict[tuple[str, dt.date], pd.DataFrame] = {}
        self._entity_days: dict[str, dict] = {}
        self._indexing = threading.Lock()

    def entity_days(self, entity: str) -> dict:
        """{key: day} of every row of a daily-source entity in the copy, built on first use."""
        days = self._entity_days.get(entity)
        if days is None:
            with self._indexing:
                days = self._entity_days.get(entity)
                if days is None:
                    keys = list(self.catalog.entity_rows(entity).keys)
                    with self.connection.cursor() as cursor:
                        rows = cursor.execute(f"SELECT {', '.join(quote(key) for key in keys)}, CAST(partition_date "
                                              f"AS DATE) FROM {source_table(entity)}").fetchall()
                    days = {row[0] if len(keys) == 1 else row[:-1]: row[-1] for row in rows}
                    self._entity_days[entity] = days
        return days

    def computed_days(self, spec: ModelSpec, days: list[dt.date], force: bool) -> dict[dt.date, str]:
        """{day: how its features are served}, computing the days whose partitions are missing (all when force)."""
        sets = self.catalog.feature_sets_of(spec)
        result = {}
        for day in days:
            missing = [fs for fs in sets if force or day not in self._stored_days.get(fs.name, ())]
            if not missing:
                result[day] = PRECOMPUTED
                continue
            with self._computing:
                for feature_set in _in_dependency_order(self.catalog, missing):
                    try:
                        compute_feature_set(self._compute_cursor, self.catalog, feature_set, day, day)
                    except FeatureComputationError as error:
                        raise ServingError(f"features of {day} cannot be computed on demand: {error}") from error
                    self._stored_days.setdefault(feature_set.name, set()).add(day)
                for cached in [cached for cached in self._matrices if cached[1] == day]:
                    self._matrices.pop(cached, None)
            result[day] = ON_DEMAND
        return result

    def rows(self, spec: ModelSpec, version: str, day: dt.date, requested: list) -> pd.DataFrame:
        """The requested rows (their key identities) of one day, as batch scoring reads them: keys,
        partition_date and the features, in the spec's order; a row the spec's filter leaves out is absent."""
        matrix = self._matrices.get((version, day))
        if matrix is None:
            keys = list(self.catalog.entity_rows(spec.entity).keys)
            with self.connection.cursor() as cursor:
                matrix = cursor.execute(feature_matrix_sql(self.catalog, spec, day, day, with_outcomes=False)).df()
            matrix.index = matrix[keys[0]] if len(keys) == 1 else pd.MultiIndex.from_frame(matrix[keys])
            self._matrices[(version, day)] = matrix
        present = [key for key in requested if key in matrix.index]
        return matrix.loc[present].reset_index(drop=True)
