"""Concurrency: runs started at once in separate processes share the one-writer DuckDB file without failing or
losing writes (each waits while another process holds the lock)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from ml_platform.chain.runner import Chain
from ml_platform.features.library import load_catalog
from ml_platform.names import REFERENCE_JOB
from ml_platform.storage.warehouse import open_warehouse

# drives chains of Dagster runs: the full suite only (`pytest -m "not slow"` leaves it out)
pytestmark = pytest.mark.slow

SELECTION = "group:features or key:source/flights or key:source/weather"
RANGES = ("2013-01-01...2013-01-10", "2013-01-11...2013-01-20", "2013-01-21...2013-01-31")


def test_runs_started_at_once_all_succeed_and_every_write_lands(make_project, dagster_home):
    project = make_project()
    assert Chain(project, load_catalog(project.specs_dir, project.root), say=lambda line: None).run(
        REFERENCE_JOB, "reference").success
    environment = {**os.environ, "ML_PLATFORM_PROJECT": str(project.root)}
    dagster = os.path.join(os.path.dirname(sys.executable), "dagster")
    children = [subprocess.Popen([dagster, "asset", "materialize", "-m", "ml_platform.definitions",
                                  "--select", SELECTION, "--partition-range", span],
                                 cwd=project.root, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
                for span in RANGES]
    outputs = [child.communicate(timeout=600)[0].decode() for child in children]
    for child, output in zip(children, outputs):
        assert child.returncode == 0, output[-3000:]
    with open_warehouse(project.storage.warehouse) as connection:
        days = connection.execute("SELECT count(DISTINCT partition_date), count(*) FROM source.flights").fetchall()
        features = connection.execute(
            "SELECT count(DISTINCT partition_date), count(*) FROM features.disruption_history").fetchall()
        versions = connection.execute("SELECT count(*) FROM registry.partition_versions "
                                      "WHERE asset = 'features/disruption_history'").fetchall()
    assert days == [(31, 27004)]
    assert features == [(31, 27004)]
    assert versions == [(31,)]


def test_a_backfill_with_the_multiprocess_executor_runs_steps_in_parallel_processes_without_lock_failures(
        make_project, dagster_home):
    project = make_project()
    assert Chain(project, load_catalog(project.specs_dir, project.root), say=lambda line: None).run(
        REFERENCE_JOB, "reference").success
    dagster = os.path.join(os.path.dirname(sys.executable), "dagster")
    completed = subprocess.run(
        [dagster, "asset", "materialize", "-m", "ml_platform.definitions", "--select", SELECTION,
         "--partition-range", "2013-01-01...2013-01-31",
         "--config-json", '{"execution": {"config": {"multiprocess": {"max_concurrent": 2}}}}'],
        cwd=project.root, env={**os.environ, "ML_PLATFORM_PROJECT": str(project.root)},
        capture_output=True, text=True, timeout=900)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "Executing steps using multiprocess executor" in completed.stderr
    with open_warehouse(project.storage.warehouse) as connection:
        for name in ("flight_schedule", "origin_weather_eve", "aircraft_and_destination", "disruption_history"):
            assert connection.execute(f"SELECT count(DISTINCT partition_date), count(*) FROM features.{name}"
                                      ).fetchall() == [(31, 27004)]
