"""Entity populations as Delta Lake tables (the cluster configuration's, here in a local folder): a weekly and an
hourly population hold the embedded rows and versions, one commit of rows and one of versions per step, reuse
without a commit, the readers' views, a feature set of a population computed from Delta with no warehouse file,
and the refusal of a first build into the store while the file holds the population."""

from __future__ import annotations

import datetime as dt
import shutil
import warnings

import dagster as dg
import duckdb
import pytest
import yaml

from ml_platform.build import build_assets
from ml_platform.features.delta_partitions import stale_partitions
from ml_platform.features.library import load_catalog
from ml_platform.names import (FEATURE_TABLES_VARIABLE, ROW_COUNT_METADATA, delta_feature_path, delta_population_path,
                               delta_population_versions_path, delta_versions_path, entity_key, feature_key,
                               source_key)
from ml_platform.serving.mirror import copy_warehouse
from ml_platform.storage.delta_tables import DeltaStore
from ml_platform.storage.resources import Warehouse, build_resources
from ml_platform.storage.warehouse import open_warehouse, row_digests
from ml_platform_tests.features.test_delta_feature_tables import _materialize
from ml_platform_tests.helpers import SPECS

pytest.importorskip("deltalake",
                    reason="the cluster extra is not installed (deltalake missing: pip install -e '.[cluster]')")

# route_weeks (weekly, four weeks of lookback) and origin_hours (hourly, a week of lookback), both reading flights
WEEKS = ("2013-02-04", "2013-02-11")
HOURS = ("2013-01-08", "2013-01-09")


def _project(make_project, name: str, with_features: bool = False):
    project = make_project(name=name)
    shutil.copytree(SPECS / "entities", project.specs_dir / "entities")
    if with_features:
        shutil.copyfile(SPECS / "route_weeks" / "route_history.yaml",
                        project.specs_dir / "features" / "route_history.yaml")
    return project


def _sorted(frame):
    return frame.sort_values(list(frame.columns), kind="stable").reset_index(drop=True)


def _versions(connection: duckdb.DuckDBPyConnection, name: str) -> dict[str, tuple[str, dict]]:
    return {key: (version, yaml.safe_load(components)) for key, version, components in connection.execute(
        "SELECT partition_key, version, CAST(components AS VARCHAR) FROM registry.partition_versions "
        "WHERE asset = ?", [f"entity/{name}"]).fetchall()}


def _delta_versions(store: DeltaStore, name: str) -> dict[str, tuple[str, dict]]:
    return {row["partition_key"]: (row["version"], yaml.safe_load(row["components"]))
            for row in store.table(delta_population_versions_path(name)).to_pyarrow_table().to_pylist()}


def _load_flights(project, store: DeltaStore | None, monkeypatch) -> None:
    if store is None:
        monkeypatch.delenv(FEATURE_TABLES_VARIABLE, raising=False)
    else:
        monkeypatch.setenv(FEATURE_TABLES_VARIABLE, store.root)
    _materialize(project, [source_key("flights")], "2013-01-01", "2013-02-17")


def test_populations_in_delta_hold_the_embedded_rows_and_versions_and_reuse_them(make_project, tmp_path,
                                                                                monkeypatch):
    embedded, delta = _project(make_project, "embedded"), _project(make_project, "delta")
    store = DeltaStore(root=str(tmp_path / "tables"))
    _load_flights(embedded, None, monkeypatch)
    _materialize(embedded, [entity_key("route_weeks")], *WEEKS)
    _materialize(embedded, [entity_key("origin_hours")], *HOURS)
    _load_flights(delta, store, monkeypatch)
    _materialize(delta, [entity_key("route_weeks")], *WEEKS)
    _materialize(delta, [entity_key("origin_hours")], *HOURS)
    assert not delta.storage.warehouse.exists()  # computed apart: the steps never opened the file
    with open_warehouse(embedded.storage.warehouse) as connection:
        for name in ("route_weeks", "origin_hours"):
            expected = _sorted(connection.sql(f'SELECT * FROM population."{name}"').df())
            assert len(expected) > 50
            memory = duckdb.connect()  # read as a reader does: DuckDB over the table's Arrow dataset
            memory.register("delta", store.dataset(delta_population_path(name)))
            stored = _sorted(memory.sql("SELECT * FROM delta").df())
            assert memory.sql("SELECT * FROM delta").types == connection.sql(f'SELECT * FROM population."{name}"').types
            assert list(stored.columns) == list(expected.columns)
            assert stored.equals(expected), name
            assert _delta_versions(store, name) == _versions(connection, name)
        assert sorted(_versions(connection, "route_weeks")) == list(WEEKS)
        assert sorted(_versions(connection, "origin_hours")) == list(HOURS)
        embedded_digests = {name: sorted(row_digests(connection, f'population."{name}"', by_day=True))
                            for name in ("route_weeks", "origin_hours")}
    # one commit of the rows and one of the versions per step, covering the partitions' days
    assert [(commit["first_day"], commit["last_day"]) for commit in
            store.commits(delta_population_path("route_weeks"))] == [("2013-02-04", "2013-02-17")]
    assert len(store.commits(delta_population_versions_path("route_weeks"))) == 1
    # the same partitions again: their versions are stored, nothing is computed or committed
    result = _materialize(delta, [entity_key("route_weeks")], *WEEKS)
    assert store.version(delta_population_path("route_weeks")) == 0
    assert store.version(delta_population_versions_path("route_weeks")) == 0
    metadata = result.asset_materializations_for_node(result.all_node_events[0].node_name)[0].metadata
    assert metadata["reused"].value == "yes" and metadata[ROW_COUNT_METADATA].value == len(
        store.dataset(delta_population_path("route_weeks")).to_table())
    # readers see `population.<name>` and its versions while the connection is open; the server's copy holds it
    with Warehouse(database=str(delta.storage.warehouse)).get_connection() as connection:
        for name in ("route_weeks", "origin_hours"):
            assert sorted(row_digests(connection, f'population."{name}"', by_day=True)) == embedded_digests[name]
            assert _versions(connection, name) == _delta_versions(store, name)
    with open_warehouse(delta.storage.warehouse) as connection:
        assert _versions(connection, "route_weeks") == {}  # mirrored only for the connection's life
    catalog = load_catalog(delta.specs_dir, delta.root)
    memory, _ = copy_warehouse(delta.storage.warehouse, catalog)
    assert sorted(row_digests(memory, 'population."route_weeks"', by_day=True)) == embedded_digests["route_weeks"]


