"""The whole chain of one model (sources, features, snapshot, training, evaluation, gate, deployment, scoring,
monitoring) with Delta feature, source, prediction and monitoring tables (the cluster configuration's, here in a local
folder) and its artifacts shared through an object store (moto's server on 127.0.0.1) gives the embedded chain's
model, predictions, latest predictions, versions and monitoring, and `explain` finds its predictions."""

from __future__ import annotations

import pytest

from ml_platform.chain.model_chain import run_chain
from ml_platform.names import (ARTIFACTS_VARIABLE, FEATURE_TABLES_VARIABLE, OBJECT_STORE_ENDPOINT_VARIABLE,
                               delta_feature_path, delta_source_path, delta_source_versions_path)
from ml_platform.provenance.explain import explain
from ml_platform.provenance.records import open_registry
from ml_platform.storage.artifacts import ArtifactStore
from ml_platform.storage.delta_tables import MONITORING, PREDICTIONS as PREDICTION_TABLES, DeltaStore
from ml_platform.storage.resources import Warehouse
from ml_platform.storage.warehouse import open_warehouse

# Delta Lake tables come with the cluster extra (`pip install -e '.[cluster]'`, which .ci/run installs); the README's
# test command installs only `.[dev]`, so without the extra these tests are skipped, saying why
pytest.importorskip("deltalake",
                    reason="the cluster extra is not installed (deltalake missing: pip install -e '.[cluster]')")

moto_server = pytest.importorskip("moto.server", reason="the cluster extra is not installed (moto missing)")
import boto3  # noqa: E402  (installed with moto)

pytestmark = pytest.mark.slow  # two chains of the January model

PREDICTIONS = "flight_id, partition_date, score, flagged, threshold, model_version, snapshot_id, training_run"


def _outcome(project) -> dict:
    """What the chain left, read as the assets read it (with the Delta store named: through its views)."""
    with Warehouse(database=str(project.storage.warehouse)).get_connection() as connection:
        return {
            "models": connection.execute("SELECT model_version, sha256 FROM registry.models").fetchall(),
            "snapshots": connection.execute("SELECT snapshot_id, sha256 FROM registry.snapshots").fetchall(),
            "predictions": connection.execute(
                f"SELECT count(*), bit_xor(hash(kept)) FROM (SELECT {PREDICTIONS} FROM predictions.flight_delay) "
                f"AS kept").fetchall(),
            "latest": connection.execute(
                f"SELECT count(*), bit_xor(hash(kept)) FROM (SELECT {PREDICTIONS}, inputs FROM "
                f'predictions."flight_delay__latest") AS kept').fetchall(),
            "prediction_versions": sorted(connection.execute(
                "SELECT asset, partition_key, version FROM registry.partition_versions WHERE "
                "asset LIKE 'predictions/%' OR asset LIKE 'outcomes/%'").fetchall()),
            "drift": sorted(connection.execute(
                'SELECT day, model_version, feature, psi, rows, scope FROM monitoring."flight_delay__drift"'
            ).fetchall()),
            "outcomes": sorted(connection.execute(
                'SELECT * EXCLUDE (computed_at, run_id) FROM monitoring."flight_delay__outcomes"').fetchall(),
                key=repr),
        }


def _file_tables(project) -> dict:
    """The tables the warehouse file itself holds, per schema."""
    with open_warehouse(project.storage.warehouse) as connection:
        found: dict[str, list[str]] = {}
        for schema, name in connection.execute("SELECT table_schema, table_name FROM information_schema.tables "
                                               "ORDER BY ALL").fetchall():
            found.setdefault(schema, []).append(name)
        return found


@pytest.fixture
def shared_artifacts(monkeypatch):
    """An S3-compatible store for artifacts; yields the client and the prefix ML_PLATFORM_ARTIFACTS will name."""
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                        ("AWS_REGION", "us-east-1"), (OBJECT_STORE_ENDPOINT_VARIABLE, f"http://{host}:{port}")):
        monkeypatch.setenv(name, value)
    client = boto3.client("s3", endpoint_url=f"http://{host}:{port}", region_name="us-east-1")
    client.create_bucket(Bucket="ml-platform")
    yield client, "s3://ml-platform/artifacts"
    server.stop()


