"""The tags the platform puts on runs, read back: the requesting tick's time, the process executing a run."""

from __future__ import annotations

import datetime as dt
import os
import socket
from pathlib import Path
from typing import Mapping

from ml_platform.names import PROCESS_TAG, TICK_TAG


def tick_time(tags: Mapping[str, str]) -> dt.datetime | None:
    """The requesting tick's time as naive UTC (as the registries store times), or None for a run started by hand."""
    text = tags.get(TICK_TAG)
    if not text:
        return None
    moment = dt.datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"run tag {TICK_TAG}={text!r} has no time zone")
    return moment.astimezone(dt.timezone.utc).replace(tzinfo=None)


def _started(pid: int) -> str:
    """When a process started, in clock ticks since boot (Linux's /proc), or '' where that cannot be read.

    With the pid it names one process: a pid the system hands out again belongs to a process started later.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat[stat.rindex(")") + 2:].split()[19]  # field 22 of proc(5), counted after the command's name


def this_process() -> dict[str, str]:
    """The tag naming this process as the one executing a run in itself: `host:pid:start`."""
    pid = os.getpid()
    return {PROCESS_TAG: f"{socket.gethostname()}:{pid}:{_started(pid)}"}


def process_gone(tags: Mapping[str, str]) -> int | None:
    """The pid of the process that executed a run, when that process is gone; None when it lives, runs on another
    host (it cannot be seen from here), or the run carries no process tag (a run worker Dagster launched)."""
    text = tags.get(PROCESS_TAG)
    if not text:
        return None
    host, pid_text, started = text.rsplit(":", 2)
    if host != socket.gethostname() or not pid_text.isdigit():
        return None
    pid = int(pid_text)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return pid
    except PermissionError:
        pass  # a process of another user holds the pid
    if started and _started(pid) not in ("", started):
        return pid  # the pid was handed out again to a later process
    return None
