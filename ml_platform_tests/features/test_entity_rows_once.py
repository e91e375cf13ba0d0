"""A computation reads `entity` through rows computed once (a temporary table behind the view): every feature
value of a day is bit-identical to the feature SQL run over the plain view, and the preparation done once per
connection (SQL checked, inputs present, functions registered) computes the same values day after day."""

from __future__ import annotations

import datetime as dt

import duckdb
import pytest

from ml_platform import names
from ml_platform.features.compute import (FeatureComputationError, compute_feature_set, compute_group, day_groups,
                                         prepare_feature_set, span_condition)
from ml_platform.features.functions import register_functions
from ml_platform.features.library import load_catalog
from ml_platform.features.relations import bind_entity, bind_sources, bound, history_bound, history_reads
from ml_platform.names import feature_table, quote
from ml_platform.storage.warehouse import open_warehouse, single_threaded
from ml_platform_tests.evaluation.january import MODEL, january_project
from ml_platform_tests.helpers import REPO_ROOT, SPECS

# builds the loaded January warehouse through Dagster runs: the full suite only
pytestmark = pytest.mark.slow

DAYS = (dt.date(2013, 1, 20), dt.date(2013, 1, 21))


def _by_the_plain_view(connection, catalog, feature_set, day: dt.date) -> list[str]:
    """The day's rows as the feature SQL gives them over `entity` as a plain view (no rows computed before)."""
    keys = [quote(key) for key in catalog.entity_rows(feature_set.entity).keys]
    with history_bound(connection, history_reads(connection, feature_set)), bound(connection, feature_set):
        bind_entity(connection, catalog, feature_set, span_condition(day, day))
        latest = connection.execute(f"SELECT max({names.PREDICTION_TIME_COLUMN}) FROM entity").fetchall()[0][0]
        bind_sources(connection, catalog, feature_set, latest)
        register_functions(connection, list(feature_set.functions))
        features = ", ".join(f"feature_result.{quote(name)}" for name in feature_set.features)
        with single_threaded(connection):
            rows = connection.execute(
                f"SELECT {', '.join('entity.' + key for key in keys)}, {features}, entity.partition_date FROM "
                f"({feature_set.sql}) AS feature_result JOIN entity USING ({', '.join(keys)}) ORDER BY "
                f"{', '.join('entity.' + key for key in keys)}").fetchall()
    return [repr(row) for row in rows]  # repr: a NaN equals a NaN, every bit of a float counts


def test_features_computed_with_entity_rows_once_are_bit_identical_to_the_plain_view(tmp_path):
    project = january_project(tmp_path / "project")
    catalog = load_catalog(project.specs_dir, project.root)
    sets = catalog.feature_sets_of(catalog.models[MODEL])
    assert len(sets) >= 3
    with open_warehouse(project.storage.warehouse) as connection:
        for feature_set in sets:
            prepare_feature_set(connection, catalog, feature_set)
        for day in DAYS:
            for feature_set in sets:
                expected = _by_the_plain_view(connection, catalog, feature_set, day)
                assert len(expected) > 500
                assert compute_feature_set(connection, catalog, feature_set, day, day, prepared=True) == len(expected)
                keys = ", ".join(quote(key) for key in catalog.entity_rows(feature_set.entity).keys)
                stored = connection.execute(f"SELECT * FROM {feature_table(feature_set.name)} WHERE partition_date "
                                            f"= ? ORDER BY {keys}", [day]).fetchall()
                assert [repr(row) for row in stored] == expected, feature_set.name
                # the temporary rows and views are gone: bare names read the warehouse again
                assert not connection.execute("SELECT count(*) FROM duckdb_tables() WHERE temporary AND table_name = "
                                              f"'{names.ENTITY_ROWS_TABLE}'").fetchall()[0][0]
                assert not connection.execute("SELECT count(*) FROM duckdb_views() WHERE temporary AND view_name = "
                                              "'entity'").fetchall()[0][0]


def _stored(connection, catalog, feature_set, day: dt.date) -> list[str]:
    keys = ", ".join(quote(key) for key in catalog.entity_rows(feature_set.entity).keys)
    return [repr(row) for row in connection.execute(
        f"SELECT * FROM {feature_table(feature_set.name)} WHERE partition_date = ? ORDER BY {keys}", [day]).fetchall()]


def test_a_day_of_feature_sets_bound_once_per_known_by_is_bit_identical_to_one_set_at_a_time(tmp_path):
    """compute_group binds the entity rows and cut sources once per run of sets of one entity and known_by
    (day_groups), with every history view or (what the server's two cursors do) only those each SQL names:
    every value equals compute_feature_set's."""
    project = january_project(tmp_path / "project")
    catalog = load_catalog(project.specs_dir, project.root)
    sets = sorted(catalog.feature_sets_of(catalog.models[MODEL]), key=lambda fs: repr(fs.known_by))
    groups = day_groups(sets)
    assert len(groups) < len(sets), "the demo model has several sets of one known_by"
    with open_warehouse(project.storage.warehouse) as connection:
        histories = {}
        for feature_set in sets:
            prepare_feature_set(connection, catalog, feature_set)
            histories[feature_set.name] = history_reads(connection, feature_set)
        assert histories["disruption_history"] == ["flights"] and histories["flight_schedule"] == []
        for day in DAYS:
            expected = {}
            for feature_set in sets:
                compute_feature_set(connection, catalog, feature_set, day, day, prepared=True)
                expected[feature_set.name] = _stored(connection, catalog, feature_set, day)
                assert len(expected[feature_set.name]) > 500
            written = {}
            for group in groups:
                written.update(compute_group(connection, catalog, group, day))
            assert written == {name: len(rows) for name, rows in expected.items()}
            assert {fs.name: _stored(connection, catalog, fs, day) for fs in sets} == expected
            for group in groups:
                compute_group(connection, catalog, group, day, histories)
            assert {fs.name: _stored(connection, catalog, fs, day) for fs in sets} == expected
            # nothing bound is left behind
            assert not connection.execute("SELECT count(*) FROM duckdb_views() WHERE temporary AND view_name IN "
                                          "('entity', 'flights', 'weather', 'planes', 'airports')").fetchall()[0][0]


def test_a_group_of_sets_of_several_known_by_is_refused():
    catalog = load_catalog(SPECS, REPO_ROOT)
    sets = catalog.feature_sets_of(catalog.models[MODEL])
    mixed = [sets[0], next(fs for fs in sets if fs.known_by != sets[0].known_by)]
    with duckdb.connect() as connection, \
            pytest.raises(FeatureComputationError, match="not one entity and known_by"):
        compute_group(connection, catalog, mixed, DAYS[0])
