"""The snapshot's blocking point-in-time proof: a stored feature value that differs from its value at the row's
prediction time stops the snapshot (hence training and deployment), naming it; and through Dagster, a leaking
feature in a model fails its feature asset's blocking check and nothing is snapshotted, trained or promoted."""

from __future__ import annotations

import datetime as dt

import pytest

from ml_platform.chain.model_chain import DemoError, run_chain
from ml_platform.features.library import load_catalog
from ml_platform.features.refresh import refresh_feature_set
from ml_platform.partitions import training_run_key
from ml_platform.snapshots.proof import SnapshotProofError, prove_training_run
from ml_platform.storage import registry
from ml_platform.storage.warehouse import open_warehouse
from ml_platform_tests.features.test_point_in_time import FLIGHT_LEAKS, feature_set, load_sources
from ml_platform_tests.helpers import january_model, write_yaml


def test_a_tampered_feature_value_stops_the_snapshot(make_project, tmp_path):
    project = make_project({"flight_delay": january_model(features=["departure_hour", "carrier_code"])})
    catalog = load_catalog(project.specs_dir, project.root)
    model = catalog.models["flight_delay"]
    run = training_run_key(model, catalog.spec_hash(model))
    schedule = catalog.feature_sets["flight_schedule"]
    with open_warehouse(tmp_path / "warehouse.duckdb") as connection:
        load_sources(connection, catalog, project.root, dt.date(2013, 1, 1), dt.date(2013, 1, 31))
        refresh_feature_set(connection, catalog, schedule, dt.date(2013, 1, 1), dt.date(2013, 1, 31))
        proofs = prove_training_run(connection, catalog, model, run)
        assert [proof.passed for proof in proofs] == [True] and proofs[0].rows > 3000
        sampled, _ = proofs[0].cuts[0]
        connection.execute(f"UPDATE features.flight_schedule SET departure_hour = departure_hour + 0.5 "
                           f"WHERE flight_id = (SELECT min(flight_id) FROM features.flight_schedule "
                           f"WHERE partition_date = DATE '{sampled}')")
        with pytest.raises(SnapshotProofError) as raised:
            prove_training_run(connection, catalog, model, run)
        message = str(raised.value)
        assert message.startswith("snapshot of 'flight_delay' not written: point in time violated: 1 row(s)")
        assert f"feature set 'flight_schedule', feature 'departure_hour', key {sampled:%Y-%m-%d}-" in message
        assert "changed by no single source alone" in message  # no source explains a tampered value
        assert registry.snapshots.get(connection, "flight_delay", run) is None


@pytest.mark.slow
def test_a_leaking_feature_fails_its_blocking_check_and_nothing_is_deployed(make_project, dagster_home):
    sql, features, reads, _ = FLIGHT_LEAKS["same_day_outcomes"]
    model = january_model(features=["departure_hour", *features])
    project = make_project({"flight_delay": model})
    write_yaml(project.specs_dir / "features" / "same_day_outcomes.yaml",
               feature_set("same_day_outcomes", sql, features, reads))
    with pytest.raises(DemoError) as raised:
        run_chain(project, "flight_delay", score_days=0, say=lambda line: None)
    reasons = str(raised.value)
    assert "point in time violated" in reasons and "feature set 'same_day_outcomes', feature 'day_delay'" in reasons
    with open_warehouse(project.storage.warehouse) as connection:
        assert registry.promotions.champion(connection, "flight_delay") is None
        assert connection.execute("SELECT count(*) FROM registry.snapshots").fetchall() == [(0,)]
