"""Each deployment test starts from a private copy of one state built per test process: the demo model deployed
as champion, and a strong challenger evaluated against it but not deployed."""

from __future__ import annotations

import pytest

from ml_platform_tests.evaluation.january import ChampionAndChallenger, Runs, champion_and_challenger, copy_of


@pytest.fixture
def state() -> ChampionAndChallenger:
    return champion_and_challenger()


@pytest.fixture
def runs(state, tmp_path, monkeypatch) -> Runs:
    project = copy_of(state, tmp_path / "project")
    monkeypatch.setenv("DAGSTER_HOME", str(project.dagster_home))
    return Runs(project)
