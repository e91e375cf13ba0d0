"""Which algorithm learns which task with which objective: the one support table, judged at load time."""

from __future__ import annotations

import json

from ml_platform.specs.models import OBJECTIVES, LabelSpec, ModelSpec
from ml_platform.errors import PlatformError
from ml_platform.specs.errors import unknown_name
from ml_platform.specs.search import SEARCH_METRICS
from ml_platform.specs.sql_checks import is_numeric

# algorithm kind -> task -> the objectives it can minimise for that task (binary and multiclass have one each)
SUPPORT: dict[str, dict[str, tuple[str, ...]]] = {
    "lightgbm": {"binary_classification": ("binary",), "regression": OBJECTIVES, "multiclass": ("multiclass",)},
    "logistic_regression": {"binary_classification": ("binary",), "multiclass": ("multiclass",)},
    "random_forest": {"binary_classification": ("binary",), "regression": ("l2", "l1", "poisson"),
                      "multiclass": ("multiclass",)},
    "hist_gradient_boosting": {"binary_classification": ("binary",), "regression": ("l2", "l1", "poisson", "quantile"),
                               "multiclass": ("multiclass",)},
}

# the decisions each task may take, and the test metrics a gate may bound
DECISIONS = {"binary_classification": ("threshold", "top"), "regression": ("quantity", "top"),
             "multiclass": ("class",)}
GATE_METRICS = {"binary_classification": ("roc_auc", "log_loss", "brier"),
                "regression": ("rmse", "mae", "wape", "pinball"),
                "multiclass": ("log_loss", "accuracy", "macro_f1")}
# the DuckDB type of `decision` and `prediction` in a value expression, by decision kind
DECISION_TYPES = {"threshold": "BOOLEAN", "top": "BOOLEAN", "quantity": "DOUBLE", "class": "VARCHAR"}
VALUE_NAMES = ("label", "prediction", "decision")


def task_problems(model: ModelSpec) -> list[tuple[str, str]]:
    """Every field that does not fit the model's task: algorithm, objective, money form, decision, gate metrics."""
    task = model.label.task
    problems = [support] if (support := support_problem(model)) else []
    money = model.money
    if money.outcomes is not None and task != "binary_classification":
        problems.append(("money.outcomes", f"the outcomes shorthand judges binary_classification only, not {task}; "
                                           f"give money.decision and money.value"))
    if money.decision is not None and money.decision.kind not in DECISIONS[task]:
        problems.append(("money.decision.kind", f"{money.decision.kind} is not a decision of task {task} (allowed: "
                                                f"{', '.join(DECISIONS[task])})"))
    if task != "binary_classification" and "min_roc_auc" in model.gate.model_fields_set:
        problems.append(("gate.min_roc_auc", f"ROC AUC judges binary_classification only, not {task}; bound the "
                                             f"task's metrics in gate.metrics ({', '.join(GATE_METRICS[task])})"))
    search = model.algorithm.search
    if search is not None and search.objective not in SEARCH_METRICS[task]:
        problems.append(("algorithm.search.objective",
                         f"{search.objective} is not a search objective of task {task} (allowed: "
                         f"{', '.join(SEARCH_METRICS[task])})"))
    for name in sorted(model.gate.metrics or {}):
        if name not in GATE_METRICS[task]:
            problems.append((f"gate.metrics.{name}",
                             unknown_name(f"metric of task {task}", name, list(GATE_METRICS[task]))))
    return problems


def support_problem(model: ModelSpec) -> tuple[str, str] | None:
    """The field and the message when the model's algorithm cannot learn its task or objective, else None."""
    algorithm, task = model.algorithm.kind, model.label.task
    tasks = SUPPORT[algorithm]
    if task not in tasks:
        able = [name for name, supported in SUPPORT.items() if task in supported]
        return "algorithm.kind", (f"{algorithm} does not learn task {task} (it learns: {', '.join(tasks)}; "
                                  f"algorithms for {task}: {', '.join(able)})")
    objective = model.label.objective_kind()
    if objective not in tasks[task]:
        able = [name for name, supported in SUPPORT.items() if objective in supported.get(task, ())]
        return "label.objective", (f"{algorithm} does not minimise objective {objective} for task {task} (allowed "
                                   f"with {algorithm}: {', '.join(tasks[task])}; algorithms with {objective}: "
                                   f"{', '.join(able)})")
    return None


def label_type_problem(task: str, kind: str | None) -> str | None:
    """What is wrong with the DuckDB type a label expression gives for its task, else None."""
    if task == "binary_classification" and kind != "BOOLEAN":
        return f"must be true/false, gives {kind}"
    if task == "regression" and (kind is None or not is_numeric(kind)):
        return f"must give a number for task regression, gives {kind}"
    return None  # multiclass: any type, compared with the classes as text


LABEL_TYPES = {"binary_classification": "BOOLEAN", "regression": "DOUBLE", "multiclass": "VARCHAR"}


def label_sql(label: LabelSpec) -> str:
    """The SQL of the snapshot's `label` column: true/false, a number, or the class as text."""
    return f"CAST(({label.expression}) AS {LABEL_TYPES[label.task]})"


def value_columns(model: ModelSpec) -> dict[str, str]:
    """The SQL of `label`, `prediction` and `decision` as a value expression sees them (typed, no values), for checks."""
    decision = DECISION_TYPES[model.money.decision.kind]
    return {"label": label_sql(model.label), "prediction": "CAST(NULL AS DOUBLE)",
            "decision": f"CAST(NULL AS {decision})"}


def value_inputs(model: ModelSpec) -> list[str]:
    """The entity columns the money value expression reads (sorted), which a snapshot carries as money inputs."""
    if model.money.value is None:
        return []
    import duckdb

    connection = duckdb.connect()
    try:
        tree = json.loads(connection.execute("SELECT json_serialize_sql(?)",
                                             [f"SELECT {model.money.value}"]).fetchone()[0])
    finally:
        connection.close()
    found: set[str] = set()
    pending = [tree]
    while pending:
        node = pending.pop()
        if isinstance(node, dict):
            if node.get("class") == "COLUMN_REF" and len(node.get("column_names", ())) == 1:
                found.add(node["column_names"][0])
            pending.extend(node.values())
        elif isinstance(node, list):
            pending.extend(node)
    return sorted(found - set(VALUE_NAMES))


class TaskNotSupportedError(PlatformError, NotImplementedError):
    """A stage that cannot yet handle the spec's task or decision: it refuses rather than produce wrong data."""


def judged_by_decision(model: ModelSpec) -> bool:
    """Whether a model is evaluated, gated, scored and judged through its decision (evaluation.task_evaluation,
    registry.task_evaluations, prediction and decision columns): every regression and multiclass model and a
    binary one deciding the top rows of each day. Binary threshold models keep the binary path, unchanged."""
    return model.label.task != "binary_classification" or (
        model.money.decision is not None and model.money.decision.kind != "threshold")


def require_judged_today(model: ModelSpec, stage: str) -> None:
    """Refuse a stage that judges or scores only binary classification with a threshold decision (the outcomes
    shorthand or a value expression) today, naming the task and decision it was given."""
    decision = "threshold" if model.money.decision is None else model.money.decision.kind
    if model.label.task != "binary_classification" or decision != "threshold":
        raise TaskNotSupportedError(
            f"{stage} of '{model.name}' is not supported for task {model.label.task} with decision {decision} yet: "
            f"snapshots, training and the money mechanism (evaluation.decisions) handle it, but {stage} handles "
            f"binary_classification with a threshold decision only")
