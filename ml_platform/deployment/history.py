"""The promotion log read back: which version was live when, and rollback to an earlier version.

A rollback is an ordinary promotion appended to the same log, so "which model was live at time T" keeps exactly
one answer: the latest promotion at or before T.
"""

from __future__ import annotations

import datetime as dt

import duckdb

from ml_platform.deployment.promotion import (
    GateRefusedError, append_promotion, gate_of, promoted_versions, stored_gate_failures)
from ml_platform.errors import PlatformError
from ml_platform.records.outcomes import LoggedPromotion, RollbackOutcome
from ml_platform.records.registry import PromotionRecord
from ml_platform.specs.catalog import Catalog
from ml_platform.storage import registry
from ml_platform.storage.artifacts import ArtifactStore, TamperedArtifactError
from ml_platform.training.inference import ScoringError, trained_spec

ROLLBACK_RUN = "ml-platform rollback"  # recorded as the promotion's run: a rollback is not a Dagster run


class DeploymentError(PlatformError, ValueError):
    """A history or rollback request names something that does not exist or cannot be done."""


def known_models(connection: duckdb.DuckDBPyConnection, catalog: Catalog | None = None) -> list[str]:
    """Every model named by the specs or the registries."""
    models = set(catalog.models) if catalog is not None else set()
    models.update(registry.models_in(connection, "promotions", "evaluations", "models"))
    return sorted(models)


def promotion_log(connection: duckdb.DuckDBPyConnection, model: str) -> list[LoggedPromotion]:
    """The model's promotions in order, each with the time it stopped being live (None while it is the champion)."""
    log = registry.promotions.log(connection, model)
    return [LoggedPromotion(promotion, following.promoted_at if following else None)
            for promotion, following in zip(log, [*log[1:], None])]


def live_at(log: list[LoggedPromotion], when: dt.datetime) -> PromotionRecord | None:
    """The promotion live at `when` (UTC, naive): the latest one promoted at or before it; None before the first."""
    live = [entry.record for entry in log if entry.record.promoted_at <= when]
    return live[-1] if live else None


def parse_time(text: str) -> dt.datetime:
    """An ISO 8601 date or time as naive UTC; a time without offset is taken as UTC, a bare date as its 00:00."""
    try:
        moment = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise DeploymentError(f"--at {text!r} is not an ISO 8601 date or time (e.g. 2026-11-27, 2026-11-27T18:30, "
                              f"2026-11-27T18:30+01:00)") from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return moment


def require_model(connection: duckdb.DuckDBPyConnection, catalog: Catalog | None,
                  model: str) -> list[LoggedPromotion]:
    """The model's promotion log; DeploymentError naming the known models when the name is unknown."""
    models = known_models(connection, catalog)
    if model not in models:
        raise DeploymentError(f"no model named '{model}' (models: {', '.join(models) or 'none yet'})")
    return promotion_log(connection, model)


def rollback_target(log: list[PromotionRecord], model: str, to_version: str | None) -> PromotionRecord:
    """The promotion to roll back to: `to_version`'s latest, or by default the last version before the champion."""
    if not log:
        raise DeploymentError(f"'{model}' has never been promoted: there is nothing to roll back")
    current = log[-1].model_version
    versions = promoted_versions(log)
    earlier = [version for version in versions if version != current]
    if to_version is None:
        before = [promotion for promotion in log if promotion.model_version != current]
        if not before:
            raise DeploymentError(f"only {current} has ever been promoted for '{model}': there is no earlier version "
                                  f"to roll back to")
        return before[-1]
    if to_version == current:
        raise DeploymentError(f"{to_version} is already the champion of '{model}'"
                              + (f" (earlier versions: {', '.join(earlier)})" if earlier else ""))
    if to_version not in versions:
        raise DeploymentError(f"{to_version} was never promoted for '{model}', so it cannot be rolled back to "
                              f"(promoted versions: {', '.join(earlier) or 'none besides the champion'})")
    return [promotion for promotion in log if promotion.model_version == to_version][-1]


def rollback(connection: duckdb.DuckDBPyConnection, artifacts: ArtifactStore, catalog: Catalog, model: str,
             to_version: str | None, reason: str) -> RollbackOutcome:
    """Promote an earlier, previously promoted version again; return the appended promotion.

    The target must still load (its artifact's hash verifies), still score (its feature sets are unchanged) and
    its stored evaluation must show no failed check. The comparison with the champion is not repeated: going
    back to a version that the current one beat is the point of a rollback.
    """
    log = [entry.record for entry in require_model(connection, catalog, model)]
    target = rollback_target(log, model, to_version)
    current = log[-1]
    version = target.model_version
    trained = registry.models.by_version(connection, version)
    evaluation = registry.evaluation_of(connection, model, target.training_run)
    if trained is None or evaluation is None:
        raise GateRefusedError(f"cannot roll back to {version}: its model or evaluation is missing from the registry")
    try:
        artifacts.verify(trained.path, trained.sha256)
        trained_spec(connection, catalog, trained)
    except (TamperedArtifactError, ScoringError) as error:
        raise GateRefusedError(f"cannot roll back to {version}: {error}") from error
    failed = stored_gate_failures(evaluation)
    if failed:
        raise GateRefusedError(f"cannot roll back to {version}: its stored evaluation failed "
                               + "; ".join(f"{name}: {why}" for name, why in failed.items()))
    text = f"rollback from {current.model_version} to {version} (promotion #{target.promotion_id}): {reason}"
    record = append_promotion(connection, model, version, target.training_run, ROLLBACK_RUN, text,
                              gate_of(evaluation))
    return RollbackOutcome(record, previous=current.model_version, checks_not_in_evaluation=())
