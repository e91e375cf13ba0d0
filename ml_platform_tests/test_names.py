"""ml_platform.names: every contract name, pinned to the exact text.

Two layers: the literal strings for a model "m" (the contract itself, which the names built by hand before names.py
were checked against while the call sites moved to it); and the names the built Dagster graph and the warehouse
actually carry.
"""

from __future__ import annotations

import ast
import datetime as dt
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from ml_platform import names


# --- the bottom floor ---------------------------------------------------------------------------------------------

def test_names_imports_only_the_standard_library_and_dagster():
    tree = ast.parse(Path(names.__file__).read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module}
    assert imported <= {"__future__", "datetime", "re", "dagster"}


def test_every_public_function_has_a_one_line_docstring():
    functions = [value for name, value in vars(names).items()
                 if callable(value) and not name.startswith("_") and getattr(value, "__module__", "") == names.__name__]
    assert functions
    for function in functions:
        assert function.__doc__ and "\n" not in function.__doc__.strip(), function.__name__


# --- the contract: literal strings for model "m" ------------------------------------------------------------------

def test_literal_names_for_model_m():
    assert names.MODEL_STAGES == ("snapshot", "model", "evaluation", "deployment", "predictions", "monitoring",
                                  "outcomes")
    assert names.TRAINING_STAGES == ("snapshot", "model", "evaluation", "deployment")
    assert [names.stage_key(stage, "m").path for stage in names.MODEL_STAGES] == [
        ["m", "snapshot"], ["m", "model"], ["m", "evaluation"], ["m", "deployment"], ["m", "predictions"],
        ["m", "monitoring"], ["m", "outcomes"]]
    assert [names.stage_of(names.stage_key(stage, "m")) for stage in names.MODEL_STAGES] == list(names.MODEL_STAGES)
    assert names.stage_of(names.source_key("model")) is None and names.stage_of(names.feature_key("snapshot")) is None
    assert names.stage_of(dg.AssetKey(["m", "weights"])) is None and names.stage_of(dg.AssetKey("model")) is None
    assert names.RESERVED_KEY_PREFIXES == ("source", "features", "entity")
    assert names.source_key("flights") == dg.AssetKey(["source", "flights"])
    assert names.feature_key("flight_schedule") == dg.AssetKey(["features", "flight_schedule"])
    assert names.entity_key("busy_routes") == dg.AssetKey(["entity", "busy_routes"])
    assert (names.sources_job_name("m"), names.sources_schedule_name("m")) == ("m__sources", "m__daily_sources")
    assert names.population_asset("busy_routes") == "entity/busy_routes"
    assert names.ENTITIES_GROUP == "entities"
    assert names.population_table("busy_routes") == 'population."busy_routes"'
    assert (names.BOUNDS_VIEW, names.ENTITY_RESERVED_COLUMNS) == ("bounds", ("partition_start", "partition_date"))
    assert (names.SOURCES_GROUP, names.FEATURES_GROUP, names.model_group("m")) == ("sources", "features", "m")
    assert names.source_asset("flights") == "source/flights"
    assert names.feature_asset("flight_schedule") == "features/flight_schedule"

    assert (names.REFERENCE_JOB, names.DAILY_JOB) == ("reference_sources", "daily_data")
    assert names.training_job_name("m") == "m__training"
    assert names.scoring_job_name("m") == "m__scoring"
    assert names.daily_job_name("m") == "m__daily"
    assert names.outcomes_job_name("m") == "m__judging"
    assert names.scoring_schedule_name("m") == "m__daily_scoring"
    assert names.outcomes_schedule_name("m") == "m__outcomes"
    assert names.retraining_sensor_name("m") == "m__retraining"
    assert names.training_runs_name("m") == "m__training_runs"
    assert names.scoring_run_key("m", dt.date(2013, 1, 5)) == "m:2013-01-05"
    assert names.outcomes_run_key("m", dt.date(2013, 1, 5)) == "m:outcomes:2013-01-05"

    assert (names.TICK_TAG, names.REASON_TAG, names.CHAIN_TAG) == (
        "ml_platform/tick", "ml_platform/reason", "ml_platform/chain")
    assert (names.PARTITION_TAG, names.TRUST_TAG) == ("dagster/partition", "trust")
    assert names.PROCESS_TAG == "ml_platform/process"
    assert (names.TABLE_NAME_METADATA, names.ROW_COUNT_METADATA, names.COLUMN_SCHEMA_METADATA) == (
        "dagster/table_name", "dagster/row_count", "dagster/column_schema")
    assert (names.LATEST_VIEW_METADATA, names.SHADOW_TABLE_METADATA) == ("latest_view", "shadow_table")

    assert names.SCHEMAS == ("source", "features", "registry", "predictions", "history", "monitoring", "population")
    assert names.source_table("flights") == 'source."flights"'
    assert names.feature_table("flight_schedule") == 'features."flight_schedule"'
    assert names.history_view("flights") == 'history."flights"'
    assert names.predictions_table("m") == 'predictions."m"'
    assert names.latest_view("m") == 'predictions."m__latest"'
    assert names.shadow_table("m") == 'predictions."m__shadow"'
    assert names.drift_table("m") == 'monitoring."m__drift"'
    assert names.outcomes_table("m") == 'monitoring."m__outcomes"'
    assert names.monitoring_table("m", "drift") == 'monitoring."m__drift"'
    assert (names.latest_view_name("m"), names.shadow_table_name("m")) == ("m__latest", "m__shadow")
    assert (names.monitoring_table_name("m", "drift"), names.monitoring_table_name("m", "outcomes")) == (
        "m__drift", "m__outcomes")
    assert names.table_label("predictions", "m__latest") == "predictions.m__latest"
    assert names.table_label("monitoring", "m__drift") == "monitoring.m__drift"
    assert (names.SLICE_COLUMN, names.SLICE_PREFIX, names.slice_column("carrier")) == (
        "slice", "slice__", "slice__carrier")
    assert (names.slice_plot_name("carrier"), names.slice_plot_name("")) == ("money_by_slice__carrier",
                                                                              "money_by_slice")
    assert names.REGISTRY_TABLES == ("specs", "snapshots", "models", "evaluations", "promotions",
                                     "partition_versions", "task_evaluations")
    assert [names.registry_table(name) for name in names.REGISTRY_TABLES] == [
        "registry.specs", "registry.snapshots", "registry.models", "registry.evaluations", "registry.promotions",
        "registry.partition_versions", "registry.task_evaluations"]


