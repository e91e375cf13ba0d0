"""`scoring: {contributions: true}` stores each batch prediction's TreeSHAP contributions beside it: equal to the
ones `explain` recomputes from the stored inputs, adding up to the raw score, read by `explain` instead of
recomputing; off by default the predictions table has no such column, and turning it on keeps the spec hash, so
the live champion stays live and nothing retrains."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from ml_platform import names
from ml_platform.features.library import load_catalog
from ml_platform.provenance.explain import explain, explanation_text
from ml_platform.storage import registry
from ml_platform.storage.artifacts import ArtifactStore
from ml_platform.storage.warehouse import open_warehouse
from ml_platform.training.attributions import TREE_SHAP, lightgbm_attributions
from ml_platform.training.fit import load_model
from ml_platform_tests.evaluation.january import (
    MODEL, Runs, champion_and_challenger, copy_of, january_project, latest_event, strong_model)
from ml_platform_tests.evaluation.test_task_chain import MULTICLASS

# drives chains of Dagster runs: the full suite only (`pytest -m "not slow"` leaves it out)
pytestmark = pytest.mark.slow

JANUARY_31, FEBRUARY_1 = dt.date(2013, 1, 31), dt.date(2013, 2, 1)
STORED = "stored by scoring"
RECOMPUTED = "recomputed from the stored inputs and the model's artifact"


def columns_of(runs: Runs, table: str) -> list[str]:
    return [row[0] for row in runs.query(f"DESCRIBE {table}")]


def check_stored_equal_recomputed(runs: Runs, table: str, day: dt.date, classes: list[str] | None = None) -> int:
    """Every stored row's contributions equal TreeSHAP recomputed from its stored inputs (1e-9) and add up to the
    model's raw score (1e-6); returns the rows checked."""
    artifacts = ArtifactStore(root=str(runs.project.storage.artifacts))
    decision = "decision" if classes else "score"
    with open_warehouse(runs.project.storage.warehouse) as connection:
        rows = connection.execute(f"SELECT model_version, {decision}, inputs, contributions FROM {table} "
                                  f"WHERE partition_date = ?", [day]).df()
        checked = 0
        for version, group in rows.groupby("model_version"):
            predictor = load_model(artifacts, registry.models.by_version(connection, version))
            columns = list(predictor.layout.columns)
            frame = pd.DataFrame({name: [inputs.get(name) for inputs in group["inputs"]] for name in columns})
            for name in columns:
                if name not in predictor.layout.categories:
                    frame[name] = pd.to_numeric(frame[name]).astype("float64")
            stored = group["contributions"].tolist()
            assert all(item is not None for item in stored)
            assert {item["method"] for item in stored} == {TREE_SHAP}
            base = np.array([item["expected_value"] for item in stored])
            values = np.array([[item["features"][name] for name in columns] for item in stored])
            groups = [(None, np.ones(len(group), dtype=bool))] if not classes else \
                [(position, (group[decision] == name).to_numpy()) for position, name in enumerate(classes)]
            for class_index, mask in groups:
                if not mask.any():
                    continue
                expected = lightgbm_attributions(predictor, frame[mask].reset_index(drop=True), class_index)
                assert {item["scale"] for item, keep in zip(stored, mask) if keep} == {expected.scale}
                assert np.abs(values[mask] - expected.contributions).max() < 1e-9
                assert np.abs(base[mask] - expected.base).max() < 1e-9
                assert np.abs(base[mask] + values[mask].sum(axis=1) - expected.output).max() < 1e-6
            if not classes:
                probability = 1 / (1 + np.exp(-(base + values.sum(axis=1))))
                assert np.abs(probability - group["score"].to_numpy()).max() < 1e-9
            checked += len(group)
    return checked


def explained(runs: Runs, flight) -> str:
    with open_warehouse(runs.project.storage.warehouse) as connection:
        return explanation_text(explain(connection, MODEL, str(flight), None,
                                        ArtifactStore(root=str(runs.project.storage.artifacts))))


