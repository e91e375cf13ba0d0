"""Artifacts shared through an S3-compatible object store (moto's server, in this process, on 127.0.0.1): published
once and never replaced, fetched and hashed on another machine's empty folder, refused when their bytes changed."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from ml_platform.names import ARTIFACTS_VARIABLE, OBJECT_STORE_ENDPOINT_VARIABLE
from ml_platform.storage.artifacts import ArtifactStore, TamperedArtifactError
from ml_platform.storage.object_artifacts import ArtifactObjectStoreError, object_artifacts_from_environment

# boto3 and moto come with the cluster extra (`pip install -e '.[cluster]'`, which .ci/run installs); the README's
# test command installs only `.[dev]`, so without the extra these tests are skipped, saying why
boto3 = pytest.importorskip("boto3", reason="the cluster extra is not installed (boto3 missing)")
moto_server = pytest.importorskip("moto.server", reason="the cluster extra is not installed (moto missing)")

BUCKET = "ml-platform-artifacts"


@pytest.fixture(scope="module")
def endpoint():
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3(endpoint, monkeypatch):
    """A fresh bucket; the environment names it as the artifacts' shared store."""
    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                        ("AWS_REGION", "us-east-1")):
        monkeypatch.setenv(name, value)
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    client.create_bucket(Bucket=BUCKET)
    monkeypatch.setenv(ARTIFACTS_VARIABLE, f"s3://{BUCKET}/team/artifacts")
    monkeypatch.setenv(OBJECT_STORE_ENDPOINT_VARIABLE, endpoint)
    yield client
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
        for item in page.get("Contents", []):
            client.delete_object(Bucket=BUCKET, Key=item["Key"])
    client.delete_bucket(Bucket=BUCKET)


def _write(store: ArtifactStore, data: bytes, folder: str = "models/m"):
    return store.write(folder, ".model", lambda path: path.write_bytes(data))


def _objects(client) -> dict[str, bytes]:
    listed = client.list_objects_v2(Bucket=BUCKET).get("Contents", [])
    return {item["Key"]: client.get_object(Bucket=BUCKET, Key=item["Key"])["Body"].read() for item in listed}


def test_a_stored_artifact_is_published_under_its_name_and_shown_by_its_uri(s3, tmp_path):
    store = ArtifactStore(root=str(tmp_path / "machine-a"))
    stored = _write(store, b"model bytes")
    assert stored.sha256 == hashlib.sha256(b"model bytes").hexdigest()
    assert _objects(s3) == {f"team/artifacts/{stored.path}": b"model bytes"}
    assert store.location_of(stored.path) == f"s3://{BUCKET}/team/artifacts/{stored.path}"
    assert (tmp_path / "machine-a" / stored.path).read_bytes() == b"model bytes"  # the local working copy


def test_another_machine_fetches_and_hashes_an_artifact_it_does_not_have(s3, tmp_path):
    stored = _write(ArtifactStore(root=str(tmp_path / "machine-a")), b"snapshot bytes")
    other = ArtifactStore(root=str(tmp_path / "machine-b"))
    assert not (tmp_path / "machine-b" / stored.path).exists()
    assert other.verify(stored.path, stored.sha256).read_bytes() == b"snapshot bytes"
    third = ArtifactStore(root=str(tmp_path / "machine-c"))
    assert third.path_of(stored.path).read_bytes() == b"snapshot bytes"  # checked against the name's hash
    assert sorted(path.name for path in (tmp_path / "machine-b" / "models" / "m").iterdir()) == [
        Path(stored.path).name]  # no temporary file left beside it


def test_the_same_content_stored_again_elsewhere_leaves_the_object_as_it_was(s3, tmp_path):
    first = _write(ArtifactStore(root=str(tmp_path / "machine-a")), b"report")
    before = s3.head_object(Bucket=BUCKET, Key=f"team/artifacts/{first.path}")
    second = _write(ArtifactStore(root=str(tmp_path / "machine-b")), b"report")
    after = s3.head_object(Bucket=BUCKET, Key=f"team/artifacts/{first.path}")
    assert second == first and (after["ETag"], after["LastModified"]) == (before["ETag"], before["LastModified"])


def test_an_object_whose_bytes_changed_is_refused_and_nothing_is_kept(s3, tmp_path):
    stored = _write(ArtifactStore(root=str(tmp_path / "machine-a")), b"the model")
    s3.put_object(Bucket=BUCKET, Key=f"team/artifacts/{stored.path}", Body=b"a model someone replaced")
    other = ArtifactStore(root=str(tmp_path / "machine-b"))
    with pytest.raises(TamperedArtifactError, match=f"s3://{BUCKET}/team/artifacts/{stored.path} was modified"):
        other.verify(stored.path, stored.sha256)
    with pytest.raises(TamperedArtifactError, match="was modified"):
        other.path_of(stored.path)
    assert not list((tmp_path / "machine-b").rglob("*.model")) and not list((tmp_path / "machine-b").rglob(".*"))
    # the same content written again finds the replaced object, says so and leaves it for inspection
    with pytest.raises(TamperedArtifactError, match="stored object is left as it is"):
        _write(ArtifactStore(root=str(tmp_path / "machine-c")), b"the model")
    assert _objects(s3)[f"team/artifacts/{stored.path}"] == b"a model someone replaced"


