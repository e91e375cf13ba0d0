"""A model that reads an external vendor's data or another model's output must accept it in its spec, with a
reviewed reason; an opt-in that no longer matches what the model reads is an error too."""

from __future__ import annotations

from ml_platform_tests.specs.helpers import (VALID_FEATURE_SET, VALID_MODEL, VALID_SOURCE, WEATHER_OPT_IN, edit, load,
                                            make_specs)

WITHOUT_OPT_IN = edit(VALID_MODEL, WEATHER_OPT_IN, "")
HOW_TO = ("without an opt-in; a model reads external_vendor or model_output data only when its spec accepts it: add "
          "under data_dependencies.accept '{name}: {{trust: {trust}, reason: <why this data is acceptable and what "
          "guards the model>, reviewed_by: <e-mail or team:name>, reviewed_on: <YYYY-MM-DD>}}', or drop the features "
          "that read it")
WHERE = "model_specs/test_spec.yaml: model 'flight_delay', field "

# A feature set that reads the weather only through another feature set it uses.
WEATHER_TWICE = edit(edit(edit(VALID_FEATURE_SET, "name: schedule_extra", "name: weather_twice"),
                          "entity: flights\n", "entity: flights\nuses: [origin_weather_eve]\n"),
                     "sql: SELECT flight_id, hour AS scheduled_hour FROM entity",
                     "sql: SELECT flight_id, 2 * eve_temp_f AS scheduled_hour "
                     "FROM entity JOIN origin_weather_eve USING (flight_id)")

# Another model's scores, read by a feature set.
SCORES_SOURCE = edit(edit(VALID_SOURCE, "name: delays_export", "name: delay_scores"),
                     "trust: internal", "trust: model_output")
SCORES_FEATURE_SET = edit(edit(edit(VALID_FEATURE_SET, "name: schedule_extra", "name: delay_score"),
                               "entity: flights\n", "entity: flights\nreads: [delay_scores]\n"),
                          "sql: SELECT flight_id, hour AS scheduled_hour FROM entity",
                          "sql: SELECT flight_id, minutes AS scheduled_hour FROM entity "
                          "LEFT JOIN delay_scores USING (flight_id)")


def test_reading_an_external_source_without_an_opt_in_names_source_trust_feature_set_and_how_to(spec_errors):
    assert spec_errors(WITHOUT_OPT_IN) == [
        f"{WHERE}'data_dependencies.accept': depends on source 'weather', whose trust is external_vendor, through "
        "feature set 'origin_weather_eve' (the model's features from it: eve_temp_f), "
        + HOW_TO.format(name="weather", trust="external_vendor")
    ]


def test_a_source_read_through_a_used_feature_set_needs_the_opt_in_too(spec_errors):
    text = edit(WITHOUT_OPT_IN, "  - eve_temp_f\n", "  - scheduled_hour\n")

    assert spec_errors(text, **{"features/weather_twice.yaml": WEATHER_TWICE}) == [
        f"{WHERE}'data_dependencies.accept': depends on source 'weather', whose trust is external_vendor, through "
        "feature set 'origin_weather_eve', used by 'weather_twice' (the model's features from it: scheduled_hour), "
        + HOW_TO.format(name="weather", trust="external_vendor")
    ]


def test_another_models_output_needs_an_opt_in(spec_errors):
    text = edit(VALID_MODEL, "  - eve_temp_f\n", "  - eve_temp_f\n  - scheduled_hour\n")

    assert spec_errors(text, **{"sources/delay_scores.yaml": SCORES_SOURCE,
                                "features/delay_score.yaml": SCORES_FEATURE_SET}) == [
        f"{WHERE}'data_dependencies.accept': depends on source 'delay_scores', whose trust is model_output, through "
        "feature set 'delay_score' (the model's features from it: scheduled_hour), "
        + HOW_TO.format(name="delay_scores", trust="model_output")
    ]


