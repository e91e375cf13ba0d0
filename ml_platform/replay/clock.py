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
import re
import zoneinfo
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import dagster as dg

from ml_platform import clock as platform_clock
from ml_platform.adapters import daemons
from ml_platform.adapters.clock import frozen_clock
from ml_platform.automation.factory import OUTCOMES_TIME
from ml_platform.chain.runner import failure_reasons
from ml_platform.errors import PlatformError
from ml_platform.names import (PARTITION_TAG, REASON_TAG, outcomes_schedule_name, retraining_sensor_name,
                               scoring_schedule_name, sources_schedule_name)
from ml_platform.project import MODELS_VARIABLE, Project
from ml_platform.reuse import reused
from ml_platform.storage.warehouse import held_open
from ml_platform.tags import this_process

LOCATION_NAME = "ml_platform"  # the code location's name in workspace.yaml, so the UI shows the same schedules
DEFINITIONS_MODULE = "ml_platform.definitions"
MAX_QUEUE_ITERATIONS = 50  # a moment launches a few runs; more iterations mean the queue is stuck
MOMENTS_PER_DAY = 2  # the morning tick (outcomes) and the prediction tick (scoring): see moments()
RECENT_RUNS = 50  # a moment launches a few runs: the newest this many hold them all


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
    # what each model's retraining sensor decided at this moment: requested a run, or skipped and why
    sensors: dict[str, list[str]] = field(default_factory=dict)


@contextmanager
def replay_workspace(project: Project, instance: dg.DagsterInstance) -> Iterator[daemons.Workspace]:
    """The project's code location, loaded once in this process under its workspace name."""
    with daemons.in_process_workspace(instance, DEFINITIONS_MODULE, project.root, LOCATION_NAME) as context:
        errors = daemons.load_errors(context)
        if errors:
            raise ReplayError(f"the project's definitions did not load: {errors[0]}")
        yield context


