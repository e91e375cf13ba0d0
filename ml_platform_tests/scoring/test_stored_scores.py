"""Each stored score, production and shadow, is the model's own score on the inputs stored beside it."""

from __future__ import annotations

import datetime as dt

import pytest

from ml_platform import names
from ml_platform.storage import registry
from ml_platform.storage.artifacts import ArtifactStore
from ml_platform.storage.warehouse import open_warehouse
from ml_platform.training.fit import load_model
from ml_platform_tests.evaluation.january import MODEL, Runs, champion_and_challenger, copy_of

# drives chains of Dagster runs: the full suite only (`pytest -m "not slow"` leaves it out)
pytestmark = pytest.mark.slow

JANUARY_31, FEBRUARY_1 = dt.date(2013, 1, 31), dt.date(2013, 2, 1)


def test_each_stored_score_is_the_models_on_the_inputs_stored_beside_it(tmp_path, monkeypatch):
    runs = Runs(copy_of(champion_and_challenger(), tmp_path / "project"))
    monkeypatch.setenv("DAGSTER_HOME", str(runs.project.dagster_home))
    assert runs.score(JANUARY_31, FEBRUARY_1).success
    artifacts = ArtifactStore(root=str(runs.project.storage.artifacts))
    with open_warehouse(runs.project.storage.warehouse) as connection:
        # the champion's rows, and the challenger's in shadow (one feature more)
        for name in (names.predictions_table(MODEL), names.shadow_table(MODEL)):
            stored = connection.execute(f"SELECT model_version, score, inputs.* FROM {name}").df()
            for version, rows in stored.groupby("model_version"):
                predictor = load_model(artifacts, registry.models.by_version(connection, version))
                assert len(rows) > 1000
                assert (predictor.predict(rows.drop(columns=["model_version", "score"])) == rows["score"]).all()
