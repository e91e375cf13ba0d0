"""`ml-platform explain` shows the contributions that moved a prediction, recomputed from its stored inputs."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from ml_platform.cli import main
from ml_platform.provenance.contributions import prediction_contributions
from ml_platform.snapshots.columns import sample_split
from ml_platform.storage.artifacts import ArtifactStore
from ml_platform.storage.warehouse import open_warehouse
from ml_platform.training.attributions import SAMPLED_SHAPLEY, TREE_SHAP
from ml_platform.training.fit import load_model

from ml_platform_tests.provenance.helpers import SCHEDULE_FEATURES, fetch, query

# reads the shared history, whose chains of Dagster runs the full suite alone builds
pytestmark = pytest.mark.slow


def latest_prediction(history, day: str) -> dict:
    names = ("flight_id", "score", "flagged", "threshold", "model_version", "inputs")
    row = query(history.project, f"SELECT {', '.join(names)} FROM predictions.flight_delay WHERE partition_date = ? "
                                 f"ORDER BY scored_at DESC, flight_id LIMIT 1", day)[0]
    return dict(zip(names, row))


def test_explain_shows_what_moved_a_demo_flight_in_log_odds_and_probability(history, capsys):
    prediction = latest_prediction(history, "2013-02-02")
    assert prediction["model_version"] == history.second
    assert main(history.run("explain", "flight_delay", prediction["flight_id"], "--top", "3")) == 0
    output = capsys.readouterr().out
    section = output.split("What moved the prediction most (3 of 4 features; " + TREE_SHAP)[1].split("\n\n")[0]
    lines = section.splitlines()
    raw = math.log(prediction["score"] / (1 - prediction["score"]))
    assert "on the scale of log-odds (the raw score of a binary LightGBM model" in lines[1]
    assert lines[1].endswith(f"= {raw:.4f}")
    assert lines[2] == (f"  probability {prediction['score']:.4f} = 1 / (1 + exp({-raw:.4f})); "
                        f"the stored score {prediction['score']:.4f}")
    rows = lines[4:7]
    assert len(lines) == 7
    shown = [line.split()[0] for line in rows]
    assert set(shown) <= set(SCHEDULE_FEATURES) and len(set(shown)) == 3
    sizes = [abs(float(line.split()[2])) for line in rows]
    assert sizes == sorted(sizes, reverse=True)  # largest first
    for line in rows:
        feature, value, contribution = line.split()[:3]
        stored = prediction["inputs"][feature]
        assert value == (f"{stored:.6g}" if isinstance(stored, float) else str(stored))
        without = 1 / (1 + math.exp(-(raw - float(contribution))))
        assert abs(float(line.split("(without it ")[1][:6]) - without) < 2e-4  # contributions are shown rounded
        threshold = prediction["threshold"]
        flips = (without >= threshold) != (prediction["score"] >= threshold)
        assert line.endswith(f"; without it the decision flips at threshold {threshold:.4f}") == flips


def test_contributions_of_a_stored_prediction_add_up_to_the_models_raw_score(history):
    prediction = latest_prediction(history, "2013-02-02")
    model = fetch(history.project, "models", model_version=history.second)
    store = ArtifactStore(root=str(history.project.storage.artifacts))
    inputs = {name: prediction["inputs"][name] for name in SCHEDULE_FEATURES}
    with open_warehouse(history.project.storage.warehouse) as connection:
        result = prediction_contributions(connection, store, model, inputs, prediction, {})
    predictor = load_model(store, model)
    frame = pd.DataFrame({name: [value] for name, value in inputs.items()})
    raw = predictor.booster.predict(predictor.layout.matrix(frame), raw_score=True)[0]
    assert abs(result.base + sum(item.contribution for item in result.contributions) - raw) < 1e-6
    assert abs(result.output - raw) < 1e-6
    assert abs(result.reported - prediction["score"]) < 1e-9 and result.stored == prediction["score"]


def test_a_logistic_regression_is_explained_with_sampled_shapley_values_against_its_training_rows(history):
    model = fetch(history.project, "models", model_version=history.logistic)
    store = ArtifactStore(root=str(history.project.storage.artifacts))
    snapshot = fetch(history.project, "snapshots", model="flight_delay_lr", training_run=model.training_run)
    predictor = load_model(store, model)
    columns = list(predictor.layout.columns)
    with open_warehouse(history.project.storage.warehouse) as connection:
        rows, _ = sample_split(connection, store.verify(snapshot.path, snapshot.sha256), "test", columns, 1, 5)
        inputs = {name: (None if pd.isna(value) else value) for name, value in rows.iloc[0].items()}
        score = float(predictor.predict(rows)[0])
        result = prediction_contributions(connection, store, model, inputs, {"score": score, "threshold": 0.5}, {})
    assert result.method == SAMPLED_SHAPLEY and result.scale == "probability"
    assert abs(result.reported - score) < 1e-12 and abs(result.output - score) < 1e-12
    assert abs(result.base + sum(item.contribution for item in result.contributions) - score) < 1e-9
    assert len(result.contributions) == len(columns)
    assert np.any([abs(item.contribution) > 1e-4 for item in result.contributions])


def test_explain_refuses_a_top_that_is_not_a_positive_count(history, capsys):
    with pytest.raises(SystemExit):
        main(history.run("explain", "flight_delay", "1", "--top", "0"))
    assert "--top: must be a whole number of at least 1 (given '0')" in capsys.readouterr().err
