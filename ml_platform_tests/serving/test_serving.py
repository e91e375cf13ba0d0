"""The served model against a real warehouse, through a real server on 127.0.0.1: parity with batch scoring,
the bad-request corpus, the log explained, and hot swaps under load."""

from __future__ import annotations

import contextlib
import io
import json
import threading
import time

import pytest

from ml_platform import names
from ml_platform.cli import main
from ml_platform.deployment.history import rollback
from ml_platform.features.library import load_catalog
from ml_platform.serving.log import log_path
from ml_platform.storage.artifacts import ArtifactStore
from ml_platform.storage.warehouse import open_warehouse
from ml_platform_tests.evaluation.january import MODEL, Runs, champion_and_challenger
from ml_platform_tests.serving.server import serving

# builds a trained, deployed and batch-scored project: the full suite only
pytestmark = pytest.mark.slow


def _stored(project, sql: str) -> list[tuple]:
    with open_warehouse(project.storage.warehouse) as connection:
        return connection.execute(sql).fetchall()


def test_served_scores_are_bit_identical_to_the_stored_batch_scores(scored_project):
    stored = _stored(scored_project, f"SELECT flight_id, score, flagged, threshold, model_version, spec_hash, "
                                     f"snapshot_id, code_version FROM {names.predictions_table(MODEL)} ORDER BY 1")
    assert len(stored) > 1500
    with serving(scored_project) as (client, _):
        served = {}
        for first in range(0, len(stored), 1000):
            status, answer = client.predict(MODEL, {"keys": [{"flight_id": row[0]} for row in stored[first:first + 1000]]})
            assert status == 200, answer
            assert (answer["model_version"], answer["spec_hash"], answer["snapshot_id"], answer["code_version"]) \
                == stored[0][4:8]
            served.update({item["keys"]["flight_id"]: item for item in answer["predictions"]})
        # on demand: the same day's features computed again by the server, through the same feature code
        sample = [row for row in stored if row[0].startswith("2013-02-01")][:25]
        status, answer = client.predict(MODEL, {"keys": [{"flight_id": row[0]} for row in sample],
                                                "features": "on_demand"})
        assert status == 200, answer
        on_demand = {item["keys"]["flight_id"]: item for item in answer["predictions"]}
    assert all(served[key]["score"] == score and served[key]["decision"] == flagged
               and served[key]["decision_parameter"] == threshold for key, score, flagged, threshold, *_ in stored)
    assert {item["features_served"] for item in served.values()} == {"precomputed"}
    assert len(on_demand) == 25 and {item["features_served"] for item in on_demand.values()} == {"on_demand"}
    assert all(on_demand[key]["score"] == served[key]["score"] for key in on_demand)


