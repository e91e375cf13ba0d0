"""Drive a model from sources to production predictions as a chain of Dagster runs in the project's instance.

Assets with different partitions cannot share a run, so the chain is: reference sources, daily sources and
features, one training run (snapshot, model, evaluation with its blocking gate, deployment), then scoring.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import dagster as dg
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from ml_platform.automation.factory import outcomes_job_name
from ml_platform.build import DAILY_JOB, REFERENCE_JOB, build_definitions, scoring_job_name, training_job_name
from ml_platform.evaluation.evaluate import ordered_checks
from ml_platform.evaluation.plots import PLOTS
from ml_platform.monitoring.alarms import monitoring_summary
from ml_platform.partitions import training_run_key, training_runs
from ml_platform.planning import plan_daily, plan_reference_sources
from ml_platform.project import Project
from ml_platform.specs.catalog import Catalog
from ml_platform.specs.loader import load_catalog
from ml_platform.storage import registry
from ml_platform.storage.warehouse import open_warehouse

QUIET = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}


class DemoError(RuntimeError):
    """A run of the chain failed; the message names the run and what stopped it."""


@dataclass
class RunOutcome:
    """One Dagster run of the chain."""

    job: str
    run_id: str
    success: bool
    seconds: float
    failures: list[str] = field(default_factory=list)


@dataclass
class ChainResult:
    """What the chain did and what it produced."""

    model: str
    training_run: str
    runs: list[RunOutcome]
    evaluation: dict | None
    champion: dict | None
    scored_rows: int
    score_window: tuple[dt.date, dt.date]
    seconds: float
    monitoring: dict | None = None


def prepare_instance(project: Project) -> Path:
    """Make sure DAGSTER_HOME names an instance folder holding the project's dagster.yaml; return it."""
    home = Path(os.environ.get("DAGSTER_HOME") or project.dagster_home).resolve()
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    template = project.root / "dagster.yaml"
    if not config.exists() and template.exists() and template.resolve() != config:
        shutil.copyfile(template, config)
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def _failures(result: dg.ExecuteInProcessResult) -> list[str]:
    """Readable reasons a run failed: failed steps and failed blocking checks."""
    return failure_reasons(result.all_events)


CHECK_KINDS = {"evaluation": "gate check", "monitoring": "monitoring check", "outcomes": "monitoring check"}


def failure_reasons(events: Iterable[dg.DagsterEvent]) -> list[str]:
    """Readable reasons in a run's events: failed steps and failed checks."""
    reasons = []
    for event in events:
        if event.event_type_value == "STEP_FAILURE":
            error = event.step_failure_data.error
            while error is not None and error.cause is not None:
                error = error.cause  # the user's exception, not Dagster's wrapper around it
            message = error.message.strip() if error else "unknown error"
            user_error = event.step_failure_data.user_failure_data
            if user_error is not None and user_error.description:
                message = user_error.description
            reasons.append(f"{event.step_key}: {message.splitlines()[0]}")
        elif event.event_type_value == "ASSET_CHECK_EVALUATION":
            evaluation = event.event_specific_data
            if not evaluation.passed:
                kind = CHECK_KINDS.get(evaluation.asset_key.path[0], "data check")
                warning = " (warning)" if evaluation.severity == dg.AssetCheckSeverity.WARN else ""
                reasons.append(f"{kind} {evaluation.check_name} failed{warning}: {evaluation.description}")
    return reasons


