"""The deployment page's comparison: the promoted model beside the champion it replaced, from their stored
evaluations (evaluation/side_by_side.py's Markdown)."""

from __future__ import annotations

import duckdb

from ml_platform.evaluation.side_by_side import compared_champion, side_by_side_markdown
from ml_platform.records.outcomes import PromotionOutcome
from ml_platform.storage import registry


def promotion_comparison(connection: duckdb.DuckDBPyConnection, outcome: PromotionOutcome) -> str | None:
    """Markdown setting the live champion beside the champion its gate compared it with; None when its evaluation
    is not a binary one or no champion was compared (the first deployment)."""
    record = outcome.record
    stored = registry.evaluations.get(connection, record.model, record.training_run)
    if stored is None:
        return None
    lines = side_by_side_markdown(stored.summary, compared_champion(connection, stored.summary), heading="###")
    return "\n".join(lines).strip() or None
