"""The cluster configuration with Delta tables on the object store: the demo's sources loaded and its daily
features backfilled on two dask workers, partitions computed in parallel, each committed as one Delta transaction;
and a worker killed in the middle of a partition, which leaves the table's last version intact until dask's retry
commits the partition."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import signal
import time
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from ml_platform.adapters.instance import open_instance
from ml_platform.features.delta_partitions import PartitionTask, compute_partition, stale_partitions
from ml_platform.features.library import load_catalog
from ml_platform.names import (FEATURE_TABLES_VARIABLE, delta_feature_path, delta_source_path,
                               delta_source_versions_path, delta_versions_path)
from ml_platform.storage.delta_tables import delta_store_from_environment
from ml_platform.storage.warehouse import open_warehouse, row_digests
from ml_platform_tests.cluster.test_cluster_backfill import CLUSTER_CONFIG, FEATURE_SETS, REFERENCE, materialize
from ml_platform_tests.helpers import REPO_ROOT

pytestmark = [pytest.mark.slow, pytest.mark.cluster]

FIRST, LAST = dt.date(2013, 1, 1), dt.date(2013, 1, 6)
DAYS = f"{FIRST}...{LAST}"
DAILY_SOURCES = ("flights", "weather")
SOURCES = " or ".join(f"key:source/{name}" for name in DAILY_SOURCES)
FEATURES = " or ".join(f"key:features/{name}" for name in FEATURE_SETS)
TABLES = "s3://ml-platform/features"


def delta_digests(store, name: str) -> list[tuple]:
    """A Delta feature table's rows per day (count and an order-independent hash), read by DuckDB through Arrow."""
    connection = duckdb.connect()
    connection.register("delta", store.dataset(delta_feature_path(name)))
    return sorted(row_digests(connection, "delta", by_day=True))


def overlapping_pairs(intervals: list[tuple[float, float, int]]) -> int:
    """Pairs of (start, end, pid) intervals of different processes that overlap in time."""
    return sum(1 for index, (start, end, pid) in enumerate(intervals) for other_start, other_end, other_pid
               in intervals[index + 1:] if pid != other_pid and start < other_end and other_start < end)


