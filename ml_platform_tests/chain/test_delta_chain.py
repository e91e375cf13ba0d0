"""The whole chain of one model (sources, features, snapshot, training, evaluation, gate, deployment, scoring) with
Delta feature tables (the cluster configuration's, here in a local folder) gives the embedded chain's model and
predictions."""

from __future__ import annotations

import pytest

from ml_platform.chain.model_chain import run_chain
from ml_platform.names import FEATURE_TABLES_VARIABLE, delta_feature_path
from ml_platform.storage.delta_tables import DeltaStore
from ml_platform.storage.warehouse import open_warehouse

# Delta Lake tables come with the cluster extra (`pip install -e '.[cluster]'`, which .ci/run installs); the README's
# test command installs only `.[dev]`, so without the extra these tests are skipped, saying why
pytest.importorskip("deltalake",
                    reason="the cluster extra is not installed (deltalake missing: pip install -e '.[cluster]')")

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
        }


def test_the_chain_on_delta_feature_tables_trains_the_same_model_and_scores_the_same_predictions(
        make_project, tmp_path, monkeypatch):
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.delenv(FEATURE_TABLES_VARIABLE, raising=False)
    embedded, delta = make_project(name="embedded"), make_project(name="delta")
    run_chain(embedded, "flight_delay", score_days=3, say=lambda line: None)
    store = DeltaStore(root=str(tmp_path / "tables"))
    monkeypatch.setenv(FEATURE_TABLES_VARIABLE, store.root)
    run_chain(delta, "flight_delay", score_days=3, say=lambda line: None)
    monkeypatch.delenv(FEATURE_TABLES_VARIABLE)

    expected, got = _outcome(embedded), _outcome(delta)
    assert expected["feature_tables"] == 4 and got["feature_tables"] == 0  # Delta's rows live in the store only
    assert len(expected["models"]) == 1 and expected["predictions"][0][0] > 2000
    for key in ("models", "snapshots", "predictions"):
        assert got[key] == expected[key], key
    assert store.version(delta_feature_path("flight_schedule")) is not None
