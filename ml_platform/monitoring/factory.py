"""Build a model's monitoring assets: `[model, "monitoring"]` (drift of each scored day) and `[model, "outcomes"]`
(realized money once labels are known), each with non-blocking checks that warn."""

import warnings
from typing import Iterator

import dagster as dg
import pandas as pd

from ml_platform import names
from ml_platform.entities.factory import entity_partitions_of
from ml_platform.errors import as_dagster_failure
from ml_platform.evaluation.realized import JUDGED
from ml_platform.monitoring.drift import PSI_ALARM, SCORE, WINDOW_DAYS, DriftMeasure, measure_drift
from ml_platform.monitoring.outcomes import JudgedDays, judge_days
from ml_platform.partitions import date_range
from ml_platform.specs.catalog import Catalog
from ml_platform.specs.models import ModelSpec
from ml_platform.storage.artifacts import ArtifactStore
from ml_platform.storage.resources import Warehouse

TOP_FEATURES = 10


def _table_label(model: ModelSpec, kind: str) -> str:
    """The model's monitoring table of that kind, as asset metadata shows it."""
    return names.table_label("monitoring", names.monitoring_table_name(model.name, kind))


def _top_table(frame: pd.DataFrame) -> str:
    top = frame.sort_values("psi", ascending=False).head(TOP_FEATURES)
    lines = ["| day | feature | PSI, 7 days pooled | rows pooled |", "|---|---|---:|---:|"]
    lines += [f"| {pd.Timestamp(row.day).date()} | {'(score)' if row.feature == SCORE else row.feature}"
              f"{'' if row.scope == 'rows' else f' (per {row.scope})'} | {row.psi:.3f} | {row.window_rows:,} |"
              for row in top.itertuples()]
    return "\n".join(lines)


def drift_results(drift: DriftMeasure) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    """The monitoring asset's materialization and its two drift checks, which warn above PSI_ALARM."""
    frame = drift.frame
    yield dg.MaterializeResult(metadata={
        "max_feature_psi": round(drift.feature_psi, 3), "prediction_psi": round(drift.score_psi, 3),  # readable
        "top_drift": dg.MetadataValue.md(_top_table(frame)),
        "model_version": ", ".join(sorted(frame["model_version"].unique())),
        names.ROW_COUNT_METADATA: int(frame.loc[frame["feature"] == SCORE, "rows"].sum()),
    })
    for name, value, where in (("feature_drift", drift.feature_psi, drift.feature_where),
                               ("prediction_drift", drift.score_psi, drift.score_where)):
        yield dg.AssetCheckResult(
            check_name=name, passed=value <= PSI_ALARM, severity=dg.AssetCheckSeverity.WARN,
            description=f"largest PSI {value:.3f} ({where}) {'≤' if value <= PSI_ALARM else '>'} {PSI_ALARM}",
            metadata={"psi": round(value, 3)})


def outcome_results(judged: JudgedDays) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    """The outcomes asset's materialization and its realized_money check, which warns below the promise."""
    labelled = judged.labelled
    metadata = {"labelled_days": len(labelled), "not_judged": judged.not_judged or "none"}
    if len(labelled):
        metadata.update({"realized_money": round(float(labelled["realized_money"].sum())),  # whole units
                         "promised_money": round(float(labelled["promised_money"].sum())),
                         "currency": str(labelled["currency"].iloc[0]),
                         **{name: int(labelled[name].sum())
                            for name in ("flagged", "true_positives", "false_positives")
                            if name in labelled and labelled[name].notna().any()}})  # yes/no decisions only
    verdict = judged.judged
    if verdict is not None:
        metadata.update({"verdict": verdict.state, "verdict_text": verdict.text()})
    if len(judged.served):
        metadata.update(served_metadata(judged))
    yield dg.MaterializeResult(metadata=metadata)
    yield dg.AssetCheckResult(
        check_name="realized_money", passed=verdict is None or not verdict.under_water,
        severity=dg.AssetCheckSeverity.WARN,
        description=(f"the trailing {verdict.days} judged {verdict.unit}: {verdict.text()}" if verdict
                     else f"not judged: no labelled day yet ({judged.not_judged})"),
        metadata=verdict.figures() if verdict else {})


