"""A run's independent steps on threads of this process at once (ml_platform/adapters/threaded_executor.py), on a
real Dagster instance: they overlap, they keep to max_concurrent, a failure fails the run as in process (the steps
that need its output never start, the others finish), and the events are the in-process executor's."""

from __future__ import annotations

import contextvars
import threading
from collections import Counter

import dagster as dg
import pytest

from ml_platform.adapters import threaded_executor
from ml_platform.adapters.executor import ExecutorConfigError, chosen, platform_executor_for, threads_executor
from ml_platform.adapters.threaded_executor import ThreadedInProcessExecutor, execute_in_threads

WAIT = 20.0  # seconds a step waits for its sibling before the test fails: never reached when steps overlap
_seen: contextvars.ContextVar[str] = contextvars.ContextVar("seen", default="unset")


class _Steps:
    """Shared state of the test assets: how many run at once, what they saw."""

    def __init__(self, parties: int = 2):
        self.meeting = threading.Barrier(parties, timeout=WAIT)
        self.lock = threading.Lock()
        self.active = self.most = 0
        self.context: dict[str, str] = {}

    def step(self, name: str, meet: bool) -> None:
        with self.lock:
            self.active += 1
            self.most = max(self.most, self.active)
            self.context[name] = _seen.get()
        try:
            if meet:  # both siblings must be inside at once, or the barrier breaks after WAIT seconds
                self.meeting.wait()
        finally:
            with self.lock:
                self.active -= 1


def _job(steps: _Steps, meet: bool = True, failing: str | None = None) -> dg.JobDefinition:
    """left and right (independent), then both_sides (needs both)."""

    def body(name: str) -> None:
        if name == failing:
            raise RuntimeError(f"{name} broke on purpose")
        steps.step(name, meet and name in ("left", "right"))

    @dg.asset
    def left() -> None:
        body("left")

    @dg.asset
    def right() -> None:
        body("right")

    @dg.asset(deps=[left, right])
    def both_sides() -> None:
        body("both_sides")

    return dg.Definitions(assets=[left, right, both_sides],
                          jobs=[dg.define_asset_job("all", selection="*")]).resolve_job_def("all")


def test_independent_steps_run_at_once_and_the_dependent_one_after_both():
    steps = _Steps()
    with dg.instance_for_test() as instance:
        result = execute_in_threads(_job(steps), instance)
    assert result.success
    assert steps.most == 2  # left and right met at the barrier
    assert [event.asset_key.path[0] for event in result.get_asset_materialization_events()][-1] == "both_sides"


def test_one_at_a_time_never_overlaps():
    steps = _Steps()
    with dg.instance_for_test() as instance:
        result = execute_in_threads(_job(steps, meet=False), instance, max_concurrent=1)
    assert result.success and steps.most == 1


def test_the_serial_executor_cannot_pass_the_meeting():
    # the test above is not vacuous: one step at a time, the barrier breaks and the run fails
    steps = _Steps()
    steps.meeting = threading.Barrier(2, timeout=0.5)
    with dg.instance_for_test() as instance:
        result = execute_in_threads(_job(steps), instance, max_concurrent=1)
    assert not result.success
    assert any("BrokenBarrierError" in event.step_failure_data.error.to_string()
               for event in result.all_events if event.is_step_failure)


def test_a_failed_step_skips_what_needs_it_and_lets_the_others_finish():
    steps = _Steps()
    with dg.instance_for_test() as instance:
        result = execute_in_threads(_job(steps, meet=False, failing="left"), instance)
    assert not result.success
    failures = [event for event in result.all_events if event.is_step_failure]
    assert [event.step_key for event in failures] == ["left"]
    assert "left broke on purpose" in failures[0].step_failure_data.error.to_string()
    assert {event.step_key for event in result.all_events if event.is_step_success} == {"right"}
    assert "both_sides" not in {event.step_key for event in result.all_events}  # never started, as in process
    with dg.instance_for_test() as instance:
        serial = _job(_Steps(), meet=False, failing="left").execute_in_process(instance=instance, raise_on_error=False)
    assert _kinds(result) == _kinds(serial)


