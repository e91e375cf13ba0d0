"""Feature tables as Delta Lake tables (the cluster configuration's, here in a local folder): the same rows and
versions as the embedded warehouse, partition by partition, each committed once; reuse; refusals."""

from __future__ import annotations

import warnings

import dagster as dg
import duckdb
import pytest

import datetime as dt

from ml_platform.build import build_assets
from ml_platform.features.compute import missing_feature_days
from ml_platform.features.delta_partitions import stale_partitions
from ml_platform.features.library import load_catalog
from ml_platform.features.tables import DeltaFeatureTables, EmbeddedFeatureTables, feature_table_store
from ml_platform.names import (FEATURE_TABLES_VARIABLE, OBJECT_STORE_ENDPOINT_VARIABLE, delta_feature_path,
                               delta_versions_path, feature_key, source_key)
from ml_platform.storage.delta_tables import DeltaStore, DeltaStoreError, delta_store_from_environment
from ml_platform.storage.resources import Warehouse, build_resources
from ml_platform_tests.helpers import route_load_feature_set, write_yaml
from ml_platform.storage.warehouse import open_warehouse, row_digests

# Delta Lake tables come with the cluster extra (`pip install -e '.[cluster]'`, which .ci/run installs); the README's
# test command installs only `.[dev]`, so without the extra these tests are skipped, saying why
pytest.importorskip("deltalake",
                    reason="the cluster extra is not installed (deltalake missing: pip install -e '.[cluster]')")

FIRST, LAST = "2013-01-01", "2013-01-03"
# disruption_history looks back over several days of flights; route_load uses flight_schedule's table
SETS = ("flight_schedule", "disruption_history", "route_load")


def _materialize(project, keys: list[dg.AssetKey], first: str = FIRST, last: str = LAST) -> dg.ExecuteInProcessResult:
    catalog = load_catalog(project.specs_dir, project.root)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=dg.BetaWarning)
        assets = {asset.key: asset for asset in build_assets(catalog)}
    result = dg.materialize([assets[key] for key in keys], resources=build_resources(project.storage),
                            instance=dg.DagsterInstance.ephemeral(), tags={
                                "dagster/asset_partition_range_start": first,
                                "dagster/asset_partition_range_end": last})
    assert result.success
    return result


def _sources(project) -> None:
    _materialize(project, [source_key("planes"), source_key("airports")])
    _materialize(project, [source_key("flights"), source_key("weather")])


def _delta_digests(store: DeltaStore, name: str) -> list[tuple]:
    connection = duckdb.connect()
    connection.register("delta", store.dataset(delta_feature_path(name)))
    return sorted(row_digests(connection, "delta", by_day=True))


