"""Independent pieces of one step's work spread over the dask cluster the step runs on (the cluster extra).

A step that dagster-dask's executor placed on a dask worker hands runs of consecutive pieces to the same cluster,
each run a task of its own, and waits for them with its thread seceded from the worker's pool (`worker_client`), so
that the runs go on every worker, this one included, in parallel. A dask worker that dies mid-task has its task run again on another
worker by dask's scheduler. A step running anywhere else (in-process, multiprocess) does its pieces one after
another in its own process: the results are the same, only slower.
"""

from __future__ import annotations

import math
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


def chunks(items: Sequence[Item], largest: int, threads: int) -> list[list[Item]]:
    """The items in order, cut into runs of equal length (the last one shorter) of at most `largest`, and short
    enough that every one of `threads` worker threads gets about two runs when there are that many items."""
    if largest < 1 or threads < 1:
        raise ValueError(f"chunks needs a largest run and a thread count of at least 1, got {largest} and {threads}")
    size = max(1, min(largest, math.ceil(len(items) / (2 * threads))))
    return [list(items[start:start + size]) for start in range(0, len(items), size)]


def run_chunked(function: Callable[[list[Item]], list[Result]], items: Sequence[Item],
                largest: int) -> list[Result]:
    """function over runs of consecutive items (`chunks`, at most `largest` items each), each run one dask task on
    this worker's cluster when running on a dask worker (the runs sized by the cluster's worker threads), else
    one run after another here; one result per item, in the order of `items`. A piece of work whose fixed cost
    (opening what every item reads) is paid once per run rather than once per item. The first run to fail raises
    its error once every run has ended."""
    if not items:
        return []
    if not on_dask_worker():
        return [result for run in chunks(items, largest, 1) for result in function(run)]
    from distributed import wait, worker_client

    with worker_client(separate_thread=True) as client:
        threads = sum(client.nthreads().values())  # every worker's (scheduler_info() may list only a few)
        futures = client.map(function, chunks(items, largest, max(threads, 1)), pure=False)
        wait(futures)  # runs already going keep going: each item commits on its own, none is left half-done
        return [result for run in client.gather(futures) for result in run]