def test_names_refuse_what_is_not_a_name():
    for bad in ("M", "1m", "m-x", 'm"; DROP TABLE x; --', "", "a" * 64):
        with pytest.raises(ValueError):
            names.quote(bad)
        with pytest.raises(ValueError):
            names.latest_view(bad)
    assert names.quote("a" * 63) == f'"{"a" * 63}"'
    with pytest.raises(ValueError, match="unknown warehouse schema"):
        names.table("main", "m")
    with pytest.raises(ValueError, match="unknown warehouse schema"):
        names.table_label("main", "m")
    with pytest.raises(ValueError, match="not a valid identifier"):
        names.table_label("predictions", "M")
    with pytest.raises(ValueError, match="unknown monitoring table kind"):
        names.monitoring_table("m", "latency")
    with pytest.raises(ValueError, match="unknown registry table"):
        names.registry_table("runs")
    with pytest.raises(ValueError, match="unknown model stage"):
        names.stage_key("scoring", "m")


@pytest.mark.parametrize("name", ['x"; DROP TABLE registry.promotions; --', "Flights", "a b", ""])
def test_identifiers_are_validated_before_they_reach_sql(name):
    with pytest.raises(ValueError, match="not a valid identifier"):
        names.quote(name)
    with pytest.raises(ValueError):
        names.table("source", name)


def test_the_warehouse_creates_every_schema_names_lists(tmp_path):
    from ml_platform.storage.warehouse import open_warehouse

    with open_warehouse(tmp_path / "w.duckdb") as connection:
        created = {row[0] for row in connection.execute("SELECT schema_name FROM information_schema.schemata").fetchall()}
    assert set(names.SCHEMAS) <= created and "monitoring" in names.SCHEMAS


# --- the warehouse and the names --------------------------------------------------------------------------------

