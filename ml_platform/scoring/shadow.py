"""The challenger in shadow: scored beside the champion on production rows, then compared with it in money on the
days whose labels are known.

Production decisions are the latest prediction of each row (`predictions.<model>__latest`); the challenger's
are its latest shadow prediction of the same row. Both are valued with the current spec's label and money
expressions, evaluated on the entity's rows, so the comparison uses exactly the evaluation's notion of money.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import duckdb
import pandas as pd

from ml_platform import names
from ml_platform.grains import PERIOD_NOUN
from ml_platform.deployment.promotion import challenger
from ml_platform.evaluation.money import MoneyError, paired_bootstrap_interval
from ml_platform.evaluation.realized_rows import outcomes_sql, realized_per_row
from ml_platform.features.labels import labels_known_through, local_today
from ml_platform.names import quote
from ml_platform.scoring.inputs import InputsColumnError
from ml_platform.scoring.score import ScoringResult, score_shadow_days, uses_task_scoring
from ml_platform.scoring.writes import latest_order, latest_partition_by
from ml_platform.specs.catalog import Catalog
from ml_platform.specs.models import ModelSpec
from ml_platform.storage.artifacts import ArtifactStore
from ml_platform.storage.warehouse import table_exists
from ml_platform.training.inference import ScoringError


@dataclass(frozen=True)
class ShadowOutcome:
    """What shadow scoring of a range did: the challenger scored (or why not) and its comparison (or why not)."""

    challenger: str | None  # the challenger's model version; None when there is none
    scored: ScoringResult | None = None
    not_scored: str | None = None  # why the challenger could not score
    comparison: dict | None = None  # shadow_comparison's figures
    not_compared: str | None = None  # why no comparison was made
    warning: str | None = None  # what went wrong, for the run's log


def shadow_scoring(connection: duckdb.DuckDBPyConnection, artifacts: ArtifactStore, catalog: Catalog,
                   model: ModelSpec, start: dt.date, end: dt.date, dagster_run_id: str) -> ShadowOutcome:
    """Score the challenger in shadow beside the champion, and compare both in money where labels are known.

    Shadow scoring never fails production scoring: when the challenger cannot score, the outcome says why.
    """
    candidate = challenger(connection, model.name)
    if candidate is None:
        return ShadowOutcome(None)
    try:
        scored = score_shadow_days(connection, artifacts, catalog, model, candidate, start, end, dagster_run_id)
    except (ScoringError, InputsColumnError) as error:
        return ShadowOutcome(candidate.model_version, not_scored=str(error),
                             warning=f"challenger {candidate.model_version} not scored in shadow: {error}")
    try:
        comparison = shadow_comparison(connection, catalog, model, candidate.model_version, seed=model.algorithm.seed)
    except MoneyError as error:
        return ShadowOutcome(candidate.model_version, scored, not_compared=f"not made: {error}",
                             warning=f"shadow comparison not made: {error}")
    if comparison is None:
        return ShadowOutcome(candidate.model_version, scored, not_compared="no labelled rows scored by both yet")
    return ShadowOutcome(candidate.model_version, scored, comparison=comparison)


def shadow_comparison(connection: duckdb.DuckDBPyConnection, catalog: Catalog, model: ModelSpec,
                      challenger_version: str, seed: int = 0) -> dict | None:
    """Money of production's and the challenger's decisions on the rows both scored whose labels are known.

    None when there are no such rows yet (nothing scored in shadow, or no mature labels for those days).
    """
    if not (table_exists(connection, "predictions", names.shadow_table_name(model.name))
            and table_exists(connection, "predictions", model.name)):
        return None
    key_list = ", ".join(quote(key) for key in latest_partition_by(catalog, model))
    shadow = names.shadow_table(model.name)
    span = connection.execute(f"SELECT min(partition_date), max(partition_date) FROM {shadow} "
                              f"WHERE model_version = ?", [challenger_version]).fetchall()[0]
    if span[0] is None:
        return None
    first = pd.Timestamp(span[0]).date()
    mature = labels_known_through(connection, catalog, model, first, local_today(catalog, model))
    if mature is None:
        return None  # only mature labels judge the challenger
    span = (first, min(pd.Timestamp(span[1]).date(), mature))
    task = uses_task_scoring(model)
    prediction, decision = ((names.PREDICTION_COLUMN, names.DECISION_COLUMN) if task else ("score", "flagged"))
    frame = connection.execute(
        f"WITH shadow AS (SELECT {key_list}, partition_date, {quote(prediction)} AS challenger_prediction, "
        f"  {quote(decision)} AS challenger_decision FROM {shadow} "
        f"  WHERE model_version = ? QUALIFY row_number() OVER (PARTITION BY {key_list} ORDER BY {latest_order(connection, names.shadow_table_name(model.name))}) = 1), "
        f"production AS (SELECT {key_list}, {quote(prediction)} AS champion_prediction, "
        f"  {quote(decision)} AS champion_decision, model_version AS champion_version "
        f"  FROM {names.latest_view(model.name)}), "
        f"outcomes AS ({outcomes_sql(catalog, model, *(pd.Timestamp(day).date() for day in span))}) "
        f"SELECT * FROM shadow JOIN production USING ({key_list}) JOIN outcomes USING ({key_list}) "
        f"WHERE outcomes.label IS NOT NULL ORDER BY partition_date, {key_list}", [challenger_version]).df()
    if frame.empty:
        return None
    challenger_rows = realized_per_row(model, frame, "challenger_prediction", "challenger_decision")
    champion_rows = realized_per_row(model, frame, "champion_prediction", "champion_decision")
    low, high = paired_bootstrap_interval(challenger_rows, champion_rows, seed,
                                          groups=frame["partition_date"].to_numpy())
    days = pd.to_datetime(frame["partition_date"]).dt.date
    return {
        "challenger": challenger_version,
        "champions": sorted(frame["champion_version"].unique().tolist()),
        "currency": model.money.currency,
        "rows": int(len(frame)),
        "days": int(days.nunique()),
        "unit": f"{PERIOD_NOUN[catalog.entity_rows(model.entity).grain]}(s)",  # what one of the `days` is
        "first_day": str(days.min()),
        "last_day": str(days.max()),
        "champion_money": float(champion_rows.sum()),
        "challenger_money": float(challenger_rows.sum()),
        "gain": float(challenger_rows.sum() - champion_rows.sum()),
        "gain_interval_95": [low, high],
        **({} if task and model.money.decision.kind in ("quantity", "class") else {
            "champion_flagged": int(frame["champion_decision"].astype(bool).sum()),
            "challenger_flagged": int(frame["challenger_decision"].astype(bool).sum())}),
    }


def comparison_text(comparison: dict) -> str:
    """One sentence of a shadow comparison, for metadata and the CLI."""
    currency = comparison["currency"]
    low, high = comparison["gain_interval_95"]
    return (f"on {comparison['rows']:,} labelled rows of {comparison['days']} {comparison['unit']} "
            f"({comparison['first_day']} to "
            f"{comparison['last_day']}): challenger {comparison['challenger']} {comparison['challenger_money']:,.0f} "
            f"{currency}, production ({', '.join(comparison['champions'])}) {comparison['champion_money']:,.0f} "
            f"{currency}; gain {comparison['gain']:,.0f} {currency} (paired 95% interval over {comparison['unit']} "
            f"{low:,.0f} to "
            f"{high:,.0f})")