def test_a_population_s_feature_set_computes_from_delta_without_the_warehouse_file(make_project, tmp_path,
                                                                                  monkeypatch):
    embedded = _project(make_project, "embedded", with_features=True)
    delta = _project(make_project, "delta", with_features=True)
    store = DeltaStore(root=str(tmp_path / "tables"))
    _load_flights(embedded, None, monkeypatch)
    _materialize(embedded, [entity_key("route_weeks")], *WEEKS)
    _materialize(embedded, [feature_key("route_history")], *WEEKS)
    _load_flights(delta, store, monkeypatch)
    catalog = load_catalog(delta.specs_dir, delta.root)
    with pytest.raises(FileNotFoundError) as raised:  # its population is not built yet: named, and where it was sought
        stale_partitions(delta.storage.warehouse, store, catalog, catalog.feature_sets["route_history"],
                         dt.date(2013, 2, 4), dt.date(2013, 2, 4))
    assert str(raised.value) == (
        f"feature set 'route_history' reads from the warehouse file {delta.storage.warehouse.resolve()}, which does "
        f"not exist: population.route_weeks (no Delta table at {store.root}/populations/route_weeks: materialize "
        f"entity 'route_weeks' first)")
    _materialize(delta, [entity_key("route_weeks")], *WEEKS)
    _materialize(delta, [feature_key("route_history")], *WEEKS)
    assert not delta.storage.warehouse.exists()  # population and features computed with no warehouse file
    with open_warehouse(embedded.storage.warehouse) as connection:
        expected = sorted(row_digests(connection, "features.route_history", by_day=True))
        expected_versions = {key: version for key, version in connection.execute(
            "SELECT partition_key, version FROM registry.partition_versions WHERE asset = 'features/route_history'"
        ).fetchall()}
    memory = duckdb.connect()
    memory.register("delta", store.dataset(delta_feature_path("route_history")))
    assert [str(day) for day, _, _ in expected] == list(WEEKS) and expected[0][1] > 50
    assert sorted(row_digests(memory, "delta", by_day=True)) == expected
    assert {row["partition_key"]: row["version"] for row in
            store.table(delta_versions_path("route_history")).to_pyarrow_table().to_pylist()} == expected_versions


def test_a_first_build_into_delta_is_refused_while_the_warehouse_file_holds_the_population(make_project, tmp_path,
                                                                                          monkeypatch):
    project = _project(make_project, "project")
    _load_flights(project, None, monkeypatch)  # flights and the population in the file: an embedded warehouse
    _materialize(project, [entity_key("route_weeks")], *WEEKS)
    store = DeltaStore(root=str(tmp_path / "tables"))
    monkeypatch.setenv(FEATURE_TABLES_VARIABLE, store.root)
    catalog = load_catalog(project.specs_dir, project.root)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=dg.BetaWarning)
        assets = {asset.key: asset for asset in build_assets(catalog)}
    result = dg.materialize([assets[entity_key("route_weeks")]], resources=build_resources(project.storage),
                            instance=dg.DagsterInstance.ephemeral(), raise_on_error=False, tags={
                                "dagster/asset_partition_range_start": WEEKS[0],
                                "dagster/asset_partition_range_end": WEEKS[1]})
    assert not result.success
    failure = result.failure_data_for_node(result.all_node_events[0].node_name)
    warehouse = project.storage.warehouse.resolve()
    assert (f"entity 'route_weeks': the warehouse {warehouse} holds population.route_weeks as a table of its own "
            f"(built before {FEATURE_TABLES_VARIABLE} was set), and {store.root}/populations/route_weeks does not "
            f"exist yet: a population lives in one place. Drop the table and materialize the entity again (it goes "
            f"to the store), or unset {FEATURE_TABLES_VARIABLE}") in str(failure.error)
    assert not store.exists(delta_population_path("route_weeks"))  # nothing committed