KNOWN = "2013-01-31-9E3314-JFK"
CORPUS = [
    # (model, raw body, status, exact message)
    ("flight_dela", {"keys": {"flight_id": KNOWN}}, 404,
     "unknown model 'flight_dela'; did you mean 'flight_delay'? (served: flight_delay)"),
    (MODEL, b"{not json", 400, "body: not valid JSON (Expecting property name enclosed in double quotes: line 1 "
                               "column 2 (char 1))"),
    (MODEL, [1, 2], 422, "body: must be a JSON object with `keys`, got a list"),
    (MODEL, {}, 422, "keys: missing; give {\"keys\": {...}} for one row or {\"keys\": [{...}, ...]} for several"),
    (MODEL, {"keys": {"flight_id": KNOWN}, "when": "now"}, 422,
     "body: unknown field(s) when (allowed: keys, prediction_time, features)"),
    (MODEL, {"keys": "2013-01-31"}, 422, "keys: must be an object (one row) or a list of objects, got a string"),
    (MODEL, {"keys": []}, 422, "keys: the list is empty; give at least one row's keys"),
    (MODEL, {"keys": {}}, 422, "keys: missing key column(s) flight_id (the entity's keys: flight_id)"),
    (MODEL, {"keys": {"flight": KNOWN}}, 422, "keys: unknown key column(s) flight (the entity's keys: flight_id)"),
    (MODEL, {"keys": {"flight_id": 20130131}}, 422,
     "keys.flight_id: must be a string (VARCHAR column), got an integer"),
    (MODEL, {"keys": [{"flight_id": KNOWN}, {"flight_id": None}]}, 422,
     "keys[1].flight_id: must be a string (VARCHAR column), got null"),
    (MODEL, {"keys": [{"flight_id": KNOWN}, {"flight_id": KNOWN}]}, 422,
     "keys[1]: the same row is requested twice ({'flight_id': '2013-01-31-9E3314-JFK'})"),
    (MODEL, {"keys": {"flight_id": "2013-01-31-XX0000-JFK"}}, 404,
     "unknown key: no row of 'flights' has {'flight_id': '2013-01-31-XX0000-JFK'}"),
    (MODEL, {"keys": {"flight_id": KNOWN}, "prediction_time": "2013-02-03T00:00:01"}, 422,
     "prediction_time: 2013-02-03T00:00:01 is in the future of the data: 'flights' holds rows up to "
     "2013-02-03T00:00:00"),
    (MODEL, {"keys": {"flight_id": KNOWN}, "prediction_time": "2013-01-30T17:59:00"}, 422,
     "prediction_time: 2013-01-30T17:59:00 is before 2013-01-30T18:00:00, when the features of the rows of "
     "2013-01-31 are known; they cannot be predicted yet"),
    (MODEL, {"keys": {"flight_id": KNOWN}, "prediction_time": "yesterday"}, 422,
     "prediction_time: 'yesterday' is not an ISO 8601 time (for example 2013-01-31T18:00:00)"),
    (MODEL, {"keys": {"flight_id": KNOWN}, "prediction_time": 1359676800}, 422,
     "prediction_time: must be an ISO 8601 local time as a string (for example 2013-01-31T18:00:00), got an integer"),
    (MODEL, {"keys": {"flight_id": KNOWN}, "features": "cached"}, 422,
     "features: must be one of auto, on_demand, got 'cached'"),
]


def test_bad_requests_get_a_4xx_naming_what_was_wrong_and_the_service_stays_up(scored_project):
    with serving(scored_project) as (client, _):
        for model, body, status, message in CORPUS:
            got_status, answer = client.predict(model, body)
            assert (got_status, answer["error"]) == (status, message), body
            assert len(answer["request_id"]) == 32
        status, answer = client.predict(MODEL, {"keys": {"flight_id": KNOWN},
                                                "prediction_time": "2013-01-31T09:00:00"})
        assert status == 200 and answer["predictions"][0]["keys"] == {"flight_id": KNOWN}


def test_an_internal_fault_is_a_500_with_a_request_id_and_no_traceback(scored_project):
    with serving(scored_project) as (client, state):
        # break the server's own copy of the warehouse: a fault of the server, not of the request
        state.current.connection.execute(f"DROP TABLE {names.source_table('flights')}")
        status, answer = client.predict(MODEL, {"keys": {"flight_id": KNOWN}})
        assert status == 500
        assert answer == {"error": "internal error: the server failed to answer; its log names this request id",
                          "request_id": answer["request_id"]}
        assert client.request("GET", "/health")[0] == 200  # still up
        assert client.predict("nothing", {"keys": {}})[0] == 404


def test_openapi_describes_the_predict_route(scored_project):
    with serving(scored_project) as (client, _):
        status, document = client.request("GET", "/openapi.json")
    assert status == 200
    route = document["paths"]["/v1/models/{name}/predict"]["post"]
    assert route["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/PredictBody"}
    assert {"PredictBody", "PredictAnswer", "Prediction", "ErrorBody"} <= set(document["components"]["schemas"])


def _explained(*arguments: str) -> tuple[int, str]:
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        code = main(list(arguments))
    return code, output.getvalue()


