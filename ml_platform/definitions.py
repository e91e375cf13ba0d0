"""Dagster's entry point: load the project's specs and build its definitions (nothing runs at import)."""

import dataclasses

import dagster as dg

from ml_platform.build import build_definitions
from ml_platform.errors import PlatformError
from ml_platform.project import Project, models_from_environment
from ml_platform.features.library import load_catalog
from ml_platform.specs.catalog import Catalog


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


@dg.definitions
def defs() -> dg.Definitions:
    """The definitions of the project named by the environment (the working folder by default), all its models or
    those ML_PLATFORM_MODELS names."""
    project = Project.from_environment()
    return build_definitions(only_models(load_catalog(project.specs_dir, project.root), models_from_environment()),
                             project.storage)
