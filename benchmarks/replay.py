"""`ml-platform replay` of the demo's model over months of simulated days, timed day by day.

    python -m benchmarks replay [--model flight_delay] [--from 2013-07-01] [--to 2013-12-31] [--write]

A fresh copy of the demo project (as `ml-platform demo` gets it) has its history loaded up to the day before
--from by a first child process (reference sources, the model's daily sources and features: what the replay's own
history step would load); a second child then runs `ml-platform replay --model M --from .. --to ..` and is timed:
its total wall, its peak RSS, the Dagster runs it reports, and each simulated day's wall, taken as the time between
the day's line and the one before it (the clock's line for the first day; a day's line is said as soon as its last
moment has run). Days whose line says a retraining are counted apart from the others; for the days without
training the median, p90 and max wall are reported. The replay's closing summary (days scored, trainings and their
gate verdicts, champion, realized money and its verdicts) is printed and recorded as it said it.
With --write, replaces the "Replay" section of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.common import (ChildRun, copy_project, markdown_table, project_environment, require_success,
                               run_child, write_section)

PREPARE = """
import datetime as dt, sys
from ml_platform.features.library import load_catalog
from ml_platform.project import Project
from ml_platform.chain.instance import prepare_instance
from ml_platform.replay.story import load_history
project = Project.from_environment()
prepare_instance(project)
catalog = load_catalog(project.specs_dir, project.root)
seconds = load_history(project, catalog, dt.date.fromisoformat(sys.argv[1]), print, sys.argv[2].split(","))
print(f"history loaded in {seconds:.1f} s")
"""
# a day line's phrase for a training run, done or FAILED (not the sensor's "retraining sensor no retraining")
TRAINING_RUN = re.compile(r": retrain(ed|ing) \d{4}-\d{2}-\d{2}_")


@dataclass(frozen=True)
class TimedLine:
    """A line the replay printed and when it arrived, in seconds after the child started."""

    at: float
    text: str


def timed_child(command: list[str], environment: dict, cwd: Path) -> tuple[ChildRun, list[TimedLine]]:
    """Run a command, time-stamping each line of its output as it arrives; its own peak RSS comes from wait4."""
    lines: list[TimedLine] = []
    with tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=err, env=environment, cwd=cwd, text=True,
                                   bufsize=1)
        for line in process.stdout:
            lines.append(TimedLine(time.perf_counter() - started, line.rstrip("\n")))
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        stdout = "\n".join(line.text for line in lines)
        return ChildRun(seconds, usage.ru_maxrss / 1024, stdout, err.read().decode(), process.returncode), lines


@dataclass(frozen=True)
class DayWall:
    """One simulated day: its date, its wall seconds, whether it trained."""

    day: str
    seconds: float
    trained: bool


def day_walls(lines: list[TimedLine]) -> list[DayWall]:
    """Each day line's wall: the time since the line before it (the clock's line for the first day)."""
    walls, previous = [], None
    for line in lines:
        if line.text.startswith("[clock]"):
            previous = line.at
        elif line.text.startswith("[") and "/" in line.text.split("]", 1)[0] and previous is not None:
            day = line.text.split("]", 1)[1].split()[0]
            trained = TRAINING_RUN.search(line.text) is not None
            walls.append(DayWall(day, line.at - previous, trained))
            previous = line.at
    return walls


def percentile(values: list[float], share: float) -> float:
    """The nearest-rank percentile of values (share in 0..1)."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(share * len(ordered) + 0.5) - 1))]


def main() -> None:
    """Prepare the project, time the replay, print (and with --write record) the figures."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="flight_delay", help="the model replayed (default: flight_delay)")
    parser.add_argument("--from", dest="start", type=dt.date.fromisoformat, default=dt.date(2013, 7, 1))
    parser.add_argument("--to", dest="end", type=dt.date.fromisoformat, default=dt.date(2013, 12, 31))
    parser.add_argument("--write", action="store_true", help="record the figures in benchmarks/RESULTS.md")
    options = parser.parse_args()
    if options.end < options.start:
        parser.error(f"--to {options.end} is before --from {options.start}")
    with tempfile.TemporaryDirectory(prefix="ml-platform-replay-") as folder:
        project = copy_project(Path(folder) / "project")
        environment = {**project_environment(project), "ML_PLATFORM_PROJECT": str(project)}
        prepared = require_success(run_child(
            [sys.executable, "-c", PREPARE, options.start.isoformat(), options.model], environment, cwd=project),
            "loading the history")
        print(f"history up to {options.start - dt.timedelta(days=1)}: {prepared.seconds:.1f} s, peak RSS "
              f"{prepared.peak_mb:,.0f} MB", flush=True)
        command = [str(Path(sys.executable).parent / "ml-platform"), "--project", str(project), "replay", "--model",
                   options.model, "--from", options.start.isoformat(), "--to", options.end.isoformat()]
        child, lines = timed_child(command, environment, project)
        require_success(child, "the replay")
    walls = day_walls(lines)
    quiet = [wall.seconds for wall in walls if not wall.trained]
    trained = [wall for wall in walls if wall.trained]
    summary = next((index for index, line in enumerate(lines) if line.text.startswith("== replay")), len(lines))
    said = [line.text for line in lines[summary:]]
    runs = said[0].split(": ", 1)[1].split(" Dagster runs")[0] if said else "?"
    rows = [
        ["replay wall", f"{child.seconds:.1f} s"],
        ["simulated days", f"{len(walls)} ({len(trained)} with training, {len(quiet)} without)"],
        ["Dagster runs", runs],
        ["days without training: median / p90 / max", (f"{statistics.median(quiet):.2f} / "
                                                      f"{percentile(quiet, 0.9):.2f} / {max(quiet):.2f} s")
         if quiet else "none"],
        ["days without training: total", f"{sum(quiet):.1f} s"],
        ["days with training", ", ".join(f"{wall.day} {wall.seconds:.1f} s" for wall in trained) or "none"],
        ["history before the clock (first child)", f"{prepared.seconds:.1f} s"],
        ["peak RSS (replay / history)", f"{child.peak_mb:,.0f} / {prepared.peak_mb:,.0f} MB"],
    ]
    table = markdown_table(["measure", "value"], rows)
    verdicts = "\n".join(f"    {line}" for line in said if line.strip())
    print(table)
    print(verdicts)
    if options.write:
        write_section("Replay (python -m benchmarks replay)",
                      f"`ml-platform replay --model {options.model} --from {options.start} --to {options.end}` on a "
                      f"fresh copy of the demo project whose history (sources and features up to the day before) "
                      f"a first process loaded; a day's wall is the time between its line and the previous one.\n\n"
                      f"{table}\n\nWhat the replay said at the end:\n\n{verdicts}\n")


if __name__ == "__main__":
    main()
