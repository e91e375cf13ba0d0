"""run_chunked: a step's pieces in runs of consecutive ones, one run after another in its own process, or each run
a task spread over the dask cluster it runs on; chunks: how long the runs are."""

from __future__ import annotations

import os
import time

import pytest

from ml_platform.features.partition_tasks import chunks, on_dask_worker, run_chunked


def pids_after(seconds: list[float]) -> list[tuple[int, int]]:
    """Each piece's process and the length of its run, after holding it a while (so that runs overlap when they
    can)."""
    time.sleep(sum(seconds))
    return [(os.getpid(), len(seconds))] * len(seconds)


def doubled_failing_on_two(items: list[int]) -> list[int]:
    """Each item doubled; a run holding item 2 fails."""
    if 2 in items:
        raise ValueError("piece 2 failed")
    return [item * 2 for item in items]


def spread(count: int, largest: int) -> list[tuple[int, int]]:
    """What a feature step on a dask worker does: run_chunked over `count` pieces."""
    return run_chunked(pids_after, [0.25] * count, largest)


def test_runs_are_at_most_the_largest_and_about_two_per_worker_thread():
    days = list(range(311))
    runs = chunks(days, 8, 2)
    assert [len(run) for run in runs] == [8] * 38 + [7] and [day for run in runs for day in run] == days
    assert [len(run) for run in chunks(days[:6], 8, 2)] == [2, 2, 2]  # a short backfill still spreads
    assert [len(run) for run in chunks(days[:6], 8, 1)] == [3, 3]
    assert chunks(days[:1], 8, 4) == [[0]] and chunks([], 8, 2) == []
    assert [len(run) for run in chunks(days[:20], 1, 2)] == [1] * 20
    for largest, threads in ((0, 2), (8, 0)):
        with pytest.raises(ValueError, match="at least 1"):
            chunks(days, largest, threads)


def test_outside_dask_the_runs_go_here_in_order():
    assert not on_dask_worker()
    assert run_chunked(doubled_failing_on_two, [1, 3, 5, 7, 9], 2) == [2, 6, 10, 14, 18]
    assert run_chunked(pids_after, [0.0] * 5, 8) == [(os.getpid(), 3)] * 3 + [(os.getpid(), 2)] * 2
    assert run_chunked(pids_after, [], 8) == []
    with pytest.raises(ValueError, match="piece 2 failed"):
        run_chunked(doubled_failing_on_two, [1, 2, 3], 1)


@pytest.mark.slow
def test_on_a_dask_worker_the_runs_spread_over_every_worker_of_its_cluster():
    distributed = pytest.importorskip("distributed", reason="the cluster extra is not installed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        workers = set(client.run(os.getpid).values())
        # the step holds one worker's only thread; it secedes while its runs go, so both workers take runs: eight
        # pieces on two threads are four runs of two
        pieces = client.submit(spread, 8, 8, pure=False).result(timeout=120)
        assert len(pieces) == 8 and {pid for pid, _ in pieces} == workers
        assert [length for _, length in pieces] == [2] * 8
        with pytest.raises(ValueError, match="piece 2 failed"):
            client.submit(run_chunked, doubled_failing_on_two, [1, 2, 3], 1, pure=False).result(timeout=120)
