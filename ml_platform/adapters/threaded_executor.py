"""Dagster's in-process execution with a run's independent steps on threads of the one process at once.

Written for Dagster 1.13.27, which has no such executor (dagster-io/dagster#4041). The loop is Dagster's
`inner_plan_execution_iterator` (dagster/_core/execution/plan/execute_plan.py) taking several ready steps at once
the way the multiprocess executor does (`ActiveExecution.get_steps_to_execute(limit)`): each step's
`dagster_event_sequence_for_step` runs on a thread of its own, in a copy of the run thread's context variables,
and hands its events, in the order it made them, through a queue to the run's thread, the only one that touches
the plan's bookkeeping (`ActiveExecution`). `execute_in_threads` is `JobDefinition.execute_in_process` with this
executor in place of Dagster's in-process one. Re-check both against another version
(ml_platform_tests/adapters/test_dagster_version.py).

Why threads: the warehouse file admits one writer process, so a run's steps cannot spread over processes, and the
steps compute in DuckDB, LightGBM and numpy, native code that lets other threads run. A daily run's two sources,
and then its feature sets, are independent of each other: one after another they kept one of the machine's two
cores idle. A step that fails fails as it would in process: the steps that need its output never start, the
others run, and the run fails. The platform uses it only where every step's connection is a cursor of one database
that the process holds open (executor.py `platform_executor_for`, chain/runner.py); what such connections share
is taken under a lock (docs/architecture.md).
"""

from __future__ import annotations

import contextvars
import os
import queue
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack
from typing import Any

import dagster as dg
from dagster._core.definitions.job_base import InMemoryJob
from dagster._core.definitions.partitions.context import partition_loading_context
from dagster._core.events import DagsterEvent, EngineEventData
from dagster._core.execution.api import ExecuteRunWithPlanIterable
from dagster._core.execution.compute_logs import create_compute_log_file_key
from dagster._core.execution.context.system import PlanExecutionContext, PlanOrchestrationContext
from dagster._core.execution.context_creation_job import PlanExecutionContextManager
from dagster._core.execution.execute_in_process import core_execute_in_process, merge_run_tags
from dagster._core.execution.plan.execute_plan import (_handle_compute_log_setup_error,
                                                       _handle_compute_log_teardown_error, _trigger_hook,
                                                       dagster_event_sequence_for_step)
from dagster._core.execution.plan.instance_concurrency_context import InstanceConcurrencyContext
from dagster._core.execution.plan.plan import ExecutionPlan
from dagster._core.execution.retries import RetryMode
from dagster._core.executor.base import Executor

STEP_THREADS = 2  # steps at once by default: the machine's two cores
_FINISHED = object()  # a step thread's last message when its step's events all came


class ThreadedInProcessExecutor(Executor):
    """A run's steps in this process, up to `max_concurrent` of them at once, each on a thread of its own."""

    def __init__(self, max_concurrent: int = STEP_THREADS):
        if isinstance(max_concurrent, bool) or not isinstance(max_concurrent, int) or max_concurrent < 1:
            raise ValueError(f"max_concurrent must be a whole number of at least 1, not {max_concurrent!r}")
        self.max_concurrent = max_concurrent

    @property
    def retries(self) -> RetryMode:
        return RetryMode.ENABLED

    def execute(self, plan_context: PlanOrchestrationContext,
                execution_plan: ExecutionPlan) -> Iterator[DagsterEvent]:
        step_keys = execution_plan.step_keys_to_execute
        yield DagsterEvent.engine_event(
            plan_context, f"Executing steps in process (pid: {os.getpid()}), up to {self.max_concurrent} at once",
            event_specific_data=EngineEventData.in_process(os.getpid(), step_keys))
        yield from iter(ExecuteRunWithPlanIterable(
            execution_plan=plan_context.execution_plan,
            iterator=lambda job_context, execution_plan: threaded_plan_iterator(job_context, execution_plan,
                                                                                self.max_concurrent),
            execution_context_manager=PlanExecutionContextManager(
                job=plan_context.job, retry_mode=plan_context.retry_mode,
                execution_plan=plan_context.execution_plan, run_config=plan_context.run_config,
                dagster_run=plan_context.dagster_run, instance=plan_context.instance,
                raise_on_error=plan_context.raise_on_error, output_capture=plan_context.output_capture,
                step_dependency_config=self.step_dependency_config)))
        yield DagsterEvent.engine_event(
            plan_context, f"Finished steps in process (pid: {os.getpid()})",
            event_specific_data=EngineEventData.in_process(os.getpid(), step_keys))


