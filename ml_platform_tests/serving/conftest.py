"""A scored copy of the champion-and-challenger project (January 2013 trained, Jan 31 and Feb 1 batch-scored),
built once per test module, and the server on it."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest

from ml_platform.project import Project
from ml_platform_tests.evaluation.january import Runs, champion_and_challenger, copy_of, dagster_home_at

JANUARY_31, FEBRUARY_1 = dt.date(2013, 1, 31), dt.date(2013, 2, 1)


@pytest.fixture(scope="module")
def scored_project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    """The demo model as champion, the strong model as challenger, two days scored in batch."""
    project = copy_of(champion_and_challenger(), tmp_path_factory.mktemp("serving") / "project")
    with dagster_home_at(project.dagster_home):
        outcome = Runs(project).score(JANUARY_31, FEBRUARY_1)
    assert outcome.success, outcome.failures
    return project


@pytest.fixture
def private_project(scored_project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Project:
    """A private copy of the scored project, for a test that changes its warehouse."""
    shutil.copytree(scored_project.root, tmp_path / "project")
    project = Project.at(tmp_path / "project")
    monkeypatch.setenv("DAGSTER_HOME", str(project.dagster_home))
    return project
