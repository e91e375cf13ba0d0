"""Promotion through an append-only log: the champion is the latest promotion; the gate is checked again here."""

from __future__ import annotations

import duckdb

from ml_platform.storage import registry


class GateRefusedError(RuntimeError):
    """The run's evaluation failed the gate, or the run was never evaluated."""


def promote(connection: duckdb.DuckDBPyConnection, model: str, training_run: str, dagster_run_id: str,
            reason: str) -> dict:
    """Append a promotion of the run's model unless it is already the champion; refuse when the gate failed."""
    evaluation = registry.fetch_one(connection, "evaluations", model=model, training_run=training_run)
    if evaluation is None:
        raise GateRefusedError(f"training run '{training_run}' of '{model}' has no evaluation: it cannot be deployed")
    gate = evaluation["summary"]["gate"]
    failed = {name: check for name, check in gate.items() if not check["passed"]}
    if failed or not evaluation["gate_passed"]:
        reasons = "; ".join(f"{name}: {check['why']}" for name, check in failed.items())
        raise GateRefusedError(f"{evaluation['model_version']} is not deployed: the gate failed ({reasons})")
    current = registry.champion(connection, model)
    if current is not None and current["model_version"] == evaluation["model_version"]:
        return {**current, "already_champion": True}
    row = {
        "promotion_id": registry.next_promotion_id(connection), "model": model,
        "model_version": evaluation["model_version"], "training_run": training_run,
        "promoted_at": registry.now(), "dagster_run_id": dagster_run_id, "reason": reason, "gate": gate,
    }
    registry.insert(connection, "promotions", row)
    return {**row, "already_champion": False}