def test_an_artifact_in_neither_place_is_reported_missing_from_both(s3, tmp_path):
    name = "models/m/" + hashlib.sha256(b"never stored").hexdigest() + ".model"
    store = ArtifactStore(root=str(tmp_path / "machine-a"))
    with pytest.raises(TamperedArtifactError, match=f"missing from .*machine-a and from s3://{BUCKET}/team/"):
        store.verify(name, hashlib.sha256(b"never stored").hexdigest())
    with pytest.raises(TamperedArtifactError, match="missing from"):
        store.path_of(name)


def test_a_private_store_never_publishes(s3, tmp_path):
    stored = _write(ArtifactStore(root=str(tmp_path / "scratch"), private=True), b"a reproduction's retrained model")
    assert _objects(s3) == {}
    assert ArtifactStore(root=str(tmp_path / "scratch"), private=True).location_of(stored.path) == str(
        tmp_path / "scratch" / stored.path)


def test_without_the_variable_artifacts_stay_in_the_local_folder(tmp_path, monkeypatch):
    monkeypatch.delenv(ARTIFACTS_VARIABLE, raising=False)
    store = ArtifactStore(root=str(tmp_path / "local"))
    stored = _write(store, b"bytes")
    assert store.location_of(stored.path) == str(tmp_path / "local" / stored.path)
    with pytest.raises(TamperedArtifactError, match=r"missing from \S*other$"):
        ArtifactStore(root=str(tmp_path / "other")).verify(stored.path, stored.sha256)


@pytest.mark.parametrize("environment, message", [
    ({ARTIFACTS_VARIABLE: "/shared/artifacts"}, "ML_PLATFORM_ARTIFACTS='/shared/artifacts' is not s3://BUCKET"),
    ({ARTIFACTS_VARIABLE: "s3:///prefix"}, "is not s3://BUCKET"),
    ({ARTIFACTS_VARIABLE: "s3://bucket", OBJECT_STORE_ENDPOINT_VARIABLE: "127.0.0.1:9000"},
     "ML_PLATFORM_S3_ENDPOINT='127.0.0.1:9000' is not an http:// or https:// URL"),
])
def test_a_bad_shared_store_setting_names_the_variable(environment, message):
    with pytest.raises(ArtifactObjectStoreError, match=message.replace("(", r"\(")):
        object_artifacts_from_environment(environment)
    assert object_artifacts_from_environment({}) is None


def test_a_training_worker_on_another_machine_fetches_the_snapshot_hashes_it_and_encodes_its_rows(s3, tmp_path):
    import dataclasses

    import duckdb
    import numpy as np

    from ml_platform.snapshots.columns import SplitRows
    from ml_platform.training import distributed
    from ml_platform.training.arrow_matrix import training_matrix
    from ml_platform_tests.training.test_distributed_blocks import CATEGORICAL, COLUMNS, _snapshot

    here = ArtifactStore(root=str(tmp_path / "step"))
    made = _snapshot(tmp_path / "made.parquet")
    stored = here.write("snapshots/m", ".parquet", lambda path: path.write_bytes(made.read_bytes()))
    rows = SplitRows.read(duckdb.connect(), here.verify(stored.path, stored.sha256), "train")
    layout, matrix = training_matrix(rows, COLUMNS, CATEGORICAL)
    # the worker's copy of the store is another machine's empty folder: it fetches the snapshot from the bucket
    elsewhere = distributed.SnapshotFile(str(tmp_path / "worker"), stored.path, stored.sha256)
    blocks = distributed._file_blocks(rows, elsewhere, 2)
    np.testing.assert_array_equal(np.vstack([distributed.encode_block(block, layout) for block in blocks]), matrix)
    assert (tmp_path / "worker" / stored.path).read_bytes() == made.read_bytes()
    # bytes replaced in the bucket under the snapshot's name are refused on a third machine, naming the object
    s3.put_object(Bucket=BUCKET, Key=f"team/artifacts/{stored.path}", Body=b"other bytes")
    third = distributed.SnapshotFile(str(tmp_path / "third"), stored.path, stored.sha256)
    with pytest.raises(distributed.DistributedTrainingError,
                       match=f"cannot train on the snapshot: artifact s3://{BUCKET}/team/artifacts/{stored.path} was "
                             f"modified: its SHA-256 is [0-9a-f]{{64}}, recorded {stored.sha256}; refusing to load it"):
        distributed.encode_block(dataclasses.replace(blocks[0], snapshot=third), layout)
    assert not (tmp_path / "third" / stored.path).exists()
