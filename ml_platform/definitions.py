"""Dagster's entry point: load the project's specs and build its definitions (nothing runs at import)."""

import dataclasses
import hashlib

import dagster as dg

from ml_platform.build import build_definitions
from ml_platform.errors import PlatformError
from ml_platform.project import Project, models_from_environment
from ml_platform.reuse import remembered, reusing
from ml_platform.features.functions import REGISTRY
from ml_platform.features.library import load_catalog
from ml_platform.specs.catalog import Catalog
from ml_platform.specs.loader import spec_files


class ModelSelectionError(PlatformError, ValueError):
    """ML_PLATFORM_MODELS names a model the project does not have."""


def only_models(catalog: Catalog, names: list[str] | None) -> Catalog:
    """The catalog with only the named models (all when `names` is None): a replay of some models loads only their
    assets, jobs, schedules and sensors, so the others' automation does not tick."""
    if names is None:
        return catalog
    unknown = [name for name in names if name not in catalog.models]
    if unknown:
        raise ModelSelectionError(
            f"ML_PLATFORM_MODELS names {', '.join(unknown)}: no model spec of that name in {catalog.specs_dir}; the "
            f"models are: {', '.join(sorted(catalog.models)) or 'none'}")
    return dataclasses.replace(catalog, models={name: model for name, model in catalog.models.items()
                                                if name in names})


def built_from(project: Project, models: list[str] | None) -> tuple:
    """What a project's definitions are built from: its folders, the models chosen, the registered feature
    functions and every spec file's path and bytes."""
    digest = hashlib.sha256()
    for path in spec_files(project.specs_dir):
        digest.update(f"{path}\0{path.stat().st_size}\0".encode())
        digest.update(path.read_bytes())
    return project, tuple(models or ()), tuple(sorted(REGISTRY)), digest.hexdigest()


def project_definitions(project: Project, models: list[str] | None) -> dg.Definitions:
    """The project's definitions (all its models, or the named ones); inside `reuse.reused()` (a replay) built
    again only when a spec file changed: Dagster builds a run's job again from the code location for every run it
    plans and executes, about 0.2 s of spec checks each time."""
    def build() -> dg.Definitions:
        return build_definitions(only_models(load_catalog(project.specs_dir, project.root), models), project.storage)

    if not reusing():
        return build()
    return remembered("definitions", built_from(project, models), build)


@dg.definitions
def defs() -> dg.Definitions:
    """The definitions of the project named by the environment (the working folder by default), all its models or
    those ML_PLATFORM_MODELS names."""
    return project_definitions(Project.from_environment(), models_from_environment())