def _kinds(result) -> Counter:
    """The run's events by type and step, without the executor's own messages."""
    return Counter((event.event_type_value, event.step_key) for event in result.all_events
                   if event.event_type_value not in ("ENGINE_EVENT", "LOGS_CAPTURED"))


def test_the_events_are_the_in_process_executors():
    with dg.instance_for_test() as instance:
        threaded = execute_in_threads(_job(_Steps(), meet=False), instance)
        serial = _job(_Steps(), meet=False).execute_in_process(instance=instance)
        assert instance.get_run_by_id(threaded.run_id).status == dg.DagsterRunStatus.SUCCESS
    assert threaded.success and serial.success
    assert _kinds(threaded) == _kinds(serial)


def test_a_step_sees_the_context_variables_of_the_run():
    steps = _Steps()
    token = _seen.set("the run's")
    try:
        with dg.instance_for_test() as instance:
            assert execute_in_threads(_job(steps), instance).success
    finally:
        _seen.reset(token)
    assert steps.context == {"left": "the run's", "right": "the run's", "both_sides": "the run's"}


def test_an_error_outside_the_steps_error_handling_fails_the_run(monkeypatch):
    def broken(step_context):
        raise RuntimeError("the executor's own failure")
        yield  # a generator, as Dagster's

    monkeypatch.setattr(threaded_executor, "dagster_event_sequence_for_step", broken)
    with dg.instance_for_test() as instance:
        result = execute_in_threads(_job(_Steps(), meet=False), instance)
        assert not result.success
        run = instance.get_run_by_id(result.run_id)
        assert run.status == dg.DagsterRunStatus.FAILURE
        failure = [event for event in result.all_events if event.event_type_value == "PIPELINE_FAILURE"]
        assert failure and "the executor's own failure" in str(failure[0].event_specific_data.error.message)


def test_the_platform_executor_defaults_to_threads_and_refuses_bad_settings():
    platform_executor = platform_executor_for(lambda: True)
    default = platform_executor.config_schema.default_value
    assert default == {"threads": {}}
    definition, config = chosen(default)
    assert definition is threads_executor and config == {"max_concurrent": 2}
    assert chosen({"threads": {"max_concurrent": 1}})[1] == {"max_concurrent": 1}
    assert platform_executor.get_requirements({"threads": {}}) == []
    with pytest.raises(ExecutorConfigError, match=r"execution\.config\.threads\.max_concurrent: 0 is not allowed"):
        chosen({"threads": {"max_concurrent": 0}})
    with pytest.raises(ExecutorConfigError, match=r"execution\.config\.threads: .*max_concurent"):
        chosen({"threads": {"max_concurent": 2}})
    with pytest.raises(ValueError, match="max_concurrent must be a whole number of at least 1"):
        ThreadedInProcessExecutor(0)


# a job executed by Dagster (execute_job) with the platform's executor, its database shared or not
_platform_steps: dict[str, _Steps] = {}


def _platform_job(shared: bool) -> dg.JobDefinition:
    steps = _platform_steps["current"]
    return _job(steps, meet=shared).with_executor_def(platform_executor_for(lambda: shared))


def shared_database_job() -> dg.JobDefinition:
    return _platform_job(True)


def private_database_job() -> dg.JobDefinition:
    return _platform_job(False)


@pytest.mark.parametrize("shared", [True, False])
def test_the_platform_executor_runs_steps_at_once_only_on_a_shared_database(shared):
    _platform_steps["current"] = steps = _Steps()
    with dg.instance_for_test() as instance:
        with dg.execute_job(dg.reconstructable(shared_database_job if shared else private_database_job),
                            instance) as result:
            assert result.success
    assert steps.most == (2 if shared else 1)