class Clock:
    """Steps Dagster's daemons through simulated moments of a project's instance."""

    def __init__(self, context: daemons.Workspace, model_names: list[str]):
        self.context = context
        self.instance = context.instance
        self.logger = logging.getLogger("ml_platform.replay")
        self.queue = daemons.RunQueue()
        wanted = set()
        for name in model_names:
            wanted |= {scoring_schedule_name(name), outcomes_schedule_name(name), retraining_sensor_name(name),
                       sources_schedule_name(name)}  # the last: models over an entity spec only
        self.instigators = daemons.instigators(context, wanted)
        self.sensor_models = {retraining_sensor_name(name): name for name in model_names}
        self.previous: float = 0.0  # the last simulated moment, as a timestamp

    def reset(self, start: dt.datetime) -> None:
        """Forget the earlier ticks and state of every schedule and sensor the replay drives (also those stored by
        the UI's daemon on the wall clock: last tick, cursor), and start them all at the simulated start."""
        for instigator in self.instigators:
            daemons.restart_instigator(self.instance, instigator, start)
            state = daemons.instigator_state(self.instance, instigator)
            data = state.instigator_data if state is not None else None
            if data is None or getattr(data, "cursor", None) is not None or \
                    (getattr(data, "last_tick_timestamp", None) or 0) > start.timestamp():
                raise ReplayError(f"{instigator.name}: its stored state could not be reset for the replay: {data}")

    def tick(self, at: dt.datetime) -> Moment:
        """Evaluate the schedules and sensors due at a simulated moment, then run what they submitted."""
        moment = Moment(at)
        known = {run.run_id for run in self.instance.get_runs(limit=RECENT_RUNS)}
        with frozen_clock(at):
            daemons.scheduler_iteration(self.context, self.logger, at)
        with platform_clock.simulated(at):  # what the runs write (promotions, scores, records) carries `at`
            self._drain(moment, known)
        known |= {run.run_id for run in moment.runs}
        with frozen_clock(at):
            daemons.sensor_iteration(self.context, self.logger)
        with platform_clock.simulated(at):
            self._drain(moment, known)
        moment.skips, moment.sensors = self._decisions()
        self.previous = at.timestamp()
        return moment

    def _drain(self, moment: Moment, known: set[str]) -> None:
        for _ in range(MAX_QUEUE_ITERATIONS):
            queued = daemons.queued_runs(self.instance)
            if not queued:
                break
            for run in queued:  # each executes in this process: a replay killed mid-run leaves it to be failed
                self.instance.add_run_tags(run.run_id, this_process())
            self.queue.iterate(self.context)
        else:
            busy = daemons.runs_in_progress(self.instance)
            raise ReplayError(
                f"{len(queued)} run(s) stay queued ({', '.join(run.run_id[:8] for run in queued)}): the instance "
                f"admits {self.instance.get_concurrency_config().run_queue_config.max_concurrent_runs} run(s) at a "
                f"time and these are still in progress: {', '.join(run.run_id[:8] for run in busy) or 'none'} "
                f"(if no process runs it any more, mark it failed in the UI, then replay again)")
        for run in reversed(self.instance.get_runs(limit=RECENT_RUNS)):
            if run.run_id in known or run.run_id in {item.run_id for item in moment.runs}:
                continue
            stats = self.instance.get_run_stats(run.run_id)
            seconds = (stats.end_time or 0) - (stats.start_time or 0) if stats.start_time else 0.0
            events = [entry.dagster_event for entry in self.instance.all_logs(run.run_id) if entry.dagster_event]
            moment.runs.append(ReplayRun(run.run_id, run.job_name, run.tags.get(PARTITION_TAG),
                                         run.status.value, run.tags.get(REASON_TAG, ""),
                                         failure_reasons(events), seconds))

    def _decisions(self) -> tuple[list[str], dict[str, list[str]]]:
        """Why the ticks since the previous moment launched nothing, and what each retraining sensor decided (a
        sensor that did not tick says so); a tick that failed stops the replay."""
        skips, sensors = [], {}
        for instigator in self.instigators:
            ticks = daemons.ticks_after(self.instance, instigator, self.previous)
            for tick in ticks:
                if tick.error is not None:
                    raise ReplayError(f"{instigator.name} failed its tick at "
                                      f"{dt.datetime.fromtimestamp(tick.timestamp, dt.timezone.utc)}: "
                                      f"{tick.error.message.strip()}")
                if tick.skip_reason:
                    skips.append(f"{instigator.name}: {tick.skip_reason}")
            model = self.sensor_models.get(instigator.name)
            if model is None:
                continue
            decisions = []
            for tick in sorted(ticks, key=lambda item: item.timestamp):
                if tick.run_keys:
                    decisions.append(f"requested {', '.join(tick.run_keys)}")
                else:
                    reason = re.sub(r"^\d{4}-\d{2}-\d{2}: ", "", tick.skip_reason or "no reason given")
                    decisions.append(f"no retraining ({reason})")
            sensors[model] = decisions or ["did not tick"]
        return skips, sensors

    def close(self) -> None:
        self.queue.close()


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
def project_environment(project: Project, models: list[str] | None = None) -> Iterator[None]:
    """Point the definitions module at the project and the replayed models (it reads the environment when it
    loads), then restore."""
    wanted = {"ML_PLATFORM_PROJECT": str(project.root), "ML_PLATFORM_DATA": str(project.data_dir),
              MODELS_VARIABLE: ",".join(models or [])}
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


def run_replay(project: Project, home: Path, model_names: list[str], timezone: str, predict_time: str,
               start: dt.date, end: dt.date, on_moment: Callable[[Moment], None], reuse: bool = True) -> None:
    """Tick through every simulated moment from the morning before `start` to the prediction time of `end`.

    With `reuse` (the default) what does not change between runs is kept for the whole replay: the event log's
    databases open, the definitions built once, each champion's drift reference built once (reuse.py), and in
    the embedded configuration the warehouse file open (storage/warehouse.py `held_open`: each step's connection
    is a new connection to it, not the file opened and checkpointed again); without it every run builds and opens
    them anew, as one run alone does. The runs record the same either way.
    """
    instance = daemons.in_process_instance(home, pooled=reuse)
    try:
        with project_environment(project, model_names), reused() if reuse else nullcontext(), \
                held_open(project.storage.warehouse) if reuse else nullcontext(), \
                replay_workspace(project, instance) as context:
            clock = Clock(context, model_names)
            try:
                first = next(moments(start, end, timezone, predict_time))
                clock.reset(first - dt.timedelta(minutes=1))
                for at in moments(start, end, timezone, predict_time):
                    on_moment(clock.tick(at))
            finally:
                clock.close()
    finally:
        instance.dispose()  # the event log's open databases are closed (and checkpointed)