def test_a_served_prediction_is_logged_and_explained(private_project):
    keys = [{"flight_id": KNOWN}, {"flight_id": "2013-02-01-AA1-JFK"}]
    with serving(private_project) as (client, state):
        status, answer = client.predict(MODEL, {"keys": keys})
        shadow = state.current.shadows[MODEL].trained.model_version
        client.request("GET", "/health")  # the shadow is scored after the answer is sent; let it finish
        time.sleep(1.0)
    assert status == 200, answer
    every = [json.loads(line) for line in log_path(private_project.data_dir, MODEL).read_text().splitlines()]
    logged = [row for row in every if row["request_id"] == answer["request_id"]]
    assert logged[0] in every[-4:]  # appended last
    champion_rows = [row for row in logged if not row["shadow"]]
    assert [row["keys"] for row in champion_rows] == keys
    assert [row["score"] for row in champion_rows] == [item["score"] for item in answer["predictions"]]
    # the challenger scored the same rows in shadow, logged and never returned
    assert [row["model_version"] for row in logged if row["shadow"]] == [shadow, shadow]
    assert all(row["shadowing"] == answer["model_version"] for row in logged if row["shadow"])
    assert set(champion_rows[0]["inputs"]) == set(state.current.champions[MODEL].spec.features)

    code, text = _explained("--project", str(private_project.root), "explain", MODEL, KNOWN,
                            "--request-id", answer["request_id"])
    assert code == 0, text
    score = answer["predictions"][0]["score"]
    assert f"Prediction of {MODEL} for flights flight_id '{KNOWN}', dated 2013-01-31" in text
    assert f"score         {score:.4f} ≥ threshold" in text and "FLAGGED" in text
    assert f"online, request {answer['request_id']} (features precomputed)" in text
    assert f"model         {answer['model_version']}" in text
    assert "SHA-256 verified" in text and "departure_hour" in text
    code, text = _explained("--project", str(private_project.root), "explain", MODEL,
                            "--request-id", answer["request_id"])
    assert code == 2  # two rows in that request: KEY chooses one
    code, text = _explained("--project", str(private_project.root), "explain", MODEL, "2013-02-01-AA1-JFK",
                            "--served")
    assert code == 0 and f"online, request {answer['request_id']}" in text


def test_promotions_and_rollbacks_swap_the_served_version_under_load_without_a_failed_request(private_project):
    state_of_fixture = champion_and_challenger()
    champion, challenger = state_of_fixture.champion, state_of_fixture.challenger
    runs = Runs(private_project)
    answers, failures, stop = [], [], threading.Event()

    def load(client) -> None:
        while not stop.is_set():
            status, answer = client.predict(MODEL, {"keys": {"flight_id": KNOWN}})
            (answers if status == 200 else failures).append(answer)

    with serving(private_project, poll_seconds=0.1) as (client, state):
        workers = [threading.Thread(target=load, args=(client,)) for _ in range(4)]
        for worker in workers:
            worker.start()

        def wait_for(version: str) -> None:
            deadline = time.monotonic() + 60
            while state.current.champions[MODEL].trained.model_version != version:
                assert time.monotonic() < deadline, f"still serving {state.current.champions[MODEL]}"
                time.sleep(0.05)
            served_before = len(answers)
            while len(answers) < served_before + 5:  # requests answered by the new version
                time.sleep(0.01)

        try:
            assert runs.deploy(state_of_fixture.challenger_run).success  # a Dagster run promotes the challenger
            wait_for(challenger)
            catalog = load_catalog(private_project.specs_dir, private_project.root)
            artifacts = ArtifactStore(root=str(private_project.storage.artifacts))
            for target in (champion, challenger, champion):
                with open_warehouse(private_project.storage.warehouse) as connection:
                    rollback(connection, artifacts, catalog, MODEL, target, "hot swap test")
                wait_for(target)
        finally:
            stop.set()
            for worker in workers:
                worker.join()
    assert failures == []
    versions = [answer["model_version"] for answer in answers]
    changes = [version for position, version in enumerate(versions) if position == 0 or version != versions[position - 1]]
    assert changes == [champion, challenger, champion, challenger, champion]
    assert state.reloads >= 4