def test_the_chain_on_delta_feature_tables_trains_the_same_model_and_scores_the_same_predictions(
        make_project, tmp_path, monkeypatch, shared_artifacts):
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.delenv(FEATURE_TABLES_VARIABLE, raising=False)
    monkeypatch.delenv(ARTIFACTS_VARIABLE, raising=False)
    embedded, delta = make_project(name="embedded"), make_project(name="delta")
    run_chain(embedded, "flight_delay", score_days=3, say=lambda line: None)
    store = DeltaStore(root=str(tmp_path / "tables"))
    client, artifacts_uri = shared_artifacts
    monkeypatch.setenv(FEATURE_TABLES_VARIABLE, store.root)
    monkeypatch.setenv(ARTIFACTS_VARIABLE, artifacts_uri)
    run_chain(delta, "flight_delay", score_days=3, say=lambda line: None)
    got = _outcome(delta)
    monkeypatch.delenv(FEATURE_TABLES_VARIABLE)
    expected = _outcome(embedded)

    # the file of the Delta chain holds no feature, source, prediction or monitoring table: they live in the store
    files = _file_tables(embedded), _file_tables(delta)
    assert len(files[0]["features"]) == 4 and "features" not in files[1]
    assert files[0]["source"] == ["airports", "flights", "planes", "weather"] and "source" not in files[1]
    assert files[0]["predictions"] == ["flight_delay", "flight_delay__latest"] and "predictions" not in files[1]
    assert files[0]["monitoring"] == ["flight_delay__drift", "flight_delay__outcomes"]
    assert "monitoring" not in files[1]
    for name in files[0]["source"]:
        assert store.version(delta_source_path(name)) is not None, name
        assert store.version(delta_source_versions_path(name)) is not None, name
    assert store.version(PREDICTION_TABLES.path("flight_delay")) is not None
    assert store.version(MONITORING.path("flight_delay__drift")) is not None
    assert len(expected["models"]) == 1 and expected["predictions"][0][0] > 2000
    assert expected["latest"][0][0] > 2000 and expected["drift"] and expected["outcomes"]
    assert {asset for asset, _, _ in expected["prediction_versions"]} == {"predictions/flight_delay",
                                                                          "outcomes/flight_delay"}
    for key in expected:
        assert got[key] == expected[key], key
    assert store.version(delta_feature_path("flight_schedule")) is not None

    # `ml-platform explain` (a read-only connection to the file) finds the Delta chain's predictions in the store
    with open_registry(embedded.storage.warehouse) as connection:
        flight = connection.execute('SELECT CAST(flight_id AS VARCHAR) FROM predictions."flight_delay__latest" '
                                    'ORDER BY flight_id LIMIT 1').fetchall()[0][0]
        wanted = explain(connection, "flight_delay", flight, None, ArtifactStore(root=str(embedded.storage.artifacts)))
    monkeypatch.setenv(FEATURE_TABLES_VARIABLE, store.root)
    with open_registry(delta.storage.warehouse) as connection:
        found = explain(connection, "flight_delay", flight, None, ArtifactStore(root=str(delta.storage.artifacts)))
    monkeypatch.delenv(FEATURE_TABLES_VARIABLE)
    for field in ("score", "flagged", "threshold", "model_version", "snapshot_id", "inputs", "partition_date"):
        assert found.prediction[field] == wanted.prediction[field], field
    assert found.artifact_problem is None and len(found.others) == len(wanted.others)

    # every artifact the registry names was published under its name, with its bytes; another machine's empty
    # artifact folder gets each one back from the store, hashed
    published = {item["Key"].removeprefix("artifacts/"): item["Size"] for page in
                 client.get_paginator("list_objects_v2").paginate(Bucket="ml-platform") for item in page["Contents"]}
    with open_warehouse(delta.storage.warehouse) as connection:
        named = connection.execute("SELECT path, sha256 FROM registry.models UNION ALL "
                                   "SELECT path, sha256 FROM registry.snapshots").fetchall()
    assert named and all(path in published for path, _ in named), (named, sorted(published))
    elsewhere = ArtifactStore(root=str(tmp_path / "another-machine"))
    for path, sha256 in named:
        fetched = elsewhere.verify(path, sha256)
        assert fetched.read_bytes() == (delta.storage.artifacts / path).read_bytes()
    assert len(published) > len(named)  # the reports, plots and predictions files too
