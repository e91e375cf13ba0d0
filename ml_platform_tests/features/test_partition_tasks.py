"""run_each: a step's pieces one after another in its own process, or spread over the dask cluster it runs on."""

from __future__ import annotations

import os
import time

import pytest

from ml_platform.features.partition_tasks import on_dask_worker, run_each


def pid_after(seconds: float) -> int:
    """The process that ran this piece, after holding it for a while (so that pieces overlap when they can)."""
    time.sleep(seconds)
    return os.getpid()


def fail_on_two(item: int) -> int:
    """A piece that fails for item 2."""
    if item == 2:
        raise ValueError("piece 2 failed")
    return item


def spread(count: int) -> list[int]:
    """What a step on a dask worker does: run_each over `count` pieces."""
    return run_each(pid_after, [0.5] * count)


def test_outside_dask_the_pieces_run_here_in_order():
    assert not on_dask_worker()
    assert run_each(pid_after, [0.0, 0.0]) == [os.getpid(), os.getpid()]
    assert run_each(pid_after, []) == []
    with pytest.raises(ValueError, match="piece 2 failed"):
        run_each(fail_on_two, [1, 2, 3])


@pytest.mark.slow
def test_on_a_dask_worker_the_pieces_spread_over_every_worker_of_its_cluster():
    distributed = pytest.importorskip("distributed", reason="the cluster extra is not installed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        workers = set(client.run(os.getpid).values())
        # the step holds one worker's only thread; it secedes while its pieces run, so both workers take pieces
        pids = client.submit(spread, 6, pure=False).result(timeout=120)
        assert len(pids) == 6 and set(pids) == workers
        with pytest.raises(ValueError, match="piece 2 failed"):
            client.submit(run_each, fail_on_two, [1, 2, 3], pure=False).result(timeout=120)
