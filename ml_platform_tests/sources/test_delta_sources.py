"""Sources as Delta Lake tables (the cluster configuration's, here in a local folder), daily and reference: the same
rows and versions as the embedded warehouse, one commit per load, reuse without a commit, a rejected load committing
nothing, the readers' views, and feature partitions computed from the Delta sources equal to the embedded ones (with
no warehouse file at all when everything they read is in Delta)."""

from __future__ import annotations

import datetime as dt
import warnings

import dagster as dg
import duckdb
import pytest
import yaml

from ml_platform.build import build_assets
from ml_platform.features.delta_partitions import stale_partitions
from ml_platform.features.library import load_catalog
from ml_platform.names import (FEATURE_TABLES_VARIABLE, ROW_COUNT_METADATA, delta_feature_path, delta_source_path,
                               delta_source_versions_path, delta_versions_path, feature_key, source_key)
from ml_platform.serving.mirror import copy_warehouse
from ml_platform.storage.delta_tables import DeltaStore, DeltaStoreError
from ml_platform.storage.resources import Warehouse, build_resources
from ml_platform.storage.warehouse import open_warehouse, row_digests

pytest.importorskip("deltalake",
                    reason="the cluster extra is not installed (deltalake missing: pip install -e '.[cluster]')")

FIRST, LAST = "2013-01-01", "2013-01-03"
DAILY = ("flights", "weather")
REFERENCE = ("airports", "planes")


def _materialize(project, keys: list[dg.AssetKey], first: str = FIRST, last: str = LAST,
                 succeed: bool = True) -> dg.ExecuteInProcessResult:
    catalog = load_catalog(project.specs_dir, project.root)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=dg.BetaWarning)
        assets = {asset.key: asset for asset in build_assets(catalog)}
    result = dg.materialize([assets[key] for key in keys], resources=build_resources(project.storage),
                            instance=dg.DagsterInstance.ephemeral(), raise_on_error=False, tags={
                                "dagster/asset_partition_range_start": first,
                                "dagster/asset_partition_range_end": last})
    assert result.success is succeed
    return result


def _sorted(frame):
    return frame.sort_values(list(frame.columns), kind="stable").reset_index(drop=True)


def _embedded_rows(project, name: str):
    with open_warehouse(project.storage.warehouse) as connection:
        return _sorted(connection.sql(f'SELECT * FROM source."{name}"').df())


def _embedded_versions(project, name: str) -> dict[str, tuple[str, str]]:
    with open_warehouse(project.storage.warehouse) as connection:
        return {key: (version, components) for key, version, components in connection.execute(
            "SELECT partition_key, version, CAST(components AS VARCHAR) FROM registry.partition_versions "
            "WHERE asset = ?", [f"source/{name}"]).fetchall()}


def _delta_versions(store: DeltaStore, name: str) -> dict[str, tuple[str, str]]:
    return {row["partition_key"]: (row["version"], row["components"])
            for row in store.table(delta_source_versions_path(name)).to_pyarrow_table().to_pylist()}


def _canonical(versions: dict[str, tuple[str, str]]) -> dict[str, tuple[str, dict]]:
    return {key: (version, yaml.safe_load(components)) for key, (version, components) in versions.items()}



def _assert_no_source_left(project) -> None:
    """The warehouse file holds no source table and no source version once the Delta views' connection closed."""
    with open_warehouse(project.storage.warehouse) as connection:
        assert connection.execute("SELECT count(*) FROM information_schema.tables "
                                  "WHERE table_schema = 'source'").fetchall()[0][0] == 0
        assert connection.execute("SELECT count(*) FROM registry.partition_versions "
                                  "WHERE asset LIKE 'source/%'").fetchall()[0][0] == 0


