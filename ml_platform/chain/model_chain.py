"""One model carried through the chain: plan, then run only what is stale, and report what was made."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from typing import Callable

from pathlib import Path

from ml_platform.chain.instance import prepare_instance
from ml_platform import grains
from ml_platform.automation.factory import data_keys
from ml_platform.chain.planning import (
    days_text, plan_daily, plan_outcomes, plan_population, plan_reference_sources, plan_scoring, training_done)
from ml_platform.chain.runner import Chain, RunOutcome
from ml_platform.errors import PlatformError
from ml_platform.features.library import load_catalog
from ml_platform.monitoring.alarms import MonitoringSummary, monitoring_summary
from ml_platform.names import (DAILY_JOB, REFERENCE_JOB, daily_job_name, latest_view, outcomes_job_name,
                               scoring_job_name, source_key, training_job_name)
from ml_platform.project import Project
from ml_platform.records.evaluation import EvaluationSummary
from ml_platform.records.registry import EvaluationRecord, PromotionRecord
from ml_platform.records.tasks import TaskEvaluationRecord, TaskMeasurement
from ml_platform.scoring.missing import degraded_features
from ml_platform.specs.catalog import Catalog
from ml_platform.specs.models import ModelSpec
from ml_platform.specs.tasks import judged_by_decision
from ml_platform.storage import registry
from ml_platform.storage.artifacts import ArtifactStore
from ml_platform.storage.resources import Warehouse


class DemoError(PlatformError, RuntimeError):
    """A run of the chain failed; the message names the run and what stopped it."""


@dataclass
class ChainResult:
    """What the chain did and what it produced."""

    model: str
    entity: str  # the source whose rows the model predicts for: what the summary counts
    training_run: str
    runs: list[RunOutcome]
    evaluation: EvaluationSummary | None  # the training run's, also when its gate blocked it
    champion: PromotionRecord | None  # the live promotion once the chain is done
    scored_rows: int
    score_window: tuple[dt.date, dt.date]
    seconds: float
    dagster_home: Path  # the instance folder the runs were recorded in
    monitoring: MonitoringSummary | None = None
    degraded: list[str] = field(default_factory=list)  # scored days with a feature missing far more than in training
    # a regression or multiclass model's evaluation (then `evaluation` is None) and its measurement
    task_evaluation: TaskEvaluationRecord | None = None
    task_measurement: TaskMeasurement | None = None

    @property
    def judged(self) -> EvaluationSummary | TaskEvaluationRecord | None:
        """The training run's evaluation, binary or task: what the gate decided on."""
        return self.evaluation if self.evaluation is not None else self.task_evaluation

    @property
    def blocked(self) -> bool:
        """True when the training run's model is not the live one because the gate blocked it (its checks failed,
        or the deployment step refused it): `ml-platform demo` then exits with code 3."""
        judged = self.judged
        if judged is None:
            return False
        return not judged.gate_passed or self.champion is None or \
            self.champion.model_version != judged.model_version


def data_window(catalog: Catalog, model_name: str, score_days: int) -> tuple[dt.date, dt.date]:
    """Days of daily sources and features the model's training and scoring need."""
    model = catalog.models[model_name]
    lookback = max([fs.lookback_days for fs in catalog.feature_sets_of(model)] or [0])
    rows = catalog.entity_rows(model.entity)
    end = model.split.test.end + dt.timedelta(days=score_days)
    if rows.is_population:  # its daily sources: from the population's lookback to the last label window's end
        first = dt.datetime.combine(model.split.train.start, dt.time())
        reads_from = grains.lookback_start(rows.population.lookback, first).date()
        start = min(reads_from, model.split.train.start - dt.timedelta(days=lookback))
        last = grains.period_start(rows.grain, dt.datetime.combine(end, dt.time()))
        horizon = model.label.horizon.days if model.label.horizon is not None else 0
        end = max((grains.shift(rows.grain, last, 1) - dt.timedelta(days=1)).date(),
                  last.date() + dt.timedelta(days=horizon - 1))
        sources = [catalog.sources[name].partitioning for name in rows.reads() if catalog.sources[name].is_daily]
        start = max([start, *(partitioning.start for partitioning in sources)])
        ends = [partitioning.end for partitioning in sources if partitioning.end is not None]
        return start, min([end, *ends])
    entity = rows.source.partitioning
    start = max(entity.start, model.split.train.start - dt.timedelta(days=lookback))
    if entity.end is not None:
        end = min(end, entity.end)
    return start, end


