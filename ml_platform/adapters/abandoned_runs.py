"""Runs left STARTED or STARTING by a process that died: listed, and marked failed with a message.

Written for Dagster 1.13.27. Dagster's own run monitoring (`run_monitoring` in dagster.yaml, run by the daemon:
dagster._daemon.monitoring.run_monitoring) cannot see these runs: it fails a STARTED run only through the run
launcher's `check_run_worker_health`, which neither the default launcher nor the in-memory launcher of
`ml-platform replay` supports, and the demo's chain executes its runs in its own process (`execute_in_process`),
with no run worker at all. A run whose process died would hold the instance's one run slot (dagster.yaml's
`max_concurrent_runs: 1`) for ever. The platform tags each run it executes in itself with its process
(`ml_platform.tags.this_process`, checked in `ml_platform.chain.instance.fail_abandoned_runs`); this module fails
such a run the way Dagster's run monitoring does, through `DagsterInstance.report_run_failed`
(dagster._core.instance.methods.event_methods): a RUN_FAILURE event carrying the message, the run's status
FAILURE. Re-check on another version (ml_platform_tests/adapters/test_dagster_version.py).
"""

from __future__ import annotations

import dagster as dg


def runs_in_progress(instance: dg.DagsterInstance) -> list[dg.DagsterRun]:
    """The instance's runs STARTED or STARTING: those holding its run slots."""
    return list(instance.get_runs(dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED,
                                                          dg.DagsterRunStatus.STARTING])))


def mark_failed(instance: dg.DagsterInstance, run: dg.DagsterRun, message: str) -> None:
    """End a run as FAILURE from outside its execution, the message in its event log (as run monitoring does)."""
    instance.report_run_failed(run, message)
