"""`ml-platform replay` end to end: the history before the clock starts, one line per simulated day, a summary."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from typing import Callable

from ml_platform.automation.factory import daily_job_name, outcomes_job_name
from ml_platform.replay.clock import Moment, ReplayError, ReplayRun, run_replay
from ml_platform.build import DAILY_JOB, REFERENCE_JOB
from ml_platform.chain.instance import prepare_instance
from ml_platform.chain.model_chain import DemoError, data_window, project_warehouse
from ml_platform.chain.runner import Chain
from ml_platform.monitoring.alarms import monitoring_summary
from ml_platform.monitoring.drift import PSI_ALARM, SCORE
from ml_platform.monitoring.store import read_days
from ml_platform.partitions import parse_training_run_key
from ml_platform.chain.planning import plan_daily, plan_reference_sources
from ml_platform.project import Project
from ml_platform.specs.catalog import Catalog
from ml_platform.features.library import load_catalog
from ml_platform.storage import registry
from ml_platform.storage.warehouse import table, table_exists


@dataclass
class ModelLedger:
    """What one model went through during the replay."""

    scored_days: list[str] = field(default_factory=list)
    unscored_days: dict[str, str] = field(default_factory=dict)
    trainings: list[dict] = field(default_factory=list)
    failed_runs: list[str] = field(default_factory=list)


@dataclass
class ReplayResult:
    """The replay's ledger per model, its runs and its wall time."""

    start: dt.date
    end: dt.date
    ledgers: dict[str, ModelLedger]
    runs: int
    seconds: float
    history_seconds: float


def load_history(project: Project, catalog: Catalog, start: dt.date, say: Callable[[str], None]) -> float:
    """Load what existed before the clock starts: reference sources, and daily sources and features until `start`."""
    began = time.perf_counter()
    chain = Chain(project, catalog, say)
    first = min(data_window(catalog, name, score_days=0)[0] for name in catalog.models)
    last = start - dt.timedelta(days=1)
    with project_warehouse(project) as connection:
        reference = plan_reference_sources(connection, catalog)
    if not reference.up_to_date:
        _require(chain.run(REFERENCE_JOB, f"reference sources: {reference.describe()}"))
    if first <= last:
        with project_warehouse(project) as connection:
            daily = plan_daily(connection, catalog, first, last)
        if daily.up_to_date:
            say(f"  daily sources and features {first} to {last}: up to date")
        else:
            _require(chain.run(DAILY_JOB, f"daily sources and features {first} to {last}: {daily.describe()}",
                               date_range=(first, last), assets=daily.assets_to_run(catalog)))
    return time.perf_counter() - began


def _require(outcome) -> None:
    if not outcome.success:
        raise DemoError(f"loading the history failed in Dagster run {outcome.run_id}: "
                        f"{'; '.join(outcome.failures) or 'see the run in the UI'}")


def _training_line(connection, model_name: str, run: ReplayRun) -> tuple[str, dict]:
    """What a training run did: promoted, or blocked by which gate checks (or why it failed)."""
    evaluation = registry.fetch_one(connection, "evaluations", model=model_name, training_run=run.partition)
    promotion = [row for row in registry.fetch_all(connection, "promotions", order_by="promotion_id",
                                                   model=model_name) if row["training_run"] == run.partition]
    record = {"training_run": run.partition, "reason": run.reason, "status": run.status, "promoted": bool(promotion)}
    if evaluation is not None:
        test = evaluation["summary"]["test"]
        record.update(money=test["money"], roc_auc=test["roc_auc"], currency=evaluation["summary"]["currency"],
                      model_version=evaluation["model_version"], window=test["window"])
        failed = {name: check["why"] for name, check in evaluation["summary"]["gate"].items() if not check["passed"]}
        record["failed_checks"] = failed
        measured = f"test {test['window'][0]}..{test['window'][1]}: {test['money']:,.0f} " \
                   f"{record['currency']}, ROC AUC {test['roc_auc']:.3f}"
        if promotion:
            return f"retrained {run.partition} ({run.reason}): PROMOTED {evaluation['model_version']}, {measured}", \
                record
        if failed:
            first, why = next(iter(failed.items()))
            return (f"retrained {run.partition} ({run.reason}): BLOCKED by the gate ({', '.join(failed)}), "
                    f"{measured}; {first}: {why}"), record
    reason = "; ".join(run.failures) or run.status
    return f"retraining {run.partition} ({run.reason}) FAILED: {reason}", record


