"""One shared project with a history, built once for the provenance tests (each chain of runs costs seconds).

History of the January project, in one real Dagster instance and one real DuckDB warehouse:
1. flight_delay, revision 1 (schedule features only): trained, deployed (promotion #1), scores Feb 1 and Feb 2.
2. flight_delay, revision 2 (every feature): trained, beats the champion, deployed (promotion #2), scores Feb 2.
3. flight_delay, revision 3 (an impossible ROC AUC floor): trained and evaluated, the gate fails.
4. flight_delay_lr, a logistic regression: trained and deployed (its own promotion), never scores.
Tests only read this history, or work on a copy of it.
"""

from __future__ import annotations

import datetime as dt
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from ml_platform.names import scoring_job_name, training_job_name
from ml_platform.chain.model_chain import run_chain
from ml_platform.chain.runner import Chain
from ml_platform.project import Project
from ml_platform.records.registry import PromotionRecord
from ml_platform.features.library import load_catalog
from ml_platform.storage import registry
from ml_platform.storage.warehouse import open_warehouse

from ml_platform_tests.helpers import REPO_ROOT, SPECS, january_model, write_yaml
from ml_platform_tests.helpers import project_at
from ml_platform_tests.provenance.helpers import SCHEDULE_FEATURES, WEAK_FEATURES

FEBRUARY_1, FEBRUARY_2 = dt.date(2013, 2, 1), dt.date(2013, 2, 2)
LOGISTIC = {"kind": "logistic_regression", "seed": 3, "params": {"C": 0.5}}


@dataclass(frozen=True)
class History:
    """The shared project and what its history produced."""

    project: Project
    first: str  # model version of revision 1, promotion #1
    second: str  # model version of revision 2, the live champion
    second_run: str
    failed_run: str  # revision 3's training run, whose gate failed
    logistic: str  # model version of flight_delay_lr
    spec_files: Path  # revision_<n>.yaml: the spec files of the three revisions, outside the project
    dagster_home: Path

    def run(self, *arguments: str) -> list[str]:
        """The command line of an `ml-platform` command on this project."""
        return ["--project", str(self.project.root), *arguments]

    def copy(self, folder: Path) -> Project:
        """A copy of the project (specs, warehouse, artifacts) in folder, for a test that changes it."""
        shutil.copytree(self.project.root, folder / "project")
        return Project.at(folder / "project")


def new_project(root: Path, models: dict[str, dict]) -> Project:
    """A project folder like the shared test fixture makes, with the given model specs."""
    shutil.copytree(SPECS / "sources", root / "model_specs" / "sources")
    shutil.copytree(SPECS / "features", root / "model_specs" / "features")
    shutil.copyfile(REPO_ROOT / "dagster.yaml", root / "dagster.yaml")
    shutil.copyfile(REPO_ROOT / "workspace.yaml", root / "workspace.yaml")
    for name, document in models.items():
        write_yaml(root / "model_specs" / f"{name}.yaml", document)
    return project_at(root)


def cautious(document: dict) -> dict:
    """The spec with mitigations costed at $5,000: its model flags almost nothing, so any useful model beats it."""
    outcomes = document["money"]["outcomes"]
    outcomes["true_positive"] = "0.30 * 75 * coalesce(dep_delay, 180) - 5000"
    outcomes["false_positive"] = "-5000"
    return document


def train_revision(project: Project, model: str, document: dict) -> tuple[str, bool]:
    """Write a model's spec, run its training job; return the run's key and whether the run succeeded."""
    write_yaml(project.specs_dir / f"{model}.yaml", document)
    chain = Chain(project, load_catalog(project.specs_dir, project.root), say=lambda line: None)
    key = chain.add_training_run(model)
    return key, chain.run(training_job_name(model), f"training run {key}", partition_key=key).success


def score(project: Project, model: str, first: dt.date, last: dt.date) -> None:
    """Score days with the model's champion."""
    chain = Chain(project, load_catalog(project.specs_dir, project.root), say=lambda line: None)
    outcome = chain.run(scoring_job_name(model), "score", date_range=(first, last))
    assert outcome.success, outcome.failures


def champion(project: Project, model: str) -> PromotionRecord | None:
    """The model's live champion."""
    with open_warehouse(project.storage.warehouse) as connection:
        return registry.promotions.champion(connection, model)


@pytest.fixture(scope="package")
def history(tmp_path_factory: pytest.TempPathFactory) -> History:
    """The shared project, built once for the whole folder."""
    base = tmp_path_factory.mktemp("provenance")
    home = base / "dagster_home"
    home.mkdir()
    shutil.copyfile(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
    first_spec = cautious(january_model(features=WEAK_FEATURES))
    second_spec = january_model(features=SCHEDULE_FEATURES)
    with pytest.MonkeyPatch.context() as environment:
        environment.setenv("DAGSTER_HOME", str(home))
        project = new_project(base / "project", {"flight_delay": first_spec})
        first = run_chain(project, "flight_delay", score_days=2, say=lambda line: None)
        assert first.champion is not None, first.evaluation and first.evaluation.gate

        second_run, deployed = train_revision(project, "flight_delay", second_spec)
        second = champion(project, "flight_delay")
        assert deployed and second.training_run == second_run, second
        score(project, "flight_delay", FEBRUARY_2, FEBRUARY_2)

        third_spec = january_model(gate={"min_money": -1_000_000_000, "min_roc_auc": 0.99})
        third_spec["algorithm"]["params"]["n_estimators"] = 59
        failed_run, passed = train_revision(project, "flight_delay", third_spec)
        assert not passed
        write_yaml(project.specs_dir / "flight_delay.yaml", second_spec)  # today's spec: the champion's

        logistic_spec = january_model(name="flight_delay_lr", algorithm=LOGISTIC)
        _, deployed = train_revision(project, "flight_delay_lr", logistic_spec)
        assert deployed
        logistic = champion(project, "flight_delay_lr").model_version

    spec_files = base / "spec_files"
    for number, document in enumerate((first_spec, second_spec, third_spec), start=1):
        write_yaml(spec_files / f"revision_{number}.yaml", document)
    return History(project, first.champion.model_version, second.model_version, second_run, failed_run,
                   logistic, spec_files, home)
