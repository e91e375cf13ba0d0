"""`ml-platform replay` end to end: the history before the clock starts, one line per simulated day, a summary."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from typing import Callable

import dagster as dg

from ml_platform.automation.factory import OUTCOMES_TIME, data_keys
from ml_platform.chain.instance import prepare_instance
from ml_platform.chain.model_chain import DemoError, data_window, project_warehouse
from ml_platform import grains
from ml_platform.chain.planning import Plan, plan_daily, plan_population, plan_reference_sources
from ml_platform.chain.runner import Chain
from ml_platform.features.library import load_catalog
from ml_platform.monitoring.alarms import monitoring_summary
from ml_platform.monitoring.drift import PSI_ALARM, SCORE
from ml_platform.monitoring.outcomes import HISTORY_DAYS, trailing_verdict
from ml_platform.monitoring.store import read_days
from ml_platform.names import (DAILY_JOB, REFERENCE_JOB, daily_job_name, feature_key, outcomes_job_name,
                               predictions_table, source_key, training_job_name)
from ml_platform.partitions import parse_training_run_key
from ml_platform.project import Project
from ml_platform.records.evaluation import EvaluationSummary
from ml_platform.records.tasks import TaskEvaluationRecord
from ml_platform.replay.clock import MOMENTS_PER_DAY, Moment, ReplayError, ReplayRun, run_replay
from ml_platform.specs.catalog import Catalog
from ml_platform.specs.models import ModelSpec
from ml_platform.storage import registry
from ml_platform.storage.warehouse import table_exists


@dataclass(frozen=True)
class TrainingOutcome:
    """What one training run of the replay came to: promoted, blocked by gate checks, or failed."""

    training_run: str
    reason: str  # why the sensor requested it
    status: str  # the Dagster run's status
    promoted: bool
    # a binary run's evaluation summary or a regression/multiclass run's task evaluation; None when the run failed
    # before its evaluation was stored
    evaluation: EvaluationSummary | TaskEvaluationRecord | None = None

    @property
    def test_money(self) -> float | None:
        """The run's money on its test window, whatever its task (None without an evaluation)."""
        if self.evaluation is None:
            return None
        if isinstance(self.evaluation, TaskEvaluationRecord):
            return self.evaluation.test_money
        return self.evaluation.test.money

    def failed_checks(self) -> dict[str, str]:
        """Why each failed gate check failed, by check name in alphabetical order (as the replay always listed them)."""
        failures = self.evaluation.gate.failures() if self.evaluation else ()
        return {name: check.why for name, check in sorted(failures, key=lambda failure: failure[0])}


@dataclass
class ModelLedger:
    """What one model went through during the replay."""

    scored_days: list[str] = field(default_factory=list)
    unscored_days: dict[str, str] = field(default_factory=dict)
    trainings: list[TrainingOutcome] = field(default_factory=list)
    failed_runs: list[str] = field(default_factory=list)
    grain: str = "daily"  # the model's entity's grain: what one scored or judged partition is


@dataclass
class ReplayResult:
    """The replay's ledger per model, its runs and its wall time."""

    start: dt.date
    end: dt.date
    ledgers: dict[str, ModelLedger]
    runs: int
    seconds: float
    history_seconds: float


def selected_models(catalog: Catalog, names: list[str] | None) -> dict[str, ModelSpec]:
    """The models a replay lives through: the named ones (all when `names` is None), in the catalog's
    order; an unknown name is an error listing the known models."""
    if names is None:
        return dict(catalog.models)
    unknown = [name for name in names if name not in catalog.models]
    if unknown or not names:
        known = ", ".join(sorted(catalog.models)) or "none"
        raise ReplayError(f"--model {', '.join(unknown) or '(empty)'}: no model spec of that name in "
                          f"{catalog.specs_dir}; the models are: {known}")
    return {name: model for name, model in catalog.models.items() if name in names}


