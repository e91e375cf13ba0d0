"""A model whose entity is a population (an entity spec: here every route flown in the week before each Monday) is
served like a source's: a request names the row by the entity's keys and its partition (`partition_date`, the
week's Monday), the answer is the batch's score and decision (==), from the precomputed partition or computed on
demand by the batch's own population code, and bad keys or times get a 4xx naming what was wrong."""

from __future__ import annotations

import contextlib
import io

import pytest

from ml_platform.cli import main
from ml_platform.serving.log import log_path
from ml_platform.storage.warehouse import open_warehouse
from ml_platform_tests.entities.test_weekly_model import trained  # noqa: F401 (the fixture: a deployed weekly model)
from ml_platform_tests.serving.server import serving

# a weekly model trained and deployed through Dagster, a real server: the full suite only
pytestmark = pytest.mark.slow

MODEL = "route_growth"
WEEK = "2013-05-20"


def _stored(project) -> dict[tuple, tuple]:
    with open_warehouse(project.storage.warehouse) as connection:
        rows = connection.execute(f"SELECT origin, dest, score, flagged, threshold FROM predictions.{MODEL} "
                                  f"WHERE partition_date = DATE '{WEEK}'").fetchall()
    return {(origin, dest): (score, flagged, threshold) for origin, dest, score, flagged, threshold in rows}


def test_a_population_model_is_served_by_key_and_partition_as_batch_scoring_scored_it(trained):  # noqa: F811
    project = trained[0]
    stored = _stored(project)
    assert len(stored) > 100
    keys = [{"origin": origin, "dest": dest, "partition_date": WEEK} for origin, dest in sorted(stored)]
    with serving(project) as (client, _):
        status, precomputed = client.predict(MODEL, {"keys": keys})
        assert status == 200, precomputed
        status, on_demand = client.predict(MODEL, {"keys": keys[::7], "features": "on_demand"})
        assert status == 200, on_demand
        # a week whose features were materialized but never scored in batch: scored on its first request
        status, earlier = client.predict(MODEL, {"keys": {**keys[0], "partition_date": "2013-05-13"}})
        status_of_earlier = status
        status, single = client.predict(MODEL, {"keys": keys[0]})
        assert status == 200, single

    answers = {(item["keys"]["origin"], item["keys"]["dest"]): item for item in precomputed["predictions"]}
    assert set(answers) == set(stored)
    for key, item in answers.items():
        assert (item["score"], item["decision"], item["decision_parameter"]) == stored[key]
        assert item["partition_date"] == WEEK and item["keys"]["partition_date"] == WEEK
        assert item["features_served"] == "precomputed"
    for item in on_demand["predictions"]:
        assert item["features_served"] == "on_demand"
        assert item["score"] == answers[(item["keys"]["origin"], item["keys"]["dest"])]["score"]
    assert status_of_earlier in (200, 404), earlier
    if status_of_earlier == 200:  # the route was flown the week before 2013-05-13 too
        assert earlier["predictions"][0]["partition_date"] == "2013-05-13"
    logged = log_path(project.data_dir, MODEL).read_text().splitlines()
    assert len(logged) >= len(keys) + len(keys[::7])
    # `ml-platform explain` of the served prediction, by its request id
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        code = main(["--project", str(project.root), "explain", MODEL, "--request-id", single["request_id"]])
    text = output.getvalue()
    assert code == 0, text
    # the week's features were computed on demand by an earlier request: later ones read those
    assert single["predictions"][0]["features_served"] == "on_demand"
    assert f"online, request {single['request_id']} (features on_demand)" in text, text
    assert "for busy_routes origin 'EWR', dest 'ALB', partition_date '2013-05-20', dated 2013-05-20" in text, text
    # and the batch's prediction of that route and week, by the entity's keys
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        code = main(["--project", str(project.root), "explain", MODEL, "EWR,ALB"])
    text = output.getvalue()
    assert code == 0, text
    assert "for busy_routes origin 'EWR', dest 'ALB', dated 2013-05-20" in text, text
    assert f"score         {stored[('EWR', 'ALB')][0]:.4f}" in text, text
    assert f"{single['predictions'][0]['score']:.4f}" in text and "route_distance" in text, text


@pytest.mark.parametrize("keys, prediction_time, status, message", [
    ({"origin": "JFK", "dest": "LAX"}, None, 422,
     "keys: missing key column(s) partition_date (the entity's keys: origin, dest, partition_date)"),
    ({"origin": "JFK", "dest": "LAX", "partition_date": "20 May 2013"}, None, 422,
     "keys.partition_date: '20 May 2013' is not an ISO date (DATE column; for example 2013-05-20)"),
    ({"origin": "JFK", "dest": "LAX", "partition_date": "2013-05-20T06:00:00"}, None, 422,
     "keys.partition_date: '2013-05-20T06:00:00' is not an ISO date (DATE column; for example 2013-05-20, "
     "without a time of day)"),
    ({"origin": "JFK", "dest": "XXX", "partition_date": WEEK}, None, 404,
     "unknown key: no row of 'busy_routes' has {'origin': 'JFK', 'dest': 'XXX', 'partition_date': '2013-05-20'}"),
    ({"origin": "JFK", "dest": "LAX", "partition_date": WEEK}, "2013-05-18T12:00:00", 422,
     "prediction_time: 2013-05-18T12:00:00 is before 2013-05-19T00:00:00, when the features of the rows of "
     "2013-05-20 are known; they cannot be predicted yet"),
    ({"origin": "JFK", "dest": "LAX", "partition_date": WEEK}, "2013-05-27T00:00:01", 422,
     "prediction_time: 2013-05-27T00:00:01 is in the future of the data: 'busy_routes' holds rows up to "
     "2013-05-27T00:00:00"),
], ids=["no-partition", "not-a-date", "a-time-of-day", "unknown-route", "before-known", "after-the-data"])
def test_a_bad_population_key_or_time_gets_a_4xx_naming_it(trained, keys, prediction_time, status,  # noqa: F811
                                                           message):
    body = {"keys": keys, **({"prediction_time": prediction_time} if prediction_time else {})}
    with serving(trained[0]) as (client, _):
        answered, answer = client.predict(MODEL, body)
    assert (answered, answer["error"]) == (status, message)
