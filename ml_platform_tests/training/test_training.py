"""Training on January 2013: the model trained a column at a time is, byte for byte, the one LightGBM trains on
the matrix of the whole training frame."""

from __future__ import annotations

import lightgbm
import pytest

from ml_platform.features.library import load_catalog
from ml_platform.storage import registry
from ml_platform.storage.warehouse import open_warehouse
from ml_platform.training.algorithms import FeatureLayout, LightGBMPredictor, lightgbm_parameters
from ml_platform.training.fit import categorical_features
from ml_platform_tests.evaluation.january import MODEL, Runs, january_project

# drives chains of Dagster runs: the full suite only (`pytest -m "not slow"` leaves it out)
pytestmark = pytest.mark.slow


@pytest.fixture
def trained(tmp_path, dagster_home):
    """A January project after one training run, with the run's snapshot and model rows."""
    runs = Runs(january_project(tmp_path / "project"))
    outcome = runs.train()
    assert outcome.outcome.success, outcome.outcome.failures
    with open_warehouse(runs.project.storage.warehouse) as connection:
        snapshot = registry.snapshots.get(connection, MODEL, outcome.training_run)
        trained_model = registry.models.get(connection, MODEL, outcome.training_run)
    return runs.project, snapshot, trained_model


def whole_frame_model(project, snapshot, path):
    """The model as LightGBM trains it from the whole frame of training rows: its Dataset built by train()."""
    catalog = load_catalog(project.specs_dir, project.root)
    model = catalog.models[MODEL]
    with open_warehouse(project.storage.warehouse) as connection:
        frame = connection.execute(
            f"SELECT * FROM read_parquet('{project.storage.artifacts / snapshot.path}')").df()
    train, valid = frame[frame["split"] == "train"], frame[frame["split"] == "validation"]
    layout = FeatureLayout.learn(train, list(model.features), categorical_features(catalog, model))
    train_set = lightgbm.Dataset(layout.matrix(train), label=train["label"].astype(int).to_numpy(),
                                 feature_name=list(layout.columns),
                                 categorical_feature=[index for index, name in enumerate(layout.columns)
                                                      if name in layout.categories])
    valid_set = lightgbm.Dataset(layout.matrix(valid), label=valid["label"].astype(int).to_numpy(),
                                 reference=train_set)
    params = model.algorithm.params
    booster = lightgbm.train(lightgbm_parameters(model.algorithm), train_set, num_boost_round=params.n_estimators,
                             valid_sets=[valid_set], valid_names=["validation"],
                             callbacks=[lightgbm.early_stopping(params.early_stopping_rounds, verbose=False)])
    if booster.best_iteration and booster.best_iteration < booster.current_iteration():
        booster = lightgbm.Booster(model_str=booster.model_to_string(num_iteration=booster.best_iteration))
    LightGBMPredictor(booster, layout).save(path)
    return path


def test_the_model_is_byte_for_byte_the_one_trained_on_the_whole_frame(trained, tmp_path):
    project, snapshot, trained_model = trained
    reference = whole_frame_model(project, snapshot, tmp_path / "whole_frame.model")
    stored = project.storage.artifacts / trained_model.path
    assert stored.read_bytes() == reference.read_bytes()
    assert trained_model.card.training_rows + trained_model.card.validation_rows == sum(
        snapshot.manifest.rows[name] for name in ("train", "validation"))
