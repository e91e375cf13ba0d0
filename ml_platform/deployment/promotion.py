"""Promotion through an append-only log: the champion is the latest promotion; the gate is checked again here.

Blocking checks only stop the run that evaluated a model, so a promotion re-verifies every gate check from the
stored evaluation. The `beats_champion` check compared the model with the champion live at evaluation time; when
another version has been promoted since, the comparison is made again against the current champion, from the
evaluation's stored per-row predictions, before anything is appended; it reads the new champion's realized money in
production too (a champion under water is compared on the point estimate, see `evaluation.comparison`).

Binary models are judged by their record in registry.evaluations, regression and multiclass models by theirs in
registry.task_evaluations (evaluation.task_evaluation); both gates have the same interface (checks, failures,
missing, passed), and a promotion stores whichever the model was decided on.
"""

from __future__ import annotations

import datetime as dt

import duckdb

from ml_platform.errors import PlatformError
from ml_platform.evaluation.comparison import beats_champion
from ml_platform.evaluation.money import OutcomeValues
from ml_platform.evaluation.predictions_file import read_predictions
from ml_platform.evaluation.task_comparison import stored_test_rows, task_beats_champion
from ml_platform.records.gate import ChampionComparison, Gate, GateCheck
from ml_platform.records.outcomes import PromotionOutcome
from ml_platform.records.registry import EvaluationRecord, PromotionRecord
from ml_platform.records.tasks import TaskEvaluationRecord, TaskGate
from ml_platform.snapshots.build import read_snapshot
from ml_platform.specs.catalog import Catalog
from ml_platform.specs.models import ModelSpec
from ml_platform.specs.tasks import judged_by_decision
from ml_platform.storage import registry
from ml_platform.storage.artifacts import ArtifactStore


class GateRefusedError(PlatformError, RuntimeError):
    """The run's evaluation failed the gate, or the run was never evaluated."""


def gate_of(evaluation: EvaluationRecord | TaskEvaluationRecord) -> Gate | TaskGate:
    """The stored gate of a binary or task evaluation."""
    return evaluation.gate if isinstance(evaluation, TaskEvaluationRecord) else evaluation.summary.gate


def stored_evaluation(connection: duckdb.DuckDBPyConnection, model: ModelSpec,
                      training_run: str) -> EvaluationRecord | TaskEvaluationRecord | None:
    """The run's stored evaluation in the registry of its kind (specs.tasks.judged_by_decision), or None."""
    if judged_by_decision(model):
        return registry.task_evaluations.get(connection, model.name, training_run)
    return registry.evaluations.get(connection, model.name, training_run)


def stored_gate_failures(evaluation: EvaluationRecord | TaskEvaluationRecord) -> dict[str, str]:
    """Check name -> why, for every check the stored evaluation failed or lacks."""
    gate = gate_of(evaluation)
    failures = {name: check.why for name, check in gate.failures()}
    # every stored gate holds all five checks; one without them is refused, never passed
    failures.update({name: "missing from the stored gate" for name in gate.missing()})
    if not failures and not evaluation.gate_passed:
        failures["gate"] = "the stored evaluation is marked as not passing its gate"
    return failures


def verify_stored_gate(evaluation: EvaluationRecord | TaskEvaluationRecord | None, model: str,
                       training_run: str) -> Gate | TaskGate:
    """The stored gate of an evaluation that passed every check; GateRefusedError naming each failure otherwise."""
    if evaluation is None:
        raise GateRefusedError(f"training run '{training_run}' of '{model}' has no evaluation: it cannot be deployed")
    failures = stored_gate_failures(evaluation)
    if failures:
        reasons = "; ".join(f"{name}: {why}" for name, why in failures.items())
        raise GateRefusedError(f"{evaluation.model_version} is not deployed: the gate failed ({reasons})")
    return gate_of(evaluation)


def recompare_with_champion(connection: duckdb.DuckDBPyConnection, artifacts: ArtifactStore, catalog: Catalog,
                            model: ModelSpec, evaluation: EvaluationRecord | TaskEvaluationRecord
                            ) -> GateCheck[ChampionComparison]:
    """The beats_champion check made again against the current champion, from the stored test predictions."""
    if isinstance(evaluation, TaskEvaluationRecord):
        return recompare_task(connection, artifacts, catalog, model, evaluation)
    rows = read_predictions(connection, artifacts, evaluation.summary)
    test = rows[rows["split"] == "test"].reset_index(drop=True)
    values = OutcomeValues(test["money_if_flagged"].to_numpy(dtype=float),
                           test["money_if_not_flagged"].to_numpy(dtype=float))
    return beats_champion(connection, artifacts, catalog, model, evaluation.model_version, test, values,
                          test["flagged"].to_numpy(dtype=bool), seed=model.algorithm.seed)


