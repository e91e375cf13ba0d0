"""Execute jobs of a project's definitions in its Dagster instance, one run at a time, and say how each went."""

from __future__ import annotations

import datetime as dt
import logging
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator

import dagster as dg

from ml_platform.adapters.job_runs import execute_reconstructable
from ml_platform.adapters.run_tags import partition_range_tags
from ml_platform.adapters.threaded_executor import STEP_THREADS, execute_in_threads
from ml_platform.build import build_definitions
from ml_platform.chain.instance import fail_abandoned_runs, open_instance
from ml_platform.chain.run_config import (check_run_config, merged, read_run_config, reconstructable_chain_job,
                                          run_config_file)
from ml_platform.deployment.promotion import GateRefusedError
from ml_platform.names import CHAIN_TAG, stage_of
from ml_platform.partitions import training_run_key, training_runs
from ml_platform.progress import LOGGER as PROGRESS_LOGGER
from ml_platform.project import Project
from ml_platform.specs.catalog import Catalog
from ml_platform.storage.warehouse import held_open
from ml_platform.tags import this_process

# Dagster's console logger prints a failed step's error with its stack trace at level ERROR; the chain reports each
# run's failures itself (failure_reasons), so the console keeps only the platform's lines. The run's full event log,
# stack traces included, stays in the instance (the UI's run page).
QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
# Dagster's own errors whose reason the run's events already give in the platform's words
_WRAPPERS = {"DagsterAssetCheckFailedError"}  # a blocking check failed: its ASSET_CHECK_EVALUATION says which, why


@dataclass
class RunOutcome:
    """One Dagster run of the chain."""

    job: str
    run_id: str
    success: bool
    seconds: float
    failures: list[str] = field(default_factory=list)

    refused: bool = False  # a step failed because the deployment refused the model (GateRefusedError)

    @property
    def blocked(self) -> bool:
        """True when the run failed only because the gate blocked its model: failed blocking gate checks, or the
        deployment step's refusal (the gate did its job; nothing is broken)."""
        if self.success or not self.failures:
            return False
        gate = [reason.startswith(f"{CHECK_KINDS['evaluation']} ") for reason in self.failures]
        return all(gate) or (self.refused and sum(not flag for flag in gate) == 1)


def _failures(result: dg.ExecuteInProcessResult | dg.JobExecutionResult) -> list[str]:
    """Readable reasons a run failed: failed steps and failed blocking checks."""
    return failure_reasons(result.all_events)


def refused_by_gate(events: Iterable[dg.DagsterEvent]) -> bool:
    """True when a step of the run failed because the deployment refused its model (GateRefusedError)."""
    for event in events:
        if event.event_type_value == "STEP_FAILURE":
            error = event.step_failure_data.error
            while error is not None:
                if error.cls_name == GateRefusedError.__name__:
                    return True
                error = error.cause
    return False


CHECK_KINDS = {"evaluation": "gate check", "monitoring": "monitoring check", "outcomes": "monitoring check",
               "predictions": "scoring check"}


def failure_reasons(events: Iterable[dg.DagsterEvent]) -> list[str]:
    """Readable reasons in a run's events: failed steps and failed checks."""
    reasons = []
    for event in events:
        if event.event_type_value == "STEP_FAILURE":
            error = event.step_failure_data.error
            if error is not None and error.cls_name in _WRAPPERS:
                continue
            while error is not None and error.cause is not None:
                error = error.cause  # the user's exception, not Dagster's wrapper around it
            message = error.message.strip() if error else "unknown error"
            user_error = event.step_failure_data.user_failure_data
            if user_error is not None and user_error.description:
                message = user_error.description
            reasons.append(f"{event.step_key}: {message.splitlines()[0]}")
        elif event.event_type_value == "ASSET_CHECK_EVALUATION":
            evaluation = event.event_specific_data
            if not evaluation.passed:
                kind = CHECK_KINDS.get(stage_of(evaluation.asset_key), "data check")
                warning = " (warning)" if evaluation.severity == dg.AssetCheckSeverity.WARN else ""
                reasons.append(f"{kind} {evaluation.check_name} failed{warning}: {evaluation.description}")
    return reasons