def test_daily_sources_in_delta_hold_the_embedded_rows_and_versions_and_reuse_them(make_project, tmp_path,
                                                                                  monkeypatch):
    monkeypatch.delenv(FEATURE_TABLES_VARIABLE, raising=False)
    embedded, delta = make_project(name="embedded"), make_project(name="delta")
    _materialize(embedded, [source_key(name) for name in DAILY])
    store = DeltaStore(root=str(tmp_path / "tables"))
    monkeypatch.setenv(FEATURE_TABLES_VARIABLE, store.root)
    result = _materialize(delta, [source_key(name) for name in DAILY])
    # the daily sources' step never opened the warehouse file
    assert not delta.storage.warehouse.exists()
    for name in DAILY:
        expected = _embedded_rows(embedded, name)
        assert len(expected) > 50 and sorted(expected["partition_date"].astype(str).unique()) == [
            "2013-01-01", "2013-01-02", "2013-01-03"]
        memory = duckdb.connect()  # read as a reader's DuckDB reads it: the same types as the embedded table's
        memory.register("delta", store.dataset(delta_source_path(name)))
        got = _sorted(memory.sql("SELECT * FROM delta").df())
        assert dict(got.dtypes) == dict(expected.dtypes)
        assert got.equals(expected), name
        # the same partition versions, components and hashes, as the embedded warehouse's version index
        assert _canonical(_delta_versions(store, name)) == _canonical(_embedded_versions(embedded, name)), name
        commits = store.commits(delta_source_path(name))  # the three days in one commit, then their versions
        assert [(commit["first_day"], commit["last_day"]) for commit in commits] == [(FIRST, LAST)]
        assert len(store.commits(delta_source_versions_path(name))) == 1
    metadata = result.asset_materializations_for_node("source__flights")[0].metadata
    assert metadata["reused"].value == "no" and metadata["days"].value == 3
    assert metadata["delta_table_version"].value == store.version(delta_source_path("flights")) == 0

    # the warehouse resource's connections read them as source.<name>, with their versions mirrored, for the
    # connection's life; the same rows' digests as the embedded tables
    with Warehouse(database=str(delta.storage.warehouse)).get_connection() as connection:
        for name in DAILY:
            with open_warehouse(embedded.storage.warehouse) as embedded_connection:
                expected = sorted(row_digests(embedded_connection, f'source."{name}"', by_day=True))
            assert sorted(row_digests(connection, f'source."{name}"', by_day=True)) == expected
        mirrored = {key: (version, components) for key, version, components in connection.execute(
            "SELECT partition_key, version, CAST(components AS VARCHAR) FROM registry.partition_versions "
            "WHERE asset = 'source/weather'").fetchall()}
        assert _canonical(mirrored) == _canonical(_embedded_versions(embedded, "weather"))
    # the online server's copy takes the Delta sources at their latest version, and counts them in its fingerprint
    copy, fingerprint = copy_warehouse(delta.storage.warehouse, load_catalog(delta.specs_dir, delta.root))
    try:
        for name in DAILY:
            with open_warehouse(embedded.storage.warehouse) as embedded_connection:
                expected = sorted(row_digests(embedded_connection, f'source."{name}"', by_day=True))
            assert sorted(row_digests(copy, f'source."{name}"', by_day=True)) == expected, name
    finally:
        copy.close()
    assert fingerprint.delta_features
    _assert_no_source_left(delta)  # gone with the connection
    # a warehouse holding a daily source as a table of its own is refused rather than shadowed
    with pytest.raises(DeltaStoreError, match=r"holds source.flights as a table of its own"):
        with Warehouse(database=str(embedded.storage.warehouse)).get_connection():
            pass

    # ... and a first load into a store while the warehouse holds the source as its own table is refused before
    # anything is committed (its earlier days would stay in the file)
    elsewhere = DeltaStore(root=str(tmp_path / "elsewhere"))
    monkeypatch.setenv(FEATURE_TABLES_VARIABLE, elsewhere.root)
    refused = _materialize(embedded, [source_key("flights")], "2013-01-04", "2013-01-04", succeed=False)
    failure = next(event for event in refused.all_events if event.is_step_failure)
    assert ("holds source.flights as a table of its own (loaded before ML_PLATFORM_FEATURE_TABLES was set)"
            in str(failure.step_failure_data.error))
    assert not elsewhere.exists(delta_source_path("flights"))
    monkeypatch.setenv(FEATURE_TABLES_VARIABLE, store.root)

    # the same file and spec again: reused, nothing read, no commit
    again = _materialize(delta, [source_key("flights")])
    assert again.asset_materializations_for_node("source__flights")[0].metadata["reused"].value.startswith("3 ")
    assert len(store.commits(delta_source_path("flights"))) == 1
    assert len(store.commits(delta_source_versions_path("flights"))) == 1


