"""The training runs of a model as the registry records them: snapshot, model, evaluation, gate and promotions."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import duckdb

from ml_platform.provenance.describe import money_with_interval, timestamp
from ml_platform.provenance.records import require_model
from ml_platform.records.evaluation import TestMetrics
from ml_platform.storage import registry


@dataclass(frozen=True)
class TrainingRun:
    """One training run of a model; a stage it has not reached yet is None."""

    key: str
    created_at: dt.datetime
    snapshot_id: str
    snapshot_rows: int
    model_version: str | None
    currency: str | None
    test: TestMetrics | None
    gate_passed: bool | None
    promotions: tuple[int, ...]
    champion: bool
    # a model judged by its decision (registry.task_evaluations): test money and its 95% interval; `test` is None
    task_money: tuple[float, float, float] | None = None


def training_runs(connection: duckdb.DuckDBPyConnection, model: str) -> list[TrainingRun]:
    """Every training run of the model, oldest first."""
    require_model(connection, model)
    models = {trained.training_run: trained for trained in registry.models.all(connection, model=model)}
    evaluations = {evaluation.training_run: evaluation
                   for evaluation in registry.evaluations.all(connection, model=model)}
    judged = {evaluation.training_run: evaluation
              for evaluation in registry.task_evaluations.all(connection, model=model)}
    promotions = registry.promotions.log(connection, model)
    live = promotions[-1].training_run if promotions else None
    runs = []
    for snapshot in registry.snapshots.all(connection, model=model):
        key = snapshot.training_run
        evaluation = evaluations.get(key)
        task = judged.get(key)
        runs.append(TrainingRun(
            key=key, created_at=snapshot.created_at, snapshot_id=snapshot.snapshot_id,
            snapshot_rows=sum(snapshot.manifest.rows.values()),
            model_version=models[key].model_version if key in models else None,
            currency=evaluation.summary.currency if evaluation else task.currency if task else None,
            test=evaluation.summary.test if evaluation else None,
            gate_passed=evaluation.gate_passed if evaluation else task.gate_passed if task else None,
            promotions=tuple(promotion.promotion_id for promotion in promotions if promotion.training_run == key),
            champion=key == live,
            task_money=(task.test_money, *task.test_money_interval_95) if task else None,
        ))
    return runs


def _champion_text(run: TrainingRun) -> str:
    ids = ", ".join(f"#{number}" for number in run.promotions)
    if run.champion:
        return f"live champion (promotion {ids})"
    return f"was champion (promotion {ids})" if run.promotions else "never"


def runs_text(model: str, runs: list[TrainingRun]) -> str:
    """The table `ml-platform runs` prints."""
    champion = next((run for run in runs if run.champion), None)
    title = f"Training runs of {model}: {len(runs)}; live champion: " + (
        f"{champion.model_version} (training run {champion.key})" if champion else "none")
    header = ("training run", "created (UTC)", "snapshot", "rows", "model version", "test money", "ROC AUC",
              "gate", "champion")
    table = [header]
    for run in runs:
        table.append((
            run.key, timestamp(run.created_at), run.snapshot_id, f"{run.snapshot_rows:,}",
            run.model_version or "(not trained)",
            money_with_interval(run.test, run.currency) if run.test else
            f"{run.task_money[0]:,.0f} {run.currency} (95% {run.task_money[1]:,.0f} to {run.task_money[2]:,.0f})"
            if run.task_money else "(not evaluated)",
            f"{run.test.roc_auc:.4f}" if run.test else "-",
            "-" if run.gate_passed is None else ("passed" if run.gate_passed else "FAILED"),
            _champion_text(run),
        ))
    widths = [max(len(row[column]) for row in table) for column in range(len(header))]
    numbers = {header.index("rows"), header.index("ROC AUC")}
    lines = [title, ""]
    lines += ["  ".join(cell.rjust(width) if column in numbers else cell.ljust(width)
                        for column, (cell, width) in enumerate(zip(row, widths))).rstrip() for row in table]
    return "\n".join(lines)