def test_registry_tables_are_the_ones_the_warehouse_creates(tmp_path):
    from ml_platform.storage import warehouse

    with warehouse.open_warehouse(tmp_path / "w.duckdb") as connection:
        created = {row[0] for row in connection.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'registry'").fetchall()}
        for name in names.REGISTRY_TABLES:
            connection.execute(f"SELECT count(*) FROM {names.registry_table(name)}")
    assert created == set(names.REGISTRY_TABLES)


def test_every_table_name_is_usable_sql():
    connection = duckdb.connect()
    for schema in names.SCHEMAS:
        connection.execute(f"CREATE SCHEMA {schema}")
    for sql_name in (names.source_table("flights"), names.feature_table("flight_schedule"),
                     names.predictions_table("m"), names.shadow_table("m"), names.drift_table("m"),
                     names.outcomes_table("m")):
        connection.execute(f"CREATE TABLE {sql_name} (x INTEGER)")
    connection.execute(f"CREATE VIEW {names.latest_view('m')} AS SELECT * FROM {names.predictions_table('m')}")
    connection.execute(f"CREATE VIEW {names.history_view('flights')} AS SELECT * FROM {names.source_table('flights')}")
    listed = {f"{schema}.{name}" for schema, name in connection.execute(
        "SELECT table_schema, table_name FROM information_schema.tables").fetchall()}
    assert listed == {"source.flights", "features.flight_schedule", "predictions.m", "predictions.m__shadow",
                      "monitoring.m__drift", "monitoring.m__outcomes", "predictions.m__latest", "history.flights"}


# --- the names the built Dagster graph carries ---------------------------------------------------------------------

@pytest.fixture
def built(make_project):
    from ml_platform.build import build_definitions
    from ml_platform.features.library import load_catalog

    project = make_project()
    catalog = load_catalog(project.specs_dir, project.root)
    definitions = build_definitions(catalog, project.storage)
    return catalog, definitions, definitions.resolve_asset_graph()


def test_the_repository_loads_as_the_ui_and_daemon_load_it(built):
    # a job named like an asset's op (`<model>__outcomes` for the key `[model, "outcomes"]`) fails only here
    _, definitions, _ = built
    repository = definitions.get_repository_def()
    assert repository.get_all_jobs()
    dg.Definitions.validate_loadable(definitions)


def test_the_graph_carries_the_names(built):
    catalog, definitions, graph = built
    models = list(catalog.models)
    assert models
    jobs = {job.name for job in definitions.jobs}
    expected = {names.REFERENCE_JOB, names.DAILY_JOB}
    for model in models:
        expected |= {names.training_job_name(model), names.scoring_job_name(model), names.daily_job_name(model),
                     names.outcomes_job_name(model)}
    assert jobs == expected
    schedules = {schedule.name: schedule.job_name for schedule in definitions.schedules}
    sensors = {sensor.name: sensor.job_name for sensor in definitions.sensors}
    for model in models:
        assert schedules[names.scoring_schedule_name(model)] == names.daily_job_name(model)
        assert schedules[names.outcomes_schedule_name(model)] == names.outcomes_job_name(model)
        assert sensors[names.retraining_sensor_name(model)] == names.training_job_name(model)
    assert len(schedules) == 2 * len(models) and len(sensors) == len(models)

    keys = set(graph.get_all_asset_keys())
    expected_keys = {names.source_key(name) for name in catalog.sources}
    expected_keys |= {names.feature_key(name) for name in catalog.feature_sets}
    expected_keys |= {names.stage_key(stage, model) for model in models for stage in names.MODEL_STAGES}
    assert keys == expected_keys

    for name in catalog.sources:
        node = graph.get(names.source_key(name))
        assert node.group_name == names.SOURCES_GROUP
        assert names.TRUST_TAG in node.tags
        assert node.metadata[names.TABLE_NAME_METADATA] == names.table_label("source", name)
        assert names.COLUMN_SCHEMA_METADATA in node.metadata
    for name in catalog.feature_sets:
        node = graph.get(names.feature_key(name))
        assert node.group_name == names.FEATURES_GROUP
        assert node.metadata[names.TABLE_NAME_METADATA] == names.table_label("features", name)
    for model in models:
        for stage in names.MODEL_STAGES:
            assert graph.get(names.stage_key(stage, model)).group_name == names.model_group(model)
        for stage in names.TRAINING_STAGES:
            partitions = graph.get(names.stage_key(stage, model)).partitions_def
            assert isinstance(partitions, dg.DynamicPartitionsDefinition)
            assert partitions.name == names.training_runs_name(model)
        predictions = graph.get(names.stage_key("predictions", model)).metadata
        assert predictions[names.TABLE_NAME_METADATA] == names.table_label("predictions", model)
        assert predictions[names.LATEST_VIEW_METADATA] == names.table_label("predictions",
                                                                            names.latest_view_name(model))
        assert predictions[names.SHADOW_TABLE_METADATA] == names.table_label("predictions",
                                                                            names.shadow_table_name(model))
        assert graph.get(names.stage_key("monitoring", model)).metadata[names.TABLE_NAME_METADATA] == \
            names.table_label("monitoring", names.monitoring_table_name(model, "drift"))
        assert graph.get(names.stage_key("outcomes", model)).metadata[names.TABLE_NAME_METADATA] == \
            names.table_label("monitoring", names.monitoring_table_name(model, "outcomes"))
