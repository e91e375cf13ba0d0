"""One named fixture file per failure mode: each is a valid document except for its one mistake, and its first two
comment lines say which field the single error names and how its message starts."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ml_platform.specs.errors import SpecErrors
from ml_platform_tests.specs.helpers import load, make_specs

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "invalid_specs"
FIXTURE_FILES = sorted(path.name for path in FIXTURES.glob("*.yaml"))

# The failure modes the issue names; each must keep its fixture file.
REQUIRED = {
    "yaml_syntax_error", "empty_file", "missing_kind", "unknown_kind", "unknown_top_level_field",
    "unknown_hyper_parameter", "unknown_algorithm", "missing_label", "unknown_feature", "unknown_entity",
    "unknown_currency", "overlapping_windows", "empty_window", "window_outside_source", "label_does_not_parse",
    "label_unknown_column", "label_not_boolean", "money_not_numeric", "feature_set_undeclared_column",
    "feature_set_missing_feature", "feature_set_unread_source", "feature_set_not_a_select", "duplicate_model_name",
    "duplicate_feature", "feature_known_too_late", "location_outside_project", "bad_owner", "bad_name",
    "feature_reads_after_event_column", "filter_reads_after_event_column", "feature_set_cycle", "unknown_function",
    "unknown_used_feature_set", "external_source_not_accepted", "accepted_source_not_used",
    "accepted_internal_source", "accepted_trust_changed", "acceptance_without_reason",
    # entity specs (issue #14): the grain's alignment, the sources' range and zone, the population query
    "entity_start_not_a_monday", "entity_monthly_start_not_first", "entity_lookback_before_source",
    "entity_end_beyond_source", "entity_timezone_differs", "entity_population_reads_undeclared_source",
    "entity_population_misses_time", "entity_population_reads_after_event_column", "entity_population_missing_key",
    "entity_hourly_lookback_within_the_day",
    "unknown_slice", "slice_feature_not_in_model", "slices_and_slice_column", "slice_listed_twice",
    # labels that look forward (issue #14 item 4)
    "label_aggregates_without_horizon", "label_aggregate_unknown_source", "label_aggregate_reference_source",
    "label_aggregate_unknown_join_column", "label_aggregate_not_an_aggregate", "label_aggregate_escapes",
    "label_aggregate_is_a_column", "label_aggregate_with_comment", "label_horizon_in_hours",
    "label_horizon_reaches_next_split",
    # tasks and money for every task (issue #14)
    "regression_label_not_numeric", "objective_for_binary", "quantile_without_alpha", "objective_parameter_of_another",
    "unknown_objective", "multiclass_without_classes", "classes_listed_twice", "too_few_classes",
    "algorithm_without_task", "algorithm_without_objective", "outcomes_for_regression", "decision_not_of_task",
    "money_value_not_numeric", "money_value_unknown_column", "money_value_without_decision", "budget_without_size",
    "offset_range_reversed", "gate_metric_not_of_task", "roc_auc_floor_for_regression",
    "class_decision_for_regression",
    # feature timing relative to the entity row's time (issue #14 item 5)
    "known_by_hours_and_days", "known_by_hours_with_time", "known_by_months_with_time", "known_by_time_alone",
    "known_by_empty", "known_by_negative_hours", "known_by_unknown_unit", "predict_at_not_at_a_clock_time",
    # the declared hyper-parameter search (issue #20)
    "search_unknown_parameter", "search_empty_range", "search_without_trials", "search_objective_not_of_task",
    "search_fractional_range_of_whole_number", "search_value_out_of_bounds", "search_log_range_from_zero",
    "search_range_of_a_choice",
    # contributions stored by batch scoring (issue #20 item 2)
    "scoring_contributions_of_scikit_learn", "scoring_contributions_not_boolean", "scoring_unknown_field",
    # parallel search trials (issue #20 item 3)
    "search_parallel_zero", "search_parallel_not_whole", "search_parallel_for_scikit_learn",
}


def expectation(path: Path) -> tuple[str, str]:
    """The field and the start of the message a fixture file declares in its first two lines."""
    field_line, error_line = path.read_text(encoding="utf-8").splitlines()[:2]
    assert field_line.startswith("# field:") and error_line.startswith("# error: "), path.name
    return field_line.removeprefix("# field:").strip(), error_line.removeprefix("# error: ")


def test_every_failure_mode_has_its_fixture_file():
    assert REQUIRED <= {name.removesuffix(".yaml") for name in FIXTURE_FILES}


@pytest.mark.parametrize("name", FIXTURE_FILES)
def test_fixture_gives_one_error_naming_its_file_and_field(name, tmp_path):
    field, message_start = expectation(FIXTURES / name)
    root = make_specs(tmp_path, {}, repository_model=True)
    (root / "model_specs" / "invalid_specs").mkdir()
    shutil.copyfile(FIXTURES / name, root / "model_specs" / "invalid_specs" / name)

    with pytest.raises(SpecErrors) as caught:
        load(root)

    errors = caught.value.errors
    assert len(errors) == 1, str(caught.value)
    error = errors[0]
    where = f"model_specs/invalid_specs/{name}"
    assert error.file == where or where in error.message, str(error)
    assert error.field == field
    assert error.message.startswith(message_start), str(error)
    assert str(error).startswith(error.file) and (f", field '{field}': " in str(error) or not field)
    assert "Traceback" not in str(caught.value)


def test_the_repository_specs_alone_are_valid(tmp_path):
    catalog = load(make_specs(tmp_path, {}, repository_model=True))

    assert "flight_delay" in catalog.models
