"""Crashes: a process killed with SIGKILL in the middle of a write leaves nothing half-written, and a rerun works."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest

from ml_platform.chain.model_chain import run_chain
from ml_platform.chain.runner import Chain
from ml_platform.features.library import load_catalog
from ml_platform.names import DAILY_JOB, PROCESS_TAG, REFERENCE_JOB, scoring_job_name, training_job_name
from ml_platform.storage.artifacts import file_sha256
from ml_platform.storage.warehouse import open_warehouse, table_exists
from ml_platform_tests.helpers import instance_of

# drives chains of Dagster runs: the full suite only (`pytest -m "not slow"` leaves it out)
pytestmark = pytest.mark.slow

CHILD = """
import datetime as dt, sys
from ml_platform.chain.runner import Chain
from ml_platform.features.library import load_catalog
from ml_platform.names import DAILY_JOB, scoring_job_name, training_job_name
from ml_platform.project import Project
project = Project.from_environment(sys.argv[1])  # the parent's instance: DAGSTER_HOME, as the command line reads it
runner = Chain(project, load_catalog(project.specs_dir, project.root), say=print)
if sys.argv[2] == "daily":
    runner.run(DAILY_JOB, "daily", date_range=(dt.date(2013, 1, 1), dt.date(2013, 2, 2)))
elif sys.argv[2] == "scoring":
    runner.run(scoring_job_name("flight_delay"), "scoring", date_range=(dt.date(2013, 2, 1), dt.date(2013, 2, 2)))
else:
    key = runner.add_training_run("flight_delay")
    runner.run(training_job_name("flight_delay"), "training", partition_key=key)
