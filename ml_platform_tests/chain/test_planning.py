"""The chain's plan: which runs and assets have work, decided from stored versions."""

from __future__ import annotations

import dagster as dg

from ml_platform.chain.planning import Plan
from ml_platform.features.library import load_catalog

from ml_platform_tests.helpers import route_load_feature_set, write_yaml


def test_a_stale_feature_set_runs_alone_with_the_sets_that_use_it(make_project):
    project = make_project()
    write_yaml(project.specs_dir / "features" / "route_load.yaml", route_load_feature_set())
    catalog = load_catalog(project.specs_dir, project.root)
    assert Plan({"features/flight_schedule": 3}).assets_to_run(catalog) == [
        dg.AssetKey(["features", "flight_schedule"]), dg.AssetKey(["features", "route_load"])]
    assert Plan({"features/origin_weather_eve": 3}).assets_to_run(catalog) == [
        dg.AssetKey(["features", "origin_weather_eve"])]
    # a stale source may change every feature that reads it: the whole job runs
    assert Plan({"source/flights": 1}).assets_to_run(catalog) is None
    assert Plan({}).up_to_date and not Plan({"source/flights": 1}).up_to_date
