"""Deployment's own reading of a stored gate: every failure named, a gate without all five checks refused."""

from __future__ import annotations

import pytest

from ml_platform.deployment.promotion import GateRefusedError, stored_gate_failures, verify_stored_gate
from ml_platform.records.registry import EvaluationRecord
from ml_platform.storage.warehouse import open_warehouse
from ml_platform_tests.records import builders


@pytest.fixture
def evaluation(tmp_path) -> EvaluationRecord:
    """A stored evaluation of synthetic rows whose gate passed."""
    with open_warehouse(tmp_path / "w.duckdb") as connection:
        summary = builders.stored_summary(connection)
    assert summary["gate_passed"]
    return EvaluationRecord.model_validate({
        "model": "flight_delay", "training_run": builders.TRAINING_RUN, "model_version": builders.MODEL_VERSION,
        "report_path": "reports/flight_delay/x.json", "report_sha256": "ab" * 32, "summary": summary,
        "gate_passed": True, "created_at": builders.CREATED})


def with_summary(evaluation: EvaluationRecord, **changes) -> EvaluationRecord:
    return evaluation.model_copy(update={"summary": evaluation.summary.model_copy(update=changes)})


def test_a_passed_gate_is_returned(evaluation):
    assert stored_gate_failures(evaluation) == {}
    assert verify_stored_gate(evaluation, "flight_delay", builders.TRAINING_RUN) == evaluation.summary.gate


def test_each_failed_check_is_named_with_its_reason(evaluation):
    gate = evaluation.summary.gate
    failed = gate.model_copy(update={"money_floor": gate.money_floor.model_copy(
        update={"passed": False, "why": "test money below the floor"})})
    failing = with_summary(evaluation, gate=failed)
    assert stored_gate_failures(failing) == {"money_floor": "test money below the floor"}
    with pytest.raises(GateRefusedError, match=r"is not deployed: the gate failed \(money_floor: test money below"):
        verify_stored_gate(failing, "flight_delay", builders.TRAINING_RUN)


def test_a_gate_without_every_check_is_refused_never_passed(evaluation):
    lacking = with_summary(evaluation, gate=evaluation.summary.gate.model_copy(update={"no_leakage": None}))
    assert stored_gate_failures(lacking) == {"no_leakage": "missing from the stored gate"}


def test_an_evaluation_marked_failed_is_refused_even_with_passed_checks(evaluation):
    marked = evaluation.model_copy(update={"gate_passed": False})
    assert stored_gate_failures(marked) == {"gate": "the stored evaluation is marked as not passing its gate"}


def test_a_run_without_evaluation_cannot_be_deployed():
    with pytest.raises(GateRefusedError, match="has no evaluation: it cannot be deployed"):
        verify_stored_gate(None, "flight_delay", builders.TRAINING_RUN)
