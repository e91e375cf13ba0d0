"""`ml-platform demo`, `ml-platform replay` and `ml-platform ui`."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

from ml_platform.cli.common import date_argument, project_of
from ml_platform.specs.errors import SpecErrors


def command_demo(arguments: argparse.Namespace) -> int:
    """Run the demo model end to end through Dagster."""
    from ml_platform.chain.model_chain import DemoError, run_chain
    from ml_platform.demo import summary_text

    project = project_of(arguments)
    print(f"ml-platform demo: model '{arguments.model}' in {project.root}", flush=True)
    try:
        result = run_chain(project, arguments.model, score_days=arguments.score_days,
                           say=lambda line: print(line, flush=True))
    except SpecErrors as errors:
        print(errors, file=sys.stderr)
        return 1
    except DemoError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(summary_text(project, result))
    return 0


def command_replay(arguments: argparse.Namespace) -> int:
    """Live through past days on a simulated clock: schedules, sensors and runs, day by day."""
    from ml_platform.replay.clock import ReplayError
    from ml_platform.replay.story import replay, summary_lines
    from ml_platform.chain.model_chain import DemoError

    project = project_of(arguments)
    print(f"ml-platform replay: {arguments.start} to {arguments.end} in {project.root}", flush=True)
    try:
        result = replay(project, arguments.start, arguments.end, say=lambda line: print(line, flush=True))
    except SpecErrors as errors:
        print(errors, file=sys.stderr)
        return 1
    except (DemoError, ReplayError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print("\n".join(summary_lines(project, result)))
    return 0




def command_ui(arguments: argparse.Namespace) -> int:
    """Start the Dagster web UI on this project's instance, bound to localhost."""
    from ml_platform.chain.instance import fail_abandoned_runs, open_instance, prepare_instance

    project = project_of(arguments)
    home = prepare_instance(project)
    for abandoned in fail_abandoned_runs(open_instance(project)):  # a killed demo's run would hold the queue
        print(f"! {abandoned.describe()}", flush=True)
    environment = {**os.environ, "DAGSTER_HOME": str(home), "ML_PLATFORM_PROJECT": str(project.root)}
    command = [sys.executable, "-m", "dagster", "dev", "-w", str(project.root / "workspace.yaml"),
               "-h", arguments.host, "-p", str(arguments.port)]
    print(f"DAGSTER_HOME={home} dagster dev -w workspace.yaml -h {arguments.host} -p {arguments.port}", flush=True)
    return subprocess.call(command, cwd=project.root, env=environment)


def register(commands) -> None:
    """Add the demo and UI subcommands."""
    demo = commands.add_parser("demo", help="run a model from sources to production predictions through Dagster")
    demo.add_argument("--model", default="flight_delay", help="model to run (default: flight_delay)")
    demo.add_argument("--score-days", type=int, default=7, help="days to score after the test window (default: 7)")
    demo.set_defaults(handler=command_demo)

    replay = commands.add_parser(
        "replay", help="live through past days on a simulated clock: daily scoring, outcomes, retraining, promotion",
        description="Advance a simulated clock day by day through Dagster's scheduler, sensor and run-queue "
                    "daemons: each day's source partitions are loaded and scored by the champion, scored days are "
                    "judged once labels are known, and models retrain on their cadence or on drift and are "
                    "promoted when they pass the gate. Runs and ticks land in the project's instance (see them "
                    "with `ml-platform ui`).")
    replay.add_argument("--from", dest="start", type=date_argument, required=True,
                        help="first day to score, YYYY-MM-DD")
    replay.add_argument("--to", dest="end", type=date_argument, required=True,
                        help="last day of the clock, YYYY-MM-DD")
    replay.set_defaults(handler=command_replay)

    ui = commands.add_parser("ui", help="open the Dagster web UI on the project's instance")
    ui.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, this machine only)")
    ui.add_argument("--port", type=int, default=3000)
    ui.set_defaults(handler=command_ui)
