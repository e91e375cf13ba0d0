"""A cache whose values are built once: concurrent callers asking for the same missing key wait for the one
build instead of repeating it; a build that fails is not cached (the next caller tries again, and sees the error
if it recurs)."""

from __future__ import annotations

import threading
from typing import Callable, Generic, Hashable, TypeVar

Value = TypeVar("Value")


class OnceCache(Generic[Value]):
    """{key: value}, each value built at most once while it succeeds, whatever the number of concurrent callers."""

    def __init__(self, max_entries: int | None = None) -> None:
        self.max_entries = max_entries  # beyond it, the oldest value is dropped (built again when asked again)
        self._values: dict[Hashable, Value] = {}
        self._building: dict[Hashable, threading.Lock] = {}
        self._guard = threading.Lock()
        self.builds = 0  # how many builds ran (succeeded or not): what the tests and the benchmark count

    def get(self, key: Hashable, build: Callable[[], Value]) -> Value:
        """The key's value, built by `build()` when absent (by one caller; the others wait for it)."""
        try:
            return self._values[key]
        except KeyError:
            pass
        with self._guard:
            lock = self._building.setdefault(key, threading.Lock())
        with lock:
            if key in self._values:  # built by the caller this one waited for
                return self._values[key]
            self.builds += 1
            value = build()
            with self._guard:
                self._values[key] = value
                if self.max_entries is not None and len(self._values) > self.max_entries:
                    self._values.pop(next(iter(self._values)))
        with self._guard:
            self._building.pop(key, None)
        return value

    def record(self, key: Hashable, value: Value) -> None:
        """Keep a value the caller built itself (several keys built by one call), counted as a build; the caller
        serialises such builds with `get`'s builds of the same keys (it holds the lock they build under)."""
        with self._guard:
            if key in self._values:
                return
            self.builds += 1
            self._values[key] = value
            if self.max_entries is not None and len(self._values) > self.max_entries:
                self._values.pop(next(iter(self._values)))

    def __contains__(self, key: Hashable) -> bool:
        return key in self._values
