"""What every subcommand shares: finding the project, and turning known errors into one clear line."""

from __future__ import annotations

import argparse
from pathlib import Path

from ml_platform.project import Project


def project_of(arguments: argparse.Namespace) -> Project:
    """The project named by --project, else by the environment."""
    return Project.at(Path(arguments.project)) if arguments.project else Project.from_environment()