def _scoring_line(connection, model_name: str, run: ReplayRun, ledger: ModelLedger) -> str:
    day = run.partition
    if run.status != "SUCCESS":
        ledger.unscored_days[day] = "; ".join(run.failures) or run.status
        ledger.failed_runs.append(run.run_id)
        return f"day {day} NOT scored: {ledger.unscored_days[day]}"
    if not run.reason.startswith("score"):
        ledger.unscored_days[day] = run.reason
        return f"loaded {day} ({run.reason})"
    predictions = table("predictions", model_name)
    rows, flagged, version = connection.execute(
        f"SELECT count(*), coalesce(sum(CAST(flagged AS INTEGER)), 0), any_value(model_version) FROM {predictions} "
        f"WHERE dagster_run_id = ?", [run.run_id]).fetchall()[0]
    ledger.scored_days.append(day)
    ledger.unscored_days.pop(day, None)
    # a weather feature drifts with each day's weather, so only prediction drift is worth a warning on the line
    warnings = "".join(f" [{reason}]" for reason in run.failures if "prediction_drift" in reason)
    return (f"scored {day}: {rows:,} rows, {flagged:,} flagged by {version}"
            f"{_drift_text(connection, model_name, day)}{warnings}")


def _drift_text(connection, model_name: str, day: str) -> str:
    """The day's prediction drift and its most drifted feature, as monitoring measured them."""
    rows = read_days(connection, model_name, "drift", dt.date.fromisoformat(day), dt.date.fromisoformat(day))
    if rows.empty:
        return ""
    score = rows[rows["feature"] == SCORE]["psi"]
    features = rows[rows["feature"] != SCORE].sort_values("psi")
    top = features.iloc[-1] if len(features) else None
    text = f"; drift PSI: score {float(score.iloc[0]):.2f}" if len(score) else "; drift PSI:"
    return text + (f", most {top['feature']} {float(top['psi']):.2f}" if top is not None else "")


def _outcome_text(connection, model_name: str, run: ReplayRun) -> str:
    """What judging a day found: realized money against the evaluation's promise, or why there was nothing."""
    if run.status != "SUCCESS":
        return f"NOT judged {run.partition}: {'; '.join(run.failures) or run.status}"
    day = dt.date.fromisoformat(run.partition)
    rows = read_days(connection, model_name, "outcomes", day, day)  # empty before the table exists
    if rows.empty:
        return f"judged {run.partition}: nothing recorded"
    row = rows.iloc[-1]
    if row["status"] not in ("labelled", "partly labelled"):
        return f"judged {run.partition}: {row['status']}"
    warnings = "".join(f" [{reason}]" for reason in run.failures)  # e.g. realized money short of the promise
    return (f"judged {run.partition}: realized {row['realized_money']:,.0f} against a promised "
            f"{row['promised_money']:,.0f} {row['currency']}{warnings}")


def describe_moment(project: Project, moment: Moment, ledgers: dict[str, ModelLedger]) -> list[str]:
    """One phrase per run a moment launched, recorded in the ledgers."""
    phrases = []
    with project_warehouse(project) as connection:
        for run in moment.runs:
            for name, ledger in ledgers.items():
                if run.job == daily_job_name(name):
                    phrases.append(f"{name}: {_scoring_line(connection, name, run, ledger)}")
                elif run.job == f"{name}__training":
                    line, record = _training_line(connection, name, run)
                    ledger.trainings.append(record)
                    phrases.append(f"{name}: {line}")
                elif run.job == outcomes_job_name(name):
                    phrases.append(f"{name}: {_outcome_text(connection, name, run)}")
    return phrases


