"""A LightGBM search encodes the training and validation rows once: each trial's model is the same bytes `train`
gives on the rows with the trial's parameters, its validation predictions the same numbers, for every task; and
the encoded rows refuse what they cannot train or predict."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pytest

from ml_platform.evaluation.search_objective import search_judge
from ml_platform.snapshots.columns import SplitRows
from ml_platform.specs.models import LabelSpec, LightGBMAlgorithm, ModelSpec, RandomForestAlgorithm
from ml_platform.training.algorithms import FrameRows, LabelError, train
from ml_platform.training.encoded import EncodedSplits, EncodedTrainingError, predict_validation, train_encoded
from ml_platform.training.search import run_search, with_parameters
from ml_platform_tests.evaluation.test_decisions import SHORT_COSTS_MORE
from ml_platform_tests.flights_sample import CLASSES, january
from ml_platform_tests.helpers import january_model
from ml_platform_tests.training.test_tasks_training import FEATURES, rows_for

CATEGORICAL = ["carrier", "origin"]
LABELS = {
    "binary": LabelSpec(task="binary_classification", expression="dep_time IS NULL OR dep_delay > 15"),
    "regression": LabelSpec(task="regression", expression="air_time"),
    "huber": LabelSpec(task="regression", expression="air_time", objective={"kind": "huber", "delta": 60.0}),
    "multiclass": LabelSpec(task="multiclass", expression="outcome", classes=CLASSES),
}
TRIALS = [{"num_leaves": 31, "learning_rate": 0.2, "min_child_samples": 20},
          {"num_leaves": 7, "learning_rate": 0.05, "min_child_samples": 200, "feature_fraction": 0.6}]


def model_bytes(result, path) -> bytes:
    result.predictor.save(path)
    return path.read_bytes()


@pytest.mark.parametrize("task", LABELS)
def test_each_trial_on_the_encoded_rows_is_the_model_train_gives(task, tmp_path):
    label = LABELS[task]
    train_rows, valid_rows = rows_for(label)
    encoded = EncodedSplits.encode(FEATURES, CATEGORICAL, train_rows, valid_rows, label)
    base = LightGBMAlgorithm(kind="lightgbm", seed=3, params={"n_estimators": 80, "early_stopping_rounds": 10})
    for number, values in enumerate(TRIALS):
        algorithm = with_parameters(base, values)
        trial = train_encoded(algorithm, encoded, label if task != "binary" else None)
        direct = train(algorithm, FEATURES, CATEGORICAL, train_rows, valid_rows,
                       label=label if task != "binary" else None)
        assert model_bytes(trial, tmp_path / f"trial{number}") == model_bytes(direct, tmp_path / f"train{number}")
        assert trial.details["trees"] == direct.details["trees"]
        assert np.array_equal(predict_validation(trial, encoded), direct.predictor.predict(valid_rows.frame))


def test_the_encoded_rows_refuse_another_algorithm_or_model_and_undeclared_classes():
    label = LABELS["multiclass"]
    train_rows, valid_rows = rows_for(label)
    encoded = EncodedSplits.encode(FEATURES, CATEGORICAL, train_rows, valid_rows, label)
    with pytest.raises(EncodedTrainingError, match="train_encoded trains lightgbm, not 'random_forest': use train"):
        train_encoded(RandomForestAlgorithm(kind="random_forest", seed=3), encoded, label)
    other = EncodedSplits.encode(FEATURES, CATEGORICAL, train_rows, valid_rows, label)
    trained = train_encoded(LightGBMAlgorithm(kind="lightgbm", seed=3, params={"n_estimators": 5}), other, label)
    with pytest.raises(EncodedTrainingError, match="needs a LightGBM model trained on these encoded rows"):
        predict_validation(trained, encoded)
    wrong = FrameRows(valid_rows.frame, np.where(valid_rows.label == "late", "delayed", valid_rows.label))
    with pytest.raises(LabelError, match="the validation rows have label value.s. 'delayed' that label.classes"):
        EncodedSplits.encode(FEATURES, CATEGORICAL, train_rows, wrong, label)


def regression_snapshot(path) -> None:
    """The first week of January as a snapshot file: days 1-4 train, 5-7 validation, air time the label."""
    frame = january()
    frame = frame[frame["air_time"].notna()].reset_index(drop=True)
    frame = frame.assign(label=frame["air_time"].astype("float64"), partition_date=frame["day"],
                         split=np.where(frame["day"] <= 4, "train", "validation"))
    with duckdb.connect() as connection:
        connection.register("snapshot_rows", frame)
        connection.execute(f"COPY snapshot_rows TO '{path}' (FORMAT parquet)")


def test_a_regression_search_judged_in_money_keeps_the_model_train_gives(tmp_path):
    model = ModelSpec.model_validate(january_model(
        label={"task": "regression", "expression": "air_time"},
        money={"currency": "USD", "decision": {"kind": "quantity", "offset": {"min": -10, "max": 30, "step": 1}},
               "value": SHORT_COSTS_MORE},
        gate={"min_money": -1e12},
        algorithm={"kind": "lightgbm", "seed": 3, "params": {"n_estimators": 60, "learning_rate": 0.1},
                   "search": {"trials": 4, "seed": 5, "parameters": {
                       "num_leaves": {"low": 4, "high": 64, "log": True},
                       "min_child_samples": {"choices": [20, 100, 400]}}}}))
    path = tmp_path / "snapshot.parquet"
    regression_snapshot(path)
    with duckdb.connect() as connection:
        rows = {name: SplitRows.read(connection, path, name) for name in ("train", "validation")}
        judge = search_judge(model, rows["validation"])
        outcome = run_search(model, FEATURES, CATEGORICAL, rows["train"], rows["validation"], judge)
        record = outcome.record
        assert [trial.state for trial in record.trials] == ["COMPLETE"] * 4
        assert len({trial.value for trial in record.trials}) > 1
        valid = pd.DataFrame({name: rows["validation"].column(name) for name in FEATURES})
        for trial in record.trials:  # every recorded value is the one `train` and the judge give with its params
            direct = train(with_parameters(model.algorithm, trial.parameters), FEATURES, CATEGORICAL,
                           rows["train"], rows["validation"], label=model.label)
            assert judge(direct.predictor.predict(valid)).value == trial.value == trial.validation_money
            if trial.number == record.best_trial:
                assert model_bytes(direct, tmp_path / "direct") == model_bytes(outcome.result, tmp_path / "chosen")
