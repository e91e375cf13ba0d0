"""Champion against challenger on production rows: money of each one's decisions on days whose labels are known.

Production decisions are the latest prediction of each row (`predictions.<model>__latest`); the challenger's
are its latest shadow prediction of the same row. Both are valued with the current spec's label and money
expressions, evaluated on the entity's rows, so the comparison uses exactly the evaluation's notion of money.
"""

from __future__ import annotations

import datetime as dt

import duckdb
import pandas as pd

from ml_platform.evaluation.money import OutcomeValues, paired_bootstrap_interval
from ml_platform.scoring.score import latest_view, shadow_table
from ml_platform.specs.catalog import Catalog
from ml_platform.specs.models import ModelSpec
from ml_platform.storage.warehouse import date_literal, quote, table, table_exists


def outcomes_sql(catalog: Catalog, model: ModelSpec, start: dt.date, end: dt.date) -> str:
    """SQL giving each entity row of [start, end] its keys, label and the money value of every outcome."""
    keys = ", ".join(quote(key) for key in catalog.sources[model.entity].keys)
    outcomes = model.money.outcomes
    money = "".join(f", CAST(({getattr(outcomes, name)}) AS DOUBLE) AS money_{name}"
                    for name in ("true_positive", "false_positive", "false_negative", "true_negative"))
    # the outcome expressions may name `label`, so it is computed on the entity rows first
    base = (f"(SELECT *, CAST(({model.label.expression}) AS BOOLEAN) AS label FROM {table('source', model.entity)} "
            f"WHERE partition_date BETWEEN {date_literal(start)} AND {date_literal(end)})")
    return f"SELECT {keys}, label{money} FROM {base} AS base"


def shadow_comparison(connection: duckdb.DuckDBPyConnection, catalog: Catalog, model: ModelSpec,
                      challenger_version: str, seed: int = 0) -> dict | None:
    """Money of production's and the challenger's decisions on the rows both scored whose labels are known.

    None when there are no such rows yet (nothing scored in shadow, or no labels known for those days).
    """
    if not (table_exists(connection, "predictions", f"{model.name}__shadow")
            and table_exists(connection, "predictions", model.name)):
        return None
    keys = [quote(key) for key in catalog.sources[model.entity].keys]
    key_list = ", ".join(keys)
    span = connection.execute(f"SELECT min(partition_date), max(partition_date) FROM {shadow_table(model)} "
                              f"WHERE model_version = ?", [challenger_version]).fetchall()[0]
    if span[0] is None:
        return None
    frame = connection.execute(
        f"WITH shadow AS (SELECT {key_list}, partition_date, flagged AS challenger_flagged FROM {shadow_table(model)} "
        f"  WHERE model_version = ? QUALIFY row_number() OVER (PARTITION BY {key_list} ORDER BY scored_at DESC) = 1), "
        f"production AS (SELECT {key_list}, flagged AS champion_flagged, model_version AS champion_version "
        f"  FROM {latest_view(model)}), "
        f"outcomes AS ({outcomes_sql(catalog, model, *(pd.Timestamp(day).date() for day in span))}) "
        f"SELECT * FROM shadow JOIN production USING ({key_list}) JOIN outcomes USING ({key_list}) "
        f"WHERE outcomes.label IS NOT NULL ORDER BY partition_date, {key_list}", [challenger_version]).df()
    if frame.empty:
        return None
    values = OutcomeValues.from_frame(frame)
    challenger_rows = values.per_row(frame["challenger_flagged"].to_numpy(dtype=bool))
    champion_rows = values.per_row(frame["champion_flagged"].to_numpy(dtype=bool))
    low, high = paired_bootstrap_interval(challenger_rows, champion_rows, seed,
                                          groups=frame["partition_date"].to_numpy())
    days = pd.to_datetime(frame["partition_date"]).dt.date
    return {
        "challenger": challenger_version,
        "champions": sorted(frame["champion_version"].unique().tolist()),
        "currency": model.money.currency,
        "rows": int(len(frame)),
        "days": int(days.nunique()),
        "first_day": str(days.min()),
        "last_day": str(days.max()),
        "champion_money": float(champion_rows.sum()),
        "challenger_money": float(challenger_rows.sum()),
        "gain": float(challenger_rows.sum() - champion_rows.sum()),
        "gain_interval_95": [low, high],
        "champion_flagged": int(frame["champion_flagged"].sum()),
        "challenger_flagged": int(frame["challenger_flagged"].sum()),
    }


def comparison_text(comparison: dict) -> str:
    """One sentence of a shadow comparison, for metadata and the CLI."""
    currency = comparison["currency"]
    low, high = comparison["gain_interval_95"]
    return (f"on {comparison['rows']:,} labelled rows of {comparison['days']} day(s) ({comparison['first_day']} to "
            f"{comparison['last_day']}): challenger {comparison['challenger']} {comparison['challenger_money']:,.0f} "
            f"{currency}, production ({', '.join(comparison['champions'])}) {comparison['champion_money']:,.0f} "
            f"{currency}; gain {comparison['gain']:,.0f} {currency} (paired 95% interval over days {low:,.0f} to "
            f"{high:,.0f})")
