"""Availability times in source specs: one TIMESTAMP expression over the source's columns, per row and per outcome
column; only outcomes have their own; the platform's column names are reserved; none of it changes a model's spec
hash."""

from __future__ import annotations

import dataclasses

from ml_platform.features.library import load_catalog
from ml_platform_tests.helpers import SPECS
from ml_platform_tests.specs.helpers import VALID_SOURCE, edit, load, make_specs

PREFIX = "model_specs/test_spec.yaml: source 'delays_export', field"


def test_a_row_availability_over_the_columns_loads(tmp_path):
    text = edit(VALID_SOURCE, "keys: [flight_id]\n", "keys: [flight_id]\navailable_at: \"TIMESTAMP '2013-01-01'\"\n")
    catalog = load(make_specs(tmp_path, {"test_spec.yaml": text}))
    assert catalog.sources["delays_export"].available_at == "TIMESTAMP '2013-01-01'"


def test_an_availability_that_is_not_a_timestamp(spec_errors):
    text = edit(VALID_SOURCE, "keys: [flight_id]\n", "keys: [flight_id]\navailable_at: minutes\n")
    assert spec_errors(text) == [
        f"{PREFIX} 'available_at': must give a local TIMESTAMP, gives DOUBLE (e.g. CAST(... AS TIMESTAMP) or a date "
        "plus an INTERVAL)"]


def test_an_availability_naming_an_unknown_column(spec_errors):
    text = edit(VALID_SOURCE, "  minutes: DOUBLE\n",
                "  minutes: {type: DOUBLE, known: after_event, available_at: \"departed_at + INTERVAL 1 HOUR\"}\n")
    errors = spec_errors(text)
    assert len(errors) == 1 and errors[0].startswith(
        f"{PREFIX} 'columns.minutes.available_at': unknown column 'departed_at'"), errors


def test_only_outcome_columns_have_their_own_availability(spec_errors):
    text = edit(VALID_SOURCE, "  minutes: DOUBLE\n",
                "  minutes: {type: DOUBLE, available_at: \"TIMESTAMP '2013-01-01'\"}\n")
    errors = spec_errors(text)
    assert len(errors) == 1 and "available_at is only for columns with known: after_event" in errors[0], errors
    assert "'columns.minutes'" in errors[0]


def test_the_platform_column_names_are_reserved(spec_errors):
    text = edit(VALID_SOURCE, "  minutes: DOUBLE\n", "  minutes: DOUBLE\n  available_at: TIMESTAMP\n")
    errors = spec_errors(text)
    assert len(errors) == 1 and "column name(s) available_at are the platform's" in errors[0], errors


def test_availability_changes_no_model_spec_hash_but_every_feature_version(tmp_path):
    catalog = load_catalog(SPECS, SPECS.parent)
    flights = catalog.sources["flights"]
    assert flights.available_at == "scheduled_departure - INTERVAL 30 DAY"
    assert "available_at" not in flights.without_availability()
    assert all("available_at" not in column for column in flights.without_availability()["columns"].values())
    model = catalog.models["flight_delay"]
    moved = flights.model_copy(update={"available_at": "scheduled_departure - INTERVAL 1 DAY"})
    changed = dataclasses.replace(catalog, sources={**catalog.sources, "flights": moved})
    assert changed.spec_hash(model) == catalog.spec_hash(model)
    schedule = catalog.feature_sets["flight_schedule"]
    assert changed.feature_set_hash(schedule) != catalog.feature_set_hash(schedule)
