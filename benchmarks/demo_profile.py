"""Where a cold demo's time goes, by what each part is for: the platform's guarantees, the work the plain script
does too, and the process's start and Dagster, from py-spy samples of every Python thread.

    python -m benchmarks demo-profile [--rate 100] [--keep FILE] [--write]

Runs one cold `ml-platform demo` on a fresh copy of the project and attaches `py-spy record --format raw` to it
(py-spy must be installed: `pip install -e '.[bench]'`). A sample is one Python thread found running at a tick;
each is filed under the guarantee one of whose markers occurs in its stack (so a guarantee called from inside a
step counts as that guarantee and not as the step), else under the step whose marker is outermost in it (the
evaluation's predictions are the evaluation's, though LightGBM's predictor lives beside the training), else as
an import, Dagster's or the platform's own running. Prints the seconds of samples of each part and group, and the
process's wall and CPU seconds (wait4) for scale. Then runs the plain script (benchmarks/plain_script.py, the same
work without the platform) right after, so that the parts read against the script's wall time in the same hour.

LightGBM's and DuckDB's worker threads are not Python threads: their work shows once, as the Python call that
waits for it, on the calling thread. A part's seconds are therefore its time on the threads that call it, close
to its wall time when one thread runs it, and under its CPU time when its library uses both cores (LightGBM's
training, DuckDB's queries). Samples of two Python threads running at once both count.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from benchmarks.common import BIN, REPO, machine, markdown_table, project_environment, write_section
from benchmarks.demo_vs_script import run_script
from benchmarks.embedded_default import _project

GUARANTEE = "a guarantee the script does not give"
SAME_WORK = "work the script does too"
RUNNING = "the process's start and Dagster"
OTHER = "elsewhere"


@dataclass(frozen=True)
class Part:
    name: str
    group: str
    markers: tuple[str, ...]  # a stack containing any of these (a module path or a function) is this part's


# Matched anywhere in a stack, the first that matches.
GUARANTEES = (
    Part("point-in-time proof of the training snapshot", GUARANTEE,  # its cuts are the feature sets'
         ("ml_platform/snapshots/proof.py",)),
    Part("point-in-time proofs of the feature sets' refreshes", GUARANTEE, ("ml_platform/features/proof.py",)),
    Part("feature SQL reach checks", GUARANTEE, ("check_feature_set_sql",)),
    Part("source checks: conversions, distributions, null surges", GUARANTEE,
         ("ml_platform/sources/checks.py", "ml_platform/sources/health.py")),
    Part("leakage guard", GUARANTEE, ("ml_platform/evaluation/leakage",)),
    Part("TreeSHAP importance", GUARANTEE, ("ml_platform/evaluation/importance", "task_importance.py")),
    Part("evaluation plots", GUARANTEE, ("ml_platform/evaluation/plots.py",)),
    Part("drift monitoring", GUARANTEE, ("build_monitoring_asset", "ml_platform/monitoring/drift.py",
                                         "ml_platform/monitoring/bins.py",
                                         "ml_platform/monitoring/reference_store.py",
                                         "ml_platform/monitoring/alarms.py")),
    Part("outcomes: the realized money of the scored days", GUARANTEE,
         ("build_outcomes_asset", "ml_platform/monitoring/outcomes.py")),
    Part("the evaluation's stored report, predictions file and records", GUARANTEE,
         ("store_evaluation (", "ml_platform/evaluation/report.py", "ml_platform/provenance/")),
)
# Matched in a stack's outermost call that matches one.
STEPS = (
    Part("sources: staging the rows", SAME_WORK, ("ml_platform/sources/",)),
    Part("features: their SQL", SAME_WORK, ("ml_platform/features/",)),
    Part("snapshot: the training rows", SAME_WORK, ("ml_platform/snapshots/",)),
    Part("training: LightGBM and its matrix", SAME_WORK, ("ml_platform/training/",)),
    Part("evaluation: predictions, threshold, money, interval", SAME_WORK, ("ml_platform/evaluation/",)),
    Part("scoring the production days", SAME_WORK, ("ml_platform/scoring/",)),
)
IMPORTS = Part("imports", RUNNING, ())  # a module being imported, by a caller of none of the parts above
# Matched anywhere in a stack that is none of the above, the first that matches.
RUNNING_PARTS = (
    Part("Dagster: runs, steps, events, planning", RUNNING, ("dagster/", "dagster_shared/", "sqlalchemy/")),
    Part("the platform's chain, specs and CLI", RUNNING, ("ml_platform/",)),
)
PARTS = (*GUARANTEES, *STEPS, IMPORTS, *RUNNING_PARTS)  # the report's order
ELSEWHERE = Part("elsewhere (idle waits, threads' start)", OTHER, ())


def classify(stack: str) -> Part:
    """The part of a stack (its frames, root first, joined by ';'): the first guarantee one of whose markers is in
    its calls, else the step whose marker is in its outermost call, else imports, Dagster or the platform's own.

    A stack importing a module counts by its frames above the import: a lazy import inside a part (matplotlib's,
    in the plots) is that part's, any other import is `imports`. A module's own code (`<module>` frames) is
    never a part's work.
    """
    frames = stack.split(";")
    importing = next((index for index, frame in enumerate(frames) if frame.startswith("_find_and_load ")), None)
    calls = [frame for frame in frames[:importing] if not frame.startswith("<module> ")]

    def anywhere(parts: tuple[Part, ...]) -> Part | None:
        return next((part for part in parts if any(marker in frame for frame in calls for marker in part.markers)),
                    None)

    guarantee = anywhere(GUARANTEES)
    if guarantee is not None:
        return guarantee
    for frame in calls:  # outermost first
        for part in STEPS:
            if any(marker in frame for marker in part.markers):
                return part
    if importing is not None:
        return IMPORTS
    return anywhere(RUNNING_PARTS) or ELSEWHERE


def read_raw(path: Path) -> Counter:
    """{stack: samples} from py-spy's raw (collapsed) output: one `frame;frame;... count` per line."""
    stacks: Counter = Counter()
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            stacks[stack] += int(count)
    return stacks