@pytest.mark.slow  # three feature sets of three days, embedded and Delta, and four more runs
def test_delta_feature_tables_hold_the_embedded_rows_and_versions_and_reuse_them(make_project, tmp_path,
                                                                                  monkeypatch):
    embedded, delta = make_project(name="embedded"), make_project(name="delta")
    for project in (embedded, delta):
        write_yaml(project.specs_dir / "features" / "route_load.yaml", route_load_feature_set())
        _sources(project)
    _materialize(embedded, [feature_key(name) for name in SETS])

    store = DeltaStore(root=str(tmp_path / "tables"))
    monkeypatch.setenv(FEATURE_TABLES_VARIABLE, store.root)
    result = _materialize(delta, [feature_key(name) for name in SETS])
    route_load = _materialize(delta, [feature_key("route_load")])  # reused: its inputs' versions are unchanged
    assert route_load.asset_materializations_for_node("features__route_load")[0].metadata["reused_days"].value == 3
    with open_warehouse(embedded.storage.warehouse) as connection:
        expected = {name: sorted(row_digests(connection, f"features.{name}", by_day=True)) for name in SETS}
        expected_versions = dict(connection.execute(
            "SELECT partition_key, version FROM registry.partition_versions WHERE asset = "
            "'features/disruption_history'").fetchall())
    for name in SETS:
        assert len(expected[name]) == 3 and all(count > 0 for _, count, _ in expected[name])
        assert _delta_digests(store, name) == expected[name], name
        # one commit per partition, nothing else
        commits = store.commits(delta_feature_path(name))
        assert [commit["first_day"] for commit in commits] == ["2013-01-01", "2013-01-02", "2013-01-03"]
    versions = store.table(delta_versions_path("disruption_history")).to_pyarrow_table().to_pylist()
    assert {row["partition_key"]: row["version"] for row in versions} == expected_versions
    # the Delta run left the warehouse without feature tables: they live in the store only
    with open_warehouse(delta.storage.warehouse) as connection:
        assert connection.execute("SELECT count(*) FROM information_schema.tables "
                                  "WHERE table_schema = 'features'").fetchall()[0][0] == 0
    # ... and the warehouse resource's connections (snapshots, scoring, serving) read them as features.<name>
    with Warehouse(database=str(delta.storage.warehouse)).get_connection() as connection:
        for name in SETS:
            assert sorted(row_digests(connection, f"features.{name}", by_day=True)) == expected[name]
        catalog = load_catalog(delta.specs_dir, delta.root)
        model = next(iter(catalog.models.values()))
        assert missing_feature_days(connection, catalog, model, dt.date(2013, 1, 1), dt.date(2013, 1, 3)) == {
            "origin_weather_eve": ["all days"], "aircraft_and_destination": ["all days"]}
        # the partitions' versions, which snapshots pin, mirrored from the Delta version index
        mirrored = dict(connection.execute(
            "SELECT partition_key, version FROM registry.partition_versions WHERE asset = "
            "'features/disruption_history'").fetchall())
        assert mirrored == expected_versions
    with open_warehouse(delta.storage.warehouse) as connection:  # the views lived as long as the connection
        assert connection.execute("SELECT count(*) FROM information_schema.tables "
                                  "WHERE table_schema = 'features'").fetchall()[0][0] == 0
        assert connection.execute("SELECT count(*) FROM registry.partition_versions "
                                  "WHERE asset LIKE 'features/%'").fetchall()[0][0] == 0
    # a warehouse with feature tables of its own is refused rather than shadowed
    with pytest.raises(DeltaStoreError, match=r"holds features.disruption_history as a table of its own"):
        with Warehouse(database=str(embedded.storage.warehouse)).get_connection():
            pass
    metadata = result.asset_materializations_for_node("features__flight_schedule")[0].metadata
    assert metadata["delta_commits"].value == 3 and metadata["recomputed_days"].value == 3

    # a second run reuses every partition: no new commit
    again = _materialize(delta, [feature_key("flight_schedule")])
    metadata = again.asset_materializations_for_node("features__flight_schedule")[0].metadata
    assert metadata["reused_days"].value == 3 and "delta_commits" not in metadata
    assert len(store.commits(delta_feature_path("flight_schedule"))) == 3


def test_the_store_is_chosen_by_the_environment_and_refuses_bad_locations(tmp_path, monkeypatch):
    assert delta_store_from_environment({}) is None
    monkeypatch.delenv(FEATURE_TABLES_VARIABLE, raising=False)
    assert isinstance(feature_table_store(), EmbeddedFeatureTables)
    monkeypatch.setenv(FEATURE_TABLES_VARIABLE, str(tmp_path))
    assert feature_table_store() == DeltaFeatureTables(DeltaStore(str(tmp_path)))
    store = delta_store_from_environment({FEATURE_TABLES_VARIABLE: "s3://features/ml",
                                          OBJECT_STORE_ENDPOINT_VARIABLE: "http://127.0.0.1:9000"})
    assert store == DeltaStore("s3://features/ml", "http://127.0.0.1:9000")
    assert store.storage_options()["AWS_ENDPOINT_URL"] == "http://127.0.0.1:9000"
    assert store.storage_options()["conditional_put"] == "etag"
    assert DeltaStore(str(tmp_path)).storage_options() == {}
    with pytest.raises(DeltaStoreError, match=r"ML_PLATFORM_FEATURE_TABLES='relative/folder' is neither"):
        delta_store_from_environment({FEATURE_TABLES_VARIABLE: "relative/folder"})
    with pytest.raises(DeltaStoreError, match=r"ML_PLATFORM_FEATURE_TABLES='s3://' names no bucket"):
        delta_store_from_environment({FEATURE_TABLES_VARIABLE: "s3://"})
    with pytest.raises(DeltaStoreError, match=r"ML_PLATFORM_S3_ENDPOINT='127.0.0.1:9000' is not an http"):
        delta_store_from_environment({FEATURE_TABLES_VARIABLE: "s3://b",
                                      OBJECT_STORE_ENDPOINT_VARIABLE: "127.0.0.1:9000"})


