"""The `ml-platform` command."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from ml_platform.project import Project
from ml_platform.specs.errors import SpecErrors


def _project(arguments: argparse.Namespace) -> Project:
    return Project.at(Path(arguments.project)) if arguments.project else Project.from_environment()


def command_validate(arguments: argparse.Namespace) -> int:
    """Check every spec; print every error at once."""
    from ml_platform.specs.loader import load_catalog

    project = _project(arguments)
    specs_dir = Path(arguments.specs) if arguments.specs else project.specs_dir
    try:
        catalog = load_catalog(specs_dir, project.root)
    except SpecErrors as errors:
        print(errors, file=sys.stderr)
        return 1
    print(f"{len(catalog.sources)} sources, {len(catalog.feature_sets)} feature sets, "
          f"{len(catalog.models)} models: all valid")
    for model in catalog.models.values():
        print(f"  {model.name}: spec hash {catalog.spec_hash(model)}, {len(model.features)} features from "
              f"{len(catalog.feature_sets_of(model))} feature sets, {model.algorithm.kind}")
    return 0


def command_schema(arguments: argparse.Namespace) -> int:
    """Write the JSON schema of spec files, for editors."""
    from ml_platform.specs.schema import spec_json_schema

    text = json.dumps(spec_json_schema(), indent=2, sort_keys=True) + "\n"
    if arguments.output:
        Path(arguments.output).write_text(text, encoding="utf-8")
        print(f"wrote {arguments.output}")
    else:
        sys.stdout.write(text)
    return 0


def command_demo(arguments: argparse.Namespace) -> int:
    """Run the demo model end to end through Dagster."""
    from ml_platform.demo import DemoError, run_chain, summary_text

    project = _project(arguments)
    print(f"ml-platform demo: model '{arguments.model}' in {project.root}")
    try:
        result = run_chain(project, arguments.model, score_days=arguments.score_days)
    except SpecErrors as errors:
        print(errors, file=sys.stderr)
        return 1
    except DemoError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(summary_text(project, result))
    return 0


def command_ui(arguments: argparse.Namespace) -> int:
    """Start the Dagster web UI on this project's instance, bound to localhost."""
    from ml_platform.demo import prepare_instance

    project = _project(arguments)
    home = prepare_instance(project)
    environment = {**os.environ, "DAGSTER_HOME": str(home), "ML_PLATFORM_PROJECT": str(project.root)}
    command = [sys.executable, "-m", "dagster", "dev", "-w", str(project.root / "workspace.yaml"),
               "-h", arguments.host, "-p", str(arguments.port)]
    print(f"DAGSTER_HOME={home} {' '.join(command[2:])}")
    return subprocess.call(command, cwd=project.root, env=environment)


def parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    main_parser = argparse.ArgumentParser(prog="ml-platform", description=__doc__)
    main_parser.add_argument("--project", help="project folder (default: $ML_PLATFORM_PROJECT or the working folder)")
    commands = main_parser.add_subparsers(dest="command", required=True)

    validate = commands.add_parser("validate", help="check every spec and print every error at once")
    validate.add_argument("--specs", help="specs folder (default: <project>/model_specs)")
    validate.set_defaults(handler=command_validate)

    schema = commands.add_parser("schema", help="print or write the JSON schema of spec files")
    schema.add_argument("--output", help="file to write (default: standard output)")
    schema.set_defaults(handler=command_schema)

    demo = commands.add_parser("demo", help="run a model from sources to production predictions through Dagster")
    demo.add_argument("--model", default="flight_delay", help="model to run (default: flight_delay)")
    demo.add_argument("--score-days", type=int, default=7, help="days to score after the test window (default: 7)")
    demo.set_defaults(handler=command_demo)

    ui = commands.add_parser("ui", help="open the Dagster web UI on the project's instance")
    ui.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, this machine only)")
    ui.add_argument("--port", type=int, default=3000)
    ui.set_defaults(handler=command_ui)
    return main_parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of `ml-platform`."""
    arguments = parser().parse_args(argv)
    return arguments.handler(arguments)


if __name__ == "__main__":
    sys.exit(main())