"""


def kill_at(project, job: str, point: str, tmp_path: Path) -> None:
    """Run a job in a child process that pauses at the named point, and SIGKILL it there."""
    signal_file = tmp_path / f"paused-{point.replace(':', '-')}"
    environment = {**os.environ, "ML_PLATFORM_PAUSE_AT": point, "ML_PLATFORM_PAUSE_SIGNAL": str(signal_file)}
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(project.root), job], env=environment,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 240
    while not signal_file.exists():
        if child.poll() is not None:
            pytest.fail(f"the child ended before reaching {point}: {child.stdout.read().decode()[-2000:]}")
        if time.monotonic() > deadline:
            os.killpg(child.pid, signal.SIGKILL)
            pytest.fail(f"the child never reached {point}")
        time.sleep(0.05)
    os.killpg(child.pid, signal.SIGKILL)
    assert child.wait(timeout=30) == -signal.SIGKILL


def visible_artifacts(project, folder: str) -> list[Path]:
    root = project.storage.artifacts / folder
    return [path for path in root.rglob("*") if path.is_file() and not path.name.startswith(".incoming-")]


def load_january(project) -> Chain:
    runner = Chain(project, load_catalog(project.specs_dir, project.root), say=lambda line: None)
    assert runner.run(REFERENCE_JOB, "reference").success
    assert runner.run(DAILY_JOB, "daily", date_range=(dt.date(2013, 1, 1), dt.date(2013, 2, 2))).success
    return runner


def test_killed_while_loading_a_day_range_leaves_no_rows_and_a_rerun_loads(make_project, dagster_home, tmp_path):
    project = make_project()
    Chain(project, load_catalog(project.specs_dir, project.root), say=lambda line: None).run(REFERENCE_JOB, "ref")
    kill_at(project, "daily", "partition-range-written", tmp_path)
    with open_warehouse(project.storage.warehouse) as connection:  # DuckDB recovers from its write-ahead log
        if table_exists(connection, "source", "flights"):
            assert connection.execute("SELECT count(*) FROM source.flights").fetchall() == [(0,)]
        versions = connection.execute("SELECT count(*) FROM registry.partition_versions "
                                      "WHERE asset = 'source/flights'").fetchall()
    assert versions == [(0,)]
    load_january(project)
    with open_warehouse(project.storage.warehouse) as connection:
        assert connection.execute("SELECT count(*) FROM source.flights WHERE month = 1").fetchall() == [(27004,)]


@pytest.mark.parametrize("point, folder, registry_table", [
    ("artifact-written:snapshots", "snapshots", "snapshots"),
    ("artifact-written:models", "models", "models"),
])
def test_killed_while_writing_an_artifact_leaves_none_visible_and_a_rerun_completes(
        make_project, dagster_home, tmp_path, point, folder, registry_table):
    project = make_project()
    runner = load_january(project)
    kill_at(project, "training", point, tmp_path)
    assert visible_artifacts(project, folder) == []
    with open_warehouse(project.storage.warehouse) as connection:
        assert connection.execute(f"SELECT count(*) FROM registry.{registry_table}").fetchall() == [(0,)]
    key = runner.add_training_run("flight_delay")
    assert runner.run(training_job_name("flight_delay"), "rerun", partition_key=key).success, runner.runs[-1].failures
    for path in visible_artifacts(project, "snapshots") + visible_artifacts(project, "models"):
        assert path.name.startswith(file_sha256(path)), f"{path} does not hold what its name promises"


def test_killed_while_writing_predictions_leaves_the_day_unscored_and_a_rerun_scores_it(
        make_project, dagster_home, tmp_path):
    project = make_project()
    first = run_chain(project, "flight_delay", score_days=2, say=lambda line: None)  # scores Feb 1 and 2
    with open_warehouse(project.storage.warehouse) as connection:
        before = connection.execute("SELECT count(*) FROM predictions.flight_delay").fetchall()
    kill_at(project, "scoring", "predictions-written", tmp_path)
    with open_warehouse(project.storage.warehouse) as connection:
        assert connection.execute("SELECT count(*) FROM predictions.flight_delay").fetchall() == before
    runner = Chain(project, load_catalog(project.specs_dir, project.root), say=lambda line: None)
    assert runner.run(scoring_job_name("flight_delay"), "rerun",
                      date_range=(dt.date(2013, 2, 1), dt.date(2013, 2, 2))).success, runner.runs[-1].failures
    with open_warehouse(project.storage.warehouse) as connection:
        days = connection.execute("SELECT DISTINCT partition_date, model_version FROM predictions.flight_delay__latest "
                                  "ORDER BY 1").fetchall()
    assert [str(day)[:10] for day, _ in days] == ["2013-02-01", "2013-02-02"]
    assert {version for _, version in days} == {first.champion.model_version}


def test_a_run_left_started_by_a_killed_process_is_marked_failed_at_the_next_start(
        make_project, dagster_home, tmp_path):
    project = make_project()
    load_january(project)
    kill_at(project, "training", "artifact-written:models", tmp_path)
    instance = instance_of(project)
    [stale] = instance.get_runs(dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED]))
    pid = int(stale.tags[PROCESS_TAG].split(":")[1])
    said = []
    runner = Chain(project, load_catalog(project.specs_dir, project.root), say=said.append)
    assert said == [f"  ! marked run {stale.run_id[:8]} ({training_job_name('flight_delay')}) failed: "
                    f"its process {pid} is gone"]
    assert instance.get_run_by_id(stale.run_id).status == dg.DagsterRunStatus.FAILURE
    failure = [entry for entry in instance.all_logs(stale.run_id)
               if entry.dagster_event and entry.dagster_event.event_type_value == "PIPELINE_FAILURE"]
    assert f"The process executing this run ({pid}) is gone" in failure[-1].dagster_event.message
    key = runner.add_training_run("flight_delay")
    assert runner.run(training_job_name("flight_delay"), "rerun", partition_key=key).success, runner.runs[-1].failures
    assert instance.get_runs(dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED])) == []
    said.clear()
    Chain(project, load_catalog(project.specs_dir, project.root), say=said.append)
    assert said == []  # nothing left to fail: a finished run is never touched again
