"""The demo's chain in the cluster configuration (`deploy/cluster/demo`): with ML_PLATFORM_RUN_CONFIG naming
deploy/cluster/run_config.yaml, the instance on PostgreSQL (deploy/cluster/dagster.yaml), the registries in
PostgreSQL and the warehouse's tables and artifacts in the object store, every step of every run executes on one
of two dask workers, and the chain trains the embedded chain's model and scores its predictions."""

from __future__ import annotations

import os
import shutil

import dagster as dg
import pytest

from ml_platform.adapters.instance import open_instance
from ml_platform.chain.model_chain import run_chain
from ml_platform.demo import summary_text
from ml_platform.names import (ARTIFACTS_VARIABLE, FEATURE_TABLES_VARIABLE, REGISTRY_VARIABLE, RUN_CONFIG_VARIABLE,
                               training_job_name)
from ml_platform.storage import registry
from ml_platform.storage.registry_postgres import _registry
from ml_platform.storage.resources import Warehouse
from ml_platform_tests.helpers import REPO_ROOT

pytestmark = [pytest.mark.slow, pytest.mark.cluster]

CLUSTER_CONFIG = REPO_ROOT / "deploy" / "cluster"
# the provenance that differs from run to run (when and by which Dagster run a row was scored) left out
PROVENANCE = "scored_at, dagster_run_id"


def _outcome(project, result) -> dict:
    """The model, its snapshot, its test money and its predictions, read as the assets read them."""
    with Warehouse(database=str(project.storage.warehouse)).get_connection() as connection:
        model = registry.models.by_version(connection, result.champion.model_version)
        return {
            "model": (model.model_version, model.sha256, model.snapshot_id),
            "snapshot": registry.snapshots.get(connection, model.model, model.training_run).sha256,
            "money": (result.evaluation.test.money, result.evaluation.test.rows, result.evaluation.test.flagged),
            "scored": result.scored_rows,
            "predictions": connection.execute(
                f"SELECT count(*), bit_xor(hash(kept)) FROM (SELECT * EXCLUDE ({PROVENANCE}) FROM "
                f"predictions.flight_delay) AS kept").fetchall(),
            "latest": connection.execute(
                f"SELECT count(*), bit_xor(hash(kept)) FROM (SELECT * EXCLUDE ({PROVENANCE}) FROM "
                f'predictions."flight_delay__latest") AS kept').fetchall(),
            "code_versions": connection.execute(
                "SELECT DISTINCT code_version FROM predictions.flight_delay").fetchall(),
        }


def test_the_demo_chain_runs_every_step_on_two_workers_and_gives_the_embedded_model_and_predictions(
        make_project, cluster_services, tmp_path, monkeypatch):
    for name in ("DAGSTER_HOME", FEATURE_TABLES_VARIABLE, ARTIFACTS_VARIABLE, REGISTRY_VARIABLE, RUN_CONFIG_VARIABLE):
        monkeypatch.delenv(name, raising=False)
    embedded, cluster = make_project(name="embedded"), make_project(name="cluster")
    embedded_result = run_chain(embedded, "flight_delay", score_days=2, say=lambda line: None)
    expected = _outcome(embedded, embedded_result)

    # as deploy/cluster/demo sets it up: what the workers read is in their environment when they start
    settings = {"ML_PLATFORM_PROJECT": str(cluster.root), "ML_PLATFORM_DATA": str(cluster.data_dir),
                FEATURE_TABLES_VARIABLE: "s3://ml-platform/features", ARTIFACTS_VARIABLE: "s3://ml-platform/artifacts"}
    started = cluster_services.start(workers=2, registry=True, **settings)
    for name, value in {**settings, **started,
                        RUN_CONFIG_VARIABLE: str(CLUSTER_CONFIG / "run_config.yaml")}.items():
        monkeypatch.setenv(name, value)
    cluster.dagster_home.mkdir(parents=True)
    shutil.copyfile(CLUSTER_CONFIG / "dagster.yaml", cluster.dagster_home / "dagster.yaml")
    _registry.cache_clear()
    try:
        result = run_chain(cluster, "flight_delay", score_days=2, say=lambda line: None)
        got = _outcome(cluster, result)
        summary = summary_text(cluster, result)  # what `ml-platform demo` prints at the end
    finally:
        _registry.cache_clear()
    assert ("in table predictions.flight_delay__latest (the Delta table s3://ml-platform/features/predictions/"
            "flight_delay)") in summary, summary

    # the same model from the same snapshot, the same money, the same predictions from the same code
    assert len(expected["code_versions"]) == 1 and expected["predictions"][0][0] > 1000
    for key in expected:
        assert got[key] == expected[key], key
    assert [run.job for run in result.runs] == [run.job for run in embedded_result.runs]

    # every run is in PostgreSQL with the cluster's run config, and every step ran in one of the two workers
    with open_instance(cluster.dagster_home) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        runs = {run.run_id: run for run in instance.get_runs()}
        assert sorted(runs) == sorted(outcome.run_id for outcome in result.runs)
        assert all(run.status == dg.DagsterRunStatus.SUCCESS for run in runs.values())
        assert all("dask" in run.run_config["execution"]["config"] for run in runs.values())
        training = [run for run in runs.values() if run.job_name == training_job_name("flight_delay")]
        assert [run.tags.get("dagster/partition") for run in training] == [result.training_run]
        step_pids = {run_id: {record.event_log_entry.dagster_event.pid for record in instance.get_records_for_run(
            run_id, of_type=dg.DagsterEventType.STEP_SUCCESS).records} for run_id in runs}
    workers = {pid for name, pid in cluster_services.pids().items() if name.startswith("worker-")}
    assert len(workers) == 2 and os.getpid() not in workers
    assert all(pids and pids <= workers for pids in step_pids.values()), (step_pids, workers)
    assert set().union(*step_pids.values()) == workers
