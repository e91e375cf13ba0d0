"""Execute jobs of a project's definitions in its Dagster instance, one run at a time, and say how each went."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable

import dagster as dg

from ml_platform.adapters.run_tags import partition_range_tags
from ml_platform.build import build_definitions
from ml_platform.chain.instance import fail_abandoned_runs, open_instance
from ml_platform.names import CHAIN_TAG
from ml_platform.partitions import training_run_key, training_runs
from ml_platform.project import Project
from ml_platform.specs.catalog import Catalog
from ml_platform.tags import this_process

QUIET = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}


@dataclass
class RunOutcome:
    """One Dagster run of the chain."""

    job: str
    run_id: str
    success: bool
    seconds: float
    failures: list[str] = field(default_factory=list)


def _failures(result: dg.ExecuteInProcessResult) -> list[str]:
    """Readable reasons a run failed: failed steps and failed blocking checks."""
    return failure_reasons(result.all_events)


CHECK_KINDS = {"evaluation": "gate check", "monitoring": "monitoring check", "outcomes": "monitoring check"}


def failure_reasons(events: Iterable[dg.DagsterEvent]) -> list[str]:
    """Readable reasons in a run's events: failed steps and failed checks."""
    reasons = []
    for event in events:
        if event.event_type_value == "STEP_FAILURE":
            error = event.step_failure_data.error
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
                kind = CHECK_KINDS.get(evaluation.asset_key.path[0], "data check")
                warning = " (warning)" if evaluation.severity == dg.AssetCheckSeverity.WARN else ""
                reasons.append(f"{kind} {evaluation.check_name} failed{warning}: {evaluation.description}")
    return reasons


class Chain:
    """Runs jobs of a project's definitions in its Dagster instance, reporting progress as it goes."""

    def __init__(self, project: Project, catalog: Catalog, say: Callable[[str], None] = print,
                 instance: dg.DagsterInstance | None = None):
        self.project = project
        self.catalog = catalog
        self.say = say
        self.definitions = build_definitions(catalog, project.storage)
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
        result = self.definitions.resolve_job_def(job).execute_in_process(
            instance=self.instance, partition_key=partition_key, tags=tags, run_config=QUIET, raise_on_error=False,
            asset_selection=assets)
        outcome = RunOutcome(job, result.run_id, result.success, time.perf_counter() - started, _failures(result))
        self.runs.append(outcome)
        status = "done" if outcome.success else "FAILED"
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
