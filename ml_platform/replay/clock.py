"""`ml-platform replay`: live through past days on a simulated clock, through Dagster's own daemon code.

For each simulated moment the replay freezes Dagster's clock and runs one iteration of the scheduler and of the
sensor daemon (the functions `dagster-daemon` runs), so the project's schedules and retraining sensor tick exactly
as they would in production, record their ticks, and submit runs to the instance's queue. The queue is then
drained by the run-queue daemon's own iteration with the clock running again, and each run executes in this
process (an in-memory launcher instead of one process per run: the code is already loaded, and the warehouse
admits one writer anyway). Runs, ticks and materializations land in the project's instance, as if the daemon had
lived through those days.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import sys
import time
import zoneinfo
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Callable, Iterator

import dagster as dg
from dagster._core.instance.ref import InstanceRef
from dagster._core.remote_origin import InProcessCodeLocationOrigin
from dagster._core.remote_representation.external import RemoteSchedule
from dagster._core.scheduler.instigation import (InstigatorState, InstigatorStatus, InstigatorType,
                                                 ScheduleInstigatorData)
from dagster._core.storage.dagster_run import DagsterRunStatus, RunsFilter
from dagster._core.test_utils import freeze_time
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._core.workspace.load_target import InProcessWorkspaceLoadTarget
from dagster._daemon.run_coordinator.queued_run_coordinator_daemon import QueuedRunCoordinatorDaemon
from dagster._daemon.sensor import execute_sensor_iteration
from dagster._scheduler.scheduler import launch_scheduled_runs

from ml_platform.automation.factory import (OUTCOMES_TIME, outcomes_schedule_name, retraining_sensor_name,
                                            scoring_schedule_name)
from ml_platform.errors import PlatformError
from ml_platform.tags import REASON_TAG
from ml_platform.project import Project

LOCATION_NAME = "ml_platform"  # the code location's name in workspace.yaml, so the UI shows the same schedules
DEFINITIONS_MODULE = "ml_platform.definitions"
MAX_QUEUE_ITERATIONS = 50  # a moment launches a few runs; more iterations mean the queue is stuck
SYNC_LAUNCHER = {"module": "dagster._core.launcher.sync_in_memory_run_launcher", "class": "SyncInMemoryRunLauncher"}


class ReplayError(PlatformError, RuntimeError):
    """The replay cannot start or a tick could not be evaluated; the message says which and why."""


@dataclass
class ReplayRun:
    """One run a tick launched during the replay."""

    run_id: str
    job: str
    partition: str | None
    status: str
    reason: str
    failures: list[str]
    seconds: float


@dataclass
class Moment:
    """What happened at one simulated moment: the ticks evaluated and the runs they launched."""

    at: dt.datetime
    runs: list[ReplayRun] = field(default_factory=list)
    skips: list[str] = field(default_factory=list)


def replay_instance(home: str) -> dg.DagsterInstance:
    """The project's instance (same storage, same queue), with runs launched in this process."""
    return dg.DagsterInstance.from_ref(InstanceRef.from_dir(home, overrides={"run_launcher": SYNC_LAUNCHER}))


@contextmanager
def replay_workspace(project: Project, instance: dg.DagsterInstance) -> Iterator[WorkspaceProcessContext]:
    """The project's code location, loaded once in this process under its workspace name."""
    origin = InProcessCodeLocationOrigin(
        LoadableTargetOrigin(executable_path=sys.executable, module_name=DEFINITIONS_MODULE,
                             working_directory=str(project.root)),
        location_name=LOCATION_NAME)
    with WorkspaceProcessContext(instance, InProcessWorkspaceLoadTarget(origin)) as context:
        entries = context.create_request_context().get_code_location_entries()
        for entry in entries.values():
            if entry.load_error is not None:
                raise ReplayError(f"the project's definitions did not load: {entry.load_error.message.strip()}")
        yield context


