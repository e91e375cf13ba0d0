"""The deployment page's comparison: the promoted model beside the champion it replaced, from their stored
evaluations, binary or task (evaluation/side_by_side.py's Markdown)."""

from __future__ import annotations

import duckdb

from ml_platform.evaluation.run_figures import stored_measurement
from ml_platform.evaluation.side_by_side import compared_champion, side_by_side_markdown, task_side_by_side
from ml_platform.records.outcomes import PromotionOutcome
from ml_platform.storage import registry
from ml_platform.storage.artifacts import ArtifactStore


def promotion_comparison(connection: duckdb.DuckDBPyConnection, artifacts: ArtifactStore,
                         outcome: PromotionOutcome) -> str | None:
    """Markdown setting the live champion beside the champion its gate compared it with; None when no champion
    was compared (the first deployment) or the run has no stored evaluation."""
    record = outcome.record
    stored = registry.evaluations.get(connection, record.model, record.training_run)
    if stored is not None:
        lines = side_by_side_markdown(stored.summary, compared_champion(connection, stored.summary), heading="###")
        return "\n".join(lines).strip() or None
    task = registry.task_evaluations.get(connection, record.model, record.training_run)
    if task is None:
        return None
    lines = task_side_by_side(connection, artifacts, stored_measurement(artifacts, task), task.model_version,
                              task.gate.beats_champion, heading="###")
    return "\n".join(lines).strip() or None
