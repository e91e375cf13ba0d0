"""Escapes of spec SQL are refused at load (`ml-platform validate`, with file and field) and again before the SQL
runs, so that a spec built in code (or a recorded one) cannot read a file the loader would have refused."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pytest

from ml_platform.cli import main
from ml_platform.features.compute import FeatureComputationError, compute_feature_set
from ml_platform.scoring.shadow import outcomes_sql
from ml_platform.sources.loading import stage_source
from ml_platform.specs.errors import SpecErrors
from ml_platform.specs.sql_reach import SpecSqlEscapeError
from ml_platform_tests.specs.helpers import VALID_FEATURE_SET, VALID_MODEL, edit, load, make_specs

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "invalid_specs"
READ_CSV = ("calls table function 'read_csv', which can reach files, URLs, settings or other databases; spec SQL may "
            "call only the table functions generate_series, range, unnest")


def _secret_file(tmp_path: Path) -> Path:
    """A CSV that DuckDB reads without complaint when nothing stops it: the escapes below are real."""
    path = tmp_path / "secret.csv"
    path.write_text("flight_id,value\nx,42\n", encoding="utf-8")
    assert duckdb.connect().execute(f"SELECT value FROM read_csv('{path}')").fetchall() == [(42,)]
    return path


def test_every_escape_fixture_gives_its_exact_message(tmp_path):
    fixtures = sorted(FIXTURES.glob("escape_*.yaml"))
    assert len(fixtures) >= 8
    for path in fixtures:
        field_line, error_line = path.read_text(encoding="utf-8").splitlines()[:2]
        root = make_specs(tmp_path / path.stem, {path.name: path.read_text(encoding="utf-8")})
        with pytest.raises(SpecErrors) as caught:
            load(root)
        [error] = caught.value.errors
        assert (error.field, error.message) == (field_line.removeprefix("# field: "),
                                                error_line.removeprefix("# error: ")), path.name


def test_an_undeclared_source_keeps_its_own_message(spec_errors):
    text = edit(VALID_FEATURE_SET, "FROM entity", "FROM entity JOIN history.planes USING (tailnum)")

    assert spec_errors(text) == [
        "model_specs/test_spec.yaml: feature set 'schedule_extra', field 'sql': reads source 'planes', which is not "
        "listed in 'reads'"]


def test_an_unused_feature_set_keeps_its_own_message(spec_errors):
    text = edit(VALID_FEATURE_SET, "FROM entity", "FROM entity JOIN features.flight_schedule USING (flight_id)")

    assert spec_errors(text) == [
        "model_specs/test_spec.yaml: feature set 'schedule_extra', field 'sql': reads feature set 'flight_schedule', "
        "which is not listed in 'uses'"]


def test_every_escaping_model_expression_is_reported_at_once(spec_errors):
    text = edit(VALID_MODEL, '"dep_time IS NULL OR dep_delay > 15"', '"getenv(\'CI\') IS NOT NULL"')
    text = edit(text, '"-500"', "\"(SELECT -500 FROM read_csv('prices.csv'))\"")

    assert spec_errors(text) == [
        "model_specs/test_spec.yaml: model 'flight_delay', field 'label.expression': calls 'getenv', which reads the "
        "process environment; spec SQL may compute only from the rows of its declared sources",
        f"model_specs/test_spec.yaml: model 'flight_delay', field 'money.outcomes.false_positive': {READ_CSV}",
    ]


def test_validate_refuses_an_escape_naming_file_and_field(tmp_path, capsys):
    secret = _secret_file(tmp_path)
    text = edit(VALID_FEATURE_SET, "hour AS scheduled_hour FROM entity",
                f"s.value AS scheduled_hour FROM entity JOIN read_csv('{secret}') AS s USING (flight_id)")
    root = make_specs(tmp_path / "project", {"test_spec.yaml": text})

    assert main(["--project", str(root), "validate"]) == 1

    assert capsys.readouterr().err.splitlines() == [
        "1 error in the specs:",
        f"  - model_specs/test_spec.yaml: feature set 'schedule_extra', field 'sql': {READ_CSV}",
    ]


def test_a_feature_set_built_in_code_cannot_read_a_file(tmp_path):
    secret = _secret_file(tmp_path)
    catalog = load(make_specs(tmp_path / "project", {}))
    escaping = catalog.feature_sets["flight_schedule"].model_copy(update={"sql": (
        f"SELECT flight_id, s.value AS departure_hour FROM entity JOIN read_csv('{secret}') AS s USING (flight_id)")})
    connection = duckdb.connect(str(tmp_path / "warehouse.duckdb"))

    with pytest.raises(FeatureComputationError) as caught:
        compute_feature_set(connection, catalog, escaping, dt.date(2013, 1, 1), dt.date(2013, 1, 1))

    assert str(caught.value) == f"feature set 'flight_schedule': {READ_CSV}"


def test_a_model_built_in_code_cannot_read_a_file_in_its_label(tmp_path):
    catalog = load(make_specs(tmp_path / "project", {}, repository_model=True))
    model = catalog.models["flight_delay"]
    escaping = model.model_copy(update={"label": model.label.model_copy(update={
        "expression": "dep_delay > (SELECT max(value) FROM read_csv('secret.csv'))"})})

    with pytest.raises(SpecSqlEscapeError) as caught:
        outcomes_sql(catalog, escaping, dt.date(2013, 1, 1), dt.date(2013, 1, 1))

    assert str(caught.value) == f"model 'flight_delay', field 'label.expression': {READ_CSV}"
    assert outcomes_sql(catalog, model, dt.date(2013, 1, 1), dt.date(2013, 1, 1)).startswith("SELECT ")


def test_a_source_built_in_code_cannot_read_a_file_while_loading(tmp_path):
    secret = _secret_file(tmp_path)
    root = make_specs(tmp_path / "project", {})
    flights = load(root).sources["flights"]
    derived = flights.derived_columns["flight_id"].model_copy(
        update={"expression": f"(SELECT max(flight_id) FROM read_csv('{secret}'))"})
    escaping = flights.model_copy(update={"derived_columns": {**flights.derived_columns, "flight_id": derived}})
    connection = duckdb.connect(str(tmp_path / "warehouse.duckdb"))

    with pytest.raises(SpecSqlEscapeError) as caught:
        stage_source(connection, escaping, root, dt.date(2013, 1, 1), dt.date(2013, 1, 1))

    assert str(caught.value) == f"source 'flights', field 'derived_columns.flight_id.expression': {READ_CSV}"