def run_chain(project: Project, model_name: str, score_days: int = 7,
              say: Callable[[str], None] = print) -> ChainResult:
    """Load, build features, train, evaluate, gate, deploy and score one model through Dagster runs."""
    started = time.perf_counter()
    home = prepare_instance(project)
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
    population = catalog.entity_rows(model.entity).is_population
    with project_warehouse(project) as connection:  # a population model: only the sources it reads
        daily_plan = plan_daily(connection, catalog, first, last, [
            source.name for source in catalog.sources_of(model) if source.is_daily] if population else None)
    say(f"[2/4] daily sources and features, {first} to {last} ({(last - first).days + 1} days)")
    if daily_plan.up_to_date:
        say("     up to date: every partition is stored at the version it would get; no run needed")
    else:
        assets = daily_plan.assets_to_run(catalog)
        if population:  # only the daily sources its entity and features read
            assets = [source_key(source.name) for source in catalog.sources_of(model) if source.is_daily]
        _require(chain.run(DAILY_JOB, f"load and compute stale partitions: {daily_plan.describe()}",
                           date_range=(first, last), assets=assets))
    rows = catalog.entity_rows(model.entity)
    if rows.is_population:
        partitions = grains.partition_days(rows.grain, model.split.train.start, score_window[1])
        keys = (partitions[0][0], partitions[-1][0])
        with project_warehouse(project) as connection:
            population_plan = plan_population(connection, catalog, model_name, *keys)
        say(f"     entity '{rows.name}' and its features, {len(partitions)} {rows.grain} partitions from {keys[0]}")
        if population_plan.up_to_date:
            say("     up to date: every partition is stored at the version it would get; no run needed")
        else:
            _require(chain.run(daily_job_name(model_name), f"build stale partitions: {population_plan.describe()}",
                               date_range=keys, assets=data_keys(catalog, model)))
    key = chain.add_training_run(model_name)
    say(f"[3/4] training run {key}: snapshot, train ({model.algorithm.kind}), evaluate, gate, deploy")
    with project_warehouse(project) as connection:
        done = training_done(run_evaluation(connection, model, key),
                             registry.promotions.champion(connection, model_name))
    if done:
        say(f"     up to date: {done}; no run needed")
    else:
        training = chain.run(training_job_name(model_name), f"training run {key}", partition_key=key)
    with project_warehouse(project) as connection:
        evaluation = run_evaluation(connection, model, key)
        champion = registry.promotions.champion(connection, model_name)
    task_evaluation = evaluation if isinstance(evaluation, TaskEvaluationRecord) else None
    measurement = None
    if task_evaluation is not None:
        measurement = TaskMeasurement.model_validate_json(ArtifactStore(root=str(project.storage.artifacts)).verify(
            task_evaluation.measurement_path, task_evaluation.measurement_sha256).read_text(encoding="utf-8"))
        evaluation = None
    if not done and not training.success and (evaluation is None or not training.blocked):
        raise DemoError(f"training run {key} failed: {'; '.join(training.failures) or 'see the run in the UI'}")
    scored, monitored, degraded = 0, None, []
    if champion is None:
        say("[4/4] scoring skipped: no model of this spec has passed the gate")
    elif score_window[0] > score_window[1]:
        say("[4/4] scoring skipped: the source has no days after the test window")
    else:
        say(f"[4/4] production predictions {score_window[0]} to {score_window[1]} with {champion.model_version}")
        with project_warehouse(project) as connection:
            stale = plan_scoring(connection, catalog, model_name, champion.model_version, *score_window)
        if not stale:
            say(f"     up to date: every day is scored by {champion.model_version} from the feature data stored "
                f"for it; no run needed")
        else:
            _require(chain.run(scoring_job_name(model_name), f"score with the champion and measure drift "
                                                             f"({days_text(stale)})",
                               date_range=(min(stale), max(stale))))
        with project_warehouse(project) as connection:
            stale = plan_outcomes(connection, catalog, model_name, *score_window)
        if not stale:
            say("     up to date: every scored day is judged from the same predictions and labels; no run needed")
        else:
            _require(chain.run(outcomes_job_name(model_name), f"judge the scored days, their labels are known "
                                                              f"({days_text(stale)})",
                               date_range=(min(stale), max(stale))))
        with project_warehouse(project) as connection:
            scored = connection.execute(
                f"SELECT count(*) FROM {latest_view(model_name)} WHERE partition_date BETWEEN ? AND ?",
                list(score_window)).fetchall()[0][0]
            monitored = monitoring_summary(connection, model_name, *score_window,
                                           grain=catalog.entity_rows(catalog.models[model_name].entity).grain)
            trained = registry.models.by_version(connection, champion.model_version)
            degraded = [item.text() for item in degraded_features(
                connection, ArtifactStore(root=str(project.storage.artifacts)), catalog, trained, *score_window)]
    return ChainResult(model_name, catalog.models[model_name].entity, key, chain.runs,
                       evaluation.summary if evaluation else None, champion, scored, score_window,
                       time.perf_counter() - started, home, monitored, degraded, task_evaluation, measurement)


def run_evaluation(connection, model: ModelSpec, training_run: str) -> EvaluationRecord | TaskEvaluationRecord | None:
    """A training run's stored evaluation in the registry of its model's task, or None."""
    if judged_by_decision(model):
        return registry.task_evaluations.get(connection, model.name, training_run)
    return registry.evaluations.get(connection, model.name, training_run)


def _require(outcome: RunOutcome) -> None:
    if not outcome.success:
        raise DemoError(f"Dagster run {outcome.run_id} ({outcome.job}) failed: "
                        f"{'; '.join(outcome.failures) or 'see the run in the UI'}")


def project_warehouse(project: Project):
    """A connection to the project's warehouse, as a context manager: the assets' own (Warehouse), so that it
    reads the feature tables wherever the configuration keeps them."""
    return Warehouse(database=str(project.storage.warehouse)).get_connection()
