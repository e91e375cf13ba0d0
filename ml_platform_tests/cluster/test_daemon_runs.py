"""Runs the daemon launches go up to `max_concurrent_runs` at once in the cluster configuration (the instance on
PostgreSQL, deploy/cluster/dagster.yaml), with every table a Delta table and the registries in PostgreSQL, so no
warehouse file: a backfill of four daily partitions, queued by `dagster job backfill`, is launched by a real
`dagster-daemon` through Dagster's run queue, its runs overlap in time, none waits for a lock, no warehouse file
appears, and the features they commit are the embedded computation's rows."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import signal
import subprocess
import sys
import time

import dagster as dg
import duckdb
import pytest

from ml_platform.adapters.instance import open_instance
from ml_platform.names import DAILY_JOB, FEATURE_TABLES_VARIABLE, REGISTRY_VARIABLE, delta_feature_path
from ml_platform.storage.delta_tables import delta_store_from_environment
from ml_platform.storage.warehouse import open_warehouse, row_digests
from ml_platform_tests.cluster.test_cluster_backfill import CLUSTER_CONFIG, FEATURE_SETS, REFERENCE, materialize
from ml_platform_tests.cluster.test_delta_features import SOURCES, overlapping_pairs
from ml_platform_tests.helpers import REPO_ROOT

pytestmark = [pytest.mark.slow, pytest.mark.cluster]

DAYS = [dt.date(2013, 1, day).isoformat() for day in range(1, 5)]
TABLES = "s3://ml-platform/features-queued"
BIN = os.path.dirname(sys.executable)


def stop_group(group: int, seconds: float = 20.0) -> None:
    """Stop every process left in a process group: asked to end, then killed after `seconds`."""
    try:
        os.killpg(group, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    os.killpg(group, signal.SIGKILL)


def test_the_daemon_launches_a_queued_backfill_s_runs_at_once_without_a_warehouse_file(
        make_project, cluster_services, tmp_path, monkeypatch):
    for name in ("DAGSTER_HOME", FEATURE_TABLES_VARIABLE, REGISTRY_VARIABLE, "ML_PLATFORM_DATA"):
        monkeypatch.delenv(name, raising=False)
    embedded, queued = make_project(name="embedded"), make_project(name="queued")
    base = dict(os.environ)
    embedded_home = tmp_path / "embedded_home"
    embedded_home.mkdir()
    shutil.copyfile(REPO_ROOT / "dagster.yaml", embedded_home / "dagster.yaml")
    materialize(embedded.root, embedded_home, base, REFERENCE)
    materialize(embedded.root, embedded_home, base, " or ".join(
        [SOURCES, *(f"key:features/{name}" for name in FEATURE_SETS)]), f"{DAYS[0]}...{DAYS[-1]}")

    started = cluster_services.start(workers=1, registry=True, ML_PLATFORM_PROJECT=str(queued.root))
    environment = {**base, **started, FEATURE_TABLES_VARIABLE: TABLES, "ML_PLATFORM_PROJECT": str(queued.root)}
    home = tmp_path / "home"
    home.mkdir()
    shutil.copyfile(CLUSTER_CONFIG / "dagster.yaml", home / "dagster.yaml")
    # the sources first (runs of the daemon's backfill find them up to date; each computes its day's features)
    materialize(queued.root, home, environment, REFERENCE)
    materialize(queued.root, home, environment, SOURCES, f"{DAYS[0]}...{DAYS[-1]}")
    daemon_environment = {**environment, "DAGSTER_HOME": str(home)}
    monkeypatch.setenv("ML_PLATFORM_POSTGRES_URL", started["ML_PLATFORM_POSTGRES_URL"])  # the instance's database
    daemon_log = (tmp_path / "daemon.log").open("w")
    daemon = subprocess.Popen([os.path.join(BIN, "dagster-daemon"), "run", "-w", "workspace.yaml"],
                              cwd=queued.root, env=daemon_environment, stdout=daemon_log, stderr=subprocess.STDOUT,
                              start_new_session=True)  # its code server and run workers in its process group
    try:
        queued_backfill = subprocess.run(
            [os.path.join(BIN, "dagster"), "job", "backfill", "-w", "workspace.yaml", "-j", DAILY_JOB,
             "--partitions", ",".join(DAYS), "--noprompt"],
            cwd=queued.root, env=daemon_environment, capture_output=True, text=True, timeout=300)
        assert queued_backfill.returncode == 0, queued_backfill.stdout + queued_backfill.stderr
        with open_instance(home) as instance:
            deadline = time.monotonic() + 600
            while True:
                runs = [run for run in instance.get_runs() if run.tags.get("dagster/backfill")]
                if len(runs) == len(DAYS) and all(run.is_finished for run in runs):
                    break
                assert daemon.poll() is None, (tmp_path / "daemon.log").read_text()[-4000:]
                assert time.monotonic() < deadline, [(run.tags.get("dagster/partition"), run.status) for run in runs]
                time.sleep(1)
            records = {record.dagster_run.tags["dagster/partition"]: record for record in
                       instance.get_run_records(dg.RunsFilter(run_ids=[run.run_id for run in runs]))}
            failures = {day: record.dagster_run.status for day, record in records.items()
                        if record.dagster_run.status != dg.DagsterRunStatus.SUCCESS}
            assert not failures, failures
    finally:
        daemon.terminate()
        try:
            daemon.wait(60)
        finally:
            stop_group(daemon.pid)  # the code server it started outlives it otherwise
            daemon_log.close()

    # launched by the daemon (a run of the queue), and at the same time: the queue let them go together
    assert sorted(records) == DAYS
    spans = [(record.start_time, record.end_time, index) for index, record in enumerate(records.values())]
    assert overlapping_pairs(spans) > 0, spans
    assert all(record.dagster_run.status == dg.DagsterRunStatus.SUCCESS for record in records.values())
    # no process made a warehouse file: none waited for its lock
    assert not queued.storage.warehouse.exists()
    # the runs' feature partitions are the embedded computation's
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    store = delta_store_from_environment()
    assert store is not None and store.root == TABLES
    with open_warehouse(embedded.storage.warehouse) as connection:
        for name in FEATURE_SETS:
            expected = sorted(row_digests(connection, f"features.{name}", by_day=True))
            reader = duckdb.connect()
            reader.register("delta", store.dataset(delta_feature_path(name)))
            assert sorted(row_digests(reader, "delta", by_day=True)) == expected, name
            assert len(expected) == len(DAYS)