def test_a_rejected_daily_load_commits_nothing_to_delta(make_project, tmp_path, monkeypatch):
    project = make_project()
    store = DeltaStore(root=str(tmp_path / "tables"))
    monkeypatch.setenv(FEATURE_TABLES_VARIABLE, store.root)
    _materialize(project, [source_key("weather")], FIRST, FIRST)
    before = (store.version(delta_source_path("weather")), store.version(delta_source_versions_path("weather")))
    spec = project.specs_dir / "sources" / "weather.yaml"
    document = yaml.safe_load(spec.read_text(encoding="utf-8"))
    document["checks"]["min_rows_per_day"] = 1000  # a day has 72 observations (three airports, hourly)
    spec.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    result = _materialize(project, [source_key("weather")], FIRST, "2013-01-02", succeed=False)
    checks = {evaluation.check_name: evaluation.passed for evaluation in result.get_asset_check_evaluations()}
    assert checks["row_count"] is False
    failure = next(event for event in result.all_events if event.is_step_failure)
    assert "source 'weather' rejected, nothing written: row_count" in str(failure.step_failure_data.error)
    assert (store.version(delta_source_path("weather")),
            store.version(delta_source_versions_path("weather"))) == before
    assert sorted(store.dataset(delta_source_path("weather")).to_table().column("partition_date").to_pylist()
                  )[-1].isoformat() == FIRST


def test_features_computed_from_delta_sources_equal_the_embedded_ones(make_project, tmp_path, monkeypatch):
    monkeypatch.delenv(FEATURE_TABLES_VARIABLE, raising=False)
    embedded, delta = make_project(name="embedded"), make_project(name="delta")
    sets = ("flight_schedule", "disruption_history")
    for project in (embedded, delta):
        _materialize(project, [source_key("planes"), source_key("airports")])
    _materialize(embedded, [source_key(name) for name in DAILY])
    _materialize(embedded, [feature_key(name) for name in sets])
    store = DeltaStore(root=str(tmp_path / "tables"))
    monkeypatch.setenv(FEATURE_TABLES_VARIABLE, store.root)
    _materialize(delta, [source_key(name) for name in DAILY])
    _materialize(delta, [feature_key(name) for name in sets])
    with open_warehouse(delta.storage.warehouse) as connection:  # the daily sources live in the store only
        assert sorted(name for (name,) in connection.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'source'").fetchall()) == [
            "airports", "planes"]
    with open_warehouse(embedded.storage.warehouse) as connection:
        for name in sets:
            expected = sorted(row_digests(connection, f"features.{name}", by_day=True))
            assert len(expected) == 3
            memory = duckdb.connect()
            memory.register("delta", store.dataset(delta_feature_path(name)))
            assert sorted(row_digests(memory, "delta", by_day=True)) == expected, name
            expected_versions = dict(connection.execute(
                "SELECT partition_key, version FROM registry.partition_versions WHERE asset = ?",
                [f"features/{name}"]).fetchall())
            got = {row["partition_key"]: row["version"]
                   for row in store.table(delta_versions_path(name)).to_pyarrow_table().to_pylist()}
            assert got == expected_versions, name
    # a feature partition's private DuckDB refuses a warehouse holding a daily source the store holds too
    catalog = load_catalog(embedded.specs_dir, embedded.root)
    with pytest.raises(DeltaStoreError, match=r"holds source.flights as a table of its own"):
        stale_partitions(embedded.storage.warehouse, store, catalog, catalog.feature_sets["flight_schedule"],
                         dt.date(2013, 1, 1), dt.date(2013, 1, 3))


