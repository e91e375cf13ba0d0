"""The cluster configuration end to end: the demo's daily features backfilled for a few days with the Dagster
instance on PostgreSQL and the steps on two dask workers, against the same days run the embedded way."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from ml_platform.adapters.instance import open_instance
from ml_platform.storage.warehouse import open_warehouse, row_digests
from ml_platform_tests.helpers import REPO_ROOT

pytestmark = [pytest.mark.slow, pytest.mark.cluster]

CLUSTER_CONFIG = REPO_ROOT / "deploy" / "cluster"
DAYS = "2013-01-01...2013-01-04"
DAILY = ("key:source/flights or key:source/weather or key:features/flight_schedule or "
         "key:features/disruption_history or key:features/origin_weather_eve or key:features/aircraft_and_destination")
REFERENCE = "key:source/planes or key:source/airports"
FEATURE_SETS = ("flight_schedule", "disruption_history", "origin_weather_eve", "aircraft_and_destination")


def materialize(project_root: Path, home: Path, environment: dict[str, str], selection: str,
                partitions: str | None = None, config: Path | None = None) -> subprocess.CompletedProcess:
    """`dagster asset materialize` of the project, as a user's CI runs it."""
    dagster = os.path.join(os.path.dirname(sys.executable), "dagster")
    command = [dagster, "asset", "materialize", "-m", "ml_platform.definitions", "--select", selection]
    command += ["--partition-range", partitions] if partitions else []
    command += ["--config", str(config)] if config else []
    completed = subprocess.run(command, cwd=project_root, capture_output=True, text=True, timeout=900, env={
        **environment, "DAGSTER_HOME": str(home), "ML_PLATFORM_PROJECT": str(project_root)})
    with (home / "materialize.log").open("a", encoding="utf-8") as log:  # kept in the test's folder
        log.write(f"$ {' '.join(command)}\n{completed.stderr}\n")
    assert completed.returncode == 0, completed.stderr[-4000:]
    return completed


def feature_digests(project) -> dict[str, list[tuple]]:
    """Each feature set's rows per day: count and an order-independent hash."""
    with open_warehouse(project.storage.warehouse) as connection:
        return {name: sorted(row_digests(connection, f"features.{name}", by_day=True)) for name in FEATURE_SETS}


def stored_versions(project) -> list[tuple]:
    """The version index of the feature sets' days."""
    with open_warehouse(project.storage.warehouse) as connection:
        return connection.execute("SELECT asset, partition_key, version FROM registry.partition_versions "
                                  "WHERE asset LIKE 'features/%' ORDER BY ALL").fetchall()


def test_the_cluster_configuration_backfills_the_same_features_on_two_workers_with_the_instance_on_postgres(
        make_project, cluster_services, tmp_path, monkeypatch):
    embedded, cluster = make_project(name="embedded"), make_project(name="cluster")
    base = {key: value for key, value in os.environ.items() if key != "DAGSTER_HOME"}

    embedded_home = tmp_path / "embedded_home"
    embedded_home.mkdir()
    shutil.copyfile(REPO_ROOT / "dagster.yaml", embedded_home / "dagster.yaml")
    materialize(embedded.root, embedded_home, base, REFERENCE)
    materialize(embedded.root, embedded_home, base, DAILY, DAYS)

    started = cluster_services.start(workers=2, ML_PLATFORM_PROJECT=str(cluster.root))
    environment = {**base, **started}
    cluster_home = tmp_path / "cluster_home"
    cluster_home.mkdir()
    shutil.copyfile(CLUSTER_CONFIG / "dagster.yaml", cluster_home / "dagster.yaml")
    materialize(cluster.root, cluster_home, environment, REFERENCE, config=CLUSTER_CONFIG / "run_config.yaml")
    materialize(cluster.root, cluster_home, environment, DAILY, DAYS, config=CLUSTER_CONFIG / "run_config.yaml")

    # the same rows, day by day, and the same versions in the index
    expected, got = feature_digests(embedded), feature_digests(cluster)
    for name in FEATURE_SETS:
        assert len(expected[name]) == 4 and all(count > 0 for _, count, _ in expected[name]), name
        assert got[name] == expected[name], name
    assert stored_versions(cluster) == stored_versions(embedded)

    # the runs and their events live in PostgreSQL, and the steps ran in the two workers' processes
    for name, value in started.items():
        monkeypatch.setenv(name, value)
    with open_instance(cluster_home) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        runs = instance.get_runs()
        assert len(runs) == 2 and all(run.status == dg.DagsterRunStatus.SUCCESS for run in runs)
        step_pids = {record.event_log_entry.dagster_event.pid
                     for run in runs
                     for record in instance.get_records_for_run(
                         run.run_id, of_type=dg.DagsterEventType.STEP_SUCCESS).records}
    workers = {pid for name, pid in cluster_services.pids().items() if name.startswith("worker-")}
    assert len(workers) == 2
    assert step_pids <= workers and len(step_pids) == 2, (step_pids, workers)
