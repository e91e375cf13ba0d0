"""The embedded default before and after the cluster work (issue #18): `ml-platform demo`, cold, on this tree and on
an earlier revision, side by side in one run.

    python -m benchmarks embedded-default [--before REV] [--rounds N]

--before defaults to a9f4293, main just before the first cluster merge (586867d). The earlier revision is checked
out into a temporary git worktree and run by the same interpreter and installed libraries with that worktree first
on PYTHONPATH (the command prints which `ml_platform` package each side imported, so a mix-up shows). Each round
runs both sides as fresh processes on fresh project copies (each side's own model_specs, dagster.yaml and
workspace.yaml; an empty warehouse and Dagster instance), alternating which goes first. Prints wall times, peak
memory and each side's demo figures (the evaluation's test ROC AUC, threshold, money and flagged rows, the model
artifact's hash, snapshot id and spec hash, and an exact digest of every prediction's key, score and flag), and
whether they are identical.
Prints the figures; it does not write RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import tempfile
from pathlib import Path

import duckdb

from benchmarks.common import BIN, REPO, markdown_table, machine, project_environment, require_success, run_child

BEFORE = "a9f4293"
MODEL = "flight_delay"


def _project(source: Path, folder: Path) -> Path:
    """A fresh project at folder from a tree's specs and instance settings."""
    shutil.copytree(source / "model_specs", folder / "model_specs")
    for name in ("dagster.yaml", "workspace.yaml"):
        shutil.copyfile(source / name, folder / name)
    return folder


def _figures(project: Path) -> dict:
    """What the demo left in the warehouse, read independently of either side's code."""
    with duckdb.connect(str(project / ".ml_platform" / "warehouse.duckdb"), read_only=True) as connection:
        summary = json.loads(connection.execute(
            "SELECT summary FROM registry.evaluations WHERE model = ?", [MODEL]).fetchall()[0][0])
        artifact = connection.execute("SELECT sha256, snapshot_id, spec_hash FROM registry.models WHERE model = ?",
                                      [MODEL]).fetchall()
        # an exact, order-free digest of every stored prediction (key, score, decision)
        rows, digest = connection.execute(f'SELECT count(*), bit_xor(hash(flight_id, score, flagged)) '
                                          f'FROM predictions."{MODEL}"').fetchall()[0]
    return {"roc_auc": summary["test"]["roc_auc"], "threshold": summary["threshold"],
            "money": summary["test"]["money"], "flagged": summary["test"]["flagged"],
            "model (sha256, snapshot, spec hash)": artifact, "prediction rows": rows, "predictions digest": digest}


def _side(tree: Path, pythonpath: str | None, folder: Path) -> tuple:
    project = _project(tree, folder)
    environment = project_environment(project)
    if pythonpath:
        environment["PYTHONPATH"] = pythonpath
    # from the project's folder: a child's working folder comes first on its path, and this one holds no package
    imported = run_child([str(BIN / "python"), "-c", "import ml_platform; print(ml_platform.__file__)"],
                         environment, cwd=project).stdout.strip()
    child = require_success(run_child([str(BIN / "ml-platform"), "--project", str(project), "demo"], environment,
                                      cwd=project), f"ml-platform demo ({tree})")
    if not imported.startswith(str(tree)):
        raise SystemExit(f"the demo of {tree} would import ml_platform from {imported}")
    return child, _figures(project), imported


def run(before: str, rounds: int) -> dict:
    """Both sides `rounds` times, alternating which goes first."""
    with tempfile.TemporaryDirectory(prefix="ml_platform-before-") as checkout:
        tree = Path(checkout) / "tree"
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(tree), before], check=True,
                       capture_output=True)
        try:
            sides = {"this tree": (REPO, None), f"before ({before})": (tree, str(tree))}
            times = {name: [] for name in sides}
            memory = {name: [] for name in sides}
            figures, imported = {}, {}
            for round_number in range(rounds):
                order = list(sides) if round_number % 2 == 0 else list(reversed(sides))
                for name in order:
                    with tempfile.TemporaryDirectory(prefix="ml_platform-bench-embedded-") as folder:
                        child, figures[name], imported[name] = _side(*sides[name], Path(folder))
                    times[name].append(child.seconds)
                    memory[name].append(child.peak_mb)
                    print(f"round {round_number + 1}, {name}: {child.seconds:.1f} s, peak {child.peak_mb:.0f} MB",
                          flush=True)
        finally:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree)], check=False)
    return {"times": times, "memory": memory, "figures": figures, "imported": imported}


def report(result: dict) -> str:
    """The figures as markdown."""
    times, memory, figures = result["times"], result["memory"], result["figures"]
    names = list(times)
    rows = [[name, f"{statistics.median(times[name]):.1f} s", ", ".join(f"{value:.1f}" for value in times[name]),
             f"{max(memory[name]):.0f} MB", f"{figures[name]['roc_auc']:.6f}", f"{figures[name]['threshold']:.6f}",
             f"{figures[name]['money']:,.2f}", figures[name]["flagged"], figures[name]["prediction rows"],
             f"{figures[name]['predictions digest']:x}"] for name in names]
    table = markdown_table(["side", "wall (median)", "all rounds", "peak RSS", "test ROC AUC", "threshold",
                            "test money USD", "flagged", "predictions", "their digest"], rows)
    first, second = (figures[name] for name in names)
    differing = [key for key in first if first[key] != second[key]]
    ratio = statistics.median(times[names[0]]) / statistics.median(times[names[1]])
    imported = "; ".join(f"{name}: {path}" for name, path in result["imported"].items())
    return (f"{table}\n\nWall time, this tree / before: **{ratio:.2f}x**. Demo figures (ROC AUC, threshold, money, "
            f"flagged, the model's artifact hash, snapshot and spec hash, every prediction's key, score and flag): "
            f"{'IDENTICAL' if not differing else 'DIFFERENT in ' + ', '.join(differing)}.\n"
            f"Model (sha256, snapshot, spec hash): {first['model (sha256, snapshot, spec hash)']} / "
            f"{second['model (sha256, snapshot, spec hash)']}.\n"
            f"Imported: {imported}.\n\nMachine: {machine()}.\n")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks embedded-default", description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", default=BEFORE, help="the earlier revision (default: main before the cluster work)")
    parser.add_argument("--rounds", type=int, default=2)
    arguments = parser.parse_args()
    os.environ.pop("PYTHONPATH", None)
    print(report(run(arguments.before, arguments.rounds)))


if __name__ == "__main__":
    main()