def test_contributions_are_stored_when_the_spec_asks_and_explain_reads_them(tmp_path, monkeypatch):
    runs = Runs(copy_of(champion_and_challenger(), tmp_path / "project"))
    monkeypatch.setenv("DAGSTER_HOME", str(runs.project.dagster_home))
    production, shadow = names.predictions_table(MODEL), names.shadow_table(MODEL)

    # off by default: the tables have no contributions column
    assert runs.score(JANUARY_31, JANUARY_31).success
    default_columns = {table: columns_of(runs, table) for table in (production, shadow)}
    assert all(names.CONTRIBUTIONS_COLUMN not in columns for columns in default_columns.values())

    # turning it on keeps the spec hash (and so the champion, the challenger and their versions)
    before = load_catalog(runs.project.specs_dir, runs.project.root)
    runs.write_model({**strong_model(), "scoring": {"contributions": True}})
    after = load_catalog(runs.project.specs_dir, runs.project.root)
    assert after.models[MODEL].scoring.contributions
    assert after.spec_hash(after.models[MODEL]) == before.spec_hash(before.models[MODEL])

    assert runs.score(FEBRUARY_1, FEBRUARY_1).success
    for table in (production, shadow):
        assert columns_of(runs, table) == [*default_columns[table], names.CONTRIBUTIONS_COLUMN]
        assert check_stored_equal_recomputed(runs, table, FEBRUARY_1) > 500
        # rows scored while it was off keep NULL
        assert runs.query(f"SELECT count(*) FILTER (WHERE contributions IS NOT NULL), count(*) FROM {table} "
                          f"WHERE partition_date = ?", JANUARY_31)[0][0] == 0

    flight, score = runs.query(f"SELECT flight_id, score FROM {production} WHERE partition_date = ? "
                               f"ORDER BY flight_id LIMIT 1", FEBRUARY_1)[0]
    text = explained(runs, flight)
    assert f"; {TREE_SHAP}; {STORED}):" in text
    assert f"the stored score {score:.4f}" in text
    earlier = runs.query(f"SELECT flight_id FROM {production} WHERE partition_date = ? ORDER BY flight_id LIMIT 1",
                         JANUARY_31)[0][0]
    assert f"; {TREE_SHAP}; {RECOMPUTED}):" in explained(runs, earlier)


def test_a_multiclass_model_stores_the_contributions_of_each_rows_decided_class(tmp_path, dagster_home):
    runs = Runs(january_project(tmp_path / "project", {MODEL: {**MULTICLASS, "scoring": {"contributions": True}}}))
    trained = runs.train()
    assert trained.outcome.success, trained.outcome.failures
    # the multiclass report shows global importance and the top features' dependence plots
    report = latest_event(names.stage_key("evaluation", MODEL)).asset_materialization.metadata["report"].value
    assert "## Feature importance (test)" in report and "summed over the classes" in report
    assert report.count("](data:image/png;base64,") >= 4  # the confusion table and three dependence plots
    assert "![dependence__" in report

    assert runs.score(FEBRUARY_1, FEBRUARY_1).success

    table = names.predictions_table(MODEL)
    decided = {row[0] for row in runs.query(f"SELECT DISTINCT decision FROM {table}")}
    assert len(decided) >= 2  # more than one class is explained
    assert check_stored_equal_recomputed(runs, table, FEBRUARY_1, MULTICLASS["label"]["classes"]) > 500
    flight, decision = runs.query(f"SELECT flight_id, decision FROM {table} ORDER BY flight_id LIMIT 1")[0]
    text = explained(runs, flight)
    assert f"; {TREE_SHAP}; {STORED}):" in text and f"the raw score of class '{decision}'" in text


def test_a_scikit_learn_champion_under_a_spec_that_asks_for_contributions_fails_scoring_clearly(tmp_path,
                                                                                               dagster_home):
    from ml_platform_tests.helpers import january_model

    runs = Runs(january_project(tmp_path / "project", {MODEL: january_model(
        algorithm={"kind": "logistic_regression"})}))
    trained = runs.train()
    assert trained.outcome.success, trained.outcome.failures
    # the spec turns to LightGBM with contributions, but the logistic regression is still live
    runs.write_model(january_model(scoring={"contributions": True}))

    scored = runs.score(FEBRUARY_1, FEBRUARY_1)

    assert not scored.success
    assert ("asks for stored contributions (scoring.contributions: true), but the model that scores it is not a "
            "LightGBM model (artifact format ml_platform.sklearn-joblib.v1)") in str(scored.failures)