def replay(project: Project, start: dt.date, end: dt.date, say: Callable[[str], None] = print) -> ReplayResult:
    """Load the history, then live through [start, end] on the simulated clock, one line per day."""
    if end < start:
        raise ReplayError(f"--to {end} is before --from {start}")
    began = time.perf_counter()
    home = str(prepare_instance(project))
    catalog = load_catalog(project.specs_dir, project.root)
    if not catalog.models:
        raise ReplayError(f"no model spec in {project.specs_dir}: nothing to replay")
    say(f"[history] what existed before {start}")
    history_seconds = load_history(project, catalog, start, say)
    ledgers = {name: ModelLedger() for name in catalog.models}
    first_model = next(iter(catalog.models.values()))
    timezone = catalog.sources[first_model.entity].partitioning.timezone
    days = (end - start).days + 2
    say(f"[clock] {start - dt.timedelta(days=1)} to {end}, {timezone}: the scheduler and sensor daemons tick at "
        f"06:00 and {first_model.cadence.predict_at.time} each day")
    state = {"day": None, "phrases": [], "runs": 0, "index": 0}

    def flush() -> None:
        if state["day"] is not None:
            state["index"] += 1
            text = " · ".join(state["phrases"]) or "nothing to do"
            say(f"[{state['index']:>3}/{days}] {state['day']}  {text}")
        state["phrases"] = []

    def on_moment(moment: Moment) -> None:
        day = moment.at.date()
        if day != state["day"]:
            flush()
            state["day"] = day
        state["runs"] += len(moment.runs)
        state["phrases"] += describe_moment(project, moment, ledgers)

    run_replay(project, home, list(catalog.models), timezone, first_model.cadence.predict_at.time, start, end,
               on_moment)
    flush()
    return ReplayResult(start, end, ledgers, state["runs"], time.perf_counter() - began, history_seconds)


def summary_lines(project: Project, result: ReplayResult) -> list[str]:
    """The closing summary: days scored, trainings promoted or blocked, champions, wall time."""
    lines = ["", f"== replay {result.start} to {result.end}: {result.runs} Dagster runs in {result.seconds:.0f} s "
                 f"(history {result.history_seconds:.0f} s) =="]
    with project_warehouse(project) as connection:
        for name, ledger in result.ledgers.items():
            wanted = [(result.start + dt.timedelta(days=offset)).isoformat()
                      for offset in range((result.end - result.start).days + 1)]
            scored = set(_scored_days(connection, name, result.start, result.end))
            missing = [day for day in wanted if day not in scored]
            lines.append(f"{name}: {len(wanted) - len(missing)} of {len(wanted)} days scored"
                         + (f"; not scored: {', '.join(missing[:10])}{' ...' if len(missing) > 10 else ''}"
                            if missing else ""))
            for day in missing[:10]:
                if day in ledger.unscored_days:
                    lines.append(f"  {day}: {ledger.unscored_days[day]}")
            promoted = [record for record in ledger.trainings if record["promoted"]]
            lines.append(f"  {len(ledger.trainings)} training runs: {len(promoted)} promoted, "
                         f"{len(ledger.trainings) - len(promoted)} blocked or failed")
            for record in ledger.trainings:
                cutoff = parse_training_run_key(record["training_run"])[0]
                verdict = "promoted" if record["promoted"] else (
                    "blocked: " + ", ".join(record.get("failed_checks", {})) if record.get("failed_checks")
                    else f"failed ({record['status']})")
                money = f", {record['money']:,.0f} {record['currency']} on test" if "money" in record else ""
                lines.append(f"    cut off {cutoff} ({record['reason']}){money}: {verdict}")
            champion = registry.champion(connection, name)
            lines.append(f"  champion at the end: {champion['model_version'] if champion else 'none'}")
            monitored = monitoring_summary(connection, name, result.start, result.end)
            if monitored.days_labelled:
                lines.append(f"  realized {monitored.realized_money:,.0f} {monitored.currency} over "
                             f"{monitored.days_labelled} judged days, against a promised "
                             f"{monitored.promised_money:,.0f} (each champion's test money per day)")
            scored_drift = [day for day in monitored.days if (day.prediction_psi or 0.0) > PSI_ALARM]
            lines.append(f"  prediction drift (score PSI above {PSI_ALARM}) on {len(scored_drift)} of "
                         f"{monitored.days_measured} scored days; some feature above it on "
                         f"{monitored.days_drifted} (the eve's weather is one value per airport and day)")
            alarms = [record for record in ledger.trainings if record["reason"].startswith("drift alarm")]
            if alarms:
                lines.append(f"  {len(alarms)} retraining(s) called by the drift alarm")
    return lines


def _scored_days(connection, model_name: str, start: dt.date, end: dt.date) -> list[str]:
    if not table_exists(connection, "predictions", model_name):
        return []
    rows = connection.execute(
        f"SELECT DISTINCT CAST(CAST(partition_date AS DATE) AS VARCHAR) FROM {table('predictions', model_name)} "
        f"WHERE partition_date BETWEEN ? AND ?", [start, end]).fetchall()
    return [row[0] for row in rows]
