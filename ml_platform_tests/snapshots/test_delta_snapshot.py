"""A training snapshot built from Delta feature tables (the cluster configuration's, here in a local folder) is the
same snapshot, byte for byte, as the one built from the embedded warehouse's feature tables."""

from __future__ import annotations

import warnings

import dagster as dg
import pytest

from ml_platform.build import build_assets
from ml_platform.features.library import load_catalog
from ml_platform.names import FEATURE_TABLES_VARIABLE, feature_key, source_key, stage_key, training_runs_name
from ml_platform.partitions import training_run_key
from ml_platform.storage.resources import build_resources

from ml_platform_tests.helpers import asset_runner

# Delta Lake tables come with the cluster extra (`pip install -e '.[cluster]'`, which .ci/run installs); the README's
# test command installs only `.[dev]`, so without the extra these tests are skipped, saying why
pytest.importorskip("deltalake",
                    reason="the cluster extra is not installed (deltalake missing: pip install -e '.[cluster]')")

pytestmark = pytest.mark.slow  # a month of four feature sets, twice

FEATURE_SETS = ("flight_schedule", "disruption_history", "origin_weather_eve", "aircraft_and_destination")


def _snapshot(project) -> dict:
    catalog = load_catalog(project.specs_dir, project.root)
    model = catalog.models["flight_delay"]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=dg.BetaWarning)
        assets = {asset.key: asset for asset in build_assets(catalog)}
    instance = dg.DagsterInstance.ephemeral()
    run = asset_runner(assets, build_resources(project.storage), instance)

    run([source_key("planes"), source_key("airports")])
    run([source_key("flights"), source_key("weather")], "2013-01-01", "2013-01-31")
    run([feature_key(name) for name in FEATURE_SETS], "2013-01-01", "2013-01-31")
    training_run = training_run_key(model, catalog.spec_hash(model))
    instance.add_dynamic_partitions(training_runs_name(model.name), [training_run])
    result = run([stage_key("snapshot", model.name)], partition=training_run)
    metadata = result.asset_materializations_for_node("flight_delay__snapshot")[0].metadata
    return {key: metadata[key].value for key in ("snapshot_id", "sha256", "rows_by_split", "manifest")}


def test_a_snapshot_from_delta_feature_tables_equals_the_embedded_one(make_project, tmp_path, monkeypatch):
    monkeypatch.delenv(FEATURE_TABLES_VARIABLE, raising=False)
    embedded = _snapshot(make_project(name="embedded"))
    monkeypatch.setenv(FEATURE_TABLES_VARIABLE, str(tmp_path / "tables"))
    delta = _snapshot(make_project(name="delta"))
    assert sum(embedded["rows_by_split"].values()) > 10_000
    assert delta == embedded
