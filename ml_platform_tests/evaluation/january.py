"""A January 2013 warehouse loaded once per test process, and a driver for training runs on copies of it.

Loading the sources and computing the features of January takes most of a chain's time; every test that only
needs training runs starts from a copy of one loaded warehouse instead, in its own project and Dagster instance.
"""

from __future__ import annotations

import atexit
import datetime as dt
import functools
import os
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from ml_platform import names
from ml_platform.names import DAILY_JOB, REFERENCE_JOB, scoring_job_name, training_job_name
from ml_platform.chain.instance import prepare_instance
from ml_platform.chain.runner import Chain, RunOutcome
from ml_platform.features.library import load_catalog
from ml_platform.project import Project
from ml_platform.records.registry import EvaluationRecord, PromotionRecord
from ml_platform.storage import registry
from ml_platform.storage.warehouse import open_warehouse
from ml_platform.storage.resources import Warehouse
from ml_platform_tests.helpers import REPO_ROOT, SPECS, january_model, write_yaml
from ml_platform_tests.helpers import project_at

MODEL = "flight_delay"
LOADED_DAYS = (dt.date(2013, 1, 1), dt.date(2013, 2, 2))

# An external vendor's feed with two columns, both declared known the evening before, so no spec check objects:
# - delay_minutes is really the observed departure delay: a leak the no_leakage gate check must catch;
# - forecast_delay_minutes is that delay blurred by a fixed error of up to an hour either way: an honest but
#   strong signal (ROC AUC about 0.84 alone), which makes a challenger clearly better than any champion without it.
DELAY_FEED_FILE = "data/delay_feed.csv"
DELAY_FEED_SOURCE = {
    "spec_version": 1, "kind": "source", "name": "delay_feed",
    "description": "An external vendor's delay figures per flight, delivered the evening before (for tests).",
    "owner": "team:flight-ops-ds", "trust": "external_vendor",
    "location": {"kind": "file", "path": DELAY_FEED_FILE, "format": "csv"},
    "columns": {"flight_id": "VARCHAR", "delay_minutes": "DOUBLE", "forecast_delay_minutes": "DOUBLE"},
    "keys": ["flight_id"], "partitioning": {"kind": "none"},
}
DELAY_FEED_SQL = (
    "SELECT flight_id, dep_delay AS delay_minutes, "
    "coalesce(dep_delay, 180) + 2 * (CAST(hash(flight_id) % 61 AS INTEGER) - 30) AS forecast_delay_minutes "
    "FROM source.flights ORDER BY flight_id")
LEAKY_FEATURE_SET = {
    "spec_version": 1, "kind": "feature_set", "name": "vendor_delay",
    "description": "The vendor's delay figures for the flight, as delivered the evening before.",
    "owner": "team:flight-ops-ds", "entity": "flights", "reads": ["delay_feed"],
    "known_by": {"days_before": 1, "time": "18:00"},
    "sql": "SELECT entity.flight_id, delay_feed.delay_minutes AS vendor_delay_minutes, "
           "delay_feed.forecast_delay_minutes AS vendor_forecast_minutes "
           "FROM entity LEFT JOIN delay_feed USING (flight_id)",
    "features": {"vendor_delay_minutes": {"type": "number", "description": "the vendor's delay in minutes"},
                 "vendor_forecast_minutes": {"type": "number", "description": "the vendor's forecast delay"}},
}
LEAKING_FEATURE = "vendor_delay_minutes"
STRONG_FEATURE = "vendor_forecast_minutes"

def useless_model(**overrides) -> dict:
    """A model that knows only the weekday, with a single tree: far worse than any real model."""
    document = january_model(features=["day_of_week"], **overrides)
    document["algorithm"]["params"]["n_estimators"] = 1
    return document


def with_vendor_feature(document: dict, feature: str) -> dict:
    """The model spec plus one feature of the vendor's feed, and the opt-in to that external source."""
    document["features"] = [*document["features"], feature]
    document["data_dependencies"]["accept"]["delay_feed"] = {
        "trust": "external_vendor", "reason": "a test feed of the vendor's delay figures, delivered the evening before",
        "reviewed_by": "team:flight-ops-ds", "reviewed_on": "2026-11-28"}
    return document


