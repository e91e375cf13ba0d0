"""The promotion log read back: which version was live when, and rollback to an earlier version.

A rollback is an ordinary promotion appended to the same log, so "which model was live at time T" keeps exactly
one answer: the latest promotion at or before T.
"""

from __future__ import annotations

import datetime as dt

import duckdb

from ml_platform.deployment.promotion import GateRefusedError, promoted_versions, stored_gate_failures
from ml_platform.errors import PlatformError
from ml_platform.evaluation.evaluate import CHECK_ORDER
from ml_platform.training.inference import ScoringError, trained_spec
from ml_platform.specs.catalog import Catalog
from ml_platform.storage import registry
from ml_platform.storage.artifacts import ArtifactStore, TamperedArtifactError

ROLLBACK_RUN = "ml-platform rollback"  # recorded as the promotion's run: a rollback is not a Dagster run


class DeploymentError(PlatformError, ValueError):
    """A history or rollback request names something that does not exist or cannot be done."""


def known_models(connection: duckdb.DuckDBPyConnection, catalog: Catalog | None = None) -> list[str]:
    """Every model named by the specs or the registries."""
    names = set(catalog.models) if catalog is not None else set()
    for name in ("promotions", "evaluations", "models"):
        names.update(row[0] for row in connection.execute(f"SELECT DISTINCT model FROM registry.{name}").fetchall())
    return sorted(names)


def promotion_log(connection: duckdb.DuckDBPyConnection, model: str) -> list[dict]:
    """The model's promotions in order, each with `live_until` (the next promotion's time, None while live)."""
    log = registry.fetch_all(connection, "promotions", order_by="promotion_id", model=model)
    for row, following in zip(log, log[1:] + [None]):
        row["live_until"] = following["promoted_at"] if following else None
    return log


def live_at(log: list[dict], when: dt.datetime) -> dict | None:
    """The promotion live at `when` (UTC, naive): the latest one promoted at or before it; None before the first."""
    live = [row for row in log if row["promoted_at"] <= when]
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


def require_model(connection: duckdb.DuckDBPyConnection, catalog: Catalog | None, model: str) -> list[dict]:
    """The model's promotion log; DeploymentError naming the known models when the name is unknown."""
    models = known_models(connection, catalog)
    if model not in models:
        raise DeploymentError(f"no model named '{model}' (models: {', '.join(models) or 'none yet'})")
    return promotion_log(connection, model)


def rollback_target(log: list[dict], model: str, to_version: str | None) -> dict:
    """The promotion to roll back to: `to_version`'s latest, or by default the last version before the champion."""
    if not log:
        raise DeploymentError(f"'{model}' has never been promoted: there is nothing to roll back")
    current = log[-1]["model_version"]
    versions = promoted_versions(log)
    earlier = [version for version in versions if version != current]
    if to_version is None:
        before = [row for row in log if row["model_version"] != current]
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
    return [row for row in log if row["model_version"] == to_version][-1]


def rollback(connection: duckdb.DuckDBPyConnection, artifacts: ArtifactStore, catalog: Catalog, model: str,
             to_version: str | None, reason: str) -> dict:
    """Promote an earlier, previously promoted version again; return the appended promotion.

    The target must still load (its artifact's hash verifies), still score (its feature sets are unchanged) and
    its stored evaluation must show no failed check. The comparison with the champion is not repeated: going
    back to a version that the current one beat is the point of a rollback.
    """
    log = require_model(connection, catalog, model)
    target = rollback_target(log, model, to_version)
    current = log[-1]
    version = target["model_version"]
    model_row = registry.fetch_one(connection, "models", model_version=version)
    evaluation = registry.fetch_one(connection, "evaluations", model=model, training_run=target["training_run"])
    if model_row is None or evaluation is None:
        raise GateRefusedError(f"cannot roll back to {version}: its model or evaluation is missing from the registry")
    try:
        artifacts.verify(model_row["path"], model_row["sha256"])
        trained_spec(connection, catalog, model_row)
    except (TamperedArtifactError, ScoringError) as error:
        raise GateRefusedError(f"cannot roll back to {version}: {error}") from error
    failed = stored_gate_failures(evaluation, required=())
    if failed:
        raise GateRefusedError(f"cannot roll back to {version}: its stored evaluation failed "
                               + "; ".join(f"{name}: {why}" for name, why in failed.items()))
    missing = [name for name in CHECK_ORDER if name not in evaluation["summary"]["gate"]]
    text = f"rollback from {current['model_version']} to {version} (promotion #{target['promotion_id']}): {reason}"
    row = {
        "promotion_id": registry.next_promotion_id(connection), "model": model, "model_version": version,
        "training_run": target["training_run"], "promoted_at": registry.now(), "dagster_run_id": ROLLBACK_RUN,
        "reason": text, "gate": evaluation["summary"]["gate"],
    }
    registry.insert(connection, "promotions", row)
    return {**row, "previous": current["model_version"], "checks_not_in_evaluation": missing}
