"""What a hyper-parameter search did, as the model card records it: every trial, the one chosen and why it ended."""

from __future__ import annotations

from typing import Any, Literal

from ml_platform.records.base import Record


class SearchTrial(Record):
    """One trial of a search: the parameters tried, the objective on the validation window, its time and state."""

    number: int  # Optuna's trial number, from 0
    parameters: dict[str, Any]  # the searched hyper-parameters only
    value: float | None = None  # the objective on the validation window (None when the trial did not complete)
    validation_money: float | None = None  # the money at the validation window's best decision
    seconds: float
    state: str  # Optuna's trial state: COMPLETE, FAIL, ...
    origin: str | None = None  # "params": the spec's own hand-set values, tried first as the baseline


class SearchRecord(Record):
    """A finished search: how it was declared, every trial, the trial chosen and its full parameters."""

    library: dict[str, str]  # {"optuna": version}
    sampler: str  # "TPESampler(seed=...)"
    storage: str  # where the trials lived while the search ran
    objective: str  # money or a metric of the task
    direction: Literal["maximize", "minimize"]
    trials_declared: int
    time_budget_seconds: float | None = None
    stopped_by_time_budget: bool
    parallel: int = 1  # trials run at a time, proposed in fixed batches (searches recorded before it ran one)
    trial_threads: int | None = None  # LightGBM threads of each trial (None: recorded before it was)
    seconds: float
    best_trial: int
    chosen: dict[str, Any]  # every hyper-parameter of the chosen model: params with the best trial's values
    trials: tuple[SearchTrial, ...]

    def best(self) -> SearchTrial:
        """The chosen trial."""
        return next(trial for trial in self.trials if trial.number == self.best_trial)

    def baseline(self) -> SearchTrial | None:
        """The trial of the spec's own params, when the search tried them."""
        return next((trial for trial in self.trials if trial.origin == "params"), None)

    def ending(self) -> str:
        """How the search ended, in words."""
        ran = len(self.trials)
        if self.stopped_by_time_budget:
            return (f"stopped by its time budget of {self.time_budget_seconds:g} s after {ran} of "
                    f"{self.trials_declared} trials")
        return f"ran all {ran} trials declared"
