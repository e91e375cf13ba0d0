"""The declared hyper-parameter search of a model's algorithm: which parameters, over which ranges or choices,
how many trials, the sampler's seed, the objective judged on the validation window, and a time budget.

The search block of each algorithm is its own pydantic model whose `parameters` allow exactly the names of that
algorithm's hyper-parameters, so an unknown name is the loader's usual "unknown field ...; did you mean" error.
"""

from __future__ import annotations

import types
import typing
from typing import Literal, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, model_validator

# what a search may optimise: the money on the validation window at its best decision (default), or a metric of
# the task (the spec checks which tasks allow which metric); the direction is implied
OBJECTIVE_DIRECTIONS = {"money": "maximize", "roc_auc": "maximize", "accuracy": "maximize",
                        "log_loss": "minimize", "brier": "minimize", "rmse": "minimize", "mae": "minimize"}
SEARCH_METRICS = {"binary_classification": ("money", "roc_auc", "log_loss", "brier"),
                  "regression": ("money", "rmse", "mae"),
                  "multiclass": ("money", "log_loss", "accuracy")}
Objective = Literal["money", "roc_auc", "accuracy", "log_loss", "brier", "rmse", "mae"]
Choice = Union[bool, int, float, str, None]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Parameter(_Frozen):
    """One searched hyper-parameter: a range of numbers from low to high (both included; whole numbers for an
    integer hyper-parameter), or a list of choices."""

    low: int | float | None = Field(default=None, exclude_if=lambda value: value is None,
                                    description="range: the smallest value tried")
    high: int | float | None = Field(default=None, exclude_if=lambda value: value is None,
                                     description="range: the largest value tried")
    log: bool = Field(default=False, description="range: sample on a log scale (low must be above 0)")
    choices: list[Choice] | None = Field(default=None, exclude_if=lambda value: value is None,
                                         description="the values tried instead of a range, none twice")

    @model_validator(mode="after")
    def _one_form(self) -> "Parameter":
        if self.choices is not None:
            if self.low is not None or self.high is not None or self.log:
                raise ValueError("give either choices or a range (low, high, log), not both")
            if not self.choices:
                raise ValueError("choices needs at least one value")
            seen = [repr(value) for value in self.choices]
            twice = sorted({value for value in seen if seen.count(value) > 1})
            if twice:
                raise ValueError(f"choices listed twice: {', '.join(twice)}")
            return self
        if self.low is None or self.high is None:
            raise ValueError("give a range as low and high (and optionally log: true), or a list of choices")
        if self.low >= self.high:
            raise ValueError(f"empty range: low {self.low} must be below high {self.high}")
        if self.log and self.low <= 0:
            raise ValueError(f"a log-scale range needs low above 0, not {self.low}")
        return self

    def is_range(self) -> bool:
        """True for a range, False for choices."""
        return self.choices is None


def parameter_kind(params: type[BaseModel], name: str) -> str:
    """'int' or 'float' for a numeric hyper-parameter that a range may cover, else 'choices' (choices only)."""
    annotation = params.model_fields[name].annotation
    members = set(typing.get_args(annotation)) if isinstance(annotation, types.UnionType) or \
        typing.get_origin(annotation) is Union else {annotation}
    members.discard(type(None))
    if members == {int}:
        return "int"
    if members == {float}:
        return "float"
    return "choices"


def _value_problem(params: type[BaseModel], name: str, value) -> str | None:
    """Why the hyper-parameter cannot take value (pydantic's words), else None."""
    try:
        params.model_validate({name: value})
    except ValidationError as error:
        return "; ".join(item["msg"] for item in error.errors())
    return None


def _parameters_problems(params: type[BaseModel], given: dict[str, Parameter]) -> list[str]:
    problems = []
    for name, parameter in given.items():
        kind = parameter_kind(params, name)
        if parameter.is_range():
            if kind == "choices":
                problems.append(f"{name} takes no range, only choices")
                continue
            if kind == "int" and not all(isinstance(value, int) for value in (parameter.low, parameter.high)):
                problems.append(f"{name} is a whole number: give low and high as whole numbers, not "
                                f"{parameter.low} and {parameter.high}")
                continue
            values = [parameter.low, parameter.high]
        else:
            values = list(parameter.choices)
        for value in values:
            if problem := _value_problem(params, name, value):
                problems.append(f"{name} cannot be {value!r}: {problem}")
    return problems


