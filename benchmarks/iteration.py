"""The iteration loop of a data scientist, timed side by side in one run on the full demo.

    python -m benchmarks.iteration [--rounds N] [--write]

Runs `ml-platform demo` as a user would (a fresh process each time) on a temporary copy of the project (with the
champion comparison waived, so that every step deploys):
cold (empty warehouse and instance), after a hyper-parameter change, after one feature set's SQL changed, and
with nothing changed. Prints wall times, the ratios to the cold run and what each run recomputed; with --write,
replaces the "Iteration loop" section of benchmarks/RESULTS.md with them.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
CHANGES = ("cold", "hyper-parameter change", "one feature set changed", "nothing changed")


def _edit(path: Path, edit) -> None:
    document = yaml.safe_load(path.read_text())
    edit(document)
    path.write_text(yaml.safe_dump(document, sort_keys=False))


def _apply(change: str, project: Path, round_number: int) -> None:
    if change == "hyper-parameter change":
        _edit(project / "model_specs" / "flight_delay.yaml",
              lambda spec: spec["algorithm"]["params"].update(learning_rate=0.04 + 0.001 * round_number))
    elif change == "one feature set changed":
        # observations up to an hour earlier: a real change of values, still known before the prediction time
        _edit(project / "model_specs" / "features" / "origin_weather_eve.yaml",
              lambda spec: spec.update(sql=re.sub(r"WHERE hour < \d+", f"WHERE hour < {17 - round_number}",
                                                  spec["sql"])))


def _demo(project: Path) -> tuple[float, str]:
    environment = {**os.environ, "DAGSTER_HOME": str(project / ".dagster_home")}
    environment.pop("ML_PLATFORM_DATA", None)
    started = time.perf_counter()
    completed = subprocess.run([str(Path(sys.executable).parent / "ml-platform"), "--project", str(project), "demo"],
                               env=environment, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if completed.returncode != 0:
        raise SystemExit(f"ml-platform demo failed:\n{completed.stdout}\n{completed.stderr}")
    return seconds, completed.stdout


def _work(output: str) -> str:
    """What the run did, read from the demo's progress lines."""
    runs = re.findall(r"-> (.+?) \.\.\.", output)
    skipped = len(re.findall(r"up to date", output))
    return f"{len(runs)} Dagster run(s), {skipped} step(s) up to date: " + "; ".join(runs)


def run(rounds: int) -> list[dict]:
    """Time each change `rounds` times (each round from a cold project)."""
    results: dict[str, list[float]] = {change: [] for change in CHANGES}
    work: dict[str, str] = {}
    for round_number in range(rounds):
        with tempfile.TemporaryDirectory(prefix="ml_platform-bench-") as folder:
            project = Path(folder)
            shutil.copytree(REPO / "model_specs", project / "model_specs")
            for name in ("dagster.yaml", "workspace.yaml"):
                shutil.copyfile(REPO / name, project / name)
            # each step must deploy for the next to start from a champion that its features can score; whether a
            # change earns its promotion is the gate's business, not what this benchmark measures
            _edit(project / "model_specs" / "flight_delay.yaml",
                  lambda spec: spec["gate"].update(min_gain_over_champion=None))
            for change in CHANGES:
                _apply(change, project, round_number)
                seconds, output = _demo(project)
                results[change].append(seconds)
                work[change] = _work(output)
                print(f"round {round_number + 1}, {change}: {seconds:.1f} s — {work[change]}", flush=True)
    cold = statistics.median(results["cold"])
    return [{"change": change, "seconds": statistics.median(results[change]), "all": results[change],
             "ratio": statistics.median(results[change]) / cold, "work": work[change]} for change in CHANGES]


def table(rows: list[dict]) -> str:
    """The results as a markdown table."""
    lines = ["| run | wall time (median) | all rounds | vs cold | what ran |", "|---|---|---|---|---|"]
    lines += [f"| {row['change']} | {row['seconds']:.1f} s | {', '.join(f'{value:.1f}' for value in row['all'])} | "
              f"{row['ratio']:.2f} | {row['work']} |" for row in rows]
    return "\n".join(lines)


def machine() -> str:
    """The machine the figures were measured on."""
    load = os.getloadavg()
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2 ** 30
    return (f"{os.cpu_count()} cores, {memory:.0f} GiB, {platform.platform()}, Python {platform.python_version()}; "
            f"load average at the end {load[0]:.1f}")


def write(rows: list[dict], rounds: int) -> None:
    """Replace the iteration section of RESULTS.md."""
    section = (f"## Iteration loop (`python -m benchmarks.iteration --rounds {rounds} --write`)\n\n"
               f"Measured {time.strftime('%Y-%m-%d')} on {machine()}.\n\n{table(rows)}\n\n"
               "Goal: a hyper-parameter change costs at most a third of a cold run; a no-op run does no feature, "
               "snapshot or training work.\n")
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n\n"
    pattern = re.compile(r"## Iteration loop.*?(?=\n## |\Z)", re.DOTALL)
    text = pattern.sub(section.rstrip("\n"), text) if pattern.search(text) else text.rstrip("\n") + "\n\n" + section
    RESULTS.write_text(text)


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--write", action="store_true", help="record the figures in benchmarks/RESULTS.md")
    arguments = parser.parse_args()
    rows = run(arguments.rounds)
    print(table(rows))
    print(machine())
    if arguments.write:
        write(rows, arguments.rounds)


if __name__ == "__main__":
    main()
