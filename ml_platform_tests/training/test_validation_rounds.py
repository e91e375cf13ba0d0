"""The rounds a distributed booster keeps: LightGBM's own validation metric of every objective the platform trains,
and the round its early-stopping callback keeps, computed after training on the whole validation window."""

from __future__ import annotations

import lightgbm
import numpy as np
import pytest

from ml_platform.training.validation_rounds import choose_rounds, validation_loss

ROUNDS = 40


def _rows(seed: int, rows: int = 3000) -> tuple[np.ndarray, np.ndarray]:
    generator = np.random.default_rng(seed)
    matrix = generator.normal(size=(rows, 4))
    signal = matrix[:, 0] + 0.5 * matrix[:, 1] * matrix[:, 2] + generator.normal(scale=0.8, size=rows)
    return matrix, signal


def _labels(objective: str, signal: np.ndarray) -> np.ndarray:
    if objective == "binary":
        return (signal > 0.3).astype("float64")
    if objective == "multiclass":
        return np.digitize(signal, [-0.5, 0.7]).astype("float64")
    if objective in ("poisson", "tweedie"):
        return np.floor(np.exp(0.5 * signal)).astype("float64")
    return 10 + 3 * signal


PARAMETERS = [
    {"objective": "binary", "metric": "binary_logloss"},
    {"objective": "multiclass", "metric": "multi_logloss", "num_class": 3},
    {"objective": "regression", "metric": "regression"},
    {"objective": "regression_l1", "metric": "regression_l1"},
    {"objective": "huber", "metric": "huber", "alpha": 1.5},
    {"objective": "quantile", "metric": "quantile", "alpha": 0.8},
    {"objective": "poisson", "metric": "poisson"},
    {"objective": "tweedie", "metric": "tweedie", "tweedie_variance_power": 1.3},
]


def _trained(parameters: dict, stopping_rounds: int | None = None, learning_rate: float = 0.1):
    train_matrix, train_signal = _rows(1)
    valid_matrix, valid_signal = _rows(2, rows=1500)
    objective = parameters["objective"]
    train_label, valid_label = _labels(objective, train_signal), _labels(objective, valid_signal)
    full = {**parameters, "learning_rate": learning_rate, "num_leaves": 15, "seed": 3, "deterministic": True,
            "num_threads": 2, "verbosity": -1}
    train_set = lightgbm.Dataset(train_matrix, label=train_label)
    valid_set = lightgbm.Dataset(valid_matrix, label=valid_label, reference=train_set)
    recorded: dict = {}
    callbacks = [lightgbm.record_evaluation(recorded)]
    if stopping_rounds is not None:
        callbacks.append(lightgbm.early_stopping(stopping_rounds, verbose=False))
    booster = lightgbm.train(full, train_set, num_boost_round=ROUNDS, valid_sets=[valid_set],
                             valid_names=["validation"], callbacks=callbacks)
    return booster, full, valid_matrix, valid_label, recorded["validation"]


@pytest.mark.parametrize("parameters", PARAMETERS, ids=[p["objective"] for p in PARAMETERS])
def test_each_rounds_loss_is_lightgbms_own_validation_metric(parameters):
    booster, full, valid_matrix, valid_label, recorded = _trained(parameters)
    choice = choose_rounds(booster, full, valid_matrix, valid_label, stopping_rounds=None, threads=2)
    (name, expected), = recorded.items()
    assert choice.metric == parameters["metric"] and len(choice.losses) == ROUNDS == choice.kept
    assert np.allclose(choice.losses, expected, rtol=1e-9, atol=1e-12), name


@pytest.mark.parametrize("parameters", PARAMETERS[:3], ids=[p["objective"] for p in PARAMETERS[:3]])
def test_the_rounds_kept_are_those_lightgbms_early_stopping_keeps(parameters):
    # a high learning rate overfits within the rounds, so early stopping stops before the last round
    stopped, full, valid_matrix, valid_label, _ = _trained(parameters, stopping_rounds=5, learning_rate=0.9)
    assert 0 < stopped.best_iteration < ROUNDS - 5
    everything, *_ = _trained(parameters, stopping_rounds=None, learning_rate=0.9)
    choice = choose_rounds(everything, full, valid_matrix, valid_label, stopping_rounds=5, threads=2)
    assert choice.kept == stopped.best_iteration
    assert len(choice.losses) == choice.kept + 5  # it stopped counting where the callback stops: 5 rounds later


def test_an_objective_without_a_metric_is_refused():
    with pytest.raises(ValueError, match="no validation metric for LightGBM objective 'lambdarank'"):
        validation_loss({"objective": "lambdarank"}, np.zeros(2), np.zeros(2))
