"""`ml-platform diff`: two specs, each a spec file or a model version, with the feature sets and sources they read."""

from __future__ import annotations

import shutil

import pytest

from ml_platform.cli import main

from ml_platform_tests.helpers import january_model, load_yaml, write_yaml
from ml_platform_tests.provenance.helpers import fetch

# drives chains of Dagster runs: the full suite only (`pytest -m "not slow"` leaves it out)
pytestmark = pytest.mark.slow


def test_diff_of_two_spec_files_shows_what_changed_in_the_model(history, capsys):
    first, second = history.spec_files / "revision_1.yaml", history.spec_files / "revision_2.yaml"
    assert main(history.run("diff", str(first), str(second))) == 1
    output = capsys.readouterr().out
    first_hash = fetch(history.project, "models", model_version=history.first).spec_hash
    second_hash = fetch(history.project, "models", model_version=history.second).spec_hash
    # a file outside any specs folder is read with the project's feature library: it defines the recorded hash
    assert output.startswith(f"--- A: {first} (spec hash {first_hash})\n+++ B: {second} (spec hash {second_hash})\n"
                             f"  model flight_delay: changed\n  unchanged: 1 feature set, 1 source\n\n"
                             f"--- A: model flight_delay\n+++ B: model flight_delay\n@@ ")
    for line in ("-- distance_miles", "+- departure_hour", "+- origin_airport",
                 "-    true_positive: 0.30 * 75 * coalesce(dep_delay, 180) - 5000",
                 "+    true_positive: 0.30 * 75 * coalesce(dep_delay, 180) - 500",
                 "-    false_positive: '-5000'", "+    false_positive: '-500'", " money:"):
        assert line in output.splitlines(), line


def test_diff_of_two_model_versions_includes_the_feature_sets_and_sources_they_read(history, capsys):
    failed = fetch(history.project, "snapshots", model="flight_delay", training_run=history.failed_run)
    assert main(history.run("diff", history.second, history.failed_run)) == 1  # a version, and a run's key
    output = capsys.readouterr().out
    lines = output.splitlines()
    assert lines[0].startswith(f"--- A: {history.second} (training run {history.second_run}, spec hash ")
    assert lines[1] == f"+++ B: training run {history.failed_run} of flight_delay (spec hash {failed.spec_hash})"
    assert lines[2:10] == [
        "  model flight_delay: changed",
        "  feature set aircraft_and_destination: only in B",
        "  feature set disruption_history: only in B",
        "  feature set origin_weather_eve: only in B",
        "  source airports: only in B",
        "  source planes: only in B",
        "  source weather: only in B",
        "  unchanged: 1 feature set, 1 source",
    ]
    for line in ("-    n_estimators: 60", "+    n_estimators: 59", "-  min_roc_auc: 0.5", "+  min_roc_auc: 0.99",
                 "+- eve_day_precip_in", "--- A: feature set origin_weather_eve",
                 "+++ B: feature set origin_weather_eve", "+kind: feature_set", "+sql: |"):
        assert line in lines, line


def test_diff_of_a_changed_feature_set_in_another_specs_folder_against_a_model_version(history, tmp_path, capsys):
    specs = tmp_path / "checkout" / "model_specs"
    shutil.copytree(history.project.specs_dir, specs)
    shutil.copyfile(history.spec_files / "revision_3.yaml", specs / "flight_delay.yaml")
    feature_file = specs / "features" / "disruption_history.yaml"
    document = load_yaml(feature_file)
    document["description"] = "Recent disruption rates per carrier, route and origin."
    write_yaml(feature_file, document)
    failed = fetch(history.project, "evaluations", model="flight_delay", training_run=history.failed_run)

    assert main(history.run("diff", failed.model_version, str(specs / "flight_delay.yaml"))) == 1
    output = capsys.readouterr().out
    assert "  feature set disruption_history: changed\n  unchanged: 1 model, 3 feature sets, 4 sources\n" in output
    assert "--- A: feature set disruption_history\n+++ B: feature set disruption_history\n" in output
    assert "+description: Recent disruption rates per carrier, route and origin.\n" in output


def test_diff_of_todays_spec_file_and_the_champion_it_trained_finds_nothing(history, capsys):
    abbreviated = history.second[:-6]  # like a short git hash: the model's name and the start of the version's hash
    assert main(history.run("diff", str(history.project.specs_dir / "flight_delay.yaml"), abbreviated)) == 0
    output = capsys.readouterr().out
    spec_hash = fetch(history.project, "models", model_version=history.second).spec_hash
    assert f"\n+++ B: {history.second} (training run {history.second_run}, spec hash {spec_hash})\n" in output
    assert output.endswith(f"no differences: both define spec hash {spec_hash} (the model, its 1 feature set "
                           f"and 1 source)\n")


def test_diff_names_what_was_given_when_it_is_neither_a_file_nor_a_version(history, capsys):
    assert main(history.run("diff", "last_tuesday", history.second)) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("error: 'last_tuesday' is neither a spec file, a model version nor a training run in "
                            "the registry (versions, newest first: ")
    assert history.first in error and history.second in error
    assert main(history.run("diff", "missing.yaml", history.second)) == 2
    assert capsys.readouterr().err.startswith("error: no spec file missing.yaml (from ")
    feature_set = history.project.specs_dir / "features" / "flight_schedule.yaml"
    assert main(history.run("diff", str(feature_set), history.second)) == 2
    assert capsys.readouterr().err.strip() == (
        f"error: {feature_set} declares the feature set 'flight_schedule': diff compares models "
        f"(give a model spec file or a model version)")


def test_diff_of_an_invalid_spec_file_names_the_file_and_its_errors(history, tmp_path, capsys):
    candidate = write_yaml(tmp_path / "candidate.yaml", january_model(features=["departure_hourr"]))
    assert main(history.run("diff", str(candidate), history.second)) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"error: {candidate} cannot be read with the sources and feature sets of "
                            f"{history.project.specs_dir}:\n")
    assert f"  - {candidate}: model 'flight_delay', field 'features[0]': unknown feature 'departure_hourr'" in error
