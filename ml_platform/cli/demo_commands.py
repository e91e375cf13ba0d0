"""`ml-platform demo`, `ml-platform replay` and `ml-platform ui`.

Exit codes (README, "Commands"): 0 done (demo: the training run's model is the live one), 1 an error (a spec, a
failed run), 3 the demo's model was blocked by the gate (everything ran; nothing is broken, but it is not deployed).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

from ml_platform.cli.common import BLOCKED, ERROR, OK, date_argument, project_of
from ml_platform.specs.errors import SpecErrors


def command_demo(arguments: argparse.Namespace) -> int:
    """Run the demo model end to end through Dagster."""
    from ml_platform.chain.model_chain import DemoError, run_chain
    from ml_platform.chain.run_config import RunConfigError
    from ml_platform.demo import summary_text

    project = project_of(arguments)
    print(f"ml-platform demo: model '{arguments.model}' in {project.root}", flush=True)
    try:
        result = run_chain(project, arguments.model, score_days=arguments.score_days,
                           say=lambda line: print(line, flush=True))
    except SpecErrors as errors:
        print(errors, file=sys.stderr)
        return ERROR
    except (DemoError, RunConfigError) as error:
        print(f"error: {error}", file=sys.stderr)
        return ERROR
    print(summary_text(project, result))
    if result.blocked:
        print(f"blocked: the gate did not deploy {result.judged.model_version} (training run "
              f"{result.training_run}); exit code {BLOCKED}", file=sys.stderr)
        return BLOCKED
    return OK


def command_replay(arguments: argparse.Namespace) -> int:
    """Live through past days on a simulated clock: schedules, sensors and runs, day by day."""
    from ml_platform.replay.clock import ReplayError
    from ml_platform.replay.story import replay, summary_lines
    from ml_platform.chain.model_chain import DemoError
    from ml_platform.chain.run_config import RunConfigError

    project = project_of(arguments)
    print(f"ml-platform replay: {arguments.start} to {arguments.end} in {project.root}", flush=True)
    try:
        result = replay(project, arguments.start, arguments.end, say=lambda line: print(line, flush=True),
                        models=model_names(arguments.models))
    except SpecErrors as errors:
        print(errors, file=sys.stderr)
        return ERROR
    except (DemoError, ReplayError, RunConfigError) as error:
        print(f"error: {error}", file=sys.stderr)
        return ERROR
    print("\n".join(summary_lines(project, result)))
    return OK




def model_names(given: list[str] | None) -> list[str] | None:
    """The models named by repeated `--model` options, each a name or a comma list, in order without repeats; None
    when none was given (every model)."""
    if not given:
        return None
    names = [name.strip() for text in given for name in text.split(",") if name.strip()]
    return list(dict.fromkeys(names))


def automation_notice(project, home) -> list[str]:
    """What `ml-platform ui` says first: the schedules and sensors that start ON against the real clock, and how to
    stop them."""
    from ml_platform.features.library import load_catalog
    from ml_platform.names import outcomes_schedule_name, retraining_sensor_name, scoring_schedule_name

    try:
        models = list(load_catalog(project.specs_dir, project.root).models.values())
    except SpecErrors:
        models = []  # the UI shows the specs' errors on its code location page
    lines = ["The Dagster daemon starts with the UI: these schedules and sensors are ON and run against the real "
             "clock (today's date, not 2013) until you stop them:"]
    for model in models:
        lines += [f"  schedule {scoring_schedule_name(model.name)}: daily at {model.cadence.predict_at.time}, "
                  "loads and scores the next day",
                  f"  schedule {outcomes_schedule_name(model.name)}: daily at 06:00, judges yesterday's outcomes",
                  f"  sensor   {retraining_sensor_name(model.name)}: hourly, requests a training run when due"]
    if not models:
        lines += ["  (no valid model spec: none)"]
    lines += ["Stop one on the UI's Automation page (its toggle), or with "
              f"`DAGSTER_HOME={home} dagster schedule stop NAME -w workspace.yaml` "
              "(`dagster sensor stop NAME` for the sensor); it stays stopped when the UI starts again.",
              "Ctrl-C stops the web UI and the daemon."]
    return lines


def command_ui(arguments: argparse.Namespace) -> int:
    """Start the Dagster web UI and daemon on this project's instance, bound to localhost; Ctrl-C stops both."""
    import signal

    from ml_platform.chain.instance import fail_abandoned_runs, open_instance, prepare_instance

    project = project_of(arguments)
    home = prepare_instance(project)
    with open_instance(project) as instance:  # a killed demo's run would hold the queue
        for abandoned in fail_abandoned_runs(instance):
            print(f"! {abandoned.describe()}", flush=True)
    environment = {**os.environ, "DAGSTER_HOME": str(home), "ML_PLATFORM_PROJECT": str(project.root)}
    # run from the instance folder: dagster dev reads the instance's own dagster.yaml there, and does not warn
    # that the project's template dagster.yaml (which prepare_instance copied) "will not be used"
    command = [sys.executable, "-m", "ml_platform.adapters.dev_server", "-w", str(project.root / "workspace.yaml"),
               "-h", arguments.host, "-p", str(arguments.port)]
    print(f"ml-platform ui: http://{arguments.host}:{arguments.port} on the instance {home}", flush=True)
    print(f"(DAGSTER_HOME={home} dagster dev -w {project.root / 'workspace.yaml'} -h {arguments.host} "
          f"-p {arguments.port})", flush=True)
    print("\n".join(automation_notice(project, home)), flush=True)
    server = subprocess.Popen(command, cwd=home, env=environment)
    interrupted = False
    while True:
        try:
            code = server.wait(timeout=2) if interrupted else server.wait()
            break
        except KeyboardInterrupt:  # a terminal's Ctrl-C reaches the server too: it is shutting down
            interrupted = True
        except subprocess.TimeoutExpired:  # the interrupt was this process's alone: pass it on, once
            server.send_signal(signal.SIGINT)
            code = server.wait()
            break
    if interrupted:
        print("ml-platform ui: stopped", flush=True)
        return 0
    return code


def register(commands) -> None:
    """Add the demo and UI subcommands."""
    demo = commands.add_parser(
        "demo", help="run a model from sources to production predictions through Dagster",
        description="Run a model end to end through Dagster runs, launching only runs that have work. Exit code 0: "
                    "the model is deployed (or already live); 1: an error; 3: blocked by the gate (not deployed).")
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
    replay.add_argument("--model", dest="models", action="append", metavar="NAME",
                        help="replay only this model's chain (repeatable, or a comma list; default: every model)")
    replay.set_defaults(handler=command_replay)

    ui = commands.add_parser("ui", help="open the Dagster web UI on the project's instance")
    ui.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, this machine only)")
    ui.add_argument("--port", type=int, default=3000)
    ui.set_defaults(handler=command_ui)
