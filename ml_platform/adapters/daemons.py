"""Dagster's daemons driven by hand, one iteration at a time, in this process: what `ml-platform replay` ticks.

Written for Dagster 1.13.27: the scheduler's `launch_scheduled_runs` (dagster._scheduler.scheduler), the sensor
daemon's `execute_sensor_iteration` (dagster._daemon.sensor), the run queue's `QueuedRunCoordinatorDaemon`
(dagster._daemon.run_coordinator), an in-process code location (`WorkspaceProcessContext`,
`InProcessWorkspaceLoadTarget`, `InProcessCodeLocationOrigin`, `LoadableTargetOrigin`), instigator states
(dagster._core.scheduler.instigation; stored by selector in the sqlite schedule storage's instigators table, one
row per code-location origin in its jobs table: dagster._core.storage.schedules.sql_schedule_storage), run filters (dagster._core.storage.dagster_run) and the in-memory run
launcher (dagster._core.launcher.sync_in_memory_run_launcher). Re-check each on another version
(ml_platform_tests/adapters/test_dagster_version.py).
"""

from __future__ import annotations

import datetime as dt
import logging
import sys
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, Iterator

import dagster as dg
from dagster._core.remote_origin import InProcessCodeLocationOrigin
from dagster._core.remote_representation.external import RemoteSchedule
from dagster._core.scheduler.instigation import (InstigatorState, InstigatorStatus, InstigatorType,
                                                 ScheduleInstigatorData, SensorInstigatorData)
from dagster._core.storage.dagster_run import DagsterRunStatus, RunsFilter
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._core.workspace.load_target import InProcessWorkspaceLoadTarget
from dagster._daemon.run_coordinator.queued_run_coordinator_daemon import QueuedRunCoordinatorDaemon
from dagster._daemon.sensor import execute_sensor_iteration
from dagster._scheduler.scheduler import launch_scheduled_runs

from ml_platform.adapters.instance import open_instance
from ml_platform.adapters.pooled_event_log import pooled_event_log
from ml_platform.adapters.stamped_storage import stamped_storages

# runs execute in this process as the queue launches them: the code is already loaded, and the warehouse admits
# one writer anyway
SYNC_LAUNCHER = {"module": "dagster._core.launcher.sync_in_memory_run_launcher", "class": "SyncInMemoryRunLauncher"}
FOREVER = 86400 * 365 * 100  # seconds: purging ticks older than now plus this purges them all
Workspace = WorkspaceProcessContext  # a loaded workspace, what the daemons iterate over


def in_process_instance(home: Path, pooled: bool = True) -> dg.DagsterInstance:
    """The instance of a folder (same storage, same queue), launching its runs in this process; its run and schedule
    databases opened without reading Alembic's scripts (stamped_storages: the instances its ticks build from its
    reference do the same); with `pooled`, its batching event log keeps its databases open (pooled_event_log)."""
    return open_instance(home, overrides={"run_launcher": SYNC_LAUNCHER, **stamped_storages(home),
                                          **(pooled_event_log(home) if pooled else {})})


@contextmanager
def in_process_workspace(instance: dg.DagsterInstance, module: str, working_directory: Path,
                         location_name: str) -> Iterator[WorkspaceProcessContext]:
    """A code location loaded once in this process from a definitions module, under its workspace name."""
    origin = InProcessCodeLocationOrigin(
        LoadableTargetOrigin(executable_path=sys.executable, module_name=module,
                             working_directory=str(working_directory)),
        location_name=location_name)
    with WorkspaceProcessContext(instance, InProcessWorkspaceLoadTarget(origin)) as context:
        yield context


def load_errors(context: WorkspaceProcessContext) -> list[str]:
    """Why the workspace's code locations did not load (empty when they did)."""
    entries = context.create_request_context().get_code_location_entries()
    return [entry.load_error.message.strip() for entry in entries.values() if entry.load_error is not None]


def instigators(context: WorkspaceProcessContext, names: set[str]) -> list[Any]:
    """The workspace's schedules and sensors of the given names."""
    found = []
    for entry in context.create_request_context().get_code_location_entries().values():
        for repository in entry.code_location.get_repositories().values():
            found += [item for item in [*repository.get_schedules(), *repository.get_sensors()] if item.name in names]
    return found


