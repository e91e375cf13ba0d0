"""Distributed training chosen by configuration: the variables read, their refusals naming the variable, and which
models train on the cluster (LightGBM from the configured size) and which train here, saying why."""

from __future__ import annotations

import socket

import pytest

from ml_platform.names import DASK_ADDRESS_VARIABLE, DISTRIBUTED_TRAINING_ROWS_VARIABLE
from ml_platform.specs.models import LightGBMAlgorithm, RandomForestAlgorithm
from ml_platform.training.distributed import (DistributedSetting, DistributedTrainingError, cluster_client,
                                              distributed_setting, place_training)

ADDRESS = "tcp://127.0.0.1:8786"
LIGHTGBM = LightGBMAlgorithm.model_validate({"kind": "lightgbm", "seed": 1})
FOREST = RandomForestAlgorithm.model_validate({"kind": "random_forest", "seed": 1})


def test_without_a_threshold_every_model_trains_here_even_with_a_scheduler_configured():
    assert distributed_setting({}) is None
    # .ci/services writes the scheduler's address for the executor: that alone never distributes training
    assert distributed_setting({DASK_ADDRESS_VARIABLE: ADDRESS, DISTRIBUTED_TRAINING_ROWS_VARIABLE: " "}) is None
    assert place_training(LIGHTGBM, False, 10**9, {DASK_ADDRESS_VARIABLE: ADDRESS}).setting is None


def test_the_threshold_and_the_scheduler_are_read():
    setting = distributed_setting({DASK_ADDRESS_VARIABLE: f" {ADDRESS} ",
                                   DISTRIBUTED_TRAINING_ROWS_VARIABLE: "500000"})
    assert setting == DistributedSetting(ADDRESS, 500_000)


@pytest.mark.parametrize("text", ["0", "-3", "1.5", "1e6", "many"])
def test_a_threshold_that_is_not_a_positive_whole_number_is_refused_naming_the_variable(text):
    with pytest.raises(DistributedTrainingError) as raised:
        distributed_setting({DASK_ADDRESS_VARIABLE: ADDRESS, DISTRIBUTED_TRAINING_ROWS_VARIABLE: text})
    assert str(raised.value).startswith(f"{DISTRIBUTED_TRAINING_ROWS_VARIABLE}={text!r} is not a positive whole "
                                        f"number of rows")


def test_a_threshold_without_a_scheduler_is_refused_naming_both_variables():
    with pytest.raises(DistributedTrainingError, match=f"{DISTRIBUTED_TRAINING_ROWS_VARIABLE}=10 asks for "
                                                       f"distributed training, but {DASK_ADDRESS_VARIABLE} names no"):
        distributed_setting({DISTRIBUTED_TRAINING_ROWS_VARIABLE: "10"})
    # refused whatever the model's size: a wrong configuration is not hidden by a small training window
    with pytest.raises(DistributedTrainingError):
        place_training(LIGHTGBM, False, 1, {DISTRIBUTED_TRAINING_ROWS_VARIABLE: "10"})


def test_lightgbm_trains_on_the_cluster_from_the_threshold_on():
    environment = {DASK_ADDRESS_VARIABLE: ADDRESS, DISTRIBUTED_TRAINING_ROWS_VARIABLE: "1000"}
    assert place_training(LIGHTGBM, False, 999, environment).setting is None
    assert place_training(LIGHTGBM, False, 999, environment).declined is None
    assert place_training(LIGHTGBM, False, 1000, environment).setting == DistributedSetting(ADDRESS, 1000)


def test_what_has_no_distributed_trainer_trains_here_and_says_why():
    environment = {DASK_ADDRESS_VARIABLE: ADDRESS, DISTRIBUTED_TRAINING_ROWS_VARIABLE: "1000"}
    forest = place_training(FOREST, False, 5000, environment)
    assert forest.setting is None
    assert forest.declined == (f"the training window's 5000 rows reach {DISTRIBUTED_TRAINING_ROWS_VARIABLE}=1000, "
                               f"but random_forest has no distributed trainer (only lightgbm does): trained on one "
                               f"machine")
    searched = place_training(LIGHTGBM, True, 5000, environment)
    assert searched.setting is None and "the trials of algorithm.search train on one machine" in searched.declined


def test_an_unreachable_scheduler_is_an_error_naming_the_variable():
    pytest.importorskip("distributed", reason="the cluster extra is not installed (pip install -e '.[cluster]')")
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(DistributedTrainingError) as raised:
        with cluster_client(f"tcp://127.0.0.1:{port}", timeout=1):
            pass
    assert str(raised.value).startswith(f"{DASK_ADDRESS_VARIABLE}='tcp://127.0.0.1:{port}': no dask scheduler "
                                        f"answered within 1 s")


def test_an_address_that_is_not_one_is_an_error_naming_the_variable():
    pytest.importorskip("distributed", reason="the cluster extra is not installed (pip install -e '.[cluster]')")
    with pytest.raises(DistributedTrainingError, match=f"{DASK_ADDRESS_VARIABLE}='nowhere:port': no dask scheduler"):
        with cluster_client("nowhere:port", timeout=1):
            pass
