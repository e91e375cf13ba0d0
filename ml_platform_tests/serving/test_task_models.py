"""Every kind of decision is served as batch scoring decided it: a regression's quantity, a multiclass model's class
and a binary model acting on the best rows of each day (`top`, a ranking of the whole day) are deployed on January,
February 1 is scored in batch, and a real server answers every row of that day with the batch's prediction,
decision and decision parameter (`==`), from the precomputed partitions and from features computed on demand."""

from __future__ import annotations

import datetime as dt

import pytest

from ml_platform import names
from ml_platform_tests.evaluation.january import MODEL
from ml_platform_tests.evaluation.test_task_chain import MULTICLASS, REGRESSION
from ml_platform_tests.helpers import january_model
from ml_platform_tests.scoring.test_task_scoring import TOP_VALUE, deployed
from ml_platform_tests.serving.server import serving

# three models trained and deployed through Dagster runs, a real server: the full suite only
pytestmark = pytest.mark.slow

FEBRUARY_1 = dt.date(2013, 2, 1)
TOP = january_model(money={"currency": "USD", "decision": {"kind": "top", "count": 40}, "value": TOP_VALUE})


def _stored(runs) -> dict[str, tuple]:
    return {key: (prediction, decision, parameter) for key, prediction, decision, parameter in runs.query(
        f"SELECT flight_id, prediction, decision, decision_parameter FROM {names.predictions_table(MODEL)} "
        f"WHERE partition_date = DATE '2013-02-01'")}


def _served(client, keys: list[str], features: str) -> dict[str, dict]:
    status, answer = client.predict(MODEL, {"keys": [{"flight_id": key} for key in keys], "features": features})
    assert status == 200, answer
    return {item["keys"]["flight_id"]: item for item in answer["predictions"]}


@pytest.mark.parametrize("document, kind", [(REGRESSION, "quantity"), (MULTICLASS, "class"), (TOP, "top")],
                         ids=["regression-quantity", "multiclass-class", "binary-top"])
def test_each_kind_of_decision_is_served_as_batch_scoring_decided_it(tmp_path, dagster_home, document, kind):
    runs, record = deployed(tmp_path, document)
    scored = runs.score(FEBRUARY_1, FEBRUARY_1)
    assert scored.success, scored.failures
    stored = _stored(runs)
    assert len(stored) > 300

    with serving(runs.project) as (client, _):
        precomputed = _served(client, sorted(stored), "auto")
        # the day computed again by the server, asked for a few rows: a `top` row's rank is still the day's
        sample = sorted(stored)[::40]
        on_demand = _served(client, sample, "on_demand")

    assert set(precomputed) == set(stored)
    for served, features in ((precomputed, "precomputed"), (on_demand, "on_demand")):
        for key, item in served.items():
            assert (item["score"], item["decision"], item["decision_parameter"]) == stored[key], key
            assert item["decision_kind"] == kind and item["features_served"] == features
    assert all(item["decision_parameter"] == record.decision_parameter for item in precomputed.values())
    decisions = [item["decision"] for item in precomputed.values()]
    if kind == "top":  # the day's best rows, as many as the parameter chosen on validation
        assert sum(decisions) == record.decision_parameter < len(decisions)
        lowest_acted = min(item["score"] for item in precomputed.values() if item["decision"])
        assert lowest_acted >= max(item["score"] for item in precomputed.values() if not item["decision"])
    elif kind == "class":
        assert set(decisions) <= set(MULTICLASS["label"]["classes"]) and len(set(decisions)) > 1
    else:
        assert all(isinstance(value, float) for value in decisions)
