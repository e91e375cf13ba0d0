"""`ml-platform reproduce`: retrain a version from its recorded snapshot and spec; the artifact must be identical."""

from __future__ import annotations

import json

import pytest

from ml_platform.cli import main
from ml_platform.training.environment import TRAINING_LIBRARIES
from ml_platform.provenance.reproduce import reproduce
from ml_platform.features.library import load_catalog
from ml_platform.storage.warehouse import open_warehouse

from ml_platform_tests.provenance.helpers import fetch, folder_hashes

# drives chains of Dagster runs: the full suite only (`pytest -m "not slow"` leaves it out)
pytestmark = pytest.mark.slow


def test_the_deployed_lightgbm_model_reproduces_byte_for_byte_and_nothing_is_written(history, capsys):
    project = history.project
    before = folder_hashes(project.data_dir)
    assert main(history.run("reproduce", history.second)) == 0
    output = capsys.readouterr().out
    assert folder_hashes(project.data_dir) == before  # neither the warehouse nor the artifact store changed

    row = fetch(project, "models", model_version=history.second)
    snapshot = fetch(project, "snapshots", model="flight_delay", training_run=history.second_run)
    assert output.startswith(f"Reproducing {history.second} (training run {history.second_run} of flight_delay)")
    assert f"snapshot    {snapshot.snapshot_id}: SHA-256 verified, 27,004 rows (train 17,314" in output
    assert f"spec        spec hash {row.spec_hash} as recorded at " in output
    assert "(registry.specs, not today's spec file)" in output
    assert "training    lightgbm, seed 13, through ml_platform.training into a temporary file" in output
    assert f"stored      {row.path}: SHA-256 verified" in output
    assert f"recorded    sha256 {row.sha256}\n  reproduced  sha256 {row.sha256}\n" in output
    assert "IDENTICAL: the reproduced artifact is byte for byte the recorded one." in output
    # the model card records what a later reproduction compares against
    card = row.card
    assert set(card.library_versions) == set(TRAINING_LIBRARIES)
    assert card.code_version.startswith("0.1.0+") and card.python.count(".") == 2
    assert f"platform code {card.code_version}" in output


def test_reproduction_uses_the_spec_recorded_for_the_run_not_todays_file(history):
    catalog = load_catalog(history.project.specs_dir, history.project.root)
    today = catalog.spec_hash(catalog.models["flight_delay"])
    recorded = fetch(history.project, "models", model_version=history.first)
    assert recorded.spec_hash != today  # today's file is revision 2: other features, other money
    result = reproduce(history.project, history.first)
    assert result.identical and result.reproduced_sha256 == recorded.sha256
    assert result.reproduced_card.features == ("distance_miles",)


def test_a_scikit_learn_model_reproduces_byte_for_byte_into_a_file_of_the_users_choice(history, tmp_path, capsys):
    target = tmp_path / "reproduced.model"
    assert main(history.run("reproduce", history.logistic, "--output", str(target))) == 0
    output = capsys.readouterr().out
    row = fetch(history.project, "models", model_version=history.logistic)
    assert "training    logistic_regression, seed 3" in output
    assert f"written to  {target}" in output and "IDENTICAL" in output
    assert target.read_bytes() == (history.project.storage.artifacts / row.path).read_bytes()


def test_a_different_artifact_is_explained_by_what_differs_from_the_recorded_environment(history, tmp_path, capsys):
    # as if the logistic regression had been recorded on another machine, with other libraries and code, and an
    # artifact of different bytes (here: another intact stored artifact)
    project = history.copy(tmp_path)
    other = fetch(project, "models", model_version=history.first)
    card = fetch(project, "models", model_version=history.logistic).card.plain()
    card["library_versions"]["scikit-learn"] = "1.6.1"
    card["code_version"] = "0.1.0+000000000000"
    card["python"] = "3.11.2"
    with open_warehouse(project.storage.warehouse) as connection:
        connection.execute("UPDATE registry.models SET path = ?, sha256 = ?, card = ? WHERE model_version = ?",
                           [other.path, other.sha256, json.dumps(card), history.logistic])
    assert main(["--project", str(project.root), "reproduce", history.logistic]) == 1
    output = capsys.readouterr().out
    assert f"recorded    sha256 {other.sha256}" in output
    assert "DIFFERENT: the reproduced artifact's SHA-256 is not the recorded one." in output
    assert "what differs between the recorded training environment and now:" in output
    lines = {line.split()[0]: line.split() for line in output.splitlines() if "  ->  " in line}
    assert lines["python"][1] == "3.11.2" and lines["code_version"][1] == "0.1.0+000000000000"
    assert lines["scikit-learn"][1:3] == ["1.6.1", "->"] and lines["scikit-learn"][3] != "1.6.1"
    assert "numpy" not in lines and "lightgbm" not in lines  # only what differs is listed


def test_a_modified_snapshot_is_refused(history, tmp_path, capsys):
    project = history.copy(tmp_path)
    snapshot = fetch(project, "snapshots", model="flight_delay_lr", training_run=fetch(
        project, "models", model_version=history.logistic).training_run)
    path = project.storage.artifacts / snapshot.path
    path.write_bytes(path.read_bytes()[:-10] + b"0123456789")
    assert main(["--project", str(project.root), "reproduce", history.logistic]) == 1
    error = capsys.readouterr().err
    assert error.startswith(f"error: artifact {snapshot.path} was modified: its SHA-256 is ")
    assert "refusing to load it" in error


def test_reproduce_names_the_versions_that_exist_for_an_unknown_one(history, capsys):
    typo = history.second[:-1] + ("0" if history.second[-1] != "0" else "1")
    assert main(history.run("reproduce", typo)) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith(f"error: unknown model version '{typo}'; did you mean '{history.second}'? "
                            f"(versions in the registry, newest first: {history.logistic}, ")
    assert history.first in error


def test_reproduce_never_writes_into_the_artifact_store(history, capsys):
    inside = history.project.storage.artifacts / "models" / "copy.model"
    assert main(history.run("reproduce", history.logistic, "--output", str(inside))) == 2
    assert "lies inside the artifact store" in capsys.readouterr().err
    assert not inside.exists()


def test_a_tampered_stored_artifact_is_the_verdict_and_exits_1_even_when_retraining_matches(history, tmp_path, capsys):
    project = history.copy(tmp_path)
    row = fetch(project, "models", model_version=history.logistic)
    stored = project.storage.artifacts / row.path
    stored.write_bytes(stored.read_bytes() + b"\0")  # one byte appended to the stored model file

    assert main(["--project", str(project.root), "reproduce", history.logistic]) == 1
    output = capsys.readouterr().out
    assert f"stored      FAILS its check: artifact {row.path} was modified" in output
    assert f"TAMPERED: the stored artifact of {history.logistic} is not the one recorded" in output
    assert "the retrained artifact matches the recorded SHA-256" in output
    assert "IDENTICAL" not in output
    result = reproduce(project, history.logistic)
    assert result.identical and not result.verified


def test_reproduce_reports_the_retraining_rounds_on_standard_error(history, capsys, monkeypatch):
    monkeypatch.setenv("ML_PLATFORM_PROGRESS_SECONDS", "0")
    assert main(history.run("reproduce", history.second)) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith(f"Reproducing {history.second}")  # the report alone on standard output
    progress = captured.err.splitlines()
    assert progress[0].startswith("  ... training round 1 of 60 (validation binary_logloss ")
    assert progress[-1].startswith("  ... trained lightgbm in ")