class Clock:
    """Steps Dagster's daemons through simulated moments of a project's instance."""

    def __init__(self, context: WorkspaceProcessContext, model_names: list[str]):
        self.context = context
        self.instance = context.instance
        self.logger = logging.getLogger("ml_platform.replay")
        self.queue = QueuedRunCoordinatorDaemon(interval_seconds=1)
        self.stack = ExitStack()
        self.stack.enter_context(self.queue)
        wanted = set()
        for name in model_names:
            wanted |= {scoring_schedule_name(name), outcomes_schedule_name(name), retraining_sensor_name(name)}
        self.instigators = self._instigators(wanted)
        self.previous: float = 0.0  # the last simulated moment, as a timestamp

    def _instigators(self, names: set[str]) -> list:
        found = []
        for entry in self.context.create_request_context().get_code_location_entries().values():
            for repository in entry.code_location.get_repositories().values():
                found += [item for item in [*repository.get_schedules(), *repository.get_sensors()]
                          if item.name in names]
        return found

    def reset(self, start: dt.datetime) -> None:
        """Forget earlier ticks of the schedules and sensors, and start the schedules at the simulated start.

        The schedules run by default (declared in code), so the scheduler would otherwise create their state at
        its first iteration and skip a tick due at that very moment; the sensors' state is made by their daemon.
        """
        for instigator in self.instigators:
            origin_id, selector_id = instigator.get_remote_origin_id(), instigator.selector_id
            self.instance.purge_ticks(origin_id, selector_id, before=time.time() + 86400 * 365 * 100)
            if self.instance.get_instigator_state(origin_id, selector_id) is not None:
                self.instance.delete_instigator_state(origin_id, selector_id)
            if isinstance(instigator, RemoteSchedule):
                self.instance.add_instigator_state(InstigatorState(
                    instigator.get_remote_origin(), InstigatorType.SCHEDULE, InstigatorStatus.DECLARED_IN_CODE,
                    ScheduleInstigatorData(instigator.cron_schedule, start.timestamp())))

    def tick(self, at: dt.datetime) -> Moment:
        """Evaluate the schedules and sensors due at a simulated moment, then run what they submitted."""
        moment = Moment(at)
        known = {run.run_id for run in self.instance.get_runs(limit=50)}
        with freeze_time(at):
            for _ in launch_scheduled_runs(self.context, self.logger, at.astimezone(dt.timezone.utc), {}):
                pass
        self._drain(moment, known)
        known |= {run.run_id for run in moment.runs}
        with freeze_time(at):
            for _ in execute_sensor_iteration(self.context, self.logger, None, None):
                pass
        self._drain(moment, known)
        moment.skips = self._skips()
        self.previous = at.timestamp()
        return moment

    def _drain(self, moment: Moment, known: set[str]) -> None:
        from ml_platform.chain.runner import failure_reasons

        for _ in range(MAX_QUEUE_ITERATIONS):
            queued = self.instance.get_runs(RunsFilter(statuses=[DagsterRunStatus.QUEUED]))
            if not queued:
                break
            for _ in self.queue.run_iteration(self.context):  # each launched run executes before it returns
                pass
        else:
            busy = self.instance.get_runs(RunsFilter(statuses=[DagsterRunStatus.STARTED, DagsterRunStatus.STARTING]))
            raise ReplayError(
                f"{len(queued)} run(s) stay queued ({', '.join(run.run_id[:8] for run in queued)}): the instance "
                f"admits {self.instance.get_concurrency_config().run_queue_config.max_concurrent_runs} run(s) at a "
                f"time and these are still in progress: {', '.join(run.run_id[:8] for run in busy) or 'none'} "
                f"(a run left behind by a killed process? mark it failed in the UI, then replay again)")
        for run in reversed(self.instance.get_runs(limit=50)):
            if run.run_id in known or run.run_id in {item.run_id for item in moment.runs}:
                continue
            stats = self.instance.get_run_stats(run.run_id)
            seconds = (stats.end_time or 0) - (stats.start_time or 0) if stats.start_time else 0.0
            events = [entry.dagster_event for entry in self.instance.all_logs(run.run_id) if entry.dagster_event]
            moment.runs.append(ReplayRun(run.run_id, run.job_name, run.tags.get("dagster/partition"),
                                         run.status.value, run.tags.get(REASON_TAG, ""),
                                         failure_reasons(events), seconds))

    def _skips(self) -> list[str]:
        """Why the ticks since the previous moment launched nothing; a tick that failed stops the replay."""
        skips = []
        for instigator in self.instigators:
            ticks = self.instance.get_ticks(instigator.get_remote_origin_id(), instigator.selector_id, limit=3,
                                            after=self.previous)
            for tick in ticks:
                if tick.error is not None:
                    raise ReplayError(f"{instigator.name} failed its tick at "
                                      f"{dt.datetime.fromtimestamp(tick.timestamp, dt.timezone.utc)}: "
                                      f"{tick.error.message.strip()}")
                if tick.skip_reason:
                    skips.append(f"{instigator.name}: {tick.skip_reason}")
        return skips

    def close(self) -> None:
        self.stack.close()


def moments(start: dt.date, end: dt.date, timezone: str, predict_time: str) -> Iterator[dt.datetime]:
    """The simulated moments of a replay, just after each tick: every morning and every prediction time.

    The clock starts on the morning before `start` (so that a model can be trained before `start` is scored)
    and stops after the prediction tick of `end`: days `start` to `end` + days ahead are scored, and the days
    before `end` are judged once their labels are known.
    """
    zone = zoneinfo.ZoneInfo(timezone)
    hour, minute = (int(part) for part in predict_time.split(":"))
    day = start - dt.timedelta(days=1)
    while day <= end:
        yield dt.datetime.combine(day, OUTCOMES_TIME, zone) + dt.timedelta(seconds=30)
        yield dt.datetime.combine(day, dt.time(hour, minute), zone) + dt.timedelta(seconds=30)
        day += dt.timedelta(days=1)


@contextmanager
def project_environment(project: Project) -> Iterator[None]:
    """Point the definitions module at the project (it reads the environment when it loads), then restore."""
    wanted = {"ML_PLATFORM_PROJECT": str(project.root), "ML_PLATFORM_DATA": str(project.data_dir)}
    before = {name: os.environ.get(name) for name in wanted}
    os.environ.update(wanted)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def run_replay(project: Project, home: str, model_names: list[str], timezone: str, predict_time: str,
               start: dt.date, end: dt.date, on_moment: Callable[[Moment], None]) -> None:
    """Tick through every simulated moment from the morning before `start` to the prediction time of `end`."""
    instance = replay_instance(home)
    with project_environment(project), replay_workspace(project, instance) as context:
        clock = Clock(context, model_names)
        try:
            first = next(moments(start, end, timezone, predict_time))
            clock.reset(first - dt.timedelta(minutes=1))
            for at in moments(start, end, timezone, predict_time):
                on_moment(clock.tick(at))
        finally:
            clock.close()