def test_delta_features_on_two_workers_equal_the_embedded_rows_and_their_partitions_ran_in_parallel(
        make_project, cluster_services, tmp_path, monkeypatch):
    embedded, cluster = make_project(name="embedded"), make_project(name="cluster")
    base = {key: value for key, value in os.environ.items()
            if key != "DAGSTER_HOME" and key != FEATURE_TABLES_VARIABLE}
    embedded_home = tmp_path / "embedded_home"
    embedded_home.mkdir()
    shutil.copyfile(REPO_ROOT / "dagster.yaml", embedded_home / "dagster.yaml")
    materialize(embedded.root, embedded_home, base, REFERENCE)
    materialize(embedded.root, embedded_home, base, f"{SOURCES} or {FEATURES}", DAYS)

    started = cluster_services.start(workers=2, ML_PLATFORM_PROJECT=str(cluster.root),
                                     **{FEATURE_TABLES_VARIABLE: TABLES})
    environment = {**base, **started, FEATURE_TABLES_VARIABLE: TABLES}
    cluster_home = tmp_path / "cluster_home"
    cluster_home.mkdir()
    shutil.copyfile(CLUSTER_CONFIG / "dagster.yaml", cluster_home / "dagster.yaml")
    config = CLUSTER_CONFIG / "run_config.yaml"
    materialize(cluster.root, cluster_home, environment, REFERENCE, config=config)
    materialize(cluster.root, cluster_home, environment, SOURCES, DAYS, config=config)
    materialize(cluster.root, cluster_home, environment, FEATURES, DAYS, config=config)

    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    store = delta_store_from_environment()
    assert store is not None and store.is_object_store

    # (a) the same rows, day by day, and the same versions as the embedded warehouse's
    with open_warehouse(embedded.storage.warehouse) as connection:
        expected = {name: sorted(row_digests(connection, f"features.{name}", by_day=True)) for name in FEATURE_SETS}
        expected_versions = connection.execute(
            "SELECT asset, partition_key, version FROM registry.partition_versions "
            "WHERE asset LIKE 'features/%' ORDER BY ALL").fetchall()
    got_versions = []
    for name in FEATURE_SETS:
        assert len(expected[name]) == 6 and all(count > 0 for _, count, _ in expected[name]), name
        assert delta_digests(store, name) == expected[name], name
        index = store.table(delta_versions_path(name)).to_pyarrow_table().to_pylist()
        got_versions += [(f"features/{name}", row["partition_key"], row["version"]) for row in index]
    assert sorted(got_versions) == expected_versions
    with open_warehouse(cluster.storage.warehouse) as connection:  # the warehouse holds no feature table
        assert connection.execute("SELECT count(*) FROM information_schema.tables "
                                  "WHERE table_schema = 'features'").fetchall()[0][0] == 0
        # ... nor a source: they are Delta tables too, loaded by the workers in one commit each
        assert connection.execute("SELECT count(*) FROM information_schema.tables "
                                  "WHERE table_schema = 'source'").fetchall()[0][0] == 0
    workers = {pid for name, pid in cluster_services.pids().items() if name.startswith("worker-")}
    for name in ("airports", "planes"):  # the reference sources: the whole table, one commit, one version
        with open_warehouse(embedded.storage.warehouse) as connection:
            expected_rows = row_digests(connection, f'source."{name}"')
            expected_source_versions = dict(connection.execute(
                "SELECT partition_key, version FROM registry.partition_versions WHERE asset = ?",
                [f"source/{name}"]).fetchall())
        memory = duckdb.connect()
        memory.register("delta", store.dataset(delta_source_path(name)))
        assert row_digests(memory, "delta") == expected_rows, name
        index = store.table(delta_source_versions_path(name)).to_pyarrow_table().to_pylist()
        assert {row["partition_key"]: row["version"] for row in index} == expected_source_versions, name
        commits = store.commits(delta_source_path(name))
        assert len(commits) == 1 and commits[0]["whole"] and commits[0]["pid"] in workers, (name, commits)
    for name in DAILY_SOURCES:
        with open_warehouse(embedded.storage.warehouse) as connection:
            expected_rows = sorted(row_digests(connection, f'source."{name}"', by_day=True))
            expected_source_versions = dict(connection.execute(
                "SELECT partition_key, version FROM registry.partition_versions WHERE asset = ?",
                [f"source/{name}"]).fetchall())
        memory = duckdb.connect()
        memory.register("delta", store.dataset(delta_source_path(name)))
        assert len(expected_rows) == 6 and sorted(row_digests(memory, "delta", by_day=True)) == expected_rows, name
        index = store.table(delta_source_versions_path(name)).to_pyarrow_table().to_pylist()
        assert {row["partition_key"]: row["version"] for row in index} == expected_source_versions, name
        commits = store.commits(delta_source_path(name))
        assert len(commits) == 1 and commits[0]["pid"] in workers, (name, commits)

    # (b) one commit per partition, made by the worker processes, partitions of one run computed at the same time
    intervals, by_set = [], {}
    for name in FEATURE_SETS:
        commits = store.commits(delta_feature_path(name))
        assert sorted(commit["first_day"] for commit in commits) == [
            (FIRST + dt.timedelta(days=offset)).isoformat() for offset in range(6)], name
        assert {commit["pid"] for commit in commits} <= workers
        spans = [(commit["started_at"], commit["timestamp_ms"] / 1000, commit["pid"]) for commit in commits]
        by_set[name] = overlapping_pairs(spans)
        intervals += spans
    assert {pid for _, _, pid in intervals} == workers  # both workers computed partitions
    # partitions of the backfill computed at the same time in the two workers (the pairs within one feature set
    # depend on how dask interleaves the four steps' tasks: printed, not asserted)
    overlapping = overlapping_pairs(intervals)
    assert overlapping > 0, intervals
    busy = sum(end - start for start, end, _ in intervals)
    wall = max(end for _, end, _ in intervals) - min(start for start, _, _ in intervals)
    print(f"partitions: {len(intervals)}, summed compute {busy:.1f} s over {wall:.1f} s of wall time "
          f"(mean concurrency {busy / wall:.2f}); {overlapping} overlapping pairs, per feature set {by_set}")

    with open_instance(cluster_home) as instance:
        runs = instance.get_runs()
        assert len(runs) == 3 and all(run.status == dg.DagsterRunStatus.SUCCESS for run in runs)


def paused_on(day: dt.date, signal_file: str, release_file: str):
    """compute_partition, stopping before its commit (the pause point) for `day`, once: when the signal file
    exists (dask's retry on another worker), it waits for the release file, then computes and commits."""

    def run(task: PartitionTask):
        if task.first == day and not Path(signal_file).exists():
            os.environ["ML_PLATFORM_PAUSE_AT"] = "feature-partition-computed"
            os.environ["ML_PLATFORM_PAUSE_SIGNAL"] = signal_file
        elif task.first == day:
            deadline = time.monotonic() + 300
            while not Path(release_file).exists() and time.monotonic() < deadline:
                time.sleep(0.1)
        try:
            return compute_partition(task)
        finally:
            os.environ.pop("ML_PLATFORM_PAUSE_AT", None)

    return run


