"""The whole chain of one model (sources, features, snapshot, training, evaluation, gate, deployment, scoring) with
Delta feature tables and sources (the cluster configuration's, here in a local folder) and its artifacts
shared through an object store (moto's server on 127.0.0.1) gives the embedded chain's model and predictions."""

from __future__ import annotations

import pytest

from ml_platform.chain.model_chain import run_chain
from ml_platform.names import (ARTIFACTS_VARIABLE, FEATURE_TABLES_VARIABLE, OBJECT_STORE_ENDPOINT_VARIABLE,
                               delta_feature_path, delta_source_path, delta_source_versions_path)
from ml_platform.storage.artifacts import ArtifactStore
from ml_platform.storage.delta_tables import DeltaStore
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
    with open_warehouse(project.storage.warehouse) as connection:
        return {
            "models": connection.execute("SELECT model_version, sha256 FROM registry.models").fetchall(),
            "snapshots": connection.execute("SELECT snapshot_id, sha256 FROM registry.snapshots").fetchall(),
            "predictions": connection.execute(
                f"SELECT count(*), bit_xor(hash(kept)) FROM (SELECT {PREDICTIONS} FROM predictions.flight_delay) "
                f"AS kept").fetchall(),
            "feature_tables": connection.execute("SELECT count(*) FROM information_schema.tables "
                                                 "WHERE table_schema = 'features'").fetchall()[0][0],
            "source_tables": sorted(name for (name,) in connection.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'source'").fetchall()),
        }


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
    monkeypatch.delenv(FEATURE_TABLES_VARIABLE)

    expected, got = _outcome(embedded), _outcome(delta)
    assert expected["feature_tables"] == 4 and got["feature_tables"] == 0  # Delta's rows live in the store only
    # ... and so do the sources', daily and reference
    assert expected["source_tables"] == ["airports", "flights", "planes", "weather"]
    assert got["source_tables"] == []
    for name in expected["source_tables"]:
        assert store.version(delta_source_path(name)) is not None, name
        assert store.version(delta_source_versions_path(name)) is not None, name
    assert len(expected["models"]) == 1 and expected["predictions"][0][0] > 2000
    for key in ("models", "snapshots", "predictions"):
        assert got[key] == expected[key], key
    assert store.version(delta_feature_path("flight_schedule")) is not None

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
