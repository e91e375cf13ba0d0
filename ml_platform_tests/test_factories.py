"""Factory layer: the graph generated from specs — keys, groups, partitions, dependencies, checks and jobs."""

from __future__ import annotations

import dagster as dg
import pytest

from ml_platform.build import build_definitions
from ml_platform.names import scoring_job_name, training_job_name
from ml_platform.features.library import load_catalog

from ml_platform_tests.helpers import january_model

STAGES = ["snapshot", "model", "evaluation", "deployment", "predictions"]


@pytest.fixture
def two_model_project(make_project):
    second = january_model(name="flight_delay_small", features=["departure_hour", "carrier_code", "eve_temp_f"])
    return make_project({"flight_delay": january_model(), "flight_delay_small": second})


def _graph(project):
    catalog = load_catalog(project.specs_dir, project.root)
    definitions = build_definitions(catalog, project.storage)
    return catalog, definitions, definitions.resolve_asset_graph()


def test_every_model_gets_the_seven_stages_in_its_own_group(two_model_project):
    catalog, _, graph = _graph(two_model_project)
    for model in ("flight_delay", "flight_delay_small"):
        for stage in STAGES:
            node = graph.get(dg.AssetKey([model, stage]))
            assert node.group_name == model
            assert node.owners == ["team:flight-ops-ds"]
    assert graph.get(dg.AssetKey(["source", "flights"])).group_name == "sources"
    assert graph.get(dg.AssetKey(["features", "flight_schedule"])).group_name == "features"


def test_lineage_runs_from_sources_through_features_to_predictions(two_model_project):
    _, _, graph = _graph(two_model_project)
    parents = lambda *key: {"/".join(parent.path) for parent in graph.get(dg.AssetKey(list(key))).parent_keys}
    assert parents("features", "origin_weather_eve") == {"source/flights", "source/weather"}
    assert parents("features", "aircraft_and_destination") == {"source/flights", "source/planes", "source/airports"}
    assert parents("flight_delay", "snapshot") == {
        "source/flights", "features/flight_schedule", "features/origin_weather_eve",
        "features/aircraft_and_destination", "features/disruption_history"}
    assert parents("flight_delay", "model") == {"flight_delay/snapshot"}
    assert parents("flight_delay", "evaluation") == {"flight_delay/model", "flight_delay/snapshot"}
    assert parents("flight_delay", "deployment") == {"flight_delay/evaluation"}
    assert "flight_delay/deployment" in parents("flight_delay", "predictions")
    # the smaller model reads only the feature sets that hold its three features
    assert parents("flight_delay_small", "snapshot") == {
        "source/flights", "features/flight_schedule", "features/origin_weather_eve"}


def test_models_sharing_a_feature_share_one_feature_asset(two_model_project):
    _, _, graph = _graph(two_model_project)
    feature_assets = [key for key in graph.get_all_asset_keys() if key.path[0] == "features"]
    assert len(feature_assets) == 4
    children = {"/".join(child.path) for child in graph.get(dg.AssetKey(["features", "flight_schedule"])).child_keys}
    assert {"flight_delay/snapshot", "flight_delay_small/snapshot"} <= children


def test_partitions_follow_the_specs(two_model_project):
    _, _, graph = _graph(two_model_project)
    flights = graph.get(dg.AssetKey(["source", "flights"])).partitions_def
    assert isinstance(flights, dg.DailyPartitionsDefinition)
    assert flights.timezone == "America/New_York"
    keys = flights.get_partition_keys()
    assert keys[0] == "2013-01-01" and keys[-1] == "2013-12-31" and len(keys) == 365
    assert graph.get(dg.AssetKey(["source", "planes"])).partitions_def is None
    assert graph.get(dg.AssetKey(["features", "disruption_history"])).partitions_def == flights
    assert graph.get(dg.AssetKey(["flight_delay", "predictions"])).partitions_def == flights
    runs = {graph.get(dg.AssetKey(["flight_delay", stage])).partitions_def for stage in STAGES[:4]}
    assert runs == {dg.DynamicPartitionsDefinition(name="flight_delay__training_runs")}


def test_gate_checks_are_blocking_and_sit_on_the_evaluation(two_model_project):
    _, definitions, graph = _graph(two_model_project)
    checks = {key.name: graph.get(key) for key in graph.asset_check_keys
              if key.asset_key == dg.AssetKey(["flight_delay", "evaluation"])}
    assert set(checks) == {"money_floor", "roc_auc_floor", "beats_champion", "no_leakage", "predictions_sane"}
    assert all(check.blocking for check in checks.values())


def test_descriptions_and_metadata_come_from_the_spec(two_model_project):
    catalog, _, graph = _graph(two_model_project)
    model = catalog.models["flight_delay"]
    source = graph.get(dg.AssetKey(["source", "flights"]))
    assert source.description.startswith("Every scheduled departure from New York")
    assert source.metadata["trust"] == "internal"
    assert "dep_delay" in source.metadata["after_event_columns"]
    snapshot = graph.get(dg.AssetKey(["flight_delay", "snapshot"]))
    assert snapshot.metadata["spec_hash"] == catalog.spec_hash(model)
    evaluation = graph.get(dg.AssetKey(["flight_delay", "evaluation"]))
    assert "USD" in evaluation.description and "2013-01-26 to 2013-01-31" in evaluation.description


def test_jobs_group_assets_that_share_partitions(two_model_project):
    _, definitions, _ = _graph(two_model_project)
    names = {job.name for job in definitions.jobs}
    assert {"reference_sources", "daily_data", training_job_name("flight_delay"),
            scoring_job_name("flight_delay")} <= names
    training = definitions.resolve_job_def(training_job_name("flight_delay"))
    assert {"/".join(key.path) for key in training.asset_layer.selected_asset_keys} == {
        "flight_delay/snapshot", "flight_delay/model", "flight_delay/evaluation", "flight_delay/deployment"}


def test_spec_change_changes_code_versions_of_that_model_only(make_project, tmp_path):
    before = make_project({"flight_delay": january_model()}, name="before")
    tuned = january_model()
    tuned["algorithm"]["params"]["num_leaves"] = 15
    after = make_project({"flight_delay": tuned}, name="after")
    _, _, graph_before = _graph(before)
    _, _, graph_after = _graph(after)
    version = lambda graph, *key: graph.get(dg.AssetKey(list(key))).code_version
    assert version(graph_before, "flight_delay", "model") != version(graph_after, "flight_delay", "model")
    assert version(graph_before, "features", "flight_schedule") == version(graph_after, "features", "flight_schedule")


def test_definitions_load_without_io_beyond_reading_specs(make_project, tmp_path):
    project = make_project()
    _graph(project)
    assert not project.data_dir.exists(), "building definitions must not create the warehouse"
