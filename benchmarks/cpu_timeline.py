"""How busy a cold `ml-platform demo` keeps the machine's cores, second by second and per Dagster run, on this tree
and (with --before) on an earlier revision, one after the other in one run.

    python -m benchmarks cpu-timeline [--before REV] [--write]

The demo's process is sampled every 0.25 s from /proc (its user and system CPU seconds, every thread's, those of
threads already ended included). Prints, per side, each second's CPU use in percent of one core (200% is both
cores of this machine busy) beside the chain's lines that appeared in that second, then per Dagster run its wall
seconds, CPU seconds and average use. The earlier revision runs from a temporary git worktree first on PYTHONPATH,
as in `embedded-default`. A run's steps one after another keep about one core busy while its work is one
thread's; the same run with its independent steps at once shows how much of the other core it found.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.common import BIN, REPO, machine, markdown_table, project_environment, write_section
from benchmarks.embedded_default import _project

SAMPLE_SECONDS = 0.25
TICK = os.sysconf("SC_CLK_TCK")


@dataclass
class Timeline:
    wall: float
    cpu: float
    samples: list[tuple[float, float]]  # (seconds since start, CPU seconds so far)
    lines: list[tuple[float, str]]  # (seconds since start, a line of the demo's output)


def _cpu_seconds(pid: int) -> float | None:
    """The process's user + system CPU seconds (ended threads included), or None once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return (int(fields[11]) + int(fields[12])) / TICK


def record(tree: Path, pythonpath: str | None, folder: Path) -> Timeline:
    """A cold demo of `tree`'s specs on a fresh project, sampled until it ends."""
    project = _project(tree, folder)
    environment = project_environment(project)
    if pythonpath:
        environment["PYTHONPATH"] = pythonpath
    imported = subprocess.run([str(BIN / "python"), "-c", "import ml_platform; print(ml_platform.__file__)"],
                              env=environment, cwd=project, capture_output=True, text=True, check=True).stdout.strip()
    if not imported.startswith(str(tree)):
        raise SystemExit(f"the demo of {tree} would import ml_platform from {imported}")
    started = time.perf_counter()
    process = subprocess.Popen([str(BIN / "ml-platform"), "--project", str(project), "demo"], env=environment,
                               cwd=project, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[tuple[float, str]] = []
    reader = threading.Thread(target=lambda: lines.extend(
        (time.perf_counter() - started, line.rstrip()) for line in process.stdout))
    reader.start()
    samples = [(0.0, 0.0)]
    while process.poll() is None:
        used = _cpu_seconds(process.pid)
        if used is not None:
            samples.append((time.perf_counter() - started, used))
        time.sleep(SAMPLE_SECONDS)
    reader.join()
    wall = time.perf_counter() - started
    if process.returncode != 0:
        raise SystemExit(f"ml-platform demo ({tree}) failed ({process.returncode}):\n"
                         + "\n".join(line for _, line in lines[-40:]))
    return Timeline(wall, samples[-1][1], samples, lines)


def per_second(timeline: Timeline) -> list[tuple[float, float, list[str]]]:
    """(end of the second, CPU use in % of one core, the chain's lines that appeared in it) for each second."""
    rows, previous, shown = [], timeline.samples[0], 0
    for at, used in timeline.samples[1:]:
        if at - previous[0] < 0.99:
            continue
        said = []
        while shown < len(timeline.lines) and timeline.lines[shown][0] <= at:
            line = timeline.lines[shown][1].strip()
            if line.startswith(("->", "done in", "[")):
                said.append(line[:60])
            shown += 1
        rows.append((at, 100 * (used - previous[1]) / (at - previous[0]), said))
        previous = (at, used)
    return rows


def per_run(timeline: Timeline) -> list[tuple[str, float, float]]:
    """(the run's label, wall seconds, CPU seconds) of each Dagster run, between its `->` line and its `done`."""
    def cpu_at(moment: float) -> float:
        before = [used for at, used in timeline.samples if at <= moment]
        return before[-1] if before else 0.0

    runs, label, began = [], None, 0.0
    for at, line in timeline.lines:
        text = line.strip()
        if text.startswith("-> "):
            label, began = re.sub(r" \.\.\.$", "", text[3:]), at
        elif label is not None and re.match(r"(done|FAILED|BLOCKED)", text):
            runs.append((label, at - began, cpu_at(at) - cpu_at(began)))
            label = None
    return runs


def report(sides: dict[str, Timeline]) -> str:
    parts = []
    for name, timeline in sides.items():
        parts.append(f"**{name}**: wall {timeline.wall:.1f} s, CPU {timeline.cpu:.1f} s "
                     f"({100 * timeline.cpu / timeline.wall:.0f}% of one core on average)\n")
        parts.append(markdown_table(["Dagster run", "wall", "CPU", "use"], [
            [label, f"{wall:.1f} s", f"{cpu:.1f} s", f"{100 * cpu / wall:.0f}%" if wall else "-"]
            for label, wall, cpu in per_run(timeline)]) + "\n")
        parts.append("```\n" + "\n".join(
            f"{at:6.1f} s {use:4.0f}%  {'#' * max(0, int(use / 5)):40s} {' | '.join(said)}".rstrip()
            for at, use, said in per_second(timeline)) + "\n```\n")
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks cpu-timeline", description=__doc__.splitlines()[0])
    parser.add_argument("--before", help="an earlier revision to run too, after this tree")
    parser.add_argument("--write", action="store_true", help="record the figures in benchmarks/RESULTS.md")
    arguments = parser.parse_args(argv)
    sides: dict[str, Timeline] = {}
    with tempfile.TemporaryDirectory(prefix="ml_platform-timeline-") as folder:
        sides["this tree"] = record(REPO, None, Path(folder) / "this")
        if arguments.before:
            tree = Path(folder) / "before-tree"
            subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(tree), arguments.before],
                           check=True, capture_output=True)
            try:
                sides[f"before ({arguments.before})"] = record(tree, str(tree), Path(folder) / "before")
            finally:
                subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree)], check=True,
                               capture_output=True)
    text = report(sides)
    print(text)
    print(machine())
    if arguments.write:
        command = "python -m benchmarks cpu-timeline" + (f" --before {arguments.before}" if arguments.before else "")
        write_section(f"CPU timeline of the demo (`{command} --write`)", text)


if __name__ == "__main__":
    main()
