"""The spec's hyper-parameter search, run by Optuna inside the training run, on the training and validation rows only.

Each trial trains the algorithm through `training.algorithms.train` (the one training path) with the trial's
parameters on the training rows, and a judge scores its predictions on the validation rows: the money at the
validation window's best decision, or a metric of the task. The judge comes from the evaluation floor, which knows
money; this module only ever hands it the validation predictions. The test window is never read here.

Storage: Optuna's in-memory storage, then every trial is recorded by us in the model card (`SearchRecord`). The card
is the run's one immutable record, written once with the model; an Optuna sqlite file beside it would be a second,
mutable store (and an RDB schema with migrations) to keep consistent with the registry, for a history of a few
dozen rows.

Parallel trials (`search.parallel: N`): Optuna's ask/tell in fixed batches. The main thread asks N trials (TPE with
its constant liar, so a batch's proposals spread), draws their parameters in trial order, trains the N at once in
threads (LightGBM releases the GIL while it boosts; threads share the matrices encoded once, where processes would
copy them), then scores and tells them in trial order. The proposals depend only on (seed, N), never on which
trial finishes first. Each trial's LightGBM gets THREADS // N threads (at least 1); since a LightGBM model's bytes
depend on its number of threads, the chosen parameters are trained once more with THREADS after the search, so
the model is the one `train` (and `reproduce`) gives. The time budget is checked between batches.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

import numpy as np
import pandas as pd

from ml_platform.errors import PlatformError
from ml_platform.progress import Progress, silent
from ml_platform.records.search import SearchRecord, SearchTrial
from ml_platform.specs.models import ModelSpec
from ml_platform.specs.search import parameter_kind, searched
from ml_platform.training.algorithms import THREADS, Rows, TrainingResult, train
from ml_platform.training.encoded import EncodedSplits, encodable, predict_validation, train_encoded

STORAGE = "optuna in-memory storage, every trial recorded in the model card"


class SearchError(PlatformError, RuntimeError):
    """A search that cannot run or that found nothing to choose."""


@dataclass(frozen=True)
class Judgement:
    """A trial judged on the validation window: the objective's value, and the money at the best decision when the
    judge measured it."""

    value: float
    money: float | None = None


Scorer = Callable[[np.ndarray], Judgement]


class SearchJudge(Protocol):
    """Builds, from the validation rows alone, the scorer of a trial's validation predictions."""

    def __call__(self, model: ModelSpec, validation: Rows) -> Scorer:
        ...


@dataclass
class CachedRows:
    """One split's rows whose columns are read once and kept, so that trials do not read the snapshot again."""

    rows: Rows
    label: np.ndarray = field(init=False)
    cache: dict[str, pd.Series] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.label = self.rows.label

    def column(self, name: str) -> pd.Series:
        if name not in self.cache:
            self.cache[name] = self.rows.column(name)
        return self.cache[name]


def trial_training(model: ModelSpec, columns: list[str], categorical: list[str], train_rows: Rows, valid_rows: Rows
                   ) -> tuple[Callable[[Any], TrainingResult], Callable[[TrainingResult], np.ndarray]]:
    """How a trial trains an algorithm and predicts the validation rows: LightGBM on both splits' matrices encoded
    once for the whole search; scikit-learn (whose pipeline encodes its own inputs) through `train` on columns read
    once, predicting a validation frame built once."""
    if encodable(model.algorithm):
        encoded = EncodedSplits.encode(columns, categorical, train_rows, valid_rows, model.label)
        return (lambda algorithm, threads=THREADS: train_encoded(algorithm, encoded, model.label, threads),
                lambda result: predict_validation(result, encoded))
    train_rows, valid_rows = CachedRows(train_rows), CachedRows(valid_rows)
    valid_frame = pd.DataFrame({name: valid_rows.column(name) for name in columns})
    return (lambda algorithm, threads=THREADS: train(algorithm, columns, categorical, train_rows, valid_rows,
                                                     label=model.label),
            lambda result: result.predictor.predict(valid_frame))


