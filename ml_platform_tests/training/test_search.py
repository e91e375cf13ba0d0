"""The declared hyper-parameter search on January 2013: trials recorded in the card, the chosen model is the one the
evaluation judges, reproduce retrains it byte for byte without searching, the test window is never read, and a time
budget stops the search early."""

from __future__ import annotations

import shutil

import duckdb
import numpy as np
import pytest

from ml_platform.evaluation.search_objective import search_judge
from ml_platform.features.library import load_catalog
from ml_platform.provenance.reproduce import reproduce, reproduction_text
from ml_platform.snapshots.columns import SplitRows
from ml_platform.storage import registry
from ml_platform.storage.warehouse import open_warehouse
from ml_platform.training.fit import categorical_features
from ml_platform.training.algorithms import train
from ml_platform.training.search import SearchError, run_search, with_parameters
from ml_platform_tests.evaluation.january import MODEL, Runs, dagster_home_at, january_project
from ml_platform_tests.helpers import REPO_ROOT, january_model

# drives chains of Dagster runs: the full suite only (`pytest -m "not slow"` leaves it out)
pytestmark = pytest.mark.slow

SEARCH = {"trials": 5, "seed": 11, "parameters": {
    "num_leaves": {"low": 4, "high": 64, "log": True},
    "learning_rate": {"low": 0.02, "high": 0.3, "log": True},
    "min_child_samples": {"choices": [20, 50, 100]}}}