def served_metadata(judged: JudgedDays) -> dict:
    """The served channel beside the batch's: served rows, how many have a label and how many still wait for one,
    and the realized money of the labelled ones (each channel counts a key once; the verdict stays the batch's)."""
    served = judged.served
    labelled = served[served["status"].isin(JUDGED)]
    metadata = {"served_rows": int(served["rows_served"].sum()),
                "served_labelled_rows": int(served["labelled_rows"].sum()),
                "served_waiting_rows": int(served["waiting_rows"].sum()),
                "served_other_version_rows": int(served["other_version_rows"].sum())}
    if len(labelled):
        metadata.update({"served_realized_money": round(float(labelled["realized_money"].sum())),
                         "served_promised_money_by_rows": round(float(labelled["promised_money_by_rows"].sum()))})
    batch = judged.frame.set_index("day")
    lines = ["| day | channel | model version | rows | labelled | waiting | realized | promised for the labelled rows |",
             "|---|---|---|---:|---:|---:|---:|---:|"]
    for row in served.itertuples():
        day = pd.Timestamp(row.day).date()
        if row.day in batch.index and batch.loc[row.day, "status"] in JUDGED:
            scored = batch.loc[row.day]
            lines.append(f"| {day} | batch | {scored['model_version']} | {int(scored['rows_scored']):,} | "
                         f"{int(scored['labelled_rows']):,} | {int(scored['rows_scored'] - scored['labelled_rows']):,} "
                         f"| {scored['realized_money']:,.0f} | {scored['promised_money_by_rows']:,.0f} |")
        judged_row = row.status in JUDGED
        lines.append(f"| {day} | served | {row.model_version} | {int(row.rows_served):,} | {int(row.labelled_rows):,} "
                     f"| {int(row.waiting_rows):,} | {f'{row.realized_money:,.0f}' if judged_row else row.status} | "
                     f"{f'{row.promised_money_by_rows:,.0f}' if judged_row else ''} |")
    metadata["channels"] = dg.MetadataValue.md("\n".join(lines))
    return metadata


def build_monitoring_asset(catalog: Catalog, model: ModelSpec) -> dg.AssetsDefinition:
    """The asset that measures feature and prediction drift of each scored day."""
    key = names.stage_key("monitoring", model.name)

    @dg.asset(
        key=key, group_name=names.model_group(model.name), owners=[model.owner], kinds={"duckdb"},
        description=f"Drift of each scored day of {model.name}, pooled over the scored days among the {WINDOW_DAYS} "
                    f"days ending on it: PSI of every feature against the champion's training rows (a feature "
                    f"constant within a day, or within a day and group, by its per-partition values) and of the "
                    f"scores against its evaluation test window (above {PSI_ALARM}: drifted).",
        partitions_def=entity_partitions_of(catalog, model.entity),
        backfill_policy=dg.BackfillPolicy.single_run(),
        deps=[dg.AssetDep(names.stage_key("predictions", model.name))],
        check_specs=[dg.AssetCheckSpec("feature_drift", asset=key, description=f"no feature's PSI above {PSI_ALARM}"),
                     dg.AssetCheckSpec("prediction_drift", asset=key,
                                       description=f"the scores' PSI is not above {PSI_ALARM}")],
        metadata={names.TABLE_NAME_METADATA: _table_label(model, "drift"), "psi_alarm": PSI_ALARM},
    )
    def monitoring(context: dg.AssetExecutionContext, warehouse: Warehouse, artifacts: ArtifactStore):
        start, end = date_range(context)
        with warehouse.get_connection() as connection:
            with as_dagster_failure(f"monitoring of '{model.name}' {start} to {end}"):
                drift = measure_drift(connection, artifacts, model, start, end, context.run.run_id,
                                      grain=catalog.entity_rows(model.entity).grain)
        yield from drift_results(drift)

    return monitoring


def build_outcomes_asset(catalog: Catalog, model: ModelSpec) -> dg.AssetsDefinition:
    """The asset that values each scored day's decisions in money once its labels are known."""
    key = names.stage_key("outcomes", model.name)

    @dg.asset(
        key=key, group_name=names.model_group(model.name), owners=[model.owner], kinds={"duckdb"},
        description=f"Realized money of {model.name}'s production decisions per day, once labels are known, against "
                    f"the money its evaluation promised per day. A day not scored or not labelled yet is recorded "
                    f"as such and measured again when this partition is materialized later. Rows the online server "
                    f"answered (its log) are judged beside them, per channel, in "
                    f"{_table_label(model, 'served_outcomes')}.",
        partitions_def=entity_partitions_of(catalog, model.entity),
        backfill_policy=dg.BackfillPolicy.single_run(),
        deps=[dg.AssetDep(names.stage_key("predictions", model.name))],
        check_specs=[dg.AssetCheckSpec("realized_money", asset=key,
                                       description="the trailing 7 judged days are not under water: their realized "
                                                   "money is at least the low end of the promise's 95% interval "
                                                   "(verdicts: on track, above the expected range, below the "
                                                   "interval, losing money)")],
        metadata={names.TABLE_NAME_METADATA: _table_label(model, "outcomes")},
    )
    def outcomes(context: dg.AssetExecutionContext, warehouse: Warehouse):
        start, end = date_range(context)
        with warehouse.get_connection() as connection:
            with as_dagster_failure(f"outcomes of '{model.name}' {start} to {end}"):
                judged = judge_days(connection, catalog, model, start, end, context.run.run_id)
        yield from outcome_results(judged)

    return outcomes


def build_monitoring_assets(catalog: Catalog, model: ModelSpec) -> list[dg.AssetsDefinition]:
    """The model's monitoring and outcomes assets."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=dg.BetaWarning)  # single-run backfills are beta in 1.13
        return [build_monitoring_asset(catalog, model), build_outcomes_asset(catalog, model)]
