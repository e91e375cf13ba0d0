"""Errors found in one document on its own: YAML, kind, unknown and missing fields, values out of their sets.

Each test writes one document inline next to the repository's sources and features and pins the exact text the
user sees.
"""

from __future__ import annotations

from ml_platform.specs.models import CURRENCIES
from ml_platform_tests.specs.helpers import VALID_FEATURE_SET, VALID_MODEL, VALID_SOURCE, edit, load, make_specs

MODEL_FIELDS = ("spec_version, name, description, owner, kind, entity, label, filter, features, split, algorithm, "
                "money, gate, cadence, slices, slice_column, data_dependencies, scoring")
LIGHTGBM_PARAMS = ("n_estimators, learning_rate, num_leaves, max_depth, min_child_samples, feature_fraction, "
                   "bagging_fraction, bagging_freq, reg_lambda, early_stopping_rounds")
ALGORITHMS = "lightgbm, logistic_regression, random_forest, hist_gradient_boosting"
LABEL = 'label:\n  task: binary_classification\n  expression: "dep_time IS NULL OR dep_delay > 15"'
IDENTIFIER_RULE = "lower-case snake_case: a letter, then up to 62 lower-case letters, digits or _"


def test_the_valid_documents_load(tmp_path):
    catalog = load(make_specs(tmp_path, {"m.yaml": VALID_MODEL, "f.yaml": VALID_FEATURE_SET, "s.yaml": VALID_SOURCE}))

    assert catalog.models["flight_delay"].features == ["departure_hour", "carrier_code", "origin_airport", "eve_temp_f"]
    assert "schedule_extra" in catalog.feature_sets and "delays_export" in catalog.sources


# ------------------------------------------------------------------------------------------------ the file itself


def test_yaml_syntax_error_gives_line_and_column(spec_errors):
    text = """\
        kind: model
        name: flight_delay
        features: [departure_hour, carrier_code
        """

    assert spec_errors(text) == [
        "model_specs/test_spec.yaml: YAML syntax error at line 4, column 1: did not find expected ',' or ']' "
        "(while parsing a flow sequence started at line 3, column 11)"
    ]


def test_yaml_unterminated_quote_points_at_where_it_started(spec_errors):
    text = """\
        kind: model
        name: 'flight_delay
        entity: flights
        """

    assert spec_errors(text) == [
        "model_specs/test_spec.yaml: YAML syntax error at line 4, column 1: found unexpected end of stream "
        "(while scanning a quoted scalar started at line 2, column 7)"
    ]


def test_yaml_indentation_error(spec_errors):
    text = """\
        kind: model
        name: flight_delay
          entity: flights
        """

    assert spec_errors(text) == [
        "model_specs/test_spec.yaml: YAML syntax error at line 3, column 9: "
        "mapping values are not allowed in this context"
    ]


def test_key_written_twice_is_an_error_not_a_silent_override(spec_errors):
    text = VALID_MODEL + "entity: weather\n"

    assert spec_errors(text) == [
        "model_specs/test_spec.yaml: YAML syntax error at line 39, column 1: "
        "the key 'entity' appears twice in one mapping (first on line 6)"
    ]


def test_two_documents_in_one_file(spec_errors):
    assert spec_errors(VALID_MODEL + "---\n" + VALID_FEATURE_SET) == [
        "model_specs/test_spec.yaml: YAML syntax error at line 39, column 1: "
        "expected a single document in the stream, but found another document"
    ]


def test_empty_file(spec_errors):
    assert spec_errors("") == [
        "model_specs/test_spec.yaml: a spec file must hold one mapping with a 'kind' field, found an empty file"
    ]


def test_file_holding_a_list(spec_errors):
    assert spec_errors("- kind: model\n") == [
        "model_specs/test_spec.yaml: a spec file must hold one mapping with a 'kind' field, found a list"
    ]


# ------------------------------------------------------------------------------------------------------------ kind


def test_missing_kind(spec_errors):
    assert spec_errors(edit(VALID_MODEL, "kind: model\n", "")) == [
        "model_specs/test_spec.yaml: spec 'flight_delay', field 'kind': "
        "missing required field (allowed: entity, feature_set, model, source)"
    ]


