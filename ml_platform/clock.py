"""The platform's clock: the time every registry, version and prediction timestamp is written with.

The wall clock, except while `ml-platform replay` lives through a simulated moment: the replay sets the clock to
that moment while the runs its ticks launched execute (in its own process), so promotions, snapshots, models,
evaluations, predictions' `scored_at` and monitoring rows carry the simulated time, and `ml-platform history --at`
answers in it. One process-wide setting, not a context variable: Dagster may run a step's code on another thread.
"""

from __future__ import annotations

import datetime as dt
from contextlib import contextmanager
from typing import Iterator

_simulated: dt.datetime | None = None  # naive UTC while a simulated moment is set


def now() -> dt.datetime:
    """The platform's current time as naive UTC (as the registries store times): simulated inside `simulated`."""
    if _simulated is not None:
        return _simulated
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


@contextmanager
def simulated(at: dt.datetime) -> Iterator[None]:
    """The platform's clock stopped at `at` (an aware time) for the duration, then the wall clock again."""
    global _simulated
    if at.tzinfo is None:
        raise ValueError(f"the simulated clock needs an aware time, got {at}")
    before, _simulated = _simulated, at.astimezone(dt.timezone.utc).replace(tzinfo=None)
    try:
        yield
    finally:
        _simulated = before
