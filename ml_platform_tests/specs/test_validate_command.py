"""`ml-platform validate` and the committed JSON schema."""

from __future__ import annotations

import json

from ml_platform.cli import main
from ml_platform.specs.schema import spec_json_schema
from ml_platform_tests.helpers import REPO_ROOT, SPECS
from ml_platform_tests.specs.helpers import VALID_MODEL, edit, make_specs


def test_validate_passes_on_the_repository_specs(capsys):
    assert main(["--project", str(REPO_ROOT), "validate"]) == 0

    output = capsys.readouterr()
    lines = output.out.splitlines()
    assert lines[0] == "4 sources, 2 entities, 6 feature sets, 6 models: all valid"
    assert "  flight_delay_search: spec hash " in output.out  # the example of a declared search
    assert any(line.startswith("  flight_delay: spec hash ") and line.endswith(" lightgbm") for line in lines[1:])
    assert output.err == ""


def test_validate_prints_every_error_at_once_and_fails(tmp_path, capsys):
    bad_model = edit(edit(VALID_MODEL, "  - origin_airport\n", "  - orign_airport\n"),
                     "kind: lightgbm", "kind: lightgbn")
    documents = {
        "flight_delay.yaml": edit(bad_model, "name: flight_delay", "name: delay_model"),
        "other.yaml": edit(VALID_MODEL, "currency: USD", "currency: USDD"),
        "broken.yaml": "kind: model\nname: [\n",
    }
    root = make_specs(tmp_path, documents)

    assert main(["--project", str(root), "validate"]) == 1

    output = capsys.readouterr()
    assert output.out == ""
    lines = output.err.splitlines()
    assert lines[0] == "4 errors in the specs:"
    assert [line.split(": ", 2)[:2] for line in lines[1:]] == [
        ["  - model_specs/broken.yaml", "YAML syntax error at line 3, column 1"],
        ["  - model_specs/flight_delay.yaml", "model 'delay_model', field 'algorithm.kind'"],
        ["  - model_specs/flight_delay.yaml", "model 'delay_model', field 'features[2]'"],
        ["  - model_specs/other.yaml", "model 'flight_delay', field 'money.currency'"],
    ]
    assert "Traceback" not in output.err


def test_validate_with_a_separate_specs_folder(tmp_path, capsys):
    root = make_specs(tmp_path, {"m.yaml": VALID_MODEL})

    assert main(["--project", str(tmp_path / "elsewhere"), "validate", "--specs", str(root / "model_specs")]) == 0
    assert capsys.readouterr().out.startswith("4 sources, 4 feature sets, 1 models: all valid\n")


def test_validate_names_a_missing_specs_folder(tmp_path, capsys):
    assert main(["--project", str(tmp_path), "validate"]) == 1

    assert capsys.readouterr().err == (
        f"1 error in the specs:\n  - {tmp_path.resolve() / 'model_specs'}: the specs folder does not exist\n")


def test_committed_json_schema_is_up_to_date():
    expected = json.dumps(spec_json_schema(), indent=2, sort_keys=True) + "\n"

    assert (SPECS / "ml_platform.schema.json").read_text(encoding="utf-8") == expected, (
        "model_specs/ml_platform.schema.json is stale: run "
        "`ml-platform schema --output model_specs/ml_platform.schema.json`")


def test_schema_command_writes_the_same_schema(tmp_path, capsys):
    output = tmp_path / "schema.json"

    assert main(["schema", "--output", str(output)]) == 0
    assert output.read_text(encoding="utf-8") == json.dumps(spec_json_schema(), indent=2, sort_keys=True) + "\n"
    assert capsys.readouterr().out == f"wrote {output}\n"
