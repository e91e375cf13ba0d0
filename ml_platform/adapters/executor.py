"""The platform's executor: in-process by default, Dagster's multiprocess executor or dagster-dask's by run config.

Written for Dagster 1.13.27 and dagster-dask 0.29.27: the chosen executor's own config is validated with
`process_config` (dagster._config) against that executor's schema, then its `executor_creation_fn` builds it from
the same `InitExecutorContext` with that config; dask's is `dask_steps.SealedDaskExecutor` (dagster-dask's
executor with its steps' arguments sealed for current dask). dagster-dask is the optional `[cluster]` extra,
imported only when a run asks for it. Re-check on another version (ml_platform_tests/adapters/test_dagster_version.py).

    execution: {config: {threads: {max_concurrent: 2}}}                          # the default
    execution: {config: {in_process: {}}}                                       # one step after another
    execution: {config: {multiprocess: {max_concurrent: 2}}}
    execution: {config: {dask: {cluster: {existing: {address: "tcp://127.0.0.1:8786"}}}}}
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import dagster as dg
from dagster._config import process_config

from ml_platform.adapters.threaded_executor import STEP_THREADS, ThreadedInProcessExecutor
from ml_platform.errors import PlatformError

CLUSTER_EXTRA = "pip install -e '.[cluster]'"
KINDS = ("threads", "in_process", "multiprocess", "dask")
DEFAULT = {"threads": {}}


class ExecutorConfigError(PlatformError):
    """A run's `execution` config that names an executor this installation cannot build, or a bad config of it."""


def _requirements(executor_config: Mapping[str, Any]) -> list:
    """Steps in other processes (multiprocess, dask) need a persistent instance and a reconstructable job."""
    in_this_process = not executor_config or "in_process" in executor_config or "threads" in executor_config
    return [] if in_this_process else list(dg.multiple_process_executor_requirements())


@dg.executor(name="threads", config_schema={"max_concurrent": dg.Field(
    dg.IntSource, default_value=STEP_THREADS, description="Steps executed at once, each on a thread of this process")})
def threads_executor(init_context: dg.InitExecutorContext) -> dg.Executor:
    """This process, up to max_concurrent independent steps at once (ml_platform/adapters/threaded_executor.py);
    `platform_executor_for` builds it only where steps may share a database."""
    return ThreadedInProcessExecutor(init_context.executor_config["max_concurrent"])


def _dask_executor() -> dg.ExecutorDefinition:
    """dagster-dask's executor, or an error saying how to install it."""
    try:
        from dagster_dask import dask_executor
    except ImportError as error:
        raise ExecutorConfigError(
            f"run config execution.config.dask: the dask executor needs the cluster extra, which is not installed "
            f"here ({error}); install it with {CLUSTER_EXTRA}, or choose one of in_process, multiprocess") from error
    return dask_executor


def chosen(executor_config: Mapping[str, Any]) -> tuple[dg.ExecutorDefinition, Mapping[str, Any]]:
    """The executor definition a run's config selects, and the config to build it with (validated, defaults in)."""
    ((kind, config),) = executor_config.items()
    if kind == "dask":
        definition, inner = _dask_executor(), config or {}
    elif kind == "threads":
        definition, inner = threads_executor, config or {}
    else:
        definition, inner = dg.multi_or_in_process_executor, {kind: config or {}}
    result = process_config(definition.config_schema.config_type, inner)
    if not result.success:
        problems = "; ".join(error.message for error in result.errors or [])
        raise ExecutorConfigError(f"run config execution.config.{kind}: {problems}")
    if kind == "threads" and result.value["max_concurrent"] < 1:
        raise ExecutorConfigError(f"run config execution.config.threads.max_concurrent: "
                                  f"{result.value['max_concurrent']} is not allowed; it must be at least 1")
    return definition, result.value


def platform_executor_for(shared_database: Callable[[], bool]) -> dg.ExecutorDefinition:
    """The platform's executor (build.py passes storage.warehouse.holding): `threads`, the default, runs a run's
    independent steps at once only while `shared_database()` says that every step's connection is a cursor of one
    database this process holds open (its schemas prepared once, its Python functions registered on the holder:
    the chain's and the replay's runs); one step after another otherwise, each step opening the warehouse itself."""

    @dg.executor(
        name="in_process_unless_configured",
        config_schema=dg.Field(dg.Selector({kind: dg.Permissive() for kind in KINDS}), default_value=DEFAULT),
        requirements=_requirements,
    )
    def platform_executor(init_context: dg.InitExecutorContext) -> dg.Executor:
        """Steps on threads of this process unless the run's config asks for Dagster's in-process executor, its
        multiprocess executor or dagster-dask's."""
        definition, config = chosen(init_context.executor_config)
        if definition.name == "dask":
            return _sealed_dask_executor(config)
        if definition is threads_executor and not (config["max_concurrent"] > 1 and shared_database()):
            definition, config = chosen({"in_process": {}})  # one at a time: Dagster's, on the run's thread
        return definition.executor_creation_fn(init_context._replace(executor_def=definition,
                                                                     executor_config=config))

    return platform_executor


def check_executor_config(executor_config: Mapping[str, Any]) -> None:
    """Refuse, as a run would when it starts, an executor config this installation cannot build (nothing built)."""
    definition, config = chosen(executor_config)
    if definition.name == "dask":
        _dask_cluster(config)


def _dask_cluster(config: Mapping[str, Any]) -> tuple[str, Mapping[str, Any]]:
    """The dask cluster's kind and settings, refused when the sealed executor cannot build that kind."""
    from ml_platform.adapters.dask_steps import CLUSTER_KINDS

    ((kind, settings),) = config["cluster"].items()
    if kind not in CLUSTER_KINDS:
        raise ExecutorConfigError(f"run config execution.config.dask.cluster: {kind!r} is not supported here; "
                                  f"allowed: {', '.join(CLUSTER_KINDS)}")
    return kind, settings


def _sealed_dask_executor(config: Mapping[str, Any]) -> dg.Executor:
    """dagster-dask's executor as current dask can run it (ml_platform/adapters/dask_steps.py)."""
    from ml_platform.adapters.dask_steps import SealedDaskExecutor

    return SealedDaskExecutor(*_dask_cluster(config))
