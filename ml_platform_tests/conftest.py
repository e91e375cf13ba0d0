"""Shared fixtures: temporary projects on a small real slice of the flights (January 2013).

Fixtures only; the plain helpers live in `helpers.py`, which test modules import.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Callable

import pytest

from ml_platform.project import Project
from ml_platform_tests.helpers import REPO_ROOT, SPECS, january_model, project_at, write_yaml


@pytest.fixture
def make_project(tmp_path: Path) -> Callable[..., Project]:
    """Build a project in a temporary folder: the repository's sources and features, and the given models."""

    def make(models: dict[str, dict] | None = None, name: str = "project") -> Project:
        root = tmp_path / name
        shutil.copytree(SPECS / "sources", root / "model_specs" / "sources")
        shutil.copytree(SPECS / "features", root / "model_specs" / "features")
        shutil.copyfile(REPO_ROOT / "dagster.yaml", root / "dagster.yaml")
        shutil.copyfile(REPO_ROOT / "workspace.yaml", root / "workspace.yaml")
        for model_name, document in (models if models is not None else {"flight_delay": january_model()}).items():
            write_yaml(root / "model_specs" / f"{model_name}.yaml", document)
        return project_at(root)

    return make


@pytest.fixture
def dagster_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh, persistent Dagster instance folder for one test, named by DAGSTER_HOME (the instance of the
    projects make_project builds)."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copyfile(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return home
