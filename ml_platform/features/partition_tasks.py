"""Independent pieces of one step's work spread over the dask cluster the step runs on (the cluster extra).

A step that dagster-dask's executor placed on a dask worker hands each piece to the same cluster as a task of its
own, and waits for them with its thread seceded from the worker's pool (`worker_client`), so that the pieces run on
every worker, this one included, in parallel. A dask worker that dies mid-task has its task run again on another
worker by dask's scheduler. A step running anywhere else (in-process, multiprocess) does its pieces one after
another in its own process: the results are the same, only slower.
"""

from __future__ import annotations

from typing import Callable, Sequence, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


def on_dask_worker() -> bool:
    """True when this code runs inside a task of a dask worker."""
    try:
        from distributed import get_worker
    except ImportError:  # the cluster extra is not installed: no dask worker can be running this
        return False
    try:
        get_worker()
    except ValueError:
        return False
    return True


def run_each(function: Callable[[Item], Result], items: Sequence[Item]) -> list[Result]:
    """function(item) for every item, in order: as dask tasks on this worker's cluster when running on a dask worker,
    else one after another here. The first piece to fail raises its error once every piece has ended."""
    if not items:
        return []
    if not on_dask_worker():
        return [function(item) for item in items]
    from distributed import wait, worker_client

    with worker_client(separate_thread=True) as client:
        futures = client.map(function, list(items), pure=False)
        wait(futures)  # pieces already running keep going: each commits on its own, none is left half-done
        return client.gather(futures)
