"""The cache that builds each value once, whatever the number of concurrent callers."""

from __future__ import annotations

import threading
import time

import pytest

from ml_platform.serving.once import OnceCache


def test_concurrent_callers_of_a_missing_key_wait_for_one_build():
    cache: OnceCache[int] = OnceCache()
    started, results = threading.Barrier(8), []

    def build() -> int:
        time.sleep(0.2)  # long enough for every caller to arrive while it runs
        return 42

    def caller() -> None:
        started.wait()
        results.append(cache.get("day", build))

    threads = [threading.Thread(target=caller) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [42] * 8 and cache.builds == 1
    assert cache.get("day", lambda: 0) == 42 and cache.builds == 1  # later callers read the value
    assert cache.get("other day", lambda: 7) == 7 and cache.builds == 2  # another key builds its own


def test_a_failed_build_is_not_cached_and_the_next_caller_builds_again():
    cache: OnceCache[int] = OnceCache()

    def failing() -> int:
        raise RuntimeError("the warehouse copy lost a table")

    with pytest.raises(RuntimeError, match="lost a table"):
        cache.get("day", failing)
    assert "day" not in cache
    assert cache.get("day", lambda: 3) == 3 and cache.builds == 2


def test_beyond_its_bound_the_oldest_value_is_dropped_and_built_again_when_asked():
    cache: OnceCache[str] = OnceCache(max_entries=2)
    for day in ("day 1", "day 2", "day 3"):
        cache.get(day, lambda day=day: day.upper())
    assert "day 1" not in cache and "day 2" in cache and "day 3" in cache
    assert cache.get("day 1", lambda: "again") == "again" and cache.builds == 4
