"""Build a model's monitoring assets: `["monitoring", model]` (drift of each scored day) and `["outcomes", model]`
(realized money once labels are known), each with non-blocking checks that warn."""

import warnings

import dagster as dg
import pandas as pd

from ml_platform.evaluation.money import MoneyError
from ml_platform.monitoring.drift import PSI_ALARM, SCORE, MonitoringError, drift_frame
from ml_platform.monitoring.outcomes import day_outcomes, shortfall, shortfall_text
from ml_platform.monitoring.store import read_days, replace_days
from ml_platform.partitions import date_range, days, source_partitions
from ml_platform.storage.resources import Warehouse
from ml_platform.scoring.inputs import InputsColumnError
from ml_platform.snapshots.factory import stage_key
from ml_platform.specs.catalog import Catalog
from ml_platform.specs.models import ModelSpec
from ml_platform.storage import registry
from ml_platform.storage.artifacts import ArtifactStore, TamperedArtifactError

TOP_FEATURES = 10


def _drift_frame(context: dg.AssetExecutionContext, connection, artifacts: ArtifactStore, model: ModelSpec,
                 start, end) -> pd.DataFrame:
    """PSI of every feature and of the score for each day of [start, end], stamped with this run."""
    frame = drift_frame(connection, artifacts, model, start, end)
    frame["computed_at"], frame["run_id"] = registry.now(), context.run.run_id
    return frame


def _top_table(frame: pd.DataFrame) -> str:
    top = frame.sort_values("psi", ascending=False).head(TOP_FEATURES)
    lines = ["| day | feature | PSI | rows |", "|---|---|---:|---:|"]
    lines += [f"| {pd.Timestamp(row.day).date()} | {'(score)' if row.feature == SCORE else row.feature} | "
              f"{row.psi:.3f} | {row.rows:,} |" for row in top.itertuples()]
    return "\n".join(lines)


def _worst(frame: pd.DataFrame) -> tuple[float, str]:
    row = frame.loc[frame["psi"].idxmax()]
    return float(row["psi"]), f"{row['feature']} on {pd.Timestamp(row['day']).date()}"


def build_monitoring_asset(catalog: Catalog, model: ModelSpec) -> dg.AssetsDefinition:
    """The asset that measures feature and prediction drift of each scored day."""
    key = stage_key("monitoring", model)

    @dg.asset(
        key=key, group_name=model.name, owners=[model.owner], kinds={"duckdb"},
        description=f"Drift of each scored day of {model.name}: PSI of every feature against the champion's training "
                    f"rows and of the scores against its evaluation test window (above {PSI_ALARM}: drifted).",
        partitions_def=source_partitions(catalog.sources[model.entity]),
        backfill_policy=dg.BackfillPolicy.single_run(),
        deps=[dg.AssetDep(stage_key("predictions", model))],
        check_specs=[dg.AssetCheckSpec("feature_drift", asset=key, description=f"no feature's PSI above {PSI_ALARM}"),
                     dg.AssetCheckSpec("prediction_drift", asset=key,
                                       description=f"the scores' PSI is not above {PSI_ALARM}")],
        metadata={"dagster/table_name": f"monitoring.{model.name}__drift", "psi_alarm": PSI_ALARM},
    )
    def monitoring(context: dg.AssetExecutionContext, warehouse: Warehouse, artifacts: ArtifactStore):
        start, end = date_range(context)
        with warehouse.get_connection() as connection:
            try:
                frame = _drift_frame(context, connection, artifacts, model, start, end)
            except (MonitoringError, InputsColumnError, TamperedArtifactError, FileNotFoundError) as error:
                raise dg.Failure(description=f"monitoring of '{model.name}' {start} to {end}: {error}") from error
            replace_days(connection, model.name, "drift", frame, days(start, end))
        features, scores = frame[frame["feature"] != SCORE], frame[frame["feature"] == SCORE]
        feature_psi, feature_where = _worst(features)
        score_psi, score_where = _worst(scores)
        yield dg.MaterializeResult(metadata={
            "max_feature_psi": feature_psi, "prediction_psi": score_psi,
            "top_drift": dg.MetadataValue.md(_top_table(frame)),
            "model_version": ", ".join(sorted(frame["model_version"].unique())),
            "dagster/row_count": int(scores["rows"].sum()),
        })
        for name, value, where in (("feature_drift", feature_psi, feature_where),
                                   ("prediction_drift", score_psi, score_where.replace(SCORE, "the score"))):
            yield dg.AssetCheckResult(
                check_name=name, passed=value <= PSI_ALARM, severity=dg.AssetCheckSeverity.WARN,
                description=f"largest PSI {value:.3f} ({where}) {'≤' if value <= PSI_ALARM else '>'} {PSI_ALARM}",
                metadata={"psi": value})

    return monitoring


