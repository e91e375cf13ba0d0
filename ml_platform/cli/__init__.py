"""The `ml-platform` command: one module per group of subcommands, each adding its parsers."""

from __future__ import annotations

import argparse
import sys

from ml_platform.cli import (demo_commands, deployment_commands, provenance_commands, serving_commands,
                             spec_commands)


def parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    main_parser = argparse.ArgumentParser(
        prog="ml-platform", description="One YAML spec per model, carried by Dagster from sources to predictions.")
    main_parser.add_argument("--project", help="project folder (default: $ML_PLATFORM_PROJECT or the working folder)")
    commands = main_parser.add_subparsers(dest="command", required=True)
    for module in (spec_commands, demo_commands, provenance_commands, deployment_commands, serving_commands):
        module.register(commands)
    return main_parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of `ml-platform`."""
    arguments = parser().parse_args(argv)
    return arguments.handler(arguments)


if __name__ == "__main__":
    sys.exit(main())