def test_unknown_kind_with_did_you_mean(spec_errors):
    assert spec_errors(edit(VALID_MODEL, "kind: model", "kind: modle")) == [
        "model_specs/test_spec.yaml: spec 'flight_delay', field 'kind': unknown kind 'modle'; did you mean 'model'? "
        "(allowed: entity, feature_set, model, source)"
    ]


def test_kind_that_is_not_text(spec_errors):
    assert spec_errors(edit(VALID_MODEL, "kind: model", "kind: [model]")) == [
        "model_specs/test_spec.yaml: spec 'flight_delay', field 'kind': "
        "must be one of entity, feature_set, model, source (given ['model'])"
    ]


# -------------------------------------------------------------------------------------------------- unknown fields


def test_unknown_top_level_field_with_did_you_mean_and_allowed(spec_errors):
    assert spec_errors(edit(VALID_MODEL, "label:", "lable:")) == [
        "model_specs/test_spec.yaml: model 'flight_delay': unknown field 'lable'; did you mean 'label'? "
        f"(allowed: {MODEL_FIELDS})",
        "model_specs/test_spec.yaml: model 'flight_delay', field 'label': missing required field",
    ]


def test_unknown_hyper_parameter(spec_errors):
    assert spec_errors(edit(VALID_MODEL, "num_leaves", "num_leafs")) == [
        "model_specs/test_spec.yaml: model 'flight_delay', field 'algorithm.params': unknown field 'num_leafs'; "
        f"did you mean 'num_leaves'? (allowed: {LIGHTGBM_PARAMS})"
    ]


def test_hyper_parameter_of_another_algorithm(spec_errors):
    text = edit(VALID_MODEL, "kind: lightgbm\n  params: {num_leaves: 31}",
                "kind: random_forest\n  params: {num_leaves: 31}")

    assert spec_errors(text) == [
        "model_specs/test_spec.yaml: model 'flight_delay', field 'algorithm.params': unknown field 'num_leaves' "
        "(allowed: n_estimators, max_depth, min_samples_leaf, max_features)"
    ]


def test_unknown_field_in_a_source_location(spec_errors):
    text = edit(VALID_SOURCE, "format: csv}", "format: csv, separator: ';'}")

    assert spec_errors(text) == [
        "model_specs/test_spec.yaml: source 'delays_export', field 'location': unknown field 'separator' "
        "(allowed: kind, path, format, null_string)"
    ]


def test_unknown_field_in_a_column(spec_errors):
    text = edit(VALID_SOURCE, "minutes: DOUBLE", "minutes: {type: DOUBLE, nullable: true}")

    assert spec_errors(text) == [
        "model_specs/test_spec.yaml: source 'delays_export', field 'columns.minutes': unknown field 'nullable' "
        "(allowed: type, known, available_at, description)"
    ]


# --------------------------------------------------------------------------------------------- closed sets of values


def test_unknown_algorithm_kind_with_did_you_mean_and_allowed(spec_errors):
    assert spec_errors(edit(VALID_MODEL, "kind: lightgbm", "kind: lightgbn")) == [
        "model_specs/test_spec.yaml: model 'flight_delay', field 'algorithm.kind': given 'lightgbn'; "
        f"did you mean 'lightgbm'? (allowed: {ALGORITHMS})"
    ]


def test_algorithm_without_kind(spec_errors):
    assert spec_errors(edit(VALID_MODEL, "  kind: lightgbm\n", "")) == [
        "model_specs/test_spec.yaml: model 'flight_delay', field 'algorithm.kind': missing required field "
        f"(allowed: {ALGORITHMS})"
    ]


def test_algorithm_given_as_text(spec_errors):
    text = edit(VALID_MODEL, "algorithm:\n  kind: lightgbm\n  params: {num_leaves: 31}", "algorithm: lightgbm")

    assert spec_errors(text) == [
        "model_specs/test_spec.yaml: model 'flight_delay', field 'algorithm': must be a mapping with a field "
        f"'kind', one of: {ALGORITHMS} (given 'lightgbm')"
    ]


