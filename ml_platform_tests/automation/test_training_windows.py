"""Retraining runs move the spec's split to their cut-off: the windows each cut-off gets, and bad keys."""

import datetime as dt

import pytest

from ml_platform.partitions import (TrainingRunKeyError, parse_training_run_key, run_split, training_run_key,
                                    training_split)
from ml_platform.specs.models import ModelSpec

from ml_platform_tests.helpers import SPECS, load_yaml


def windows(split) -> list[tuple[str, str]]:
    return [(str(window.start), str(window.end)) for window in (split.train, split.validation, split.test)]


@pytest.fixture(scope="module")
def model() -> ModelSpec:
    return ModelSpec.model_validate(load_yaml(SPECS / "flight_delay.yaml"))


def test_the_spec_cut_off_keeps_the_spec_split(model):
    assert training_split(model, dt.date(2013, 10, 31)) == model.split


def test_month_windows_move_by_whole_months_and_training_expands(model):
    assert windows(training_split(model, dt.date(2013, 11, 30))) == [
        ("2013-01-01", "2013-09-30"), ("2013-10-01", "2013-10-31"), ("2013-11-01", "2013-11-30")]
    assert windows(training_split(model, dt.date(2013, 6, 30))) == [
        ("2013-01-01", "2013-04-30"), ("2013-05-01", "2013-05-31"), ("2013-06-01", "2013-06-30")]
    # February is shorter: windows stay whole months
    assert windows(training_split(model, dt.date(2013, 3, 31))) == [
        ("2013-01-01", "2013-01-31"), ("2013-02-01", "2013-02-28"), ("2013-03-01", "2013-03-31")]


def test_a_cut_off_inside_a_month_moves_windows_by_days(model):
    assert windows(training_split(model, dt.date(2013, 11, 15))) == [
        ("2013-01-01", "2013-09-15"), ("2013-09-16", "2013-10-15"), ("2013-10-16", "2013-11-15")]


def test_a_cut_off_too_early_for_any_training_day_is_refused(model):
    with pytest.raises(ValueError) as error:
        training_split(model, dt.date(2013, 2, 28))
    assert str(error.value) == ("a training run of 'flight_delay' cut off on 2013-02-28 would have no training "
                                "days: training would end on 2012-12-31, before split.train.start (2013-01-01)")


def test_run_keys_name_their_cut_off_and_spec_hash(model):
    key = training_run_key(model, "0123456789ab", dt.date(2013, 11, 30))
    assert key == "2013-11-30_0123456789ab"
    assert parse_training_run_key(key) == (dt.date(2013, 11, 30), "0123456789ab")
    assert windows(run_split(model, key))[2] == ("2013-11-01", "2013-11-30")
    assert training_run_key(model, "0123456789ab") == "2013-10-31_0123456789ab"


@pytest.mark.parametrize("key, message", [
    ("latest", "training run key 'latest' is not '<YYYY-MM-DD>_<12 hex digits of spec hash>'"),
    ("2013-11-30_0123", "training run key '2013-11-30_0123' is not '<YYYY-MM-DD>_<12 hex digits of spec hash>'"),
    ("2013-02-30_0123456789ab", "training run key '2013-02-30_0123456789ab' names an impossible date: "
                                "day is out of range for month"),
])
def test_malformed_run_keys_are_refused(key, message):
    with pytest.raises(TrainingRunKeyError) as error:
        parse_training_run_key(key)
    assert str(error.value) == message