def load_history(project: Project, catalog: Catalog, start: dt.date, say: Callable[[str], None],
                 models: list[str] | None = None) -> float:
    """Load what existed before the clock starts for the given models (all by default): reference sources, and the
    daily sources and features they read until `start`."""
    began = time.perf_counter()
    chain = Chain(project, catalog, say)
    chosen = selected_models(catalog, models)
    first = min(data_window(catalog, name, score_days=0)[0] for name in chosen)
    last = start - dt.timedelta(days=1)
    with project_warehouse(project) as connection:
        reference = plan_reference_sources(connection, catalog)
    if not reference.up_to_date:
        _require(chain.run(REFERENCE_JOB, f"reference sources: {reference.describe()}"))
    if first <= last:
        # when every model predicts for an entity spec, only the daily sources they read (nothing else needs days)
        populations_only = all(catalog.entity_rows(model.entity).is_population for model in chosen.values())
        read = sorted({source.name for model in chosen.values() for source in catalog.sources_of(model)
                       if source.is_daily})
        # a subset of the models: only the feature sets they use (all of them otherwise, as the daily job holds)
        feature_sets = None if len(chosen) == len(catalog.models) else _daily_feature_sets(catalog, chosen)
        only_read = populations_only or feature_sets is not None
        with project_warehouse(project) as connection:
            daily = plan_daily(connection, catalog, first, last, read if only_read else None, feature_sets)
        if daily.up_to_date:
            say(f"  daily sources and features {first} to {last}: up to date")
        else:
            assets = [source_key(name) for name in read] if populations_only else \
                daily.assets_to_run(catalog) if feature_sets is None else \
                _history_assets(catalog, read, feature_sets, daily)
            _require(chain.run(DAILY_JOB, f"daily sources and features {first} to {last}: {daily.describe()}",
                               date_range=(first, last), assets=assets))
        for name, model in chosen.items():  # an entity spec's periods before the clock starts
            rows = catalog.entity_rows(model.entity)
            partitions = grains.partition_days(rows.grain, max(rows.start, first), last) if rows.is_population \
                else []
            if not partitions:
                continue
            keys = (partitions[0][0], partitions[-1][0])
            with project_warehouse(project) as connection:
                plan = plan_population(connection, catalog, name, *keys)
            if plan.up_to_date:
                say(f"  entity '{rows.name}' and its features {keys[0]} to {keys[1]}: up to date")
            else:
                _require(chain.run(daily_job_name(name), f"entity '{rows.name}' and its features {keys[0]} to "
                                                         f"{keys[1]}: {plan.describe()}",
                                   date_range=keys, assets=data_keys(catalog, model)))
    return time.perf_counter() - began


def _history_assets(catalog: Catalog, sources: list[str], feature_sets: list[str], plan: Plan) -> list[dg.AssetKey]:
    """The daily job's assets that a subset of the models needs: only the stale feature sets (and the sets using
    them) when no source is stale, else their daily sources and every feature set they read."""
    stale = plan.assets_to_run(catalog)
    if stale is not None:
        return stale
    return [source_key(name) for name in sources] + [feature_key(name) for name in feature_sets]


def _daily_feature_sets(catalog: Catalog, models: dict[str, ModelSpec]) -> list[str]:
    """The daily feature sets the models read, with the sets those use (an entity spec's sets have their own runs)."""
    wanted = {feature_set.name for model in models.values() for feature_set in catalog.feature_sets_of(model)}
    while True:
        used = {name for wanted_name in wanted for name in catalog.feature_sets[wanted_name].uses} - wanted
        if not used:
            break
        wanted |= used
    return sorted(name for name in wanted if not catalog.entity_rows(catalog.feature_sets[name].entity).is_population)


def _require(outcome) -> None:
    if not outcome.success:
        raise DemoError(f"loading the history failed in Dagster run {outcome.run_id}: "
                        f"{'; '.join(outcome.failures) or 'see the run in the UI'}")


