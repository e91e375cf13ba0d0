"""A project of the real flights source and some entity specs, with a runner that materializes its assets through
Dagster (real DuckDB file, ephemeral instance): the shared set-up of the entity tests."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path
from typing import Callable

import dagster as dg

from ml_platform.build import build_assets
from ml_platform.features.library import load_catalog
from ml_platform.project import Project
from ml_platform.specs.catalog import Catalog
from ml_platform.storage.resources import build_resources

from ml_platform_tests.helpers import SPECS, asset_runner, project_at


def entity_project(root: Path, entities: dict[str, str]
                   ) -> tuple[Project, Catalog, dict, Callable[[dg.AssetKey, str, str], dg.ExecuteInProcessResult]]:
    """The project at `root` with the repository's sources and `entities` ({spec name: YAML text}), its catalog,
    its assets by key, and `run(key, first, last)`: materialize one asset over a partition range (asserts success)."""
    shutil.copytree(SPECS / "sources", root / "model_specs" / "sources")
    (root / "model_specs" / "entities").mkdir()
    for name, text in entities.items():
        (root / "model_specs" / "entities" / f"{name}.yaml").write_text(text)
    project = project_at(root)
    catalog = load_catalog(project.specs_dir, project.root)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=dg.BetaWarning)
        assets = {asset.key: asset for asset in build_assets(catalog)}
    materialize = asset_runner(assets, build_resources(project.storage), dg.DagsterInstance.ephemeral())

    def run(key, first, last):
        return materialize([key], first, last)

    return project, catalog, assets, run