def recompare_task(connection: duckdb.DuckDBPyConnection, artifacts: ArtifactStore, catalog: Catalog,
                   model: ModelSpec, evaluation: TaskEvaluationRecord) -> GateCheck[ChampionComparison]:
    """A task model's beats_champion made again: its snapshot's test rows (the champion may need their features
    and the money expression their inputs) with the money per row its evaluation stored."""
    snapshot = registry.snapshots.get(connection, model.name, evaluation.training_run)
    if snapshot is None:
        raise GateRefusedError(f"{evaluation.model_version} has no snapshot left to compare it with the champion")
    test = read_snapshot(connection, artifacts, snapshot, splits=("test",)).reset_index(drop=True)
    keys = list(catalog.entity_rows(model.entity).keys)
    stored = stored_test_rows(connection, artifacts, evaluation)
    money = test[keys].merge(stored[keys + ["money"]], on=keys, how="left", validate="one_to_one")["money"]
    if money.isna().any():
        raise GateRefusedError(f"{evaluation.model_version}'s stored test predictions do not cover its snapshot's "
                               f"test rows ({int(money.isna().sum())} missing): it cannot be compared again")
    return task_beats_champion(connection, artifacts, catalog, model, evaluation.model_version, test,
                               money.to_numpy(dtype="float64"), seed=model.algorithm.seed)


def append_promotion(connection: duckdb.DuckDBPyConnection, model: str, model_version: str, training_run: str,
                     dagster_run_id: str, reason: str, gate: Gate | TaskGate,
                     promoted_at: dt.datetime | None = None) -> PromotionRecord:
    """Append a promotion to the log under the next id (at `promoted_at`, by default now) and return it."""
    at = promoted_at or registry.now()
    return registry.promotions.add_next(connection, lambda promotion_id: PromotionRecord(
        promotion_id=promotion_id, model=model, model_version=model_version, training_run=training_run,
        promoted_at=at, dagster_run_id=dagster_run_id, reason=reason, gate=gate))


def promote(connection: duckdb.DuckDBPyConnection, artifacts: ArtifactStore, catalog: Catalog, model: ModelSpec,
            training_run: str, dagster_run_id: str, reason: str,
            promoted_at: dt.datetime | None = None) -> PromotionOutcome:
    """Append a promotion of the run's model unless it is already the champion; refuse when the gate failed.

    `promoted_at` (naive UTC) is the platform clock's time of the decision: the tick that requested the run,
    which on a replay is simulated; by default, now.
    """
    evaluation = stored_evaluation(connection, model, training_run)
    gate = verify_stored_gate(evaluation, model.name, training_run)
    current = registry.promotions.champion(connection, model.name)
    if current is not None and current.model_version == evaluation.model_version:
        return PromotionOutcome(current, already_champion=True, recompared=False)
    compared_with = gate.beats_champion.details.champion
    waived = model.gate.min_gain_over_champion is None
    recompared = current is not None and current.model_version != compared_with and not waived
    if recompared:
        check = recompare_with_champion(connection, artifacts, catalog, model, evaluation)
        if not check.passed:
            raise GateRefusedError(
                f"{evaluation.model_version} is not deployed: the champion changed since it was evaluated "
                f"(compared with {compared_with or 'no champion'}, now {current.model_version}) and, compared "
                f"again, beats_champion fails: {check.why}")
        gate = gate.model_copy(update={"beats_champion": check})
    record = append_promotion(connection, model.name, evaluation.model_version, training_run, dagster_run_id, reason,
                              gate, promoted_at)
    return PromotionOutcome(record, already_champion=False, recompared=recompared)


def challenger(connection: duckdb.DuckDBPyConnection, model: str) -> EvaluationRecord | TaskEvaluationRecord | None:
    """The evaluation of the newest run that passed its gate and was never promoted, or None."""
    promoted = {promotion.model_version for promotion in registry.promotions.log(connection, model)}
    candidates = [evaluation for evaluation in registry.all_evaluations(connection, model)
                  if evaluation.gate_passed and evaluation.model_version not in promoted
                  and not stored_gate_failures(evaluation)]
    return candidates[-1] if candidates else None


def promoted_versions(log: list[PromotionRecord]) -> list[str]:
    """Distinct versions in a promotion log, in the order they were first promoted."""
    return list(dict.fromkeys(promotion.model_version for promotion in log))