def restart_instigator(instance: dg.DagsterInstance, instigator: Any, start: dt.datetime) -> None:
    """Forget a schedule's or sensor's ticks and state, whichever process stored them; both start afresh at `start`.

    Dagster keeps one state per instigator (its selector: location, repository, name) in the instigators table,
    and one row per code-location origin in the jobs table. `dagster dev` (the UI's daemon) loads the same
    instigators from another origin (a gRPC server), so deleting this origin's row would leave the UI's state
    standing: a sensor's last tick at the wall clock's time, years after the simulated moment, keeps it under its
    minimum interval for ever (it never ticks), and its cursor would survive. So the state is overwritten, for
    every origin, with a fresh one of this origin: no tick yet, no cursor, started at `start` (a schedule would
    otherwise create its state at its first iteration and skip a tick due at that very moment).
    """
    origin_id, selector_id = instigator.get_remote_origin_id(), instigator.selector_id
    instance.purge_ticks(origin_id, selector_id, before=start.timestamp() + FOREVER)  # any origin's, by selector
    if isinstance(instigator, RemoteSchedule):
        kind, data = InstigatorType.SCHEDULE, ScheduleInstigatorData(instigator.cron_schedule, start.timestamp())
    else:
        kind, data = InstigatorType.SENSOR, SensorInstigatorData(
            min_interval=instigator.min_interval_seconds, cursor=None, sensor_type=instigator.sensor_type,
            last_sensor_start_timestamp=start.timestamp())
    fresh = InstigatorState(instigator.get_remote_origin(), kind, InstigatorStatus.DECLARED_IN_CODE, data)
    if instance.get_instigator_state(origin_id, selector_id) is None:
        instance.add_instigator_state(fresh)
    else:
        instance.update_instigator_state(fresh)  # replaces the selector's state, whichever origin wrote it


def instigator_state(instance: dg.DagsterInstance, instigator: Any) -> Any:
    """A schedule's or sensor's stored state (its .instigator_data: last tick, cursor), or None."""
    return instance.get_instigator_state(instigator.get_remote_origin_id(), instigator.selector_id)


def ticks_after(instance: dg.DagsterInstance, instigator: Any, after: float, limit: int = 3) -> list[Any]:
    """A schedule's or sensor's latest ticks after a timestamp (each with .timestamp, .error, .skip_reason)."""
    return instance.get_ticks(instigator.get_remote_origin_id(), instigator.selector_id, limit=limit, after=after)


def scheduler_iteration(context: WorkspaceProcessContext, logger: logging.Logger, at: dt.datetime) -> None:
    """One iteration of the scheduler daemon at `at`: due schedules tick and submit their runs to the queue."""
    for _ in launch_scheduled_runs(context, logger, at.astimezone(dt.timezone.utc), {}):
        pass


def sensor_iteration(context: WorkspaceProcessContext, logger: logging.Logger) -> None:
    """One iteration of the sensor daemon: due sensors tick and submit their runs to the queue."""
    for _ in execute_sensor_iteration(context, logger, None, None):
        pass


def queued_runs(instance: dg.DagsterInstance) -> list[dg.DagsterRun]:
    """Runs waiting in the instance's queue."""
    return instance.get_runs(RunsFilter(statuses=[DagsterRunStatus.QUEUED]))


def runs_in_progress(instance: dg.DagsterInstance) -> list[dg.DagsterRun]:
    """Runs started or starting, which hold the queue's slots."""
    return instance.get_runs(RunsFilter(statuses=[DagsterRunStatus.STARTED, DagsterRunStatus.STARTING]))


class RunQueue:
    """The run-queue daemon, iterated by hand: each iteration launches what the instance's limits admit."""

    def __init__(self) -> None:
        self.stack = ExitStack()
        self.daemon = self.stack.enter_context(QueuedRunCoordinatorDaemon(interval_seconds=1))

    def iterate(self, context: WorkspaceProcessContext) -> None:
        """One iteration; with the in-process launcher each launched run executes before it returns."""
        for _ in self.daemon.run_iteration(context):
            pass

    def close(self) -> None:
        self.stack.close()
