"""dagster-dask's executor chosen by run config through the platform's executor, on a dask LocalCluster of two
worker processes: each step runs in a worker, not in the process that launched the run."""

from __future__ import annotations

import os

import dagster as dg
import pytest

from ml_platform.adapters.executor import platform_executor_for

pytestmark = pytest.mark.slow


@dg.op
def first_pid() -> int:
    """The process this step ran in."""
    return os.getpid()


@dg.op
def second_pid(first: int) -> list[int]:
    """The processes the first step and this one ran in (a dependency: dask runs this one after the first)."""
    return [first, os.getpid()]


@dg.job(executor_def=platform_executor_for(lambda: False))
def two_steps():
    second_pid(first_pid())


def test_a_run_configured_for_dask_executes_its_steps_in_the_local_clusters_worker_processes(tmp_path):
    pytest.importorskip("dagster_dask", reason="the cluster extra is not installed (pip install -e '.[cluster]')")
    local = {"n_workers": 2, "processes": True, "host": "127.0.0.1", "dashboard_address": None}
    with dg.DagsterInstance.local_temp(str(tmp_path)) as instance:
        with dg.execute_job(dg.reconstructable(two_steps), instance, run_config={
                "execution": {"config": {"dask": {"cluster": {"local": local}}}}}) as result:
            assert result.success
            pids = {event.pid for event in result.all_events
                    if event.event_type == dg.DagsterEventType.STEP_SUCCESS}
            outputs = set(result.output_for_node("second_pid"))
    assert pids and os.getpid() not in pids
    assert outputs == pids  # the steps' own os.getpid() is the process their events name