def test_a_delta_refresh_without_materialized_sources_fails_naming_the_missing_tables(make_project, tmp_path):
    project = make_project()
    _materialize(project, [source_key("planes"), source_key("airports")])  # no flights yet
    catalog = load_catalog(project.specs_dir, project.root)
    store = DeltaStore(root=str(tmp_path / "tables"))
    tables = DeltaFeatureTables(store)
    from ml_platform.features.compute import FeatureComputationError
    from ml_platform.progress import silent
    with pytest.raises(FeatureComputationError, match=r"source.flights not in the warehouse yet"):
        tables.refresh(Warehouse(database=str(project.storage.warehouse)), catalog,
                       catalog.feature_sets["flight_schedule"], dt.date(2013, 1, 1), dt.date(2013, 1, 1), silent())
    assert not store.exists(delta_feature_path("flight_schedule"))
    # without the warehouse file, a source in no Delta table is looked for in both places, and both are named
    absent = tmp_path / "absent.duckdb"
    with pytest.raises(FileNotFoundError) as raised:
        stale_partitions(absent, store, catalog, catalog.feature_sets["flight_schedule"],
                         dt.date(2013, 1, 1), dt.date(2013, 1, 1))
    assert str(raised.value) == (
        f"feature set 'flight_schedule' reads from the warehouse file {absent.resolve()}, which does not exist: "
        f"source.flights (no Delta table at {store.uri('sources/flights')}: materialize source 'flights' first)")
    assert not absent.exists()


def test_a_partition_failing_its_proof_is_not_committed_to_delta(make_project, tmp_path):
    """Each partition is computed with its sources cut at its own prediction time, so the demo's leaks are
    harmless by construction here; a value that changes on every computation fails the proof all the same."""
    from ml_platform.features.proof import PointInTimeError
    from ml_platform.progress import silent
    from ml_platform.specs.models import FeatureSetSpec
    from ml_platform_tests.features.test_point_in_time import feature_set

    project = make_project()
    _sources(project)
    catalog = load_catalog(project.specs_dir, project.root)
    spec = FeatureSetSpec.model_validate(feature_set("noisy", "SELECT flight_id, random() AS noise FROM entity",
                                                     ["noise"], []))
    store = DeltaStore(root=str(tmp_path / "tables"))
    with pytest.raises(PointInTimeError) as raised:
        DeltaFeatureTables(store).refresh(Warehouse(database=str(project.storage.warehouse)), catalog, spec,
                                          dt.date(2013, 1, 1), dt.date(2013, 1, 2), silent())
    assert "point in time violated" in str(raised.value) and "feature set 'noisy', feature 'noise'" in str(raised.value)
    assert raised.value.proof.differing_rows > 1000  # both days' rows, each proven on its own
    # no partition was committed, and none has a version: the next run computes them again
    assert not store.exists(delta_feature_path("noisy"))
    assert not store.exists(delta_versions_path("noisy"))


@pytest.mark.slow  # six weeks of flights, twice
def test_a_weekly_population_s_feature_partitions_in_delta_equal_the_embedded_ones(make_project, tmp_path,
                                                                                  monkeypatch):
    import shutil

    from ml_platform.names import entity_key
    from ml_platform_tests.helpers import SPECS

    monkeypatch.delenv(FEATURE_TABLES_VARIABLE, raising=False)
    embedded, delta = make_project(name="embedded"), make_project(name="delta")
    for project in (embedded, delta):
        shutil.copytree(SPECS / "entities", project.specs_dir / "entities")
        shutil.copyfile(SPECS / "route_weeks" / "route_history.yaml",
                        project.specs_dir / "features" / "route_history.yaml")
        _materialize(project, [source_key("flights")], "2013-01-07", "2013-02-17")
        _materialize(project, [entity_key("route_weeks")], "2013-02-04", "2013-02-11")
    _materialize(embedded, [feature_key("route_history")], "2013-02-04", "2013-02-11")
    store = DeltaStore(root=str(tmp_path / "tables"))
    monkeypatch.setenv(FEATURE_TABLES_VARIABLE, store.root)
    _materialize(delta, [feature_key("route_history")], "2013-02-04", "2013-02-11")
    with open_warehouse(embedded.storage.warehouse) as connection:
        expected = sorted(row_digests(connection, "features.route_history", by_day=True))
    assert [str(day) for day, _, _ in expected] == ["2013-02-04", "2013-02-11"] and expected[0][1] > 50
    assert _delta_digests(store, "route_history") == expected
    assert [(commit["first_day"], commit["last_day"]) for commit in store.commits(delta_feature_path("route_history"))
            ] == [("2013-02-04", "2013-02-10"), ("2013-02-11", "2013-02-17")]
