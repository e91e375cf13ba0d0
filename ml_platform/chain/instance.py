"""A project's Dagster instance folder, prepared with the project's dagster.yaml."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from ml_platform.project import Project


def prepare_instance(project: Project) -> Path:
    """Make sure DAGSTER_HOME names an instance folder holding the project's dagster.yaml; return it."""
    home = Path(os.environ.get("DAGSTER_HOME") or project.dagster_home).resolve()
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    template = project.root / "dagster.yaml"
    if not config.exists() and template.exists() and template.resolve() != config:
        shutil.copyfile(template, config)
    os.environ["DAGSTER_HOME"] = str(home)
    return home