class Chain:
    """Runs jobs of a project's definitions in its Dagster instance, reporting progress as it goes."""

    def __init__(self, project: Project, catalog: Catalog, say: Callable[[str], None] = print):
        self.project = project
        self.catalog = catalog
        self.say = say
        self.definitions = build_definitions(catalog, project.storage)
        self.instance = dg.DagsterInstance.get()
        self.runs: list[RunOutcome] = []

    def run(self, job: str, label: str, partition_key: str | None = None,
            date_range: tuple[dt.date, dt.date] | None = None,
            assets: list[dg.AssetKey] | None = None) -> RunOutcome:
        """Execute one job in the instance and report how it went."""
        tags = {"ml_platform/chain": label}
        if date_range is not None:
            tags[ASSET_PARTITION_RANGE_START_TAG] = date_range[0].isoformat()
            tags[ASSET_PARTITION_RANGE_END_TAG] = date_range[1].isoformat()
        self.say(f"  -> {label} ...")
        started = time.perf_counter()
        result = self.definitions.resolve_job_def(job).execute_in_process(
            instance=self.instance, partition_key=partition_key, tags=tags, run_config=QUIET, raise_on_error=False,
            asset_selection=assets)
        outcome = RunOutcome(job, result.run_id, result.success, time.perf_counter() - started, _failures(result))
        self.runs.append(outcome)
        status = "done" if outcome.success else "FAILED"
        self.say(f"     {status} in {outcome.seconds:.1f} s (Dagster run {result.run_id[:8]})")
        for reason in outcome.failures:
            self.say(f"     ! {reason}")
        return outcome

    def add_training_run(self, model_name: str) -> str:
        """Register the training run that the model's current spec defines; return its key."""
        model = self.catalog.models[model_name]
        key = training_run_key(model, self.catalog.spec_hash(model))
        partitions = training_runs(model)
        if not self.instance.has_dynamic_partition(partitions.name, key):
            self.instance.add_dynamic_partitions(partitions.name, [key])
        return key


def data_window(catalog: Catalog, model_name: str, score_days: int) -> tuple[dt.date, dt.date]:
    """Days of daily sources and features the model's training and scoring need."""
    model = catalog.models[model_name]
    lookback = max([fs.lookback_days for fs in catalog.feature_sets_of(model)] or [0])
    entity = catalog.sources[model.entity].partitioning
    start = max(entity.start, model.split.train.start - dt.timedelta(days=lookback))
    end = model.split.test.end + dt.timedelta(days=score_days)
    if entity.end is not None:
        end = min(end, entity.end)
    return start, end


def run_chain(project: Project, model_name: str, score_days: int = 7,
              say: Callable[[str], None] = print) -> ChainResult:
    """Load, build features, train, evaluate, gate, deploy and score one model through Dagster runs."""
    started = time.perf_counter()
    prepare_instance(project)
    catalog = load_catalog(project.specs_dir, project.root)
    if model_name not in catalog.models:
        raise DemoError(f"no model named '{model_name}' in {project.specs_dir} "
                        f"(models: {', '.join(sorted(catalog.models)) or 'none'})")
    model = catalog.models[model_name]
    chain = Chain(project, catalog, say)
    first, last = data_window(catalog, model_name, score_days)
    score_window = (model.split.test.end + dt.timedelta(days=1), last)
    with project_warehouse(project) as connection:
        reference_plan = plan_reference_sources(connection, catalog)
    say("[1/4] reference sources")
    if reference_plan.up_to_date:
        say("     up to date: every reference source is stored from the same file and spec; no run needed")
    else:
        _require(chain.run(REFERENCE_JOB, f"load reference sources: {reference_plan.describe()}"))
    with project_warehouse(project) as connection:
        daily_plan = plan_daily(connection, catalog, first, last)
    say(f"[2/4] daily sources and features, {first} to {last} ({(last - first).days + 1} days)")
    if daily_plan.up_to_date:
        say("     up to date: every partition is stored at the version it would get; no run needed")
    else:
        _require(chain.run(DAILY_JOB, f"load and compute stale partitions: {daily_plan.describe()}",
                           date_range=(first, last), assets=daily_plan.assets_to_run(catalog)))
    key = chain.add_training_run(model_name)
    say(f"[3/4] training run {key}: snapshot, train ({model.algorithm.kind}), evaluate, gate, deploy")
    training = chain.run(training_job_name(model_name), f"training run {key}", partition_key=key)
    with project_warehouse(project) as connection:
        evaluation = registry.fetch_one(connection, "evaluations", model=model_name, training_run=key)
        champion = registry.champion(connection, model_name)
    if not training.success and evaluation is None:
        raise DemoError(f"training run {key} failed: {'; '.join(training.failures) or 'see the run in the UI'}")
    scored, monitored = 0, None
    if champion is None:
        say("[4/4] scoring skipped: no model of this spec has passed the gate")
    elif score_window[0] > score_window[1]:
        say("[4/4] scoring skipped: the source has no days after the test window")
    else:
        say(f"[4/4] production predictions {score_window[0]} to {score_window[1]} with {champion['model_version']}")
        _require(chain.run(scoring_job_name(model_name), "score with the champion and measure drift",
                           date_range=score_window))
        _require(chain.run(outcomes_job_name(model_name), "judge the scored days (their labels are known)",
                           date_range=score_window))
        with project_warehouse(project) as connection:
            scored = connection.execute(
                f"SELECT count(*) FROM predictions.{model_name}__latest WHERE partition_date BETWEEN ? AND ?",
                list(score_window)).fetchall()[0][0]
            monitored = monitoring_summary(connection, model_name, *score_window)
    return ChainResult(model_name, key, chain.runs, evaluation and evaluation["summary"], champion, scored,
                       score_window, time.perf_counter() - started, monitored)