class SearchBase(_Frozen):
    """Fields every algorithm's search block has besides its parameters."""

    trials: int = Field(ge=1, le=10000, description="how many parameter sets to try (fewer if the time budget ends)")
    seed: int = Field(default=0, ge=0, description="the seed of Optuna's TPE sampler: the same seed and data try "
                                                   "the same parameters")
    objective: Objective = Field(
        default="money",
        description="what the search maximises on the validation window: money (the money at the validation "
                    "window's best decision, the default) or a metric of the task (binary_classification: roc_auc, "
                    "log_loss, brier; regression: rmse, mae; multiclass: log_loss, accuracy), lower is better for "
                    "losses and errors")
    time_budget_seconds: float | None = Field(
        default=None, gt=0,
        description="start no trial after this many seconds of searching (the running trial finishes); the report "
                    "says when the budget stopped the search")

    parallel: int = Field(
        default=1, ge=1, le=64, strict=True, exclude_if=lambda value: value == 1,  # absent from the hash at 1
        description="how many trials run at a time (lightgbm only): Optuna proposes them in fixed batches (ask this "
                    "many, train them concurrently, tell their results in trial order), so the same seed and "
                    "parallel try the same parameters; each trial's LightGBM uses the platform's threads divided "
                    "by parallel (at least 1), and the chosen parameters are trained once more with all of them")

    def direction(self) -> str:
        """'maximize' or 'minimize', implied by the objective."""
        return OBJECTIVE_DIRECTIONS[self.objective]


def search_model(params: type[BaseModel], algorithm: str) -> type[SearchBase]:
    """The search block of an algorithm whose hyper-parameters are `params`: its parameters allow their names only."""
    fields = {name: (Parameter | None, Field(default=None, exclude_if=lambda value: value is None,
                                            description=f"a range or choices of {name}"))
              for name in params.model_fields}
    parameters = create_model(f"{params.__name__}Search", __base__=_Frozen, __doc__=(
        f"The {algorithm} hyper-parameters searched, each a range (low, high, log) or choices; a parameter not "
        f"listed keeps the value of params."), **fields)

    def _checked(self):
        given = searched(self)
        if not given:
            raise ValueError("name at least one hyper-parameter to search")
        problems = _parameters_problems(params, given)
        if problems:
            raise ValueError("; ".join(problems))
        return self

    parameters = create_model(parameters.__name__, __base__=parameters,
                              __validators__={"_checked": model_validator(mode="after")(_checked)})
    parameters.__doc__ = (f"The {algorithm} hyper-parameters searched, each a range (low, high, log) or choices; "
                          f"a parameter not listed keeps the value of params.")
    def _parallel_allowed(self):
        if algorithm != "lightgbm" and self.parallel != 1:
            raise ValueError(f"parallel trials run for lightgbm only, not {algorithm} (scikit-learn sets its thread "
                             f"pools process-wide, so concurrent trials would share them): give parallel: 1 or "
                             f"leave it out")
        return self

    search = create_model(f"{params.__name__.removesuffix('Params')}Search", __base__=SearchBase,
                          parameters=(parameters, Field(description="the hyper-parameters searched")),
                          __validators__={"_parallel_allowed": model_validator(mode="after")(_parallel_allowed)})
    search.__doc__ = (f"A hyper-parameter search of {algorithm} run by Optuna's seeded TPE sampler inside the training "
                      f"run, judged on the validation window only; the chosen parameters are recorded in the model "
                      f"card and reproduce retrains with them without searching again.")
    return search


def searched(parameters: BaseModel) -> dict[str, Parameter]:
    """The searched hyper-parameters of a search block, by name, in the order the algorithm's params declare them
    (a fixed order, so that the seeded sampler draws the same values)."""
    return {name: getattr(parameters, name) for name in type(parameters).model_fields
            if getattr(parameters, name) is not None}