def test_an_opt_in_for_a_source_the_model_does_not_read_is_stale(spec_errors):
    text = VALID_MODEL + """\
    planes: {trust: external_vendor, reason: the FAA registry as published, reviewed_by: a@example.com,
             reviewed_on: 2026-11-28}
"""
    assert spec_errors(text) == [
        f"{WHERE}'data_dependencies.accept.planes': the model does not depend on source 'planes' (sources it "
        "depends on that need an opt-in: weather); remove the stale opt-in"
    ]


def test_a_misspelt_opt_in_is_stale_with_did_you_mean_and_the_source_still_unaccepted(spec_errors):
    text = edit(VALID_MODEL, "    weather:\n", "    wether:\n")

    assert spec_errors(text) == [
        f"{WHERE}'data_dependencies.accept': depends on source 'weather', whose trust is external_vendor, through "
        "feature set 'origin_weather_eve' (the model's features from it: eve_temp_f), "
        + HOW_TO.format(name="weather", trust="external_vendor"),
        f"{WHERE}'data_dependencies.accept.wether': the model does not depend on source 'wether'; did you mean "
        "'weather'? (sources it depends on that need an opt-in: weather); remove the stale opt-in",
    ]


def test_an_opt_in_for_an_internal_source_is_an_error(spec_errors):
    text = VALID_MODEL + """\
    flights: {trust: external_vendor, reason: "the US DOT on-time data, checked", reviewed_by: a@example.com,
              reviewed_on: 2026-11-28}
"""
    assert spec_errors(text) == [
        f"{WHERE}'data_dependencies.accept.flights': source 'flights' is internal: only external_vendor and "
        "model_output sources need an opt-in; remove it"
    ]


def test_an_opt_in_reviewed_under_another_trust_level_must_be_reviewed_again(spec_errors):
    text = edit(VALID_MODEL, "      trust: external_vendor\n", "      trust: model_output\n")

    assert spec_errors(text) == [
        f"{WHERE}'data_dependencies.accept.weather.trust': accepted source 'weather' as model_output, but its trust "
        "is now external_vendor: review the opt-in again, then set trust: external_vendor, reason, reviewed_by and "
        "reviewed_on"
    ]


def test_an_opt_in_needs_a_real_reason_a_reviewer_and_a_date(spec_errors):
    text = edit(edit(VALID_MODEL, "      reason: public NOAA observations, checked on load\n", "      reason: fine\n"),
                "      reviewed_on: 2026-11-28\n", "")

    assert spec_errors(text) == [
        f"{WHERE}'data_dependencies.accept.weather.reason': say in at least 20 characters why this data is "
        "acceptable for the model and what guards it if the data goes wrong (given 'fine')",
        f"{WHERE}'data_dependencies.accept.weather.reviewed_on': missing required field",
    ]


def test_a_stale_opt_in_is_not_judged_while_a_feature_does_not_resolve(spec_errors):
    errors = spec_errors(edit(VALID_MODEL, "  - eve_temp_f\n", "  - eve_tmp_f\n"))

    assert len(errors) == 1 and "field 'features[3]': unknown feature 'eve_tmp_f'" in errors[0]


def test_source_dependencies_list_every_source_with_trust_path_features_and_opt_in(tmp_path):
    text = edit(VALID_MODEL, "  - eve_temp_f\n", "  - eve_temp_f\n  - scheduled_hour\n")
    catalog = load(make_specs(tmp_path, {"model.yaml": text, "features/weather_twice.yaml": WEATHER_TWICE}))

    listing = [(dependency.source, dependency.trust, dependency.daily, dependency.via, dependency.features,
                dependency.accepted and dependency.accepted.reviewed_by)
               for dependency in catalog.source_dependencies(catalog.models["flight_delay"])]

    assert listing == [
        ("flights", "internal", True, ("entity",), (), None),
        ("weather", "external_vendor", True, ("origin_weather_eve", "weather_twice > origin_weather_eve"),
         ("eve_temp_f", "scheduled_hour"), "data-review@example.com"),
    ]
