"""Early stopping decided after training, on the whole validation window: what `lightgbm.early_stopping` does
during single-machine training, for a booster that lightgbm.dask trained for all of its rounds.

lightgbm.dask gives each worker only the validation rows that happen to sit on it, so each worker would judge the
rounds on different rows and could stop at a different round than the others (a hang in data-parallel training).
Instead, the distributed booster is trained for every round the spec allows, and the rounds to keep are chosen
here, in the step's process, on the whole validation window: each round's raw scores are added to the previous
ones (one tree per class at a time, so the cost is linear in the rounds), turned into predictions by the task's
link, and scored by LightGBM's own metric for the objective (the formulas of LightGBM's src/metric). The rule is
the callback's: the best round so far is replaced only by a strictly lower loss, and the rounds stop counting once
`early_stopping_rounds` rounds in a row did not improve on it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

EPSILON = 1e-15  # LightGBM's kEpsilon, which bounds probabilities away from 0 and 1 in its log losses
POSITIVE = 1e-10  # the lower bound LightGBM's poisson and tweedie metrics put on a prediction


@dataclass(frozen=True)
class RoundChoice:
    """The rounds to keep, the validation loss of each round trained, and the metric's name."""

    metric: str
    losses: tuple[float, ...]
    kept: int  # rounds kept (1-based count)

    @property
    def best_loss(self) -> float:
        """The validation loss of the kept model."""
        return self.losses[self.kept - 1]


def _link(objective: str, raw: np.ndarray) -> np.ndarray:
    """The predictions LightGBM's objective gives for its raw scores."""
    if objective == "binary":
        return 1.0 / (1.0 + np.exp(-raw))
    if objective == "multiclass":
        shifted = np.exp(raw - raw.max(axis=1, keepdims=True))
        return shifted / shifted.sum(axis=1, keepdims=True)
    if objective in ("poisson", "tweedie"):
        return np.exp(raw)
    return raw


def validation_loss(parameters: dict, label: np.ndarray, predicted: np.ndarray) -> float:
    """LightGBM's validation metric of the parameters' objective (lower is better) for these predictions."""
    objective = parameters["objective"]
    label = np.asarray(label, dtype="float32").astype("float64")  # LightGBM keeps labels as 32-bit floats
    if objective == "binary":
        probability = np.clip(predicted, EPSILON, 1.0 - EPSILON)
        return float(np.mean(-np.where(label > 0, np.log(probability), np.log(1.0 - probability))))
    if objective == "multiclass":
        chosen = predicted[np.arange(len(label)), label.astype("int64")]
        return float(np.mean(-np.log(np.maximum(chosen, EPSILON))))
    difference = predicted - label
    if objective == "regression":
        return float(np.mean(difference ** 2))
    if objective == "regression_l1":
        return float(np.mean(np.abs(difference)))
    if objective == "huber":
        alpha = parameters.get("alpha", 0.9)
        size = np.abs(difference)
        return float(np.mean(np.where(size <= alpha, 0.5 * difference ** 2, alpha * (size - 0.5 * alpha))))
    if objective == "quantile":
        alpha, delta = parameters.get("alpha", 0.9), label - predicted
        return float(np.mean(np.where(delta < 0, (alpha - 1.0) * delta, alpha * delta)))
    score = np.maximum(predicted, POSITIVE)
    if objective == "poisson":
        return float(np.mean(score - label * np.log(score)))
    if objective == "tweedie":
        power = parameters.get("tweedie_variance_power", 1.5)
        return float(np.mean(-label * np.exp((1.0 - power) * np.log(score)) / (1.0 - power)
                             + np.exp((2.0 - power) * np.log(score)) / (2.0 - power)))
    raise ValueError(f"no validation metric for LightGBM objective {objective!r}")


def choose_rounds(booster, parameters: dict, valid_matrix: np.ndarray, valid_label: np.ndarray,
                  stopping_rounds: int | None, threads: int) -> RoundChoice:
    """The rounds `lightgbm.early_stopping(stopping_rounds)` would have kept of the booster's rounds, judged on the
    validation rows (all rounds when stopping_rounds is None: no early stopping)."""
    objective, rounds = parameters["objective"], booster.current_iteration()
    raw = None
    losses, best, best_round = [], np.inf, 0
    for iteration in range(rounds):
        step = booster.predict(valid_matrix, raw_score=True, start_iteration=iteration, num_iteration=1,
                               num_threads=threads)
        raw = step if raw is None else raw + step
        losses.append(validation_loss(parameters, valid_label, _link(objective, raw)))
        if losses[-1] < best:
            best, best_round = losses[-1], iteration
        elif stopping_rounds is not None and iteration - best_round >= stopping_rounds:
            break
    kept = best_round + 1 if stopping_rounds is not None else rounds
    return RoundChoice(parameters.get("metric", objective), tuple(losses), kept)
