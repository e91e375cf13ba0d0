"""Batch scoring with stored contributions (`scoring: {contributions: true}`) against scoring without, side by side.

    python -m benchmarks contributions [--days N] [--repeats N] [--write]

Trains the demo model on a fresh project (`ml-platform demo --score-days 60`), then, in one child process and
alternating the order, times `score_days` (the predictions asset's body) of the champion over the last N days
scored by the demo, once as the demo's spec says (contributions off) and once with contributions on. Prints both
times, the rows, and the slowdown.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import (copy_project, markdown_table, machine, project_environment, require_success,
                               run_child, write_section)

BIN = Path(sys.executable).parent  # the interpreter's own scripts (a worktree has no .venv of its own)
LAST_DAY = dt.date(2013, 12, 30)  # the weather has no observation dated 31 December 2013


def measure(project: Path, days: int, repeats: int) -> dict:
    """In the child: time score_days off and on, alternating, over the same days."""
    import os

    os.environ["DAGSTER_HOME"] = str(project / ".dagster_home")
    from ml_platform.features.library import load_catalog
    from ml_platform.project import Project
    from ml_platform.scoring.score import score_days
    from ml_platform.specs.models import ScoringSpec
    from ml_platform.storage import registry
    from ml_platform.storage.artifacts import ArtifactStore
    from ml_platform.storage.warehouse import open_warehouse
    from ml_platform.training.fit import load_model

    paths = Project.at(project)
    catalog = load_catalog(paths.specs_dir, paths.root)
    off = catalog.models["flight_delay"]
    on = off.model_copy(update={"scoring": ScoringSpec(contributions=True)})
    artifacts = ArtifactStore(root=str(paths.storage.artifacts))
    window = (LAST_DAY - dt.timedelta(days=days - 1), LAST_DAY)
    timings = {"off": [], "on": []}
    rows = set()
    with open_warehouse(paths.storage.warehouse) as connection:
        champion = registry.promotions.champion(connection, off.name)
        trees = load_model(artifacts, registry.models.by_version(connection, champion.model_version)) \
            .booster.current_iteration()
        for repeat in range(repeats):
            for side in (("off", "on") if repeat % 2 == 0 else ("on", "off")):
                started = time.perf_counter()
                result = score_days(connection, artifacts, catalog, on if side == "on" else off, *window, "benchmark")
                timings[side].append(time.perf_counter() - started)
                rows.add(result.rows)
    assert len(rows) == 1, rows
    return {"rows": rows.pop(), "days": days, "trees": trees, "window": [day.isoformat() for day in window],
            **timings}


def run(days: int, repeats: int) -> dict:
    """Train on a fresh project, then measure in a child process."""
    with tempfile.TemporaryDirectory(prefix="ml_platform-bench-contributions-") as folder:
        project = copy_project(Path(folder))
        require_success(run_child([str(BIN / "ml-platform"), "--project", str(project), "demo", "--score-days", "60"],
                                  project_environment(project)), "ml-platform demo")
        child = require_success(run_child([sys.executable, "-m", "benchmarks.contributions", "--child", str(project),
                                           "--days", str(days), "--repeats", str(repeats)],
                                          project_environment(project)), "contributions measurement")
        return json.loads(child.stdout.strip().splitlines()[-1])


def report(result: dict) -> str:
    """The figures as markdown."""
    medians = {side: statistics.median(result[side]) for side in ("off", "on")}
    labels = {"off": "`score_days`, contributions off (the default)",
              "on": "`score_days`, `scoring: {contributions: true}` (TreeSHAP of every row, stored)"}
    table = markdown_table(
        ["path", "seconds (median)", "all repeats", "rows / s"],
        [[labels[side], f"{medians[side]:.2f}", ", ".join(f"{value:.2f}" for value in result[side]),
          f"{result['rows'] / medians[side]:,.0f}"] for side in labels])
    slowdown = medians["on"] / medians["off"]
    return (f"{result['rows']:,} rows ({result['days']} days, {result['window'][0]} to {result['window'][1]}), the "
            f"demo's champion with {result['trees']} trees, 2 threads.\n\n{table}\n\n"
            f"**Scoring with contributions stored takes {slowdown:.1f}x the time without** "
            f"(+{(slowdown - 1) * 100:,.0f}%; the issue's bar for on by default is +10%).\n")


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks contributions", description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--write", action="store_true", help="record the figures in benchmarks/RESULTS.md")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    arguments = parser.parse_args(argv)
    if arguments.child:
        print(json.dumps(measure(arguments.child, arguments.days, arguments.repeats)))
        return
    text = report(run(arguments.days, arguments.repeats))
    print(text)
    print(machine())
    if arguments.write:
        write_section(f"Contributions stored by scoring (`python -m benchmarks contributions --days "
                      f"{arguments.days} --repeats {arguments.repeats} --write`)", text)


if __name__ == "__main__":
    main()