def test_unknown_currency(spec_errors):
    assert spec_errors(edit(VALID_MODEL, "currency: USD", "currency: USDD")) == [
        "model_specs/test_spec.yaml: model 'flight_delay', field 'money.currency': given 'USDD'; "
        f"did you mean 'USD'? (allowed: {', '.join(CURRENCIES)})"
    ]


def test_unknown_feature_type(spec_errors):
    text = edit(VALID_FEATURE_SET, "{type: number,", "{type: numeric,")

    assert spec_errors(text) == [
        "model_specs/test_spec.yaml: feature set 'schedule_extra', field 'features.scheduled_hour.type': "
        "given 'numeric'; did you mean 'number'? (allowed: number, category)"
    ]


def test_unknown_column_type_in_the_shorthand(spec_errors):
    assert spec_errors(edit(VALID_SOURCE, "minutes: DOUBLE", "minutes: FLOAT")) == [
        "model_specs/test_spec.yaml: source 'delays_export', field 'columns.minutes.type': given 'FLOAT' "
        "(allowed: BOOLEAN, INTEGER, BIGINT, DOUBLE, VARCHAR, DATE, TIMESTAMP)"
    ]


def test_unknown_partitioning_kind(spec_errors):
    assert spec_errors(edit(VALID_SOURCE, "{kind: none}", "{kind: dayly}")) == [
        "model_specs/test_spec.yaml: source 'delays_export', field 'partitioning.kind': given 'dayly'; "
        "did you mean 'daily'? (allowed: daily, none)"
    ]


def test_spec_version(spec_errors):
    assert spec_errors(edit(VALID_MODEL, "spec_version: 1", "spec_version: 2")) == [
        "model_specs/test_spec.yaml: model 'flight_delay', field 'spec_version': given 2 (allowed: 1)"
    ]


# ----------------------------------------------------------------------------------------- missing and mis-shaped


def test_missing_label(spec_errors):
    text = edit(VALID_MODEL, LABEL + "\n", "")

    assert spec_errors(text) == [
        "model_specs/test_spec.yaml: model 'flight_delay', field 'label': missing required field"]


def test_label_given_as_text(spec_errors):
    text = edit(VALID_MODEL, LABEL, 'label: "dep_delay > 15"')

    assert spec_errors(text) == [
        "model_specs/test_spec.yaml: model 'flight_delay', field 'label': must be a mapping with the fields task, "
        "expression, objective, classes, horizon, aggregates (given 'dep_delay > 15')"
    ]


def test_window_given_as_text(spec_errors):
    text = edit(VALID_MODEL, "test: {start: 2013-10-01, end: 2013-10-31}", "test: 2013-10")

    assert spec_errors(text) == [
        "model_specs/test_spec.yaml: model 'flight_delay', field 'split.test': must be a mapping with the fields "
        "start, end (given '2013-10')"
    ]


def test_missing_outcome_values_are_each_reported(spec_errors):
    text = edit(VALID_MODEL, '    false_negative: "0"\n    true_negative: "0"\n', "")

    assert spec_errors(text) == [
        "model_specs/test_spec.yaml: model 'flight_delay', field 'money.outcomes.false_negative': "
        "missing required field",
        "model_specs/test_spec.yaml: model 'flight_delay', field 'money.outcomes.true_negative': "
        "missing required field",
    ]


def test_hyper_parameter_out_of_range(spec_errors):
    assert spec_errors(edit(VALID_MODEL, "num_leaves: 31", "num_leaves: 1")) == [
        "model_specs/test_spec.yaml: model 'flight_delay', field 'algorithm.params.num_leaves': "
        "Input should be greater than or equal to 2 (given 1)"
    ]


def test_features_listed_twice(spec_errors):
    assert spec_errors(edit(VALID_MODEL, "  - carrier_code\n", "  - departure_hour\n")) == [
        "model_specs/test_spec.yaml: model 'flight_delay', field 'features': features listed twice: departure_hour"
    ]


# ---------------------------------------------------------------------------------------------- names and patterns