def test_a_worker_killed_mid_partition_leaves_the_last_version_intact_and_the_retry_commits_the_partition(
        make_project, cluster_services, tmp_path, monkeypatch):
    from distributed import Client

    project = make_project(name="killed")
    home = tmp_path / "home"
    home.mkdir()
    shutil.copyfile(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
    base = {key: value for key, value in os.environ.items() if key != "DAGSTER_HOME"}
    materialize(project.root, home, base, REFERENCE)
    materialize(project.root, home, base, SOURCES, "2013-01-01...2013-01-02")
    started = cluster_services.start(workers=2, ML_PLATFORM_PROJECT=str(project.root))
    for name, value in {**started, FEATURE_TABLES_VARIABLE: f"{TABLES}-killed"}.items():
        monkeypatch.setenv(name, value)
    store = delta_store_from_environment()
    catalog = load_catalog(project.specs_dir, project.root)
    feature_set = catalog.feature_sets["disruption_history"]
    path = delta_feature_path(feature_set.name)
    _, _, tasks = stale_partitions(project.storage.warehouse, store, catalog, feature_set,
                                   dt.date(2013, 1, 1), dt.date(2013, 1, 2))
    first_day, second_day = tasks
    signal_file = tmp_path / "paused"
    with Client(started["ML_PLATFORM_DASK_ADDRESS"], timeout=60) as client:
        client.submit(compute_partition, first_day, pure=False).result(timeout=300)
        version, rows = store.version(path), store.table(path).to_pyarrow_table()
        assert version is not None and rows.num_rows > 0

        release_file = tmp_path / "released"
        future = client.submit(paused_on(second_day.first, str(signal_file), str(release_file)), second_day,
                               pure=False)
        deadline = time.monotonic() + 300
        while not signal_file.exists() or not signal_file.read_text():
            assert time.monotonic() < deadline and not future.done(), "the partition never reached its pause point"
            time.sleep(0.1)
        pid = int(signal_file.read_text())
        workers = {name: worker for name, worker in cluster_services.pids().items() if name.startswith("worker-")}
        assert pid in workers.values()  # the partition is computed in a worker process, not here
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while True:  # the process is gone (it was not reaped by us: poll its /proc entry)
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            assert time.monotonic() < deadline
            time.sleep(0.05)

        # the table's last version is the one before the kill, with the first day's rows only
        assert store.version(path) == version
        after_kill = store.table(path).to_pyarrow_table()
        assert after_kill.num_rows == rows.num_rows and after_kill.equals(rows)
        assert {day.isoformat() for day in after_kill.column("partition_date").to_pylist()} == {"2013-01-01"}
        assert not [row for row in store.table(delta_versions_path(feature_set.name)).to_pyarrow_table().to_pylist()
                    if row["partition_key"] == "2013-01-02"]

        # dask runs the killed task again on the other worker, and that retry commits the partition
        release_file.write_text("go")
        commit, proof = future.result(timeout=300)
    survivor = next(worker for worker in workers.values() if worker != pid)
    assert commit.pid == survivor and commit.first_day == second_day.first and commit.rows > 0 and proof.passed
    assert store.version(path) == version + 1
    final = store.table(path).to_pyarrow_table()
    assert final.num_rows == rows.num_rows + commit.rows
    index = store.table(delta_versions_path(feature_set.name)).to_pyarrow_table().to_pylist()
    assert sorted(row["partition_key"] for row in index) == ["2013-01-01", "2013-01-02"]
    # the same rows as the embedded computation of the same two days
    embedded = make_project(name="embedded")
    embedded_home = tmp_path / "embedded_home"
    embedded_home.mkdir()
    shutil.copyfile(REPO_ROOT / "dagster.yaml", embedded_home / "dagster.yaml")
    plain = {key: value for key, value in base.items() if key != FEATURE_TABLES_VARIABLE}
    materialize(embedded.root, embedded_home, plain, REFERENCE)
    materialize(embedded.root, embedded_home, plain, f"{SOURCES} or key:features/disruption_history",
                "2013-01-01...2013-01-02")
    with open_warehouse(embedded.storage.warehouse) as connection:
        expected = sorted(row_digests(connection, "features.disruption_history", by_day=True))
    assert delta_digests(store, feature_set.name) == expected