def test_reference_sources_in_delta_hold_the_embedded_rows_and_versions_and_reuse_them(make_project, tmp_path,
                                                                                      monkeypatch):
    monkeypatch.delenv(FEATURE_TABLES_VARIABLE, raising=False)
    embedded, delta = make_project(name="embedded"), make_project(name="delta")
    _materialize(embedded, [source_key(name) for name in REFERENCE])
    store = DeltaStore(root=str(tmp_path / "tables"))
    monkeypatch.setenv(FEATURE_TABLES_VARIABLE, store.root)
    result = _materialize(delta, [source_key(name) for name in REFERENCE])
    assert not delta.storage.warehouse.exists()  # the reference sources' step never opened the warehouse file
    for name in REFERENCE:
        expected = _embedded_rows(embedded, name)
        assert len(expected) > 1000
        memory = duckdb.connect()  # read as a reader's DuckDB reads it: the same types as the embedded table's
        memory.register("delta", store.dataset(delta_source_path(name)))
        got = _sorted(memory.sql("SELECT * FROM delta").df())
        assert dict(got.dtypes) == dict(expected.dtypes)
        assert got.equals(expected), name
        # the one partition (WHOLE) with the embedded version index's hash and components
        versions = _delta_versions(store, name)
        assert list(versions) == [""]
        assert _canonical(versions) == _canonical(_embedded_versions(embedded, name)), name
        # the whole table in one commit, then its version in one
        assert [commit["whole"] for commit in store.commits(delta_source_path(name))] == [True]
        assert len(store.commits(delta_source_versions_path(name))) == 1
    metadata = result.asset_materializations_for_node("source__planes")[0].metadata
    assert metadata["reused"].value == "no" and metadata["delta_table_version"].value == 0
    assert metadata[ROW_COUNT_METADATA].value == len(_embedded_rows(embedded, "planes"))

    # the warehouse resource's connections read them as source.<name>, their versions mirrored, for its life
    with Warehouse(database=str(delta.storage.warehouse)).get_connection() as connection:
        for name in REFERENCE:
            with open_warehouse(embedded.storage.warehouse) as embedded_connection:
                expected = row_digests(embedded_connection, f'source."{name}"')
            assert row_digests(connection, f'source."{name}"') == expected, name
        mirrored = {key: (version, components) for key, version, components in connection.execute(
            "SELECT partition_key, version, CAST(components AS VARCHAR) FROM registry.partition_versions "
            "WHERE asset = 'source/planes'").fetchall()}
        assert _canonical(mirrored) == _canonical(_embedded_versions(embedded, "planes"))
    # the online server's copy takes them from their Delta tables too, counted in its fingerprint
    copy, fingerprint = copy_warehouse(delta.storage.warehouse, load_catalog(delta.specs_dir, delta.root))
    try:
        for name in REFERENCE:
            with open_warehouse(embedded.storage.warehouse) as embedded_connection:
                expected = row_digests(embedded_connection, f'source."{name}"')
            assert row_digests(copy, f'source."{name}"') == expected, name
    finally:
        copy.close()
    assert fingerprint.delta_features
    _assert_no_source_left(delta)  # gone with the connection
    # a warehouse holding a reference source as a table of its own is refused rather than shadowed
    with pytest.raises(DeltaStoreError, match=r"holds source.airports as a table of its own"):
        with Warehouse(database=str(embedded.storage.warehouse)).get_connection():
            pass

    # the same file and spec again: reused, nothing read, no commit
    again = _materialize(delta, [source_key(name) for name in REFERENCE])
    assert again.asset_materializations_for_node("source__planes")[0].metadata["reused"].value.startswith("1 ")
    for name in REFERENCE:
        assert len(store.commits(delta_source_path(name))) == 1
        assert len(store.commits(delta_source_versions_path(name))) == 1


def _edit_source(project, name: str, edit) -> None:
    spec = project.specs_dir / "sources" / f"{name}.yaml"
    document = yaml.safe_load(spec.read_text(encoding="utf-8"))
    edit(document)
    spec.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")


