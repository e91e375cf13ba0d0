"""What every subcommand shares: finding the project, and turning known errors into one clear line."""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

from ml_platform.project import Project

# Exit codes every command shares (README, "Commands"), so that a user's CI can tell them apart.
OK = 0
ERROR = 1  # a failed run, a failed integrity check, a verdict that is not the good one (reproduce: DIFFERENT)
BAD_INPUT = 2  # the command line names nothing known (argparse's usage errors exit 2 too)
BLOCKED = 3  # the gate blocked the model: demo (the training run's model is not deployed), rollback (refused)


def project_of(arguments: argparse.Namespace) -> Project:
    """The project named by --project, else by the environment; DAGSTER_HOME and ML_PLATFORM_DATA move its folders."""
    return Project.from_environment(Path(arguments.project) if arguments.project else None)


def date_argument(text: str) -> dt.date:
    """An argparse type: a YYYY-MM-DD date, or a usage error naming what was given."""
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a date YYYY-MM-DD") from None