def training_line(connection, model_name: str, run: ReplayRun) -> tuple[str, TrainingOutcome]:
    """What a training run did: promoted, blocked by which gate checks, passed but not promoted, or why it failed.
    Binary runs are read from registry.evaluations, regression and multiclass runs from registry.task_evaluations."""
    evaluation = registry.evaluation_of(connection, model_name, run.partition)
    promoted = any(promotion.training_run == run.partition
                   for promotion in registry.promotions.log(connection, model_name))
    if isinstance(evaluation, TaskEvaluationRecord):
        judged = evaluation
        measured = (f"test {evaluation.test_window[0]}..{evaluation.test_window[1]}: "
                    f"{evaluation.test_money:,.0f} {evaluation.currency}, {evaluation.task}, "
                    f"{evaluation.decision} decision")
    elif evaluation is not None:
        judged = evaluation.summary
        test = evaluation.summary.test
        measured = f"test {test.window[0]}..{test.window[1]}: {test.money:,.0f} " \
                   f"{evaluation.summary.currency}, ROC AUC {test.roc_auc:.3f}"
    else:
        judged = measured = None
    outcome = TrainingOutcome(run.partition, run.reason, run.status, promoted, judged)
    if evaluation is not None:
        failed = outcome.failed_checks()
        if promoted:
            return f"retrained {run.partition} ({run.reason}): PROMOTED {evaluation.model_version}, {measured}", \
                outcome
        if failed:
            first, why = next(iter(failed.items()))
            return (f"retrained {run.partition} ({run.reason}): BLOCKED by the gate ({', '.join(failed)}), "
                    f"{measured}; {first}: {why}"), outcome
        if run.status == "SUCCESS":  # every check passed and the run succeeded, yet nothing was promoted
            return (f"retrained {run.partition} ({run.reason}): passed the gate, NOT promoted "
                    f"({evaluation.model_version}), {measured}"), outcome
    reason = "; ".join(run.failures) or run.status
    return f"retraining {run.partition} ({run.reason}) FAILED: {reason}", outcome


def _scoring_line(connection, model_name: str, run: ReplayRun, ledger: ModelLedger) -> str:
    day = run.partition
    if run.status != "SUCCESS":
        ledger.unscored_days[day] = "; ".join(run.failures) or run.status
        ledger.failed_runs.append(run.run_id)
        return f"{grains.PERIOD_NOUN[ledger.grain]} {day} NOT scored: {ledger.unscored_days[day]}"
    if not run.reason.startswith("score"):
        ledger.unscored_days[day] = run.reason
        return f"loaded {day} ({run.reason})"
    predictions = predictions_table(model_name)
    binary = "flagged" in {row[0] for row in connection.execute(f"DESCRIBE {predictions}").fetchall()}
    flags = "coalesce(sum(CAST(flagged AS INTEGER)), 0)" if binary else "NULL"  # other tasks decide, not flag
    rows, flagged, version = connection.execute(
        f"SELECT count(*), {flags}, any_value(model_version) FROM {predictions} "
        f"WHERE dagster_run_id = ?", [run.run_id]).fetchall()[0]
    ledger.scored_days.append(day)
    ledger.unscored_days.pop(day, None)
    # features may move without the scores moving, so only prediction drift is worth a warning on the line
    warnings = "".join(f" [{reason}]" for reason in run.failures if "prediction_drift" in reason)
    decided = f"{flagged:,} flagged" if binary else "decided"
    return (f"scored {day}: {rows:,} rows, {decided} by {version}"
            f"{_drift_text(connection, model_name, day)}{warnings}")


def _drift_text(connection, model_name: str, day: str) -> str:
    """The day's prediction drift and its most drifted feature, pooled over 7 days, as monitoring measured them."""
    rows = read_days(connection, model_name, "drift", dt.date.fromisoformat(day), dt.date.fromisoformat(day))
    if rows.empty:
        return ""
    score = rows[rows["feature"] == SCORE]["psi"]
    features = rows[rows["feature"] != SCORE].sort_values("psi")
    top = features.iloc[-1] if len(features) else None
    text = f"; drift PSI (7 days): score {float(score.iloc[0]):.2f}" if len(score) else "; drift PSI (7 days):"
    return text + (f", most {top['feature']} {float(top['psi']):.2f}" if top is not None else "")