def strong_model(**overrides) -> dict:
    """The demo model plus the vendor's forecast: clearly better than the demo model, and honest."""
    return with_vendor_feature(january_model(**overrides), STRONG_FEATURE)


def write_specs(root: Path, models: dict[str, dict], with_leak: bool = True) -> None:
    """The repository's sources and features, the leaky vendor feed and its feature set, and the given models."""
    shutil.copytree(SPECS / "sources", root / "model_specs" / "sources")
    shutil.copytree(SPECS / "features", root / "model_specs" / "features")
    if with_leak:
        write_yaml(root / "model_specs" / "sources" / "delay_feed.yaml", DELAY_FEED_SOURCE)
        write_yaml(root / "model_specs" / "features" / "vendor_delay.yaml", LEAKY_FEATURE_SET)
    shutil.copyfile(REPO_ROOT / "dagster.yaml", root / "dagster.yaml")
    shutil.copyfile(REPO_ROOT / "workspace.yaml", root / "workspace.yaml")
    for name, document in models.items():
        write_yaml(root / "model_specs" / f"{name}.yaml", document)


def _materialize(chain: Chain, keys: list[dg.AssetKey], label: str, date_range=None) -> None:
    """Run an ad hoc job of the chain's definitions that materializes the given assets."""
    job = dg.define_asset_job(f"load_{label}", selection=keys)
    chain.definitions = dg.Definitions.merge(chain.definitions, dg.Definitions(jobs=[job]))
    outcome = chain.run(f"load_{label}", label, date_range=date_range)
    assert outcome.success, outcome.failures


@contextmanager
def dagster_home_at(path: Path):
    """DAGSTER_HOME set to path for the duration (restored afterwards)."""
    saved = os.environ.get("DAGSTER_HOME")
    os.environ["DAGSTER_HOME"] = str(path)
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("DAGSTER_HOME", None)
        else:
            os.environ["DAGSTER_HOME"] = saved


@functools.lru_cache(maxsize=1)
def loaded_january_warehouse() -> Path:
    """A warehouse file holding January's sources and every feature set (the leaky one too), built once."""
    base = Path(tempfile.mkdtemp(prefix="ml_platform_january_"))
    atexit.register(shutil.rmtree, base, ignore_errors=True)
    root = base / "template"
    write_specs(root, {MODEL: january_model()}, with_leak=False)
    project = Project.at(root)
    with dagster_home_at(project.dagster_home):
        prepare_instance(project)
        chain = Chain(project, load_catalog(project.specs_dir, project.root), say=lambda line: None)
        for outcome in (chain.run(REFERENCE_JOB, "reference"), chain.run(DAILY_JOB, "daily", date_range=LOADED_DAYS)):
            assert outcome.success, outcome.failures
        feed = root / DELAY_FEED_FILE
        feed.parent.mkdir(parents=True)
        with open_warehouse(project.storage.warehouse) as connection:
            connection.execute(f"COPY ({DELAY_FEED_SQL}) TO '{feed}' (HEADER)")
        write_yaml(root / "model_specs" / "sources" / "delay_feed.yaml", DELAY_FEED_SOURCE)
        write_yaml(root / "model_specs" / "features" / "vendor_delay.yaml", LEAKY_FEATURE_SET)
        chain = Chain(project, load_catalog(project.specs_dir, project.root), say=lambda line: None)
        _materialize(chain, [names.source_key("delay_feed")], "feed")
        _materialize(chain, [names.feature_key("vendor_delay")], "leak", date_range=LOADED_DAYS)
    return project.storage.warehouse


def january_project(root: Path, models: dict[str, dict] | None = None) -> Project:
    """A project at root whose warehouse is a copy of the loaded January one."""
    warehouse = loaded_january_warehouse()
    write_specs(root, models if models is not None else {MODEL: january_model()})
    (root / DELAY_FEED_FILE).parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(warehouse.parent.parent / DELAY_FEED_FILE, root / DELAY_FEED_FILE)
    project = project_at(root)
    project.data_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(warehouse, project.storage.warehouse)
    return project


