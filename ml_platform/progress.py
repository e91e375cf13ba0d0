"""Progress of long waits (training rounds, retraining, backfills): a line every few seconds, never more often.

A stage reports through a `Progress`: each line goes to the given sink (an asset's Dagster log, a command's
standard error) and to the Python logger `ml_platform.progress`, which the run chain relays to its own output
(`ml-platform demo` prints it under the run it belongs to). Lines come at most every `every_seconds` (5 s by
default, `ML_PLATFORM_PROGRESS_SECONDS` to change it), so a step that does not make anyone wait prints nothing.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Callable

LOGGER = "ml_platform.progress"
SECONDS_VARIABLE = "ML_PLATFORM_PROGRESS_SECONDS"
DEFAULT_SECONDS = 5.0


class ProgressSettingError(ValueError):
    """ML_PLATFORM_PROGRESS_SECONDS is not a number of seconds."""


def interval_seconds() -> float:
    """The interval between progress lines: ML_PLATFORM_PROGRESS_SECONDS, or 5 s."""
    text = os.environ.get(SECONDS_VARIABLE)
    if text is None or text.strip() == "":
        return DEFAULT_SECONDS
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise ProgressSettingError(f"{SECONDS_VARIABLE}={text!r} is not a number of seconds >= 0 (e.g. 5)")
    return value


class Progress:
    """Reports a wait: `due()` when a line is wanted, `report(line)` to emit it, `elapsed` since the start."""

    def __init__(self, sink: Callable[[str], None] | None = None, every_seconds: float | None = None):
        self.sink = sink
        self.every = interval_seconds() if every_seconds is None else every_seconds
        self.started = self.last = time.monotonic()
        self.lines = 0

    @property
    def elapsed(self) -> float:
        """Seconds since the wait started."""
        return time.monotonic() - self.started

    def due(self) -> bool:
        """True when the last line (or the start) is at least `every_seconds` old."""
        return time.monotonic() - self.last >= self.every

    def report(self, line: str) -> None:
        """Emit one progress line to the sink and to the `ml_platform.progress` logger."""
        self.last = time.monotonic()
        self.lines += 1
        if self.sink is not None:
            self.sink(line)
        logging.getLogger(LOGGER).info(line)

    def tick(self, line: Callable[[], str]) -> None:
        """Emit `line()` when a line is due (the text is built only then)."""
        if self.due():
            self.report(line())


def silent() -> Progress:
    """A Progress that never reports (for callers nobody waits on)."""
    return Progress(every_seconds=float("inf"))
