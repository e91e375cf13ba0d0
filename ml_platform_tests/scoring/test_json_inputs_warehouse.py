"""A warehouse whose predictions tables hold the inputs as JSON text (as the platform stored them before the STRUCT):
scoring appends JSON text to them and changes no stored row; explain and monitoring read them as they read a new
warehouse's STRUCT; and each stored score is the model's on the inputs stored beside it."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from ml_platform.cli import main
from ml_platform.storage import registry
from ml_platform.storage.artifacts import ArtifactStore
from ml_platform.storage.warehouse import open_warehouse
from ml_platform.training.fit import load_model
from ml_platform_tests.evaluation.january import MODEL, Runs, champion_and_challenger, copy_of
from ml_platform_tests.monitoring.helpers import monitor

JANUARY_31, FEBRUARY_1 = dt.date(2013, 1, 31), dt.date(2013, 2, 1)
TABLES = (f"predictions.{MODEL}", f"predictions.{MODEL}__shadow")
PROVENANCE = "flight_id, partition_date, score, flagged, threshold, model_version, spec_hash, snapshot_id, " \
             "training_run, code_version, promotion_id"


def in_home(runs: Runs, monkeypatch) -> Runs:
    monkeypatch.setenv("DAGSTER_HOME", str(runs.project.dagster_home))
    return runs


def inputs_types(runs: Runs) -> set[str]:
    with open_warehouse(runs.project.storage.warehouse) as connection:
        return {str(connection.sql(f"SELECT inputs FROM {name}").types[0]).split("(")[0] for name in TABLES}


def stored_rows(runs: Runs, target: str, day: dt.date) -> pd.DataFrame:
    """A day's rows of a table: provenance, and the inputs as JSON text whichever form they are stored in."""
    with open_warehouse(runs.project.storage.warehouse) as connection:
        kind = connection.sql(f"SELECT inputs FROM {target}").types[0]
        text = "inputs" if kind.id == "varchar" else "CAST(to_json(inputs) AS VARCHAR)"
        return connection.execute(f"SELECT {PROVENANCE}, {text} AS inputs FROM {target} WHERE partition_date = ? "
                                  f"ORDER BY flight_id", [day]).df()


def explained(runs: Runs, flight: str, capsys) -> list[str]:
    """The lines of `ml-platform explain` after the scoring times (which differ between two projects)."""
    assert main(["--project", str(runs.project.root), "explain", MODEL, flight]) == 0
    lines = capsys.readouterr().out.splitlines()
    return [line for line in lines if not line.startswith(("  scored at", "  code version"))]


def test_a_warehouse_of_json_inputs_is_scored_explained_and_monitored_like_a_new_one(tmp_path, monkeypatch,
                                                                                        capsys):
    state = champion_and_challenger()
    new, old = Runs(copy_of(state, tmp_path / "new")), Runs(copy_of(state, tmp_path / "old"))
    for runs in (new, old):
        assert in_home(runs, monkeypatch).score(JANUARY_31, JANUARY_31).success
    assert inputs_types(new) == inputs_types(old) == {"STRUCT"}
    # the old warehouse: both tables as the platform stored them before, CAST(to_json(struct_pack(...)) AS VARCHAR)
    with open_warehouse(old.project.storage.warehouse) as connection:
        for name in TABLES:
            connection.execute(f"ALTER TABLE {name} ALTER inputs TYPE VARCHAR USING CAST(to_json(inputs) AS VARCHAR)")
    before = {name: stored_rows(old, name, JANUARY_31) for name in TABLES}

    for runs in (new, old):
        assert in_home(runs, monkeypatch).score(FEBRUARY_1, FEBRUARY_1).success
    assert inputs_types(old) == {"VARCHAR"} and inputs_types(new) == {"STRUCT"}
    for name in TABLES:
        pd.testing.assert_frame_equal(stored_rows(old, name, JANUARY_31), before[name])  # nothing stored changed
        for day in (JANUARY_31, FEBRUARY_1):  # the same rows, provenance and inputs in both warehouses
            pd.testing.assert_frame_equal(stored_rows(old, name, day), stored_rows(new, name, day))

    flight = stored_rows(new, TABLES[0], FEBRUARY_1)["flight_id"].iloc[0]
    lines = explained(in_home(new, monkeypatch), flight, capsys)
    assert any(line.startswith("Feature values the model saw (") for line in lines)
    assert explained(in_home(old, monkeypatch), flight, capsys) == lines

    drift = {}
    for runs in (new, old):
        assert monitor(in_home(runs, monkeypatch), ["monitoring"], JANUARY_31, FEBRUARY_1).success
        drift[runs] = runs.query(f"SELECT day, feature, psi, rows, model_version FROM monitoring.{MODEL}__drift "
                                 f"ORDER BY ALL")
    assert len(drift[new]) > 2 and drift[old] == drift[new]


def test_each_stored_score_is_the_models_on_the_inputs_stored_beside_it(tmp_path, monkeypatch):
    runs = in_home(Runs(copy_of(champion_and_challenger(), tmp_path / "project")), monkeypatch)
    assert runs.score(JANUARY_31, FEBRUARY_1).success
    artifacts = ArtifactStore(root=str(runs.project.storage.artifacts))
    with open_warehouse(runs.project.storage.warehouse) as connection:
        for name in TABLES:  # the champion's rows, and the challenger's in shadow (one feature more)
            stored = connection.execute(f"SELECT model_version, score, inputs.* FROM {name}").df()
            for version, rows in stored.groupby("model_version"):
                predictor = load_model(artifacts, registry.models.by_version(connection, version))
                assert len(rows) > 1000
                assert (predictor.predict(rows.drop(columns=["model_version", "score"])) == rows["score"]).all()
