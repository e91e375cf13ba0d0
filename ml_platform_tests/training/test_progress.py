"""Progress of training: LightGBM's rounds reported when a line is due, never changing what is learnt."""

from __future__ import annotations

import logging

import pytest

from ml_platform.progress import LOGGER, Progress, ProgressSettingError, interval_seconds
from ml_platform.training.algorithms import train

from ml_platform_tests.records.builders import FrameRows, spec, split_rows


def rows():
    train_frame, _ = split_rows(["2013-01-01", "2013-01-02"], seed=3)
    valid_frame, _ = split_rows(["2013-01-21"], seed=4)
    return FrameRows(train_frame), FrameRows(valid_frame)


def algorithm(rounds: int):
    algorithm = spec().algorithm
    return algorithm.model_copy(update={"params": algorithm.params.model_copy(
        update={"n_estimators": rounds, "early_stopping_rounds": None})})


def test_training_rounds_are_reported_when_due_and_the_model_is_the_same(caplog):
    train_rows, valid_rows = rows()
    lines = []
    with caplog.at_level(logging.INFO, logger=LOGGER):
        reported = train(algorithm(40), ["distance", "carrier"], ["carrier"], train_rows, valid_rows,
                         Progress(lines.append, every_seconds=0))
    rounds = [line for line in lines if line.startswith("training round ")]
    assert len(rounds) == 40, lines
    assert rounds[0].startswith("training round 1 of 40 (validation binary_logloss 0.")
    assert rounds[-1].startswith("training round 40 of 40 (")
    assert lines[-1].startswith("trained lightgbm in ") and lines[-1].endswith(" s")
    assert [record.getMessage() for record in caplog.records if record.name == LOGGER] == lines  # relayed too

    quiet = []
    silent = train(algorithm(40), ["distance", "carrier"], ["carrier"], train_rows, valid_rows,
                   Progress(quiet.append, every_seconds=3600))
    assert quiet == []  # no wait worth a line: nothing printed, not even the closing line
    assert reported.predictor.booster.model_to_string() == silent.predictor.booster.model_to_string()


def test_the_interval_comes_from_the_environment_and_a_bad_value_is_named(monkeypatch):
    monkeypatch.delenv("ML_PLATFORM_PROGRESS_SECONDS", raising=False)
    assert interval_seconds() == 5.0
    monkeypatch.setenv("ML_PLATFORM_PROGRESS_SECONDS", "0.5")
    assert interval_seconds() == 0.5 and Progress().every == 0.5
    for bad in ("soon", "-1", "nan"):
        monkeypatch.setenv("ML_PLATFORM_PROGRESS_SECONDS", bad)
        with pytest.raises(ProgressSettingError, match=f"ML_PLATFORM_PROGRESS_SECONDS='{bad}' is not a number"):
            interval_seconds()
