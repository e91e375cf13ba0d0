"""The demo through the platform versus the plain script doing the same work, side by side in one run.

    python -m benchmarks demo-vs-script [--rounds N] [--write]

Each round runs, as fresh processes and in alternating order, a cold `ml-platform demo` on a fresh copy of the
project (empty warehouse and Dagster instance) and benchmarks/plain_script.py. It prints wall times, peak memory,
the ratio, the platform's time per Dagster run, and both results (ROC AUC, threshold, money on test), which
must agree for the comparison to be fair.
"""

from __future__ import annotations

import argparse
import json
import re
import sqlite3
import statistics
import sys
import tempfile
from pathlib import Path

import duckdb

from benchmarks.common import (BIN, ChildRun, copy_project, markdown_table, machine, project_environment,
                               require_success, run_child, write_section)

TARGET = 1.2  # issue #17


def run_platform(folder: Path) -> tuple[ChildRun, dict]:
    """A cold `ml-platform demo` on a fresh project copy; its run and its exact test figures."""
    project = copy_project(folder)
    child = require_success(run_child([str(BIN / "ml-platform"), "--project", str(project), "demo"],
                                      project_environment(project)), "ml-platform demo")
    with duckdb.connect(str(project / ".ml_platform" / "warehouse.duckdb"), read_only=True) as connection:
        summary = json.loads(connection.execute("SELECT summary FROM registry.evaluations").fetchall()[0][0])
    test = summary["test"]
    events = _event_counts(project / ".dagster_home")
    # a run's label, its progress lines (the training run's rounds), then how long it took
    steps = dict(re.findall(r"-> (.+?) \.\.\.\n(?:\s+\.\.\. .*\n)*\s+done in ([\d.]+) s", child.stdout))
    return child, {"roc_auc": test["roc_auc"], "threshold": summary["threshold"], "money": test["money"],
                   "flagged": test["flagged"], "steps": {label: float(value) for label, value in steps.items()},
                   "events": events}


def _event_counts(home: Path) -> dict[str, int]:
    """Events the platform's runs recorded in the Dagster instance (sqlite: one database per run), by type."""
    counts: dict[str, int] = {}
    for path in (home / "history" / "runs").glob("*.db"):
        if path.name == "index.db":
            continue
        with sqlite3.connect(path) as connection:
            for kind, count in connection.execute("SELECT dagster_event_type, count(*) FROM event_logs GROUP BY 1"):
                counts[kind or "log"] = counts.get(kind or "log", 0) + count
    return counts


def run_script(folder: Path) -> tuple[ChildRun, dict]:
    """The plain script; its run and its figures."""
    child = require_success(run_child([sys.executable, "-m", "benchmarks.plain_script", "--output", str(folder)]),
                            "plain script")
    return child, json.loads(child.stdout.strip().splitlines()[-1])


def run(rounds: int) -> dict:
    """Time both `rounds` times, alternating which goes first."""
    times = {"platform": [], "script": []}
    memory = {"platform": [], "script": []}
    figures = {}
    for round_number in range(rounds):
        order = ("platform", "script") if round_number % 2 == 0 else ("script", "platform")
        for side in order:
            with tempfile.TemporaryDirectory(prefix=f"ml_platform-bench-{side}-") as folder:
                child, figures[side] = (run_platform if side == "platform" else run_script)(Path(folder))
            times[side].append(child.seconds)
            memory[side].append(child.peak_mb)
            print(f"round {round_number + 1}, {side}: {child.seconds:.1f} s, peak {child.peak_mb:.0f} MB", flush=True)
    ratios = [platform / script for platform, script in zip(times["platform"], times["script"])]
    return {"times": times, "memory": memory, "figures": figures, "ratios": ratios}


def report(result: dict) -> str:
    """The figures as markdown."""
    times, memory, figures = result["times"], result["memory"], result["figures"]
    median = {side: statistics.median(values) for side, values in times.items()}
    ratio = statistics.median(result["ratios"])
    rows = [[side, f"{median[side]:.1f} s", ", ".join(f"{value:.1f}" for value in times[side]),
             f"{max(memory[side]):.0f} MB", f"{figures[side]['roc_auc']:.6f}", f"{figures[side]['threshold']:.4f}",
             f"{figures[side]['money']:,.0f}", figures[side]["flagged"]] for side in ("platform", "script")]
    table = markdown_table(["side", "wall (median)", "all rounds", "peak RSS", "test ROC AUC", "threshold",
                            "test money USD", "flagged"], rows)
    same = all(abs(figures["platform"][key] - figures["script"][key]) < 1e-6 for key in ("roc_auc", "money"))
    steps = "; ".join(f"{label}: {seconds:.1f} s" for label, seconds in figures["platform"]["steps"].items())
    script_stages = "; ".join(f"{stage} {seconds:.1f} s" for stage, seconds in figures["script"]["seconds"].items())
    events = figures["platform"]["events"]
    per_partition = events.get("ASSET_MATERIALIZATION", 0) + events.get("ASSET_MATERIALIZATION_PLANNED", 0)
    return (f"{table}\n\n"
            f"**Ratio platform / script: {ratio:.2f}x** (per round: {', '.join(f'{r:.2f}' for r in result['ratios'])};"
            f" target at most {TARGET}x: {'met' if ratio <= TARGET else 'NOT met'}). Same results on both sides: "
            f"{'yes' if same else 'NO'}.\n\n"
            f"Platform, last round, per Dagster run: {steps}. Its runs recorded {sum(events.values()):,} Dagster "
            f"events, {per_partition:,} of them a planned or a done materialization of one asset partition "
            f"(each daily partition of each asset is planned, then recorded as done).\n\n"
            f"Plain script, last round, per stage: {script_stages}.\n")


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks demo-vs-script", description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--write", action="store_true", help="record the figures in benchmarks/RESULTS.md")
    arguments = parser.parse_args(argv)
    text = report(run(arguments.rounds))
    print(text)
    print(machine())
    if arguments.write:
        write_section(f"Demo: platform versus plain script (`python -m benchmarks demo-vs-script --rounds "
                      f"{arguments.rounds} --write`)", text)


if __name__ == "__main__":
    main()