def searched_model(**search) -> dict:
    document = january_model()
    document["algorithm"]["search"] = {**SEARCH, **search}
    return document


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    """A January project after one training run (snapshot, search, model, evaluation) of a searched spec."""
    root = tmp_path_factory.mktemp("searched")
    home = root / "dagster_home"
    home.mkdir()
    shutil.copyfile(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
    with dagster_home_at(home):
        runs = Runs(january_project(root / "project", {MODEL: searched_model()}))
        trained = runs.train(deploy=False)
        assert trained.outcome.success, trained.outcome.failures
        with open_warehouse(runs.project.storage.warehouse) as connection:
            snapshot = registry.snapshots.get(connection, MODEL, trained.training_run)
            model = registry.models.get(connection, MODEL, trained.training_run)
        yield runs.project, snapshot, model, trained.evaluation


def test_every_trial_is_recorded_and_the_best_one_is_the_model_evaluated(searched):
    _, _, model, evaluation = searched
    search = model.card.search
    assert search is not None and len(search.trials) == 5 and not search.stopped_by_time_budget
    assert search.sampler == "TPESampler(seed=11)" and search.objective == "money" and search.direction == "maximize"
    assert [trial.number for trial in search.trials] == [0, 1, 2, 3, 4]
    assert {trial.state for trial in search.trials} == {"COMPLETE"}
    for trial in search.trials:
        assert set(trial.parameters) == {"num_leaves", "learning_rate", "min_child_samples"}
        assert 4 <= trial.parameters["num_leaves"] <= 64 and isinstance(trial.parameters["num_leaves"], int)
        assert 0.02 <= trial.parameters["learning_rate"] <= 0.3
        assert trial.parameters["min_child_samples"] in (20, 50, 100)
        assert trial.value == trial.validation_money and trial.seconds > 0
    baseline = search.trials[0]  # the spec's own params lie in the ranges: the search tries them first
    assert baseline.origin == "params" and search.baseline() == baseline
    assert baseline.parameters == {"num_leaves": 31, "learning_rate": 0.03, "min_child_samples": 100}
    assert all(trial.origin is None for trial in search.trials[1:])
    values = [trial.value for trial in search.trials]
    assert len(set(values)) > 1  # the parameters tried make a difference
    best = search.best()
    assert best.value == max(values) and best.number == values.index(max(values))
    # the card's parameters are the spec's, with the chosen trial's values
    spec = january_model()["algorithm"]["params"]
    assert model.card.parameters == {**model.card.parameters, **best.parameters}
    assert model.card.parameters["n_estimators"] == spec["n_estimators"] == 60
    # the evaluation measures the very model chosen: its validation money is the chosen trial's
    assert evaluation.summary.validation.money == pytest.approx(best.validation_money, abs=1e-6)


def test_the_evaluation_report_shows_every_trial_and_a_plot_of_money_by_trial(searched):
    project, _, model, evaluation = searched
    summary = evaluation.summary
    assert summary.search == model.card.search
    plot = summary.artifacts.plots["search_trials"]
    assert (project.storage.artifacts / plot.path).read_bytes().startswith(b"\x89PNG")
    report = (project.storage.artifacts / summary.artifacts.report_markdown.path).read_text(encoding="utf-8")
    section = report.split("## Hyper-parameter search (validation window only)")[1].split("\n## ")[0]
    assert "5 trials by Optuna" in section and "maximize money on the validation window: ran all 5 trials" in section
    assert f"| {model.card.search.best_trial} **chosen** |" in section
    assert section.count("| complete |") == 5
    assert "![Validation money by search trial](" in section and "search_trials" not in section.split("](")[0]


def test_a_searched_model_reproduces_byte_for_byte_without_searching(searched):
    project, _, model, _ = searched
    result = reproduce(project, model.model_version)
    assert result.identical and result.reproduced_sha256 == model.sha256
    assert result.reproduced_card.search == model.card.search  # the recorded search, not a new one
    assert not result.card_differences
    text = reproduction_text(result)
    assert (f"search      not run again: trained with the parameters the recorded search chose (trial "
            f"{model.card.search.best_trial} of 5, money on the validation window)") in text
    assert "IDENTICAL" in text


def _search_on(project, path, model_document_search=None):
    catalog = load_catalog(project.specs_dir, project.root)
    model = catalog.models[MODEL]
    if model_document_search is not None:
        algorithm = model.algorithm.model_copy(update={"search": model.algorithm.search.model_copy(
            update=model_document_search)})
        model = model.model_copy(update={"algorithm": algorithm})
    with duckdb.connect() as connection:
        rows = {name: SplitRows.read(connection, path, name) for name in ("train", "validation")}
        return run_search(model, list(model.features), categorical_features(catalog, model), rows["train"],
                          rows["validation"], search_judge(model, rows["validation"]))


def test_the_search_never_sees_the_test_window(searched, tmp_path):
    project, snapshot, model, _ = searched
    original = project.storage.artifacts / snapshot.path
    # the same snapshot whose test rows are scrambled: labels flipped, every feature shuffled, money inputs changed
    scrambled = tmp_path / "scrambled.parquet"
    with duckdb.connect() as connection:
        frame = connection.execute(f"SELECT * FROM read_parquet('{original}')").df()
        test = frame["split"] == "test"
        assert test.sum() > 0
        generator = np.random.default_rng(0)
        frame.loc[test, "label"] = ~frame.loc[test, "label"].astype(bool)
        for name in catalog_features(project):
            frame.loc[test, name] = generator.permutation(frame.loc[test, name].to_numpy())
        connection.register("scrambled_rows", frame)
        connection.execute(f"COPY scrambled_rows TO '{scrambled}' (FORMAT parquet)")
    first, second = _search_on(project, original), _search_on(project, scrambled)
    assert [(t.parameters, t.value) for t in first.record.trials] == \
        [(t.parameters, t.value) for t in second.record.trials] == \
        [(t.parameters, t.value) for t in model.card.search.trials]
    # and the judge refuses any rows but the validation window's
    with duckdb.connect() as connection:
        catalog = load_catalog(project.specs_dir, project.root)
        with pytest.raises(SearchError, match="reads the validation window only, not the test rows"):
            search_judge(catalog.models[MODEL], SplitRows.read(connection, original, "test"))


def catalog_features(project) -> list[str]:
    return list(load_catalog(project.specs_dir, project.root).models[MODEL].features)


def test_a_time_budget_stops_the_search_early_and_says_so(searched):
    project, snapshot, _, _ = searched
    outcome = _search_on(project, project.storage.artifacts / snapshot.path,
                         {"trials": 50, "time_budget_seconds": 0.001})
    record = outcome.record
    assert record.stopped_by_time_budget and 1 <= len(record.trials) < 50
    assert record.ending() == f"stopped by its time budget of 0.001 s after {len(record.trials)} of 50 trials"


def _trained_with(project, path, values: dict):
    """The model `train` gives on the snapshot's rows with some searched parameters (THREADS threads)."""
    catalog = load_catalog(project.specs_dir, project.root)
    model = catalog.models[MODEL]
    with duckdb.connect() as connection:
        rows = {name: SplitRows.read(connection, path, name) for name in ("train", "validation")}
        return train(with_parameters(model.algorithm, values), list(model.features),
                     categorical_features(catalog, model), rows["train"], rows["validation"], label=model.label)


def test_parallel_trials_propose_the_same_parameters_for_a_seed_and_parallel_and_keep_the_trained_model(searched):
    project, snapshot, _, _ = searched
    path = project.storage.artifacts / snapshot.path
    first = _search_on(project, path, {"trials": 6, "parallel": 2})
    second = _search_on(project, path, {"trials": 6, "parallel": 2})

    record = first.record
    assert record.parallel == 2 and record.trial_threads == 1  # THREADS (2) shared by 2 trials at a time
    assert record.sampler == "TPESampler(seed=11, constant_liar=True)"
    assert [trial.number for trial in record.trials] == [0, 1, 2, 3, 4, 5]
    assert {trial.state for trial in record.trials} == {"COMPLETE"} and record.trials[0].origin == "params"
    assert [(t.parameters, t.value, t.validation_money) for t in record.trials] == \
        [(t.parameters, t.value, t.validation_money) for t in second.record.trials]
    assert len({tuple(sorted(t.parameters.items())) for t in record.trials}) == 6  # a batch's proposals differ
    # the chosen model is what `train` gives with the chosen parameters (all THREADS), not the 1-thread trial's
    trained = _trained_with(project, path, record.best().parameters)
    assert first.result.predictor.booster.model_to_string() == trained.predictor.booster.model_to_string()
    assert first.result.predictor.booster.model_to_string() == second.result.predictor.booster.model_to_string()


def test_a_time_budget_stops_a_parallel_search_after_its_first_batch(searched):
    project, snapshot, _, _ = searched
    outcome = _search_on(project, project.storage.artifacts / snapshot.path,
                         {"trials": 50, "parallel": 2, "time_budget_seconds": 0.001})
    record = outcome.record
    assert record.stopped_by_time_budget and len(record.trials) == 2 and record.parallel == 2
    assert record.ending() == "stopped by its time budget of 0.001 s after 2 of 50 trials"


def test_a_parallel_search_is_recorded_in_the_card_and_reproduces_byte_for_byte(tmp_path, dagster_home):
    runs = Runs(january_project(tmp_path / "project", {MODEL: searched_model(trials=4, parallel=2)}))
    trained = runs.train(deploy=False)
    assert trained.outcome.success, trained.outcome.failures
    with open_warehouse(runs.project.storage.warehouse) as connection:
        model = registry.models.get(connection, MODEL, trained.training_run)
    assert model.card.search.parallel == 2 and model.card.search.trial_threads == 1
    assert len(model.card.search.trials) == 4

    result = reproduce(runs.project, model.model_version)

    assert result.identical and result.reproduced_sha256 == model.sha256, reproduction_text(result)
    assert result.reproduced_card.search == model.card.search and not result.card_differences
    report = trained.evaluation.summary.artifacts.report_markdown
    text = (runs.project.storage.artifacts / report.path).read_text(encoding="utf-8")
    assert "2 trials at a time (proposed in fixed batches, 1 LightGBM thread(s) each); the chosen parameters" in text