class _Relay(logging.Handler):
    def __init__(self, say: Callable[[str], None]):
        super().__init__(logging.INFO)
        self.relay = say

    def emit(self, record: logging.LogRecord) -> None:
        self.relay(record.getMessage())


@contextmanager
def relay_progress(say: Callable[[str], None]) -> Iterator[None]:
    """While the block runs, progress lines of long waits (ml_platform.progress) reach `say` too: a run executed in
    this process reports them to its Dagster log and to the chain's output."""
    logger = logging.getLogger(PROGRESS_LOGGER)
    handler, level = _Relay(say), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


class Chain:
    """Runs jobs of a project's definitions in its Dagster instance, reporting progress as it goes.

    Each run executes in this process with the warehouse held open for it (storage/warehouse.py `held_open`), its
    independent steps on threads at once (adapters/threaded_executor.py); one step after another when the
    warehouse cannot be held (Delta tables, registries in PostgreSQL). When ML_PLATFORM_RUN_CONFIG names a run
    config file (chain/run_config.py), its runs are launched with that run config's executor instead (dask
    workers, in the cluster configuration), the file checked against every job before anything runs.
    """

    def __init__(self, project: Project, catalog: Catalog, say: Callable[[str], None] = print,
                 instance: dg.DagsterInstance | None = None):
        self.project = project
        self.catalog = catalog
        self.say = say
        self.definitions = build_definitions(catalog, project.storage)
        self.run_config: dict = QUIET
        self.launched = run_config_file()  # the run config file the runs are launched with, or None: in-process
        if self.launched is not None:
            self.run_config = merged(QUIET, read_run_config(self.launched))
            check_run_config(self.launched, self.run_config, self.definitions)
        self.instance = instance if instance is not None else open_instance(project)
        self.runs: list[RunOutcome] = []
        for abandoned in fail_abandoned_runs(self.instance):
            self.say(f"  ! {abandoned.describe()}")

    def run(self, job: str, label: str, partition_key: str | None = None,
            date_range: tuple[dt.date, dt.date] | None = None,
            assets: list[dg.AssetKey] | None = None) -> RunOutcome:
        """Execute one job in the instance and report how it went."""
        tags = {CHAIN_TAG: label, **this_process()}
        if date_range is not None:
            tags.update(partition_range_tags(*date_range))
        self.say(f"  -> {label} ...")
        started = time.perf_counter()
        if self.launched is not None:  # the steps execute where the run config's executor puts them
            result = execute_reconstructable(reconstructable_chain_job(self.project, self.catalog, job),
                                             self.instance, self.run_config, tags, partition_key, assets)
        else:
            job_def = self.definitions.resolve_job_def(job)
            with relay_progress(lambda line: self.say(f"     ... {line}")), \
                    held_open(self.project.storage.warehouse) as held:
                if held:  # every step's connection a cursor of this process's one: independent steps at once
                    result = execute_in_threads(job_def, self.instance, STEP_THREADS, partition_key=partition_key,
                                                tags=tags, run_config=QUIET, asset_selection=assets)
                else:  # steps that open the warehouse (or Delta tables) themselves: one after another
                    result = job_def.execute_in_process(instance=self.instance, partition_key=partition_key,
                                                        tags=tags, run_config=QUIET, raise_on_error=False,
                                                        asset_selection=assets)
        outcome = RunOutcome(job, result.run_id, result.success, time.perf_counter() - started, _failures(result),
                             refused=refused_by_gate(result.all_events))
        self.runs.append(outcome)
        status = "done" if outcome.success else "BLOCKED by the gate" if outcome.blocked else "FAILED"
        self.say(f"     {status} in {outcome.seconds:.1f} s (Dagster run {result.run_id[:8]})")
        for reason in outcome.failures:
            self.say(f"     ! {reason}")
        return outcome

    def add_training_run(self, model_name: str) -> str:
        """Register the training run that the model's current spec defines; return its key."""
        model = self.catalog.models[model_name]
        key = training_run_key(model, self.catalog.spec_hash(model))
        partitions = training_runs(model)
        if not self.instance.has_dynamic_partition(partitions.name, key):
            self.instance.add_dynamic_partitions(partitions.name, [key])
        return key
