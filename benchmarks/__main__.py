"""Run a benchmark: `python -m benchmarks {demo-vs-script,iteration,scoring,scoring-parts,scale,drift-alarms,serving,search,contributions,backfill,dask-training,replay,embedded-default,cpu-timeline,demo-profile} [options]` (--help on each)."""

from __future__ import annotations

import importlib
import sys

COMMANDS = {
    "demo-vs-script": "benchmarks.demo_vs_script",
    "iteration": "benchmarks.iteration",
    "scoring": "benchmarks.scoring",
    "scoring-parts": "benchmarks.scoring_parts",
    "scale": "benchmarks.scale",
    "drift-alarms": "benchmarks.drift_alarms",
    "serving": "benchmarks.serving",
    "search": "benchmarks.search",
    "contributions": "benchmarks.contributions",
    "backfill": "benchmarks.backfill",
    "dask-training": "benchmarks.dask_training",
    "replay": "benchmarks.replay",
    "embedded-default": "benchmarks.embedded_default",
    "cpu-timeline": "benchmarks.cpu_timeline",
    "demo-profile": "benchmarks.demo_profile",
}


def main() -> None:
    """Dispatch to the benchmark named by the first argument."""
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        print(__doc__.strip())
        raise SystemExit(2)
    module = importlib.import_module(COMMANDS[sys.argv[1]])
    sys.argv = [f"python -m benchmarks {sys.argv[1]}", *sys.argv[2:]]
    module.main()


if __name__ == "__main__":
    main()
