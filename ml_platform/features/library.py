"""The project's catalog loaded with the feature library's registered functions, as every later floor loads it."""

from __future__ import annotations

from pathlib import Path

from ml_platform.features.functions import REGISTRY
from ml_platform.specs.catalog import Catalog
from ml_platform.specs.loader import load_catalog as load_specs


def load_catalog(specs_dir: Path, project_dir: Path | None = None) -> Catalog:
    """Load and check every spec of a project, its feature SQL against the registered feature functions."""
    return load_specs(specs_dir, project_dir, functions=REGISTRY)
