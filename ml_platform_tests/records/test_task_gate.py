"""A promotion's gate is binary-shaped or task-shaped: stored binary gates keep reading as Gate, task gates as
TaskGate, and a task gate missing a check is refused rather than read as a binary one."""

from __future__ import annotations

import datetime as dt

import pydantic
import pytest

from ml_platform.records.gate import Gate
from ml_platform.records.registry import PromotionRecord
from ml_platform.records.tasks import MetricCheck, TaskGate
from ml_platform.storage.warehouse import open_warehouse
from ml_platform_tests.records.builders import evaluation_summary


@pytest.fixture
def connection(tmp_path):
    with open_warehouse(tmp_path / "w.duckdb") as connection:
        yield connection


def task_gate(binary: dict) -> dict:
    """A task gate from a binary one's checks: metric_bounds in place of roc_auc_floor."""
    checks = {name: check for name, check in binary.items() if name != "roc_auc_floor"}
    bound = MetricCheck(passed=False, why="test rmse 31.2 is not at most 30", value=31.2).plain()
    checks["metric_bounds"] = {"passed": False, "why": bound["why"], "details": {"bounds": {"rmse": bound}}}
    return checks


def promotion(gate: dict) -> dict:
    return {"promotion_id": 1, "model": "flight_delay", "model_version": "flight_delay-0123456789ab",
            "training_run": "r", "promoted_at": dt.datetime(2013, 2, 1), "dagster_run_id": "x", "reason": "y",
            "gate": gate}


def test_a_binary_gate_stays_a_gate_and_a_task_gate_reads_as_one(connection):
    binary = evaluation_summary(connection)["gate"]

    stored_binary = PromotionRecord.model_validate(promotion(binary))
    stored_task = PromotionRecord.model_validate(promotion(task_gate(binary)))

    assert type(stored_binary.gate) is Gate and stored_binary.gate.plain() == binary
    assert type(stored_task.gate) is TaskGate
    assert [name for name, _ in stored_task.gate.checks()] == [
        "money_floor", "metric_bounds", "beats_champion", "no_leakage", "predictions_sane"]
    assert [name for name, _ in stored_task.gate.failures()] == ["metric_bounds"] and not stored_task.gate.passed()
    assert stored_task.gate.metric_bounds.details.bounds["rmse"].value == 31.2


def test_a_task_gate_without_a_check_is_refused(connection):
    gate = task_gate(evaluation_summary(connection)["gate"])
    del gate["beats_champion"]

    with pytest.raises(pydantic.ValidationError, match="beats_champion"):
        TaskGate.model_validate(gate)
    with pytest.raises(pydantic.ValidationError):  # neither a binary gate (metric_bounds is unknown to it) nor a task one
        PromotionRecord.model_validate(promotion(gate))