def test_a_rejected_reference_load_commits_nothing_to_delta_and_a_new_spec_replaces_the_whole_table(
        make_project, tmp_path, monkeypatch):
    project = make_project()
    store = DeltaStore(root=str(tmp_path / "tables"))
    monkeypatch.setenv(FEATURE_TABLES_VARIABLE, store.root)
    _materialize(project, [source_key("planes")])
    before = (store.version(delta_source_path("planes")), store.version(delta_source_versions_path("planes")))
    versions = _delta_versions(store, "planes")

    def too_few(document):  # planes.csv has 3,322 rows
        document.setdefault("checks", {})["min_rows_per_day"] = 100000

    _edit_source(project, "planes", too_few)
    _edit_source(project, "airports", too_few)
    result = _materialize(project, [source_key("planes")], succeed=False)
    assert {evaluation.check_name: evaluation.passed
            for evaluation in result.get_asset_check_evaluations()}["row_count"] is False
    failure = next(event for event in result.all_events if event.is_step_failure)
    assert "source 'planes' rejected, nothing written: row_count: 3322 row(s)" in str(failure.step_failure_data.error)
    assert (store.version(delta_source_path("planes")), store.version(delta_source_versions_path("planes"))) == before
    assert _delta_versions(store, "planes") == versions
    # a rejected first load creates no table
    _materialize(project, [source_key("airports")], succeed=False)
    assert not store.exists(delta_source_path("airports")) and not store.exists(delta_source_versions_path("airports"))

    def without_engine(document):  # a column less: the whole table, its schema too, replaced in one commit
        document["checks"].pop("min_rows_per_day")
        del document["columns"]["engine"]

    _edit_source(project, "planes", without_engine)
    loaded = _materialize(project, [source_key("planes")])
    assert loaded.asset_materializations_for_node("source__planes")[0].metadata["delta_table_version"].value == 1
    table = store.dataset(delta_source_path("planes")).to_table()
    assert "engine" not in table.column_names and "engines" in table.column_names and table.num_rows == 3322
    assert store.version(delta_source_versions_path("planes")) == 1
    assert _delta_versions(store, "planes")[""][0] != versions[""][0]  # the rows changed: so did their version
    assert not project.storage.warehouse.exists()


def test_a_feature_set_joining_reference_sources_in_delta_equals_the_embedded_one_without_a_warehouse_file(
        make_project, tmp_path, monkeypatch):
    monkeypatch.delenv(FEATURE_TABLES_VARIABLE, raising=False)
    embedded, delta = make_project(name="embedded"), make_project(name="delta")
    name = "aircraft_and_destination"  # reads planes and airports, for the flights of each day
    _materialize(embedded, [source_key(source) for source in (*REFERENCE, *DAILY)])
    _materialize(embedded, [feature_key(name)])
    store = DeltaStore(root=str(tmp_path / "tables"))
    monkeypatch.setenv(FEATURE_TABLES_VARIABLE, store.root)
    _materialize(delta, [source_key(source) for source in (*REFERENCE, *DAILY)])
    result = _materialize(delta, [feature_key(name)])
    # every table the feature partitions read was a Delta table: no step opened, or needed, the warehouse file
    assert not delta.storage.warehouse.exists()
    assert result.asset_materializations_for_node(f"features__{name}")[0].metadata["delta_commits"].value == 3
    with open_warehouse(embedded.storage.warehouse) as connection:
        expected = sorted(row_digests(connection, f"features.{name}", by_day=True))
        expected_versions = dict(connection.execute(
            "SELECT partition_key, version FROM registry.partition_versions WHERE asset = ?",
            [f"features/{name}"]).fetchall())
    assert len(expected) == 3 and all(count > 50 for _, count, _ in expected)
    memory = duckdb.connect()
    memory.register("delta", store.dataset(delta_feature_path(name)))
    assert sorted(row_digests(memory, "delta", by_day=True)) == expected
    assert {row["partition_key"]: row["version"]
            for row in store.table(delta_versions_path(name)).to_pyarrow_table().to_pylist()} == expected_versions


def test_a_feature_partition_needing_a_missing_warehouse_file_names_what_it_reads_from_it(make_project, tmp_path,
                                                                                        monkeypatch):
    import shutil

    from ml_platform_tests.helpers import SPECS

    project = make_project()
    shutil.copytree(SPECS / "entities", project.specs_dir / "entities")
    shutil.copyfile(SPECS / "route_weeks" / "route_history.yaml", project.specs_dir / "features" / "route_history.yaml")
    store = DeltaStore(root=str(tmp_path / "tables"))
    monkeypatch.setenv(FEATURE_TABLES_VARIABLE, store.root)
    _materialize(project, [source_key("flights")], FIRST, FIRST)  # its source in Delta; its population nowhere
    catalog = load_catalog(project.specs_dir, project.root)
    warehouse = project.storage.warehouse
    with pytest.raises(FileNotFoundError) as raised:
        stale_partitions(warehouse, store, catalog, catalog.feature_sets["route_history"], dt.date(2013, 2, 4),
                         dt.date(2013, 2, 4))
    assert str(raised.value) == (
        f"feature set 'route_history' reads from the warehouse file {warehouse.resolve()}, which does not exist: "
        f"population.route_weeks (no Delta table at {store.root}/populations/route_weeks: materialize entity "
        f"'route_weeks' first)")
    assert not warehouse.exists()