def _outcome_text(connection, model_name: str, run: ReplayRun, grain: str = "daily") -> str:
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
    trailing = trailing_verdict(read_days(connection, model_name, "outcomes", day - dt.timedelta(days=HISTORY_DAYS),
                                          day), grain=grain)
    verdict = f"; trailing {trailing.days} judged {trailing.unit} {trailing.text()}" if trailing else ""
    return (f"judged {run.partition}: realized {row['realized_money']:,.0f} against a promised "
            f"{row['promised_money']:,.0f} {row['currency']}{verdict}")


def describe_moment(project: Project, moment: Moment, ledgers: dict[str, ModelLedger]) -> list[str]:
    """One phrase per run a moment launched, recorded in the ledgers."""
    phrases = []
    # each retraining sensor's decision, said just before the training run it requested (or after the other runs)
    decisions = {name: [f"{name}: retraining sensor {decision}" for decision in said]
                 for name, said in moment.sensors.items()}
    with project_warehouse(project) as connection:
        for run in moment.runs:
            for name, ledger in ledgers.items():
                if run.job == daily_job_name(name):
                    phrases.append(f"{name}: {_scoring_line(connection, name, run, ledger)}")
                elif run.job == training_job_name(name):
                    line, outcome = training_line(connection, name, run)
                    ledger.trainings.append(outcome)
                    phrases += decisions.pop(name, [])
                    phrases.append(f"{name}: {line}")
                elif run.job == outcomes_job_name(name):
                    phrases.append(f"{name}: {_outcome_text(connection, name, run, ledger.grain)}")
    return phrases + [phrase for said in decisions.values() for phrase in said]


class DayLines:
    """The replay's progress: one line per simulated day, said as soon as the day's last moment has run."""

    def __init__(self, say: Callable[[str], None], days: int):
        self.say = say
        self.days = days  # how many days the clock lives through
        self.day: dt.date | None = None
        self.phrases: list[str] = []
        self.index = 0
        self.runs = 0
        self.moments = 0  # of the current day

    def add(self, day: dt.date, runs: int, phrases: list[str]) -> None:
        """Record a moment's runs and phrases; say the day's line after its last moment (or when the day changes)."""
        if day != self.day:
            self.flush()
            self.day = day
        self.runs += runs
        self.moments += 1
        # a decision repeated at the day's two moments (the sensor skipping for the same reason) is said once
        self.phrases += [phrase for phrase in phrases if phrase not in self.phrases]
        if self.moments == MOMENTS_PER_DAY:
            self.flush()

    def flush(self) -> None:
        """Say the current day's line (if any) and start afresh."""
        if self.day is not None:
            self.index += 1
            self.say(f"[{self.index:>3}/{self.days}] {self.day}  {' · '.join(self.phrases) or 'nothing to do'}")
        self.day, self.phrases, self.moments = None, [], 0


def replay(project: Project, start: dt.date, end: dt.date, say: Callable[[str], None] = print,
           models: list[str] | None = None, reuse: bool = True) -> ReplayResult:
    """Load the history, then live through [start, end] on the simulated clock, one line per day: every model's
    chain, or only the named models' (their schedules and sensor tick; the others' stay untouched). `reuse`: see
    run_replay."""
    if end < start:
        raise ReplayError(f"--to {end} is before --from {start}")
    began = time.perf_counter()
    home = prepare_instance(project)
    catalog = load_catalog(project.specs_dir, project.root)
    if not catalog.models:
        raise ReplayError(f"no model spec in {project.specs_dir}: nothing to replay")
    chosen = selected_models(catalog, models)
    say(f"[history] what existed before {start}" + (f" for {', '.join(chosen)}" if models else ""))
    history_seconds = load_history(project, catalog, start, say, list(chosen))
    ledgers = {name: ModelLedger(grain=catalog.entity_rows(model.entity).grain) for name, model in chosen.items()}
    first_model = next(iter(chosen.values()))
    timezone = catalog.entity_rows(first_model.entity).timezone
    days = (end - start).days + 2
    say(f"[clock] {start - dt.timedelta(days=1)} to {end}, {timezone}: the scheduler and sensor daemons tick at "
        f"{OUTCOMES_TIME:%H:%M} and {first_model.cadence.predict_at.time} each day")
    lines = DayLines(say, days)

    def on_moment(moment: Moment) -> None:
        lines.add(moment.at.date(), len(moment.runs), describe_moment(project, moment, ledgers))

    run_replay(project, home, list(chosen), timezone, first_model.cadence.predict_at.time, start, end,
               on_moment, reuse)
    lines.flush()
    return ReplayResult(start, end, ledgers, lines.runs, time.perf_counter() - began, history_seconds)