def _require(outcome: RunOutcome) -> None:
    if not outcome.success:
        raise DemoError(f"Dagster run {outcome.run_id} ({outcome.job}) failed: "
                        f"{'; '.join(outcome.failures) or 'see the run in the UI'}")


def project_warehouse(project: Project):
    """A connection to the project's warehouse, as a context manager."""
    return open_warehouse(project.storage.warehouse)


def summary_text(project: Project, result: ChainResult) -> str:
    """The closing summary printed by `ml-platform demo`."""
    lines = ["", f"== {result.model}: done in {result.seconds:.0f} s, {len(result.runs)} Dagster runs =="]
    evaluation = result.evaluation
    if evaluation:
        test = evaluation["test"]
        currency = evaluation["currency"]
        low, high = test["money_interval_95"]
        lines += [
            f"Money on the test window {test['window'][0]} to {test['window'][1]}: {test['money']:,.0f} {currency} "
            f"(95% interval {low:,.0f} to {high:,.0f}; doing nothing {test['money_do_nothing']:,.0f}, "
            f"perfect {test['money_perfect']:,.0f})",
            f"ROC AUC {test['roc_auc']:.3f}; threshold {evaluation['threshold']:.3f} chosen on validation; "
            f"flags {test['flagged']:,} of {test['rows']:,} test flights",
            "Gate: " + ", ".join(f"{name} {'passed' if check['passed'] else 'FAILED'}"
                                 for name, check in ordered_checks(evaluation["gate"])),
        ]
        lines += [f"  {name}: {check['why']}" for name, check in ordered_checks(evaluation["gate"])
                  if not check["passed"]]
        files = evaluation.get("artifacts", {})
        if "report_markdown" in files:
            lines.append(f"Report: {project.storage.artifacts / files['report_markdown']['path']}")
        lines += [f"  plot {name}: {project.storage.artifacts / files['plots'][name]['path']}"
                  for name in PLOTS if name in files.get("plots", {})]
    if result.champion:
        lines.append(f"Deployed model: {result.champion['model_version']} "
                     f"(promotion #{result.champion['promotion_id']}, training run {result.champion['training_run']})")
    else:
        lines.append("Deployed model: none (the gate did not pass)")
    if result.scored_rows:
        lines.append(f"Predictions: {result.scored_rows:,} rows for {result.score_window[0]} to "
                     f"{result.score_window[1]} in table predictions.{result.model}__latest of "
                     f"{project.storage.warehouse}")
    monitored = result.monitoring
    if monitored and monitored["days_labelled"]:
        lines.append(f"Realized on those days, once their labels were known: {monitored['realized_money']:,.0f} "
                     f"{monitored['currency']} against the {monitored['promised_money']:,.0f} the evaluation "
                     f"promised for {monitored['days_labelled']} days (table monitoring.{result.model}__outcomes)")
    if monitored and monitored["days_measured"]:
        lines.append(f"Drift against the training snapshot: {monitored['days_drifted']} of "
                     f"{monitored['days_measured']} scored days above PSI 0.25 on some feature or the score "
                     f"(table monitoring.{result.model}__drift)")
    lines += [
        f"Open the UI: ml-platform ui   (or: DAGSTER_HOME={os.environ['DAGSTER_HOME']} dagster dev -w workspace.yaml)",
        f"  then http://127.0.0.1:3000/locations/ml_platform/asset-groups/{result.model} shows every asset "
        f"this run materialized.",
    ]
    return "\n".join(lines)
