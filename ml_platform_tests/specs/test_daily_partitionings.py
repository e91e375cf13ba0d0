"""Daily sources share one partitioning (issue #14: two daily sources with different start dates passed `validate`
and failed at run time with a 65-line Dagster traceback); a mismatch is a load error naming files, fields and dates."""

from __future__ import annotations

import dagster as dg
import pytest

from ml_platform.build import build_definitions
from ml_platform.cli import main
from ml_platform.names import DAILY_JOB
from ml_platform.partitions import daily_partitions
from ml_platform.specs.errors import SpecErrors
from ml_platform.specs.models import DailyPartitioning
from ml_platform.storage.resources import StoragePaths
from ml_platform_tests.helpers import SPECS
from ml_platform_tests.specs.helpers import edit, load, make_specs

WEATHER = (SPECS / "sources" / "weather.yaml").read_text(encoding="utf-8")
SHARED = ("the job 'daily_data' loads every daily source and computes every feature set one day at a time, so all "
          "daily sources share start, end and timezone")


def _late_weather(old: str, new: str) -> str:
    """The weather source under another name, with one line of its partitioning changed."""
    return edit(edit(WEATHER, "name: weather\n", "name: late_weather\n"), old, new)


def _feature_set_reading_late_weather() -> str:
    text = (SPECS / "features" / "origin_weather_eve.yaml").read_text(encoding="utf-8")
    text = edit(edit(text, "name: origin_weather_eve", "name: late_weather_eve"), "reads: [weather]",
                "reads: [late_weather]")
    text = edit(text, "    FROM weather\n", "    FROM late_weather\n")
    return text.replace("  eve_", "  late_eve_").replace("AS eve_", "AS late_eve_")


def test_a_daily_source_starting_later_is_a_load_error_naming_files_fields_and_dates(tmp_path, capsys):
    root = make_specs(tmp_path, {"sources/late_weather.yaml": _late_weather("start: 2013-01-01", "start: 2013-03-01"),
                                 "features/late_weather_eve.yaml": _feature_set_reading_late_weather()})

    assert main(["--project", str(root), "validate"]) == 1

    assert capsys.readouterr().err.splitlines() == [
        "1 error in the specs:",
        "  - model_specs/sources/late_weather.yaml: source 'late_weather', field 'partitioning.start': 2013-03-01 "
        "differs from partitioning.start of daily source 'flights' (model_specs/sources/flights.yaml: 2013-01-01); "
        f"{SHARED}: give the daily sources the same start, or load this one whole (partitioning: {{kind: none}})",
    ]


@pytest.mark.parametrize("old, new, field, given, expected", [
    ("end: 2013-12-31", "end: 2013-06-30", "end", "2013-06-30", "2013-12-31"),
    ("  end: 2013-12-31\n", "", "end", "open-ended (no end)", "2013-12-31"),
    ("timezone: America/New_York", "timezone: UTC", "timezone", "UTC", "America/New_York"),
])
def test_a_daily_source_ending_elsewhere_or_in_another_time_zone_is_refused(tmp_path, old, new, field, given,
                                                                            expected):
    root = make_specs(tmp_path, {"sources/late_weather.yaml": _late_weather(old, new)})

    with pytest.raises(SpecErrors) as caught:
        load(root)

    assert [str(error) for error in caught.value.errors] == [
        f"model_specs/sources/late_weather.yaml: source 'late_weather', field 'partitioning.{field}': {given} "
        f"differs from partitioning.{field} of daily source 'flights' (model_specs/sources/flights.yaml: "
        f"{expected}); {SHARED}: give the daily sources the same {field}, or load this one whole (partitioning: "
        "{kind: none})"]


def test_the_reference_is_what_most_daily_sources_share(tmp_path):
    # flights and weather share 2013-01-01; when the entity itself is the odd one, the error names the entity
    flights = (SPECS / "sources" / "flights.yaml").read_text(encoding="utf-8")
    root = make_specs(tmp_path, {"sources/flights.yaml": edit(flights, "start: 2013-01-01", "start: 2013-02-01"),
                                 "sources/late_weather.yaml": edit(WEATHER, "name: weather\n", "name: late_weather\n")})

    with pytest.raises(SpecErrors) as caught:
        load(root)

    assert [(error.file, error.field) for error in caught.value.errors] == [
        ("model_specs/sources/flights.yaml", "partitioning.start")]
    assert "from partitioning.start of daily source 'late_weather' (model_specs/sources/late_weather.yaml: " \
           "2013-01-01)" in caught.value.errors[0].message


def test_aligned_daily_sources_build_one_daily_job(tmp_path):
    root = make_specs(tmp_path, {"sources/late_weather.yaml": edit(WEATHER, "name: weather\n", "name: late_weather\n"),
                                 "features/late_weather_eve.yaml": _feature_set_reading_late_weather()})
    definitions = build_definitions(load(root), StoragePaths(tmp_path / "data"))

    job = definitions.resolve_job_def(DAILY_JOB)

    assert job.partitions_def.start.date().isoformat() == "2013-01-01"


def test_dagster_cannot_hold_two_daily_partitionings_in_one_job():
    """Why the check exists: if a later Dagster accepts this, the daily job could be split and the rule relaxed."""
    early = daily_partitions(DailyPartitioning(kind="daily", date="d", start="2013-01-01", end="2013-12-31"))
    late = daily_partitions(DailyPartitioning(kind="daily", date="d", start="2013-03-01", end="2013-12-31"))

    @dg.asset(partitions_def=early)
    def first() -> None: ...

    @dg.asset(partitions_def=late)
    def second() -> None: ...

    both = dg.define_asset_job("both", selection=[first.key, second.key])
    definitions = dg.Definitions(assets=[first, second], jobs=[both])

    with pytest.raises(dg.DagsterInvalidDefinitionError) as caught:
        definitions.resolve_job_def("both")

    assert "must have the same partitions definitions" in str(caught.value.__cause__)
