"""The tags automation puts on the runs it requests, read back: the requesting tick's time."""

from __future__ import annotations

import datetime as dt
from typing import Mapping

from ml_platform.names import TICK_TAG



def tick_time(tags: Mapping[str, str]) -> dt.datetime | None:
    """The requesting tick's time as naive UTC (as the registries store times), or None for a run started by hand."""
    text = tags.get(TICK_TAG)
    if not text:
        return None
    moment = dt.datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"run tag {TICK_TAG}={text!r} has no time zone")
    return moment.astimezone(dt.timezone.utc).replace(tzinfo=None)
