"""Features computed on demand once per day and served state: concurrent first requests of a day share one
computation, later requests (whatever their prediction time) reuse it, and a day is scored once per version."""

from __future__ import annotations

import datetime as dt
import threading

import pytest

from ml_platform_tests.evaluation.january import MODEL
from ml_platform_tests.serving.server import serving

pytestmark = pytest.mark.slow

NEW_DAY = dt.date(2013, 2, 2)  # the sources hold its flights; no feature partition of it was materialized


def test_concurrent_first_requests_of_a_new_day_share_one_computation(scored_project):
    with serving(scored_project) as (client, state):
        reader = state.current.reader
        model = state.current.champions[MODEL]
        feature_sets = state.current.catalog.feature_sets_of(model.spec)
        keys = sorted(key for key, day in reader.entity_days("flights").items() if day == NEW_DAY)[:8]
        assert len(keys) == 8
        assert all(NEW_DAY not in reader._stored_days.get(fs.name, ()) for fs in feature_sets)
        answers, barrier = [], threading.Barrier(8)

        def request(key: str) -> None:
            barrier.wait()
            answers.append(client.predict(MODEL, {"keys": {"flight_id": key}}))

        threads = [threading.Thread(target=request, args=(key,)) for key in keys]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert [status for status, _ in answers] == [200] * 8, answers
        assert {answer["predictions"][0]["features_served"] for _, answer in answers} == {"on_demand"}
        # each of the model's feature sets computed once for the day, not once per request
        assert reader.computations.builds == len(feature_sets)
        health = client.request("GET", "/health")[1]
        assert health["computed_on_demand"] == len(feature_sets) and health["days_scored"] == 1

        # later: `on_demand` requests of that day, with any prediction time, read the same computation
        first = {answer["predictions"][0]["keys"]["flight_id"]: answer["predictions"][0] for _, answer in answers}
        status, again = client.predict(MODEL, {"keys": [{"flight_id": key} for key in keys],
                                               "features": "on_demand", "prediction_time": "2013-02-02T23:00:00"})
        assert status == 200, again
        assert [item["score"] for item in again["predictions"]] == [first[key]["score"] for key in keys]
        assert reader.computations.builds == len(feature_sets) and reader.scored.builds == 1

        # a precomputed day asked `on_demand` is computed once too, then served as computed on demand
        status, forced = client.predict(MODEL, {"keys": {"flight_id": "2013-02-01-AA1-JFK"},
                                                "features": "on_demand"})
        assert status == 200 and forced["predictions"][0]["features_served"] == "on_demand", forced
        status, forced_again = client.predict(MODEL, {"keys": {"flight_id": "2013-02-01-AA1-JFK"},
                                                      "features": "on_demand"})
        assert forced_again["predictions"] == forced["predictions"]
        assert reader.computations.builds == 2 * len(feature_sets)