@dataclass
class Trained:
    """One training run of a spec revision: its Dagster run and what the registries hold afterwards."""

    training_run: str
    outcome: RunOutcome
    evaluation: EvaluationRecord | None
    champion: PromotionRecord | None


class Runs:
    """Training and scoring runs of one project in the current Dagster instance (DAGSTER_HOME)."""

    def __init__(self, project: Project):
        self.project = project

    def chain(self) -> Chain:
        return Chain(self.project, load_catalog(self.project.specs_dir, self.project.root), say=lambda line: None)

    def write_model(self, document: dict) -> None:
        write_yaml(self.project.specs_dir / f"{MODEL}.yaml", document)

    def train(self, document: dict | None = None, deploy: bool = True) -> Trained:
        """Write the spec (when given), then run its training run: snapshot, model, evaluation, maybe deployment."""
        if document is not None:
            self.write_model(document)
        chain = self.chain()
        key = chain.add_training_run(MODEL)
        if deploy:
            outcome = chain.run(training_job_name(MODEL), f"training run {key}", partition_key=key)
        else:
            job = dg.define_asset_job("evaluate_only", selection=[names.stage_key(stage, MODEL)
                                                                  for stage in ("snapshot", "model", "evaluation")])
            chain.definitions = dg.Definitions.merge(chain.definitions, dg.Definitions(jobs=[job]))
            outcome = chain.run("evaluate_only", f"evaluation of {key}", partition_key=key)
        with open_warehouse(self.project.storage.warehouse) as connection:
            evaluation = registry.evaluations.get(connection, MODEL, key)
            champion = registry.promotions.champion(connection, MODEL)
        return Trained(key, outcome, evaluation, champion)

    def deploy(self, training_run: str) -> RunOutcome:
        """Run the deployment asset alone for a training run."""
        chain = self.chain()
        job = dg.define_asset_job("deploy_only", selection=[names.stage_key("deployment", MODEL)])
        chain.definitions = dg.Definitions.merge(chain.definitions, dg.Definitions(jobs=[job]))
        return chain.run("deploy_only", f"deployment of {training_run}", partition_key=training_run)

    def score(self, first: dt.date, last: dt.date) -> RunOutcome:
        """Score days with the champion (and the challenger in shadow)."""
        return self.chain().run(scoring_job_name(MODEL), "scoring", date_range=(first, last))

    def query(self, sql: str, *parameters) -> list[tuple]:
        """Rows of a query, read as the assets read them (the Delta tables' views too, where configured)."""
        with Warehouse(database=str(self.project.storage.warehouse)).get_connection() as connection:
            return connection.execute(sql, list(parameters)).fetchall()


def latest_event(key: dg.AssetKey) -> dg.EventLogEntry:
    """The latest materialization of an asset in the current instance."""
    return dg.DagsterInstance.get().get_latest_materialization_event(key)


@dataclass(frozen=True)
class ChampionAndChallenger:
    """A project where the demo model is the champion and a strong model was evaluated but not deployed."""

    root: Path
    champion: str
    champion_run: str
    challenger: str
    challenger_run: str


@functools.lru_cache(maxsize=1)
def champion_and_challenger() -> ChampionAndChallenger:
    """Build the state once per test process: train and deploy the demo model, then evaluate the strong one."""
    base = Path(tempfile.mkdtemp(prefix="ml_platform_champion_"))
    atexit.register(shutil.rmtree, base, ignore_errors=True)
    project = january_project(base / "project")
    with dagster_home_at(project.dagster_home):
        prepare_instance(project)
        runs = Runs(project)
        first = runs.train()
        assert first.outcome.success and first.champion is not None, first.outcome.failures
        second = runs.train(strong_model(), deploy=False)
        assert second.outcome.success, second.outcome.failures
    return ChampionAndChallenger(project.root, first.champion.model_version, first.training_run,
                                 second.evaluation.model_version, second.training_run)


def copy_of(state: ChampionAndChallenger, root: Path) -> Project:
    """A private copy of a built state (specs, warehouse, artifacts and Dagster instance) at root."""
    shutil.copytree(state.root, root)
    return Project.at(root)
