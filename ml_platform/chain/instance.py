"""A project's Dagster instance: its folder, prepared with the project's dagster.yaml, and the instance opened there.

Nothing here reads or sets DAGSTER_HOME: the folder is the project's (`Project.dagster_home`, which the command
line resolves from the environment), so one process may hold the instances of several projects.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg

from ml_platform.adapters.instance import CONFIG_FILE, open_instance as open_instance_folder
from ml_platform.project import Project


def prepare_instance(project: Project) -> Path:
    """The project's instance folder, created holding the project's dagster.yaml when it has none; returned."""
    home = Path(project.dagster_home).resolve()
    home.mkdir(parents=True, exist_ok=True)
    config = home / CONFIG_FILE
    template = project.root / CONFIG_FILE
    if not config.exists() and template.exists() and template.resolve() != config:
        shutil.copyfile(template, config)
    return home


def open_instance(project: Project) -> dg.DagsterInstance:
    """The project's Dagster instance, its folder prepared first."""
    return open_instance_folder(prepare_instance(project))
