"""Dagster's entry point: load the project's specs and build its definitions (nothing runs at import)."""

import dagster as dg

from ml_platform.build import build_definitions
from ml_platform.project import Project
from ml_platform.features.library import load_catalog


@dg.definitions
def defs() -> dg.Definitions:
    """The definitions of the project named by the environment (the working folder by default)."""
    project = Project.from_environment()
    return build_definitions(load_catalog(project.specs_dir, project.root), project.storage)