def threaded_plan_iterator(job_context: PlanExecutionContext, execution_plan: ExecutionPlan,
                           max_concurrent: int) -> Iterator[DagsterEvent]:
    """The plan's events, its ready steps executed up to `max_concurrent` at once (see the module's docstring)."""
    compute_log_manager = job_context.instance.compute_log_manager
    step_keys = [step.key for step in execution_plan.get_steps_to_execute_in_topo_order()]
    with InstanceConcurrencyContext(job_context.instance, job_context.dagster_run) as concurrency, \
            execution_plan.start(retry_mode=job_context.retry_mode, instance_concurrency_context=concurrency,
                                 step_dependency_config=job_context.step_dependency_config) as active_execution, \
            ExitStack() as capture_stack:
        try:  # the process's output captured for the whole run, as in process
            log_key = compute_log_manager.build_log_key_for_run(job_context.run_id, create_compute_log_file_key())
            log_context = capture_stack.enter_context(compute_log_manager.capture_logs(log_key))
            yield DagsterEvent.capture_logs(job_context, step_keys, log_key, log_context)
        except Exception:
            yield from _handle_compute_log_setup_error(job_context, sys.exc_info())
        messages: queue.Queue = queue.Queue()
        running: dict[str, tuple[threading.Thread, Any, list[DagsterEvent]]] = {}
        try:
            while not active_execution.is_complete or running:
                if len(running) < max_concurrent and not active_execution.is_complete:
                    for step in active_execution.get_steps_to_execute(limit=max_concurrent - len(running)):
                        step_context = job_context.for_step(step, active_execution.get_known_state())
                        thread = threading.Thread(target=contextvars.copy_context().run,
                                                  args=(_step_events, step.key, step_context, messages),
                                                  name=f"step {step.key}", daemon=True)
                        running[step.key] = (thread, step_context, [])
                        thread.start()
                yield from active_execution.concurrency_event_iterator(job_context)
                if not running:
                    active_execution.sleep_til_ready()  # a step waits for its retry or a concurrency slot
                    continue
                key, message = messages.get()
                thread, step_context, step_events = running[key]
                if isinstance(message, DagsterEvent):
                    step_events.append(message)
                    yield message
                    active_execution.handle_event(message)
                    continue
                thread.join()
                del running[key]
                if message is not _FINISHED:  # an error Dagster's step handling did not turn into an event
                    raise message
                active_execution.verify_complete(job_context, key)
                for event in active_execution.plan_events_iterator(job_context):  # skipped and abandoned steps
                    step_events.append(event)
                    yield event
                yield from _trigger_hook(step_context, step_events)
        finally:  # a step still running finishes (it may be writing) before the run's error is raised
            for thread, _, _ in running.values():
                thread.join()
        try:
            capture_stack.close()
        except Exception:
            yield from _handle_compute_log_teardown_error(job_context, sys.exc_info())


def _step_events(key: str, step_context, messages: queue.Queue) -> None:
    """Execute one step: (key, event) for each of its events, then (key, _FINISHED), or (key, the error)."""
    try:
        for event in dagster_event_sequence_for_step(step_context):
            messages.put((key, event))
    except BaseException as error:  # raised again on the run's thread
        messages.put((key, error))
        return
    messages.put((key, _FINISHED))


def execute_in_threads(job: dg.JobDefinition, instance: dg.DagsterInstance, max_concurrent: int = STEP_THREADS,
                       partition_key: str | None = None, tags: Mapping[str, str] | None = None,
                       run_config: Mapping[str, Any] | None = None, raise_on_error: bool = False,
                       asset_selection: Sequence[dg.AssetKey] | None = None) -> dg.ExecuteInProcessResult:
    """`job.execute_in_process(...)` (as Dagster 1.13.27 writes it, without resources or input values given),
    its steps up to `max_concurrent` at once."""
    executor = ThreadedInProcessExecutor(max_concurrent)  # refused here, before a run is created
    selection = list(asset_selection or [])
    ephemeral = job.as_ephemeral_job(resource_defs={}, input_values={}, asset_selection=selection or None)
    ephemeral = ephemeral.with_executor_def(dg.ExecutorDefinition(
        name="threaded_in_process", executor_creation_fn=lambda _context: executor))
    if partition_key and ephemeral.partitions_def:
        with partition_loading_context(dynamic_partitions_store=instance) as context:
            ephemeral.validate_partition_key(partition_key=partition_key, selected_asset_keys=set(selection),
                                             context=context)
    config = dict(run_config or {})
    if not config and ephemeral.partitioned_config and partition_key:
        config = ephemeral.partitioned_config.get_run_config_for_partition_key(partition_key)
    return core_execute_in_process(
        job=InMemoryJob(job_def=ephemeral), run_config=config, instance=instance, output_capturing_enabled=True,
        raise_on_error=raise_on_error, run_id=None, asset_selection=frozenset(selection),
        run_tags=merge_run_tags(job_def=job, partition_key=partition_key, tags=tags, asset_selection=selection,
                                instance=instance, run_config=config))
