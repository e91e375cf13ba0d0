"""What a long-lived process may keep between the Dagster runs it executes: values built from immutable inputs.

Outside `reused()` nothing is kept: every call builds its value anew, as a single run or command always did. Inside
it (`ml-platform replay`, which executes hundreds of runs in its own process), a value built once is handed out
again for the same key: the project's definitions for the same spec files (Dagster builds a run's job again from
the code location for every run it plans and executes), a champion's drift reference for the same model version
(its snapshot and evaluation are content-addressed and never rewritten). Each kind keeps its last few keys. One
process-wide setting, as the platform's clock (clock.py), not a context variable: Dagster may run a step's code on
another thread.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from contextlib import contextmanager
from typing import Callable, Hashable, Iterator, TypeVar

KEPT_PER_KIND = 4  # a replay's project has one set of definitions and one or two live versions per model
Value = TypeVar("Value")

_kept: dict[str, OrderedDict] | None = None  # by kind, then by key; None outside `reused()`
_keeping = threading.Lock()  # steps of a run may remember on threads of their own at once


@contextmanager
def reused() -> Iterator[None]:
    """Keep the values `remembered` builds until the block ends (then forget them all)."""
    global _kept
    before, _kept = _kept, {}
    try:
        yield
    finally:
        _kept = before


def remembered(kind: str, key: Hashable, build: Callable[[], Value]) -> Value:
    """`build()`, or inside `reused()` the value built before for the same kind and key."""
    kept = _kept
    if kept is None:
        return build()
    with _keeping:
        values = kept.setdefault(kind, OrderedDict())
        if key in values:
            values.move_to_end(key)
            return values[key]
    value = build()  # outside the lock: two threads may build the same value once each, never wait on another's
    with _keeping:
        values[key] = value
        while len(values) > KEPT_PER_KIND:
            values.popitem(last=False)
    return value


def reusing() -> bool:
    """True inside `reused()`."""
    return _kept is not None
