"""Snapshots, models and registry records are written once: a second write fails clearly or reuses, never replaces."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import pytest

from ml_platform import names
from ml_platform.build import build_definitions
from ml_platform.chain.runner import QUIET
from ml_platform.features.library import load_catalog
from ml_platform.storage import registry
from ml_platform.storage.artifacts import ArtifactStore, TamperedArtifactError
from ml_platform.storage.registry import RegistryConflictError
from ml_platform.storage.warehouse import open_warehouse

from ml_platform_tests.provenance.helpers import fetch, folder_hashes, query

# drives chains of Dagster runs: the full suite only (`pytest -m "not slow"` leaves it out)
pytestmark = pytest.mark.slow

RUN = "2013-01-31_0123456789ab"
CREATED = dt.datetime(2013, 2, 1, 18, 0, 0)
SNAPSHOT = {"training_run": RUN, "model": "flight_delay", "snapshot_id": "a" * 16, "spec_hash": "0123456789ab",
            "path": f"snapshots/flight_delay/{'a' * 64}.parquet", "sha256": "a" * 64, "manifest": {"rows": {}},
            "created_at": CREATED}
MODEL = {"model_version": "flight_delay-bbbbbbbbbbbb", "model": "flight_delay", "training_run": RUN,
         "snapshot_id": "a" * 16, "spec_hash": "0123456789ab", "path": f"models/flight_delay/{'b' * 64}.model",
         "sha256": "b" * 64, "card": {}, "created_at": CREATED}


@pytest.mark.parametrize("name, first, second, message", [
    ("snapshots", SNAPSHOT, {**SNAPSHOT, "snapshot_id": "c" * 16, "sha256": "c" * 64},
     f"training run '{RUN}' of model 'flight_delay' already has a snapshot (snapshot {'a' * 16}, created "
     f"2013-02-01 18:00:00 UTC); registry.snapshots is append-only: the stored snapshot is kept and never replaced"),
    ("models", MODEL, {**MODEL, "model_version": "flight_delay-cccccccccccc", "sha256": "c" * 64},
     f"training run '{RUN}' of model 'flight_delay' already has a trained model (flight_delay-bbbbbbbbbbbb, created "
     f"2013-02-01 18:00:00 UTC); registry.models is append-only: the stored trained model is kept and never replaced"),
])
def test_a_second_registry_record_of_a_training_run_fails_clearly_and_keeps_the_first(tmp_path, name, first, second,
                                                                                        message):
    records = getattr(registry, name)
    with open_warehouse(tmp_path / "warehouse.duckdb") as connection:
        # built without validation: the registry stores records as given, and these hold only what the test needs
        records.add(connection, records.record_type.model_construct(**first))
        with pytest.raises(RegistryConflictError) as raised:
            records.add(connection, records.record_type.model_construct(**second))
        assert str(raised.value) == message
        stored = connection.execute(f"SELECT sha256 FROM {names.registry_table(name)}").fetchall()
    assert stored == [(first["sha256"],)]


def test_an_artifact_is_stored_once_under_its_hash_and_never_replaced(tmp_path):
    store = ArtifactStore(root=str(tmp_path))
    first = store.write("models/flight_delay", ".model", lambda path: path.write_bytes(b"trained"))
    stored = store.path_of(first.path)
    identity = (stored.stat().st_ino, stored.stat().st_mtime_ns)
    again = store.write("models/flight_delay", ".model", lambda path: path.write_bytes(b"trained"))
    assert again == first and (stored.stat().st_ino, stored.stat().st_mtime_ns) == identity  # reused, not rewritten
    other = store.write("models/flight_delay", ".model", lambda path: path.write_bytes(b"retrained"))
    assert other.path != first.path and stored.read_bytes() == b"trained"  # other bytes can only get another name
    # nothing else is left behind: no temporary file of either write
    assert {path.name for path in stored.parent.iterdir()} == {first.path.split("/")[-1], other.path.split("/")[-1]}
    # bytes changed behind the store's back are detected when the same artifact is written again, and left alone
    stored.write_bytes(b"tampered")
    with pytest.raises(TamperedArtifactError) as raised:
        store.write("models/flight_delay", ".model", lambda path: path.write_bytes(b"trained"))
    assert str(raised.value).startswith(f"artifact {first.path} was modified: its SHA-256 is ")
    assert str(raised.value).endswith("the stored file is left as it is, for inspection, not replaced")
    assert stored.read_bytes() == b"tampered"


def test_rematerializing_an_old_training_run_reuses_its_snapshot_and_model_and_says_so(history, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(history.dagster_home))
    project = history.project
    first = fetch(project, "models", model_version=history.first)
    artifacts = folder_hashes(project.storage.artifacts)
    counts = query(project, "SELECT (SELECT count(*) FROM registry.snapshots), (SELECT count(*) FROM registry.models)")
    catalog = load_catalog(project.specs_dir, project.root)  # today's spec is another revision than this run's
    job = build_definitions(catalog, project.storage).resolve_job_def(names.training_job_name("flight_delay"))
    result = job.execute_in_process(
        instance=dg.DagsterInstance.get(), partition_key=first.training_run, run_config=QUIET,
        asset_selection=[names.stage_key("snapshot", "flight_delay"), names.stage_key("model", "flight_delay")])
    assert result.success
    metadata = {names.stage_of(event.asset_key): event.materialization.metadata
                for event in result.get_asset_materialization_events()}
    assert metadata["snapshot"]["reused"].value == f"snapshot {first.snapshot_id} already stored for this run"
    assert metadata["model"]["reused"].value == f"model {history.first} already trained for this run"
    assert metadata["model"]["sha256"].value == first.sha256
    assert folder_hashes(project.storage.artifacts) == artifacts
    assert query(project, "SELECT (SELECT count(*) FROM registry.snapshots), "
                          "(SELECT count(*) FROM registry.models)") == counts