def trial_threads(parallel: int) -> int:
    """LightGBM threads of each of `parallel` concurrent trials: the platform's THREADS shared, at least 1."""
    return max(1, THREADS // parallel)


def with_parameters(algorithm, values: dict[str, Any]):
    """The algorithm with some hyper-parameters replaced (validated by its params model)."""
    params = type(algorithm.params).model_validate({**algorithm.params.model_dump(), **values})
    return algorithm.model_copy(update={"params": params})


def suggest(trial, params_type, name: str, parameter) -> Any:
    """The trial's value of one searched hyper-parameter: an integer or float range (log scale or not), or a choice."""
    if not parameter.is_range():
        return trial.suggest_categorical(name, list(parameter.choices))
    if parameter_kind(params_type, name) == "int":
        return trial.suggest_int(name, int(parameter.low), int(parameter.high), log=parameter.log)
    return trial.suggest_float(name, float(parameter.low), float(parameter.high), log=parameter.log)


def hand_set_values(algorithm, parameters: dict) -> dict[str, Any] | None:
    """The spec's own values of the searched hyper-parameters when every one lies in its range or choices (the
    search then tries them first, as its baseline), else None."""
    values = {name: getattr(algorithm.params, name) for name in parameters}
    for name, parameter in parameters.items():
        value = values[name]
        inside = value in parameter.choices if not parameter.is_range() else \
            value is not None and parameter.low <= value <= parameter.high
        if not inside:
            return None
    return values


@dataclass
class SearchOutcome:
    """The chosen trial's trained model (the same bytes `train` gives with the chosen parameters) and the record."""

    result: TrainingResult
    record: SearchRecord


def run_search(model: ModelSpec, columns: list[str], categorical: list[str], train_rows: Rows, valid_rows: Rows,
               score: Scorer, progress: Progress | None = None,
               clock: Callable[[], float] = time.perf_counter) -> SearchOutcome:
    """Run the spec's search: each trial trains on `train_rows` with early stopping on `valid_rows` and is scored by
    `score` on its validation predictions; the best trial's model is kept (ties: the earlier trial). When the
    spec's own params lie inside the searched ranges, trial 0 tries them, so the search is measured against them."""
    import optuna

    search = model.algorithm.search
    if search is None:
        raise SearchError(f"'{model.name}' declares no algorithm.search")
    progress = progress if progress is not None else silent()
    params_type = type(model.algorithm.params)
    parameters = searched(search.parameters)
    fit, predict = trial_training(model, columns, categorical, train_rows, valid_rows)
    maximize = search.direction() == "maximize"
    parallel, threads = search.parallel, trial_threads(search.parallel)
    best: dict[str, Any] = {}
    seconds: dict[int, float] = {}

    def trained(values: dict[str, Any]) -> tuple[TrainingResult, np.ndarray, float]:
        """A trial's model and validation predictions, and the seconds they took (in a worker thread)."""
        started = clock()
        result = fit(with_parameters(model.algorithm, values), threads)
        predictions = predict(result)
        return result, predictions, clock() - started

    def judged(trial, values: dict[str, Any], result: TrainingResult, predictions: np.ndarray,
               fitted_in: float) -> float:
        """The trial scored on the validation window, in trial order (the main thread)."""
        started = clock()
        judgement = score(predictions)
        if not np.isfinite(judgement.value):
            raise SearchError(f"trial {trial.number} of '{model.name}' has objective {search.objective} "
                              f"{judgement.value} on the validation window: not a number to compare")
        if judgement.money is not None:
            trial.set_user_attr("validation_money", float(judgement.money))
        better = not best or (judgement.value > best["value"] if maximize else judgement.value < best["value"])
        if better:
            best.update(value=judgement.value, number=trial.number, result=result, values=values)
        seconds[trial.number] = round(fitted_in + clock() - started, 3)
        progress.report(f"search trial {trial.number + 1} of {search.trials}: {search.objective} "
                        f"{judgement.value:,.4f}, best {best['value']:,.4f} (trial {best['number']})")
        return float(judgement.value)

    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # one line per trial goes to our progress, not Optuna's
    try:
        sampler = optuna.samplers.TPESampler(seed=search.seed, constant_liar=parallel > 1)
        study = optuna.create_study(direction=search.direction(), sampler=sampler,
                                    storage=optuna.storages.InMemoryStorage())
        baseline = hand_set_values(model.algorithm, parameters)
        if baseline is not None:  # trial 0 is the spec's own params: what the search must beat on validation
            study.enqueue_trial(baseline)
        started = clock()
        with ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="search-trial") as pool:
            while len(study.trials) < search.trials:
                batch = [study.ask() for _ in range(min(parallel, search.trials - len(study.trials)))]
                proposals = [{name: suggest(trial, params_type, name, parameter)
                              for name, parameter in parameters.items()} for trial in batch]
                if parallel == 1:
                    outcomes = [trained(proposals[0])]
                else:
                    outcomes = [future.result() for future in [pool.submit(trained, values) for values in proposals]]
                for trial, values, outcome in zip(batch, proposals, outcomes):
                    study.tell(trial, judged(trial, values, *outcome))
                if search.time_budget_seconds is not None and clock() - started >= search.time_budget_seconds:
                    break  # start no batch after the budget; the batch running finishes
    finally:
        optuna.logging.set_verbosity(verbosity)
    elapsed = clock() - started
    if not best:
        raise SearchError(f"the search of '{model.name}' completed no trial")
    if threads != THREADS and encodable(model.algorithm):  # the chosen parameters as `train` trains them
        best["result"] = fit(with_parameters(model.algorithm, best["values"]), THREADS)
    trials = tuple(SearchTrial(number=trial.number, parameters=dict(trial.params), value=trial.value,
                               validation_money=trial.user_attrs.get("validation_money"),
                               seconds=seconds.get(trial.number, 0.0), state=trial.state.name,
                               origin="params" if baseline is not None and trial.number == 0 else None)
                   for trial in study.trials)
    stopped = search.time_budget_seconds is not None and len(trials) < search.trials
    chosen = with_parameters(model.algorithm, best["values"]).params.model_dump()
    sampler_text = f"TPESampler(seed={search.seed}{', constant_liar=True' if parallel > 1 else ''})"
    record = SearchRecord(
        library={"optuna": optuna.__version__}, sampler=sampler_text, storage=STORAGE,
        objective=search.objective, direction=search.direction(), trials_declared=search.trials,
        time_budget_seconds=search.time_budget_seconds, stopped_by_time_budget=stopped, seconds=round(elapsed, 3),
        best_trial=best["number"], chosen=chosen, trials=trials, parallel=parallel,
        trial_threads=threads if encodable(model.algorithm) else None)
    progress.report(f"search of '{model.name}' {record.ending()} in {elapsed:.1f} s; chose trial {best['number']} "
                    f"({search.objective} {best['value']:,.4f})")
    return SearchOutcome(best["result"], record)
