"""A feature set's SQL only reads: a statement that writes is refused at run time too, before it touches anything."""

from __future__ import annotations

import datetime as dt

import pytest

from ml_platform.features.compute import FeatureComputationError, compute_feature_set
from ml_platform.features.library import load_catalog
from ml_platform.records.gate import Gate
from ml_platform.records.registry import PromotionRecord
from ml_platform.storage import registry
from ml_platform.storage.warehouse import open_warehouse


def test_feature_sql_that_writes_is_refused_at_run_time_too(make_project, tmp_path):
    project = make_project()
    catalog = load_catalog(project.specs_dir, project.root)
    sneaky = catalog.feature_sets["flight_schedule"].model_copy(
        update={"sql": "DELETE FROM registry.promotions; SELECT flight_id FROM entity"})
    with open_warehouse(tmp_path / "warehouse.duckdb") as connection:
        registry.promotions.add(connection, PromotionRecord(
            promotion_id=1, model="m", model_version="m-1", training_run="r", promoted_at=registry.now(),
            dagster_run_id="x", reason="test", gate=Gate()))
        with pytest.raises(FeatureComputationError, match="must be exactly one SELECT statement, found 2"):
            compute_feature_set(connection, catalog, sneaky, dt.date(2013, 1, 1), dt.date(2013, 1, 1))
        assert connection.execute("SELECT count(*) FROM registry.promotions").fetchall() == [(1,)]