def test_bad_identifier_name(spec_errors):
    assert spec_errors(edit(VALID_MODEL, "name: flight_delay", "name: Flight-Delay")) == [
        "model_specs/test_spec.yaml: model 'Flight-Delay', field 'name': "
        f"must be {IDENTIFIER_RULE} (given 'Flight-Delay')"
    ]


def test_bad_name_of_a_column_is_a_mapping_key(spec_errors):
    assert spec_errors(edit(VALID_SOURCE, "minutes: DOUBLE", "Delay-Minutes: DOUBLE")) == [
        "model_specs/test_spec.yaml: source 'delays_export', field 'columns.Delay-Minutes': "
        f"the name must be {IDENTIFIER_RULE} (given 'Delay-Minutes')"
    ]


def test_bad_owner(spec_errors):
    assert spec_errors(edit(VALID_MODEL, "owner: team:flight-ops-ds", "owner: flight ops")) == [
        "model_specs/test_spec.yaml: model 'flight_delay', field 'owner': "
        "must be an e-mail address or team:<name> (given 'flight ops')"
    ]


def test_bad_time_of_day(spec_errors):
    assert spec_errors(edit(VALID_MODEL, 'time: "18:00"', 'time: "6pm"')) == [
        "model_specs/test_spec.yaml: model 'flight_delay', field 'cadence.predict_at.time': "
        "must be a time of day as HH:MM, from 00:00 to 23:59 (given '6pm')"
    ]


def test_predictions_at_most_a_week_ahead(spec_errors):
    assert spec_errors(edit(VALID_MODEL, "predict_at: {days_before: 1,", "predict_at: {days_before: 9,")) == [
        "model_specs/test_spec.yaml: model 'flight_delay', field 'cadence.predict_at': predictions can be made at "
        "most 7 days before their date (daily partitions exist up to 7 days ahead) (given days_before 9)"
    ]


def test_unknown_time_zone_is_echoed_once(spec_errors):
    text = edit(VALID_SOURCE, "partitioning: {kind: none}",
                "partitioning: {kind: daily, date: current_date, start: 2013-01-01, timezone: America/NewYork}")

    assert spec_errors(text) == [
        "model_specs/test_spec.yaml: source 'delays_export', field 'partitioning.timezone': unknown time zone "
        "'America/NewYork'; use an IANA name such as 'America/New_York' or 'UTC'"
    ]


# ------------------------------------------------------------------------------------------------------- windows


def test_overlapping_split_windows(spec_errors):
    text = edit(VALID_MODEL, "validation: {start: 2013-09-01", "validation: {start: 2013-08-15")

    assert spec_errors(text) == [
        "model_specs/test_spec.yaml: model 'flight_delay', field 'split': "
        "validation (2013-08-15 to 2013-09-30) must start after train ends (2013-08-31)"
    ]


def test_empty_window_ends_before_it_starts(spec_errors):
    text = edit(VALID_MODEL, "test: {start: 2013-10-01, end: 2013-10-31}", "test: {start: 2013-10-31, end: 2013-10-01}")

    assert spec_errors(text) == [
        "model_specs/test_spec.yaml: model 'flight_delay', field 'split.test': "
        "empty window: end 2013-10-01 is before start 2013-10-31"
    ]


def test_date_that_does_not_exist(spec_errors):
    text = edit(VALID_MODEL, "test: {start: 2013-10-01", "test: {start: 2013-13-01")

    assert spec_errors(text) == [
        "model_specs/test_spec.yaml: model 'flight_delay', field 'split.test.start': Input should be a valid date "
        "or datetime, month value is outside expected range of 1-12 (given '2013-13-01')"
    ]


def test_every_error_of_a_document_at_once_in_field_order(spec_errors):
    text = edit(edit(edit(VALID_MODEL, "currency: USD", "currency: usd"), "num_leaves", "num_leafs"),
                "owner: team:flight-ops-ds", "owner: nobody")

    assert [error.split(", field ")[1].split("'")[1] for error in spec_errors(text)] == [
        "algorithm.params", "money.currency", "owner"]
