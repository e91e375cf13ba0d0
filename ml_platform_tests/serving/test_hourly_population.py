"""The repository's hourly example (a regression per airport and hour, model_specs/origin_hours/) carried through
the demo's chain on January and served: a row is named by its airport and its hour (`partition_start`), the
answer is the batch's prediction and staffing decision (==), precomputed or computed on demand, and a prediction
time is checked against that hour's own prediction time."""

from __future__ import annotations

import datetime as dt
import shutil

import pytest

from ml_platform.chain.model_chain import run_chain
from ml_platform.storage.warehouse import open_warehouse
from ml_platform_tests.helpers import SPECS, load_yaml, write_yaml
from ml_platform_tests.serving.server import serving

# the hourly example trained, deployed and scored through Dagster runs, a real server: the full suite only
pytestmark = pytest.mark.slow

MODEL = "origin_departures"


@pytest.fixture
def hourly(make_project, dagster_home):
    """The hourly example on January (its entity starts on the 8th), deployed and two days scored in batch."""
    project = make_project({})
    shutil.copytree(SPECS / "origin_hours", project.specs_dir / "origin_hours")
    (project.specs_dir / "entities").mkdir()
    shutil.copyfile(SPECS / "entities" / "origin_hours.yaml", project.specs_dir / "entities" / "origin_hours.yaml")
    document = load_yaml(SPECS / "origin_hours" / f"{MODEL}.yaml")
    document["split"] = {"train": {"start": "2013-01-08", "end": "2013-01-20"},
                         "validation": {"start": "2013-01-21", "end": "2013-01-25"},
                         "test": {"start": "2013-01-26", "end": "2013-01-31"}}
    document["algorithm"]["params"]["n_estimators"] = 60
    document["gate"] = {"min_money": -1_000_000_000}  # deployed whatever its January figures
    write_yaml(project.specs_dir / "origin_hours" / f"{MODEL}.yaml", document)
    result = run_chain(project, MODEL, score_days=2, say=lambda line: None)
    assert result.champion is not None and result.scored_rows > 100, [run.failures for run in result.runs]
    return project


def test_an_hourly_population_model_is_served_by_airport_and_hour_as_batch_scoring_scored_it(hourly):
    with open_warehouse(hourly.storage.warehouse) as connection:
        stored = {(origin, start.isoformat()): (prediction, decision, parameter)
                  for origin, start, prediction, decision, parameter in connection.execute(
                      f"SELECT origin, partition_start, prediction, decision, decision_parameter "
                      f"FROM predictions.{MODEL}").fetchall()}
    assert len(stored) > 100 and len({start[:10] for _, start in stored}) == 2
    keys = [{"origin": origin, "partition_start": start} for origin, start in sorted(stored)]
    first = keys[0]
    known = dt.datetime.fromisoformat(first["partition_start"]) - dt.timedelta(hours=24)  # its known_by
    with serving(hourly) as (client, _):
        status, precomputed = client.predict(MODEL, {"keys": keys})
        assert status == 200, precomputed
        status, on_demand = client.predict(MODEL, {"keys": keys[::5], "features": "on_demand"})
        assert status == 200, on_demand
        too_early = client.predict(MODEL, {"keys": first, "prediction_time": (
            known - dt.timedelta(minutes=1)).isoformat()})
        in_time = client.predict(MODEL, {"keys": first, "prediction_time": known.isoformat()})
        unknown = client.predict(MODEL, {"keys": {"origin": "JFK", "partition_start": "2013-02-01T14:30:00"}})

    answers = {(item["keys"]["origin"], item["keys"]["partition_start"]): item
               for item in precomputed["predictions"]}
    assert set(answers) == set(stored)
    assert all((item["score"], item["decision"], item["decision_parameter"]) == stored[key]
               and item["decision_kind"] == "quantity" for key, item in answers.items())
    assert all(item["features_served"] == "on_demand" and item["score"] == answers[
        (item["keys"]["origin"], item["keys"]["partition_start"])]["score"] for item in on_demand["predictions"])
    assert too_early[0] == 422 and too_early[1]["error"].endswith(
        f"when the features of the row of {first['partition_start']} are known; they cannot be predicted yet")
    assert in_time[0] == 200, in_time
    assert unknown == (404, {"error": "unknown key: no row of 'origin_hours' has {'origin': 'JFK', "
                                      "'partition_start': '2013-02-01T14:30:00'}",
                             "request_id": unknown[1]["request_id"]})