@dataclass(frozen=True)
class Profile:
    wall: float
    cpu: float
    rate: int
    parts: Counter  # Part -> samples


def record(rate: int, folder: Path, keep: Path | None) -> Profile:
    """One cold demo on a fresh project, py-spy attached to it from its start."""
    project = _project(REPO, folder / "project")
    raw = keep or folder / "profile.txt"
    raw.unlink(missing_ok=True)  # a profile left by an earlier run must not stand in for this one's
    demo_log, spy_log = folder / "demo.log", folder / "py-spy.log"
    with demo_log.open("wb") as demo_output, spy_log.open("wb") as spy_output:  # files: a full pipe would block
        started = time.perf_counter()
        demo = subprocess.Popen([str(BIN / "ml-platform"), "--project", str(project), "demo"],
                                env=project_environment(project), cwd=project, stdout=demo_output,
                                stderr=subprocess.STDOUT)
        spy = subprocess.Popen([str(BIN / "py-spy"), "record", "--pid", str(demo.pid), "--rate", str(rate),
                                "--format", "raw", "--output", str(raw), "--nonblocking"],
                               stdout=spy_output, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(demo.pid, 0)
        wall = time.perf_counter() - started
        demo.returncode = os.waitstatus_to_exitcode(status)
        try:
            spy.wait(timeout=60)  # py-spy writes its file when the process it follows ends
        except subprocess.TimeoutExpired:
            spy.send_signal(signal.SIGINT)
            spy.wait(timeout=30)
    if demo.returncode != 0:
        raise SystemExit(f"ml-platform demo failed ({demo.returncode}):\n{demo_log.read_text()[-4000:]}")
    if not raw.exists():
        raise SystemExit(f"py-spy wrote no profile ({spy.returncode}):\n{spy_log.read_text()[-2000:]}")
    parts: Counter = Counter()
    for stack, samples in read_raw(raw).items():
        parts[classify(stack)] += samples
    return Profile(wall, usage.ru_utime + usage.ru_stime, rate, parts)


def report(profile: Profile, script_seconds: float) -> str:
    total = sum(profile.parts.values())
    seconds = {part: samples / profile.rate for part, samples in profile.parts.items()}
    ordered = [part for part in (*PARTS, ELSEWHERE) if part in seconds]
    rows = [[part.name, part.group, f"{seconds[part]:.2f}", f"{100 * profile.parts[part] / total:.1f}%"]
            for part in ordered]
    groups = Counter()
    for part in ordered:
        groups[part.group] += seconds[part]
    group_rows = [[group, f"{groups[group]:.2f}", f"{100 * groups[group] / (total / profile.rate):.1f}%"]
                  for group in (GUARANTEE, SAME_WORK, RUNNING, OTHER) if group in groups]
    return (f"One cold `ml-platform demo`: wall {profile.wall:.1f} s, CPU {profile.cpu:.1f} s (wait4, every "
            f"thread); py-spy at {profile.rate} Hz: {total / profile.rate:.1f} s of Python threads' samples.\n\n"
            + markdown_table(["part", "group", "seconds of samples", "share"], rows) + "\n\n"
            + markdown_table(["group", "seconds of samples", "share"], group_rows) + "\n\n"
            + f"The plain script right after it (the same work without the platform, not profiled): "
              f"{script_seconds:.1f} s of wall; the demo took {profile.wall / script_seconds:.2f}x that under "
              f"py-spy, and 1.2x would be {1.2 * script_seconds:.1f} s.\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks demo-profile", description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=100, help="py-spy's samples per second (default 100)")
    parser.add_argument("--keep", type=Path, help="keep py-spy's raw profile in this file")
    parser.add_argument("--write", action="store_true", help="record the figures in benchmarks/RESULTS.md")
    arguments = parser.parse_args(argv)
    if not (BIN / "py-spy").exists():
        raise SystemExit(f"{BIN / 'py-spy'} is missing: install it with `.venv/bin/pip install -e '.[bench]'`")
    with tempfile.TemporaryDirectory(prefix="ml_platform-profile-") as folder:
        profile = record(arguments.rate, Path(folder), arguments.keep)
        script, _ = run_script(Path(folder) / "script")
    text = report(profile, script.seconds)
    print(text)
    print(machine())
    if arguments.write:
        write_section("Where the demo's time goes (`python -m benchmarks demo-profile --write`)", text)


if __name__ == "__main__":
    main()