def summary_lines(project: Project, result: ReplayResult) -> list[str]:
    """The closing summary: days scored, trainings promoted or blocked, champions, wall time."""
    lines = ["", f"== replay {result.start} to {result.end}: {result.runs} Dagster runs in {result.seconds:.0f} s "
                 f"(history {result.history_seconds:.0f} s) =="]
    catalog = load_catalog(project.specs_dir, project.root)
    with project_warehouse(project) as connection:
        for name, ledger in result.ledgers.items():
            grain = catalog.entity_rows(catalog.models[name].entity).grain  # a weekly model scores Mondays
            wanted = [day.isoformat() for day, _ in grains.partition_days(grain, result.start, result.end)]
            scored = set(_scored_days(connection, name, result.start, result.end))
            missing = [day for day in wanted if day not in scored]
            unit = {"daily": "days"}.get(grain, f"{grains.PERIOD_NOUN[grain]}s")
            lines.append(f"{name}: {len(wanted) - len(missing)} of {len(wanted)} {unit} scored"
                         + (f"; not scored: {', '.join(missing[:10])}{' ...' if len(missing) > 10 else ''}"
                            if missing else ""))
            for day in missing[:10]:
                if day in ledger.unscored_days:
                    lines.append(f"  {day}: {ledger.unscored_days[day]}")
            promoted = [training for training in ledger.trainings if training.promoted]
            lines.append(f"  {len(ledger.trainings)} training runs: {len(promoted)} promoted, "
                         f"{len(ledger.trainings) - len(promoted)} blocked or failed")
            for training in ledger.trainings:
                cutoff = parse_training_run_key(training.training_run)[0]
                failed = training.failed_checks()
                verdict = "promoted" if training.promoted else (
                    "blocked: " + ", ".join(failed) if failed else
                    "passed the gate, not promoted" if training.evaluation is not None and training.status == "SUCCESS"
                    else f"failed ({training.status})")
                summary = training.evaluation
                money = f", {training.test_money:,.0f} {summary.currency} on test" if summary else ""
                lines.append(f"    cut off {cutoff} ({training.reason}){money}: {verdict}")
            champion = registry.promotions.champion(connection, name)
            lines.append(f"  champion at the end: {champion.model_version if champion else 'none'}")
            monitored = monitoring_summary(connection, name, result.start, result.end, grain)
            if monitored.days_labelled:
                lines.append(f"  realized {monitored.realized_money:,.0f} {monitored.currency} over "
                             f"{monitored.days_labelled} judged {unit}, against a promised "
                             f"{monitored.promised_money:,.0f} (each champion's test money per "
                             f"{grains.PERIOD_NOUN[grain]})")
                lines += [f"    {verdict.model_version}: {verdict.text()}"
                          for verdict in monitored.verdicts]
            lines.append(f"  prediction drift (score PSI pooled over 7 days, above {PSI_ALARM}) on "
                         f"{monitored.days_prediction_drift} of {monitored.days_measured} scored {unit}; some feature "
                         f"above it on {monitored.days_drifted}")
            alarms = [training for training in ledger.trainings if training.reason.startswith("drift alarm")]
            if alarms:
                lines.append(f"  {len(alarms)} retraining(s) called by the drift alarm")
    return lines


def _scored_days(connection, model_name: str, start: dt.date, end: dt.date) -> list[str]:
    if not table_exists(connection, "predictions", model_name):
        return []
    rows = connection.execute(
        f"SELECT DISTINCT CAST(CAST(partition_date AS DATE) AS VARCHAR) FROM {predictions_table(model_name)} "
        f"WHERE partition_date BETWEEN ? AND ?", [start, end]).fetchall()
    return [row[0] for row in rows]
