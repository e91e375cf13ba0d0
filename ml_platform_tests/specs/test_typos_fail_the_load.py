"""The issue's "done when": a typo in a spec gives one clear error naming file and field, the load fails, a valid
spec next to a broken one does not hide it, and Dagster refuses the definitions with the same message."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ml_platform.specs.errors import SpecErrors
from ml_platform_tests.helpers import REPO_ROOT, SPECS
from ml_platform_tests.specs.helpers import VALID_FEATURE_SET, edit, errors_of, load, make_specs

REPOSITORY_MODEL = (SPECS / "flight_delay.yaml").read_text(encoding="utf-8")
LABEL = 'label:\n  task: binary_classification\n  expression: "dep_time IS NULL OR dep_delay > 15"\n'

TYPOS = {
    "unknown feature": (("  - eve_temp_f\n", "  - eve_tmp_f\n"), "features[9]",
                        "unknown feature 'eve_tmp_f'; did you mean 'eve_temp_f'?"),
    "unknown algorithm": (
        ("kind: lightgbm", "kind: lightgmb"), "algorithm.kind", "given 'lightgmb'; did you mean 'lightgbm'?"),
    "missing label": ((LABEL, ""), "label", "missing required field"),
}


@pytest.mark.parametrize("typo", TYPOS)
def test_a_typo_in_the_repository_model_gives_one_error_naming_file_and_field(typo, tmp_path):
    (old, new), field, message = TYPOS[typo]
    root = make_specs(tmp_path, {"flight_delay.yaml": edit(REPOSITORY_MODEL, old, new)})

    with pytest.raises(SpecErrors) as caught:
        load(root)

    [error] = caught.value.errors
    assert (error.file, error.kind, error.name, error.field) == ("model_specs/flight_delay.yaml", "model",
                                                                "flight_delay", field)
    assert str(error).startswith(f"model_specs/flight_delay.yaml: model 'flight_delay', field '{field}': {message}")
    assert str(caught.value).startswith("1 error in the specs:\n  - model_specs/flight_delay.yaml: ")


def test_a_valid_model_next_to_a_broken_one_does_not_hide_its_errors(tmp_path):
    # The currency typo stops the document from parsing; its feature typo is still found in the same run.
    broken = edit(edit(edit(REPOSITORY_MODEL, "name: flight_delay", "name: flight_delay_v2"),
                       "  - eve_temp_f\n", "  - eve_tmp_f\n"), "currency: USD", "currency: EURO")
    root = make_specs(tmp_path, {"flight_delay_v2.yaml": broken}, repository_model=True)

    with pytest.raises(SpecErrors) as caught:
        load(root)

    assert [(error.file, error.field) for error in caught.value.errors] == [
        ("model_specs/flight_delay_v2.yaml", "features[9]"), ("model_specs/flight_delay_v2.yaml", "money.currency")]


def test_two_broken_models_are_both_reported(tmp_path):
    first = edit(REPOSITORY_MODEL, "  - eve_temp_f\n", "  - eve_tmp_f\n")
    second = edit(edit(REPOSITORY_MODEL, "name: flight_delay", "name: flight_delay_v2"),
                  "kind: lightgbm", "kind: xgboost")

    errors = errors_of(make_specs(tmp_path, {"flight_delay.yaml": first, "flight_delay_v2.yaml": second}))

    assert [error.split(": ", 2)[:2] for error in errors] == [
        ["model_specs/flight_delay.yaml", "model 'flight_delay', field 'features[9]'"],
        ["model_specs/flight_delay_v2.yaml", "model 'flight_delay_v2', field 'algorithm.kind'"],
    ]


def test_a_broken_feature_set_does_not_flood_its_models_with_unknown_features(tmp_path):
    schedule = (SPECS / "features" / "flight_schedule.yaml").read_text(encoding="utf-8")
    root = make_specs(tmp_path, {"flight_delay.yaml": REPOSITORY_MODEL,
                                 "features/flight_schedule.yaml": edit(schedule, "time: \"00:00\"", "time: \"24:00\"")})

    assert errors_of(root) == [
        "model_specs/features/flight_schedule.yaml: feature set 'flight_schedule', field 'known_by.time': "
        "must be a time of day as HH:MM, from 00:00 to 23:59 (given '24:00')"
    ]


def test_a_typo_next_to_a_broken_feature_set_is_still_reported(tmp_path):
    schedule = (SPECS / "features" / "flight_schedule.yaml").read_text(encoding="utf-8")
    model = edit(REPOSITORY_MODEL, "  - eve_temp_f\n", "  - eve_tmp_f\n")
    feature_set = edit(schedule, "entity: flights", "entity: [flights]")
    root = make_specs(tmp_path, {"flight_delay.yaml": model, "features/flight_schedule.yaml": feature_set})

    errors = errors_of(root)

    assert errors[0] == ("model_specs/features/flight_schedule.yaml: feature set 'flight_schedule', field 'entity': "
                         "Input should be a valid string (given ['flights'])")
    assert errors[1].startswith("model_specs/flight_delay.yaml: model 'flight_delay', field 'features[9]': "
                                "unknown feature 'eve_tmp_f'; did you mean 'eve_temp_f'? (allowed: ")
    assert errors[1].endswith(") (a spec file failed to load: see its errors)")
    assert len(errors) == 2


def test_a_valid_feature_set_next_to_the_repository_model_loads(tmp_path):
    catalog = load(make_specs(tmp_path, {"features/extra.yaml": VALID_FEATURE_SET}, repository_model=True))

    assert sorted(catalog.feature_sets) == ["aircraft_and_destination", "disruption_history", "flight_schedule",
                                            "origin_weather_eve", "schedule_extra"]


# ------------------------------------------------------------------------------------------------------------ Dagster


def _bad_project(tmp_path: Path) -> tuple[Path, str]:
    """A project whose one model has a typo, and the text of the error it gives."""
    root = make_specs(tmp_path / "project", {"flight_delay.yaml": edit(REPOSITORY_MODEL, "  - eve_temp_f\n",
                                                                       "  - eve_tmp_f\n")})
    shutil.copyfile(REPO_ROOT / "dagster.yaml", root / "dagster.yaml")
    with pytest.raises(SpecErrors) as caught:
        load(root)
    [error] = caught.value.errors
    return root, str(error)


def test_building_the_dagster_definitions_fails_with_the_spec_error(tmp_path, monkeypatch):
    from ml_platform.definitions import defs

    root, error = _bad_project(tmp_path)
    monkeypatch.setenv("ML_PLATFORM_PROJECT", str(root))

    with pytest.raises(SpecErrors) as caught:
        defs()

    assert f"  - {error}" in str(caught.value).splitlines()


def test_dagster_definitions_validate_fails_and_prints_the_error_line(tmp_path):
    root, error = _bad_project(tmp_path)
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copyfile(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
    environment = {**os.environ, "ML_PLATFORM_PROJECT": str(root), "DAGSTER_HOME": str(home)}
    dagster = Path(sys.executable).parent / "dagster"

    result = subprocess.run([str(dagster), "definitions", "validate", "-m", "ml_platform.definitions"], cwd=root,
                            env=environment, capture_output=True, text=True, timeout=120)

    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert f"  - {error}" in output.splitlines()
    assert "1 error in the specs:" in output