def build_outcomes_asset(catalog: Catalog, model: ModelSpec) -> dg.AssetsDefinition:
    """The asset that values each scored day's decisions in money once its labels are known."""
    key = stage_key("outcomes", model)

    @dg.asset(
        key=key, group_name=model.name, owners=[model.owner], kinds={"duckdb"},
        description=f"Realized money of {model.name}'s production decisions per day, once labels are known, against "
                    f"the money its evaluation promised per day. A day not scored or not labelled yet is recorded "
                    f"as such and measured again when this partition is materialized later.",
        partitions_def=source_partitions(catalog.sources[model.entity]),
        backfill_policy=dg.BackfillPolicy.single_run(),
        deps=[dg.AssetDep(stage_key("predictions", model))],
        check_specs=[dg.AssetCheckSpec("realized_money", asset=key,
                                       description="the trailing 7 labelled days made at least the lower bound of "
                                                   "what the evaluation promised")],
        metadata={"dagster/table_name": f"monitoring.{model.name}__outcomes"},
    )
    def outcomes(context: dg.AssetExecutionContext, warehouse: Warehouse):
        start, end = date_range(context)
        with warehouse.get_connection() as connection:
            try:
                rows = [{"day": day, **day_outcomes(connection, catalog, model, day)} for day in days(start, end)]
            except (LookupError, MoneyError) as error:
                raise dg.Failure(description=f"outcomes of '{model.name}' {start} to {end}: {error}") from error
            frame = pd.DataFrame(rows)
            frame["computed_at"], frame["run_id"] = registry.now(), context.run.run_id
            replace_days(connection, model.name, "outcomes", frame, days(start, end))
            history = read_days(connection, model.name, "outcomes", start - pd.Timedelta(days=90).to_pytimedelta(),
                                end)
        judged = shortfall(history)
        labelled = frame[frame["status"].isin(["labelled", "partly labelled"])]
        notes = "; ".join(f"{row['day']}: {row['status']}" for row in rows if row["status"] not in
                          ("labelled", "partly labelled"))
        metadata = {"labelled_days": len(labelled), "not_judged": notes or "none"}
        if len(labelled):
            metadata.update({"realized_money": float(labelled["realized_money"].sum()),
                             "promised_money": float(labelled["promised_money"].sum()),
                             "currency": str(labelled["currency"].iloc[0]),
                             "flagged": int(labelled["flagged"].sum()),
                             "true_positives": int(labelled["true_positives"].sum()),
                             "false_positives": int(labelled["false_positives"].sum())})
        yield dg.MaterializeResult(metadata=metadata)
        yield dg.AssetCheckResult(
            check_name="realized_money", passed=judged is None or not judged["below"],
            severity=dg.AssetCheckSeverity.WARN,
            description=shortfall_text(judged) if judged else f"not judged: no labelled day yet ({notes})",
            metadata={key_: value for key_, value in (judged or {}).items() if isinstance(value, (int, float))})

    return outcomes


def build_monitoring_assets(catalog: Catalog, model: ModelSpec) -> list[dg.AssetsDefinition]:
    """The model's monitoring and outcomes assets."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=dg.BetaWarning)  # single-run backfills are beta in 1.13
        return [build_monitoring_asset(catalog, model), build_outcomes_asset(catalog, model)]
