"""dagster-dask's executor with each step's arguments handed to dask sealed, so that current dask can carry them.

Written for Dagster 1.13.27, dagster-dask 0.29.27 and dask.distributed 2024.11 or later. dagster-dask submits each
step as `client.submit(query_on_dask_worker, dependencies, recon_job, dagster_run, run_config, step_keys,
instance_ref, known_state)`. Since dask 2024.11 a task's arguments are walked (`dask._task_spec.parse_input`)
into every tuple they hold, looking for futures; Dagster's records are tuples that refuse iteration (AssetKey in a
run's asset selection, a partitions definition in a run's partitions subset), so the submit fails with "Iteration
is not allowed on `@record` ...". Here the step's arguments travel as one `Sealed` value, which dask does not
walk, and only the futures of the steps it depends on stay visible to dask, to order the steps. What runs on the
worker is dagster-dask's own `query_on_dask_worker`. Clusters: `existing` (a scheduler's address) and `local` (a
LocalCluster per run); dagster-dask's other kinds (yarn, kube, ...) are refused by name.

Internals used: dagster._core.errors.raise_execution_interrupts, dagster._utils.iterate_with_context (as dagster-dask
uses them), the plan and orchestration context's attributes. Re-check on another version
(ml_platform_tests/adapters/test_dagster_version.py).
"""

from __future__ import annotations

from typing import Any, Iterator

import dagster as dg
import dask.distributed
from dagster._core.errors import raise_execution_interrupts
from dagster._utils import iterate_with_context
from dagster_dask.executor import DaskExecutor, get_dask_resource_requirements, query_on_dask_worker

CLUSTER_KINDS = ("existing", "local")


class Sealed:
    """A step's arguments, carried by dask as one opaque value (neither a tuple nor a dataclass: dask does not walk
    into it)."""

    __slots__ = ("arguments",)

    def __init__(self, arguments: tuple):
        self.arguments = arguments


def run_sealed_step(dependencies: list, sealed: Sealed) -> list[dg.DagsterEvent]:
    """On a dask worker: execute the step with dagster-dask's own function (dependencies only order the steps)."""
    return query_on_dask_worker(dependencies, *sealed.arguments)


class SealedDaskExecutor(DaskExecutor):
    """dagster-dask's executor, submitting each step's arguments sealed (see the module's docstring)."""

    def cluster(self, job_name: str) -> Any:
        """What dask's Client connects to: the existing scheduler's address, or a LocalCluster for this run."""
        if self.cluster_type == "existing":
            return self.cluster_configuration["address"]
        return dask.distributed.LocalCluster(**self.build_dict(job_name))

    def execute(self, plan_context, execution_plan) -> Iterator[dg.DagsterEvent]:
        """Submit every step to the cluster, each after the steps it reads from, and yield their events."""
        job_name = plan_context.job_name
        instance_ref = plan_context.instance.get_ref()
        with dask.distributed.Client(self.cluster(job_name)) as client:
            futures: dict[str, Any] = {}
            for level in execution_plan.get_steps_to_execute_by_level():
                for step in level:
                    dependencies = [futures[key] for step_input in step.step_inputs
                                    for key in step_input.dependency_keys]
                    sealed = Sealed((plan_context.reconstructable_job, plan_context.dagster_run,
                                     plan_context.run_config, [step.key], instance_ref, execution_plan.known_state))
                    futures[step.key] = client.submit(
                        run_sealed_step, dependencies, sealed, key=f"{job_name}.{step.key}",
                        resources=get_dask_resource_requirements(step.tags), pure=False)
            completed = dask.distributed.as_completed(list(futures.values()), with_results=True)
            for _future, events in iterate_with_context(raise_execution_interrupts, completed):
                yield from events
