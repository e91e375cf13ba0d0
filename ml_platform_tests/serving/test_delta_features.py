"""A server in the cluster configuration (ML_PLATFORM_FEATURE_TABLES names Delta feature tables, here in a local
folder): its copy reads the feature partitions from the Delta tables, so precomputed days are served as
precomputed, equal to the batch scores (==), and a committed Delta partition alone makes it take a new copy."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from ml_platform import names
from ml_platform.names import FEATURE_TABLES_VARIABLE, daily_job_name, delta_feature_path
from ml_platform.serving.mirror import read_fingerprint
from ml_platform.storage.delta_tables import delta_store_from_environment
from ml_platform.storage.warehouse import open_warehouse
from ml_platform_tests.evaluation.january import MODEL, Runs, january_project
from ml_platform_tests.serving.server import serving

pytest.importorskip("deltalake",
                    reason="the cluster extra is not installed (deltalake missing: pip install -e '.[cluster]')")

# a month of Delta feature partitions, a training and a scoring run, a real server: the full suite only
pytestmark = pytest.mark.slow

FEBRUARY_1 = dt.date(2013, 2, 1)


def test_a_server_in_the_cluster_configuration_serves_the_delta_feature_partitions(tmp_path, dagster_home,
                                                                                    monkeypatch):
    # the January warehouse every test copies is built (once per process) in the embedded configuration
    project = january_project(tmp_path / "project")
    monkeypatch.setenv(FEATURE_TABLES_VARIABLE, str(tmp_path / "tables"))
    with open_warehouse(project.storage.warehouse) as connection:  # the copied January features: embedded ones
        for (name,) in connection.execute("SELECT table_name FROM information_schema.tables WHERE "
                                          "table_schema = 'features'").fetchall():
            connection.execute(f"DROP TABLE {names.feature_table(name)}")
    runs = Runs(project)
    chain = runs.chain()
    features = [names.feature_key(fs.name) for fs in chain.catalog.feature_sets_of(chain.catalog.models[MODEL])]
    daily = chain.run(daily_job_name(MODEL), "features", date_range=(dt.date(2013, 1, 1), FEBRUARY_1),
                      assets=features)
    assert daily.success, daily.failures
    trained = runs.train()
    assert trained.champion is not None, trained.outcome.failures
    assert runs.score(FEBRUARY_1, FEBRUARY_1).success
    store = delta_store_from_environment()
    sets = store.table_names("features")
    assert {key.path[-1] for key in features} <= set(sets)
    assert runs.query("SELECT count(*) FROM information_schema.tables WHERE table_schema IN ('features', "
                      "'predictions') AND table_type = 'BASE TABLE'") == [(0,)]  # only the Delta tables' views
    stored = dict(runs.query(f"SELECT flight_id, score FROM {names.predictions_table(MODEL)}"))
    assert len(stored) > 500

    with serving(project, poll_seconds=3600) as (client, state):
        status, answer = client.predict(MODEL, {"keys": [{"flight_id": key} for key in sorted(stored)]})
        assert status == 200, answer
        before = read_fingerprint(project.storage.warehouse)
        # one partition committed again with its own rows: a new Delta version, the warehouse file unchanged
        path = delta_feature_path(sets[0])
        day = store.dataset(path).to_table()
        day = day.filter(pc.equal(pc.cast(day["partition_date"], pa.date32()), pa.scalar(FEBRUARY_1)))
        store.replace_days(path, day, FEBRUARY_1, FEBRUARY_1, "partition_date", {"test": "again"})
        after = read_fingerprint(project.storage.warehouse)
        swapped = state.refresh()

    assert all(item["features_served"] == "precomputed" for item in answer["predictions"])
    assert {item["keys"]["flight_id"]: item["score"] for item in answer["predictions"]} == stored
    assert before.delta_features and after.delta_features != before.delta_features
    assert (after.promotions, after.versions) == (before.promotions, before.versions)
    assert swapped and state.reloads == 1
