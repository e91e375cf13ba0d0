"""A predict request's fields checked without a server: what is accepted, and the exact message of what is not."""

from __future__ import annotations

import datetime as dt

import pytest

from ml_platform.serving.errors import BadRequestError
from ml_platform.serving.openapi import openapi_document
from ml_platform.serving.requests import MAX_KEYS, parse_request

KEYS = {"carrier": "VARCHAR", "flight": "INTEGER", "distance": "DOUBLE"}
ROW = {"carrier": "AA", "flight": 1, "distance": 1089.5}


def test_one_row_or_a_list_of_rows_with_a_prediction_time():
    single = parse_request({"keys": ROW, "prediction_time": "2013-01-31T18:00:00"}, KEYS)
    assert single.single and single.keys == (ROW,) and single.features == "auto"
    assert single.prediction_time == dt.datetime(2013, 1, 31, 18)
    several = parse_request({"keys": [ROW, {**ROW, "flight": 2, "distance": 5}], "features": "on_demand"}, KEYS)
    assert not several.single and len(several.keys) == 2 and several.features == "on_demand"


@pytest.mark.parametrize("body, message", [
    ({"keys": {**ROW, "flight": True}}, "keys.flight: must be an integer (INTEGER column), got a boolean"),
    ({"keys": {**ROW, "flight": 1.5}}, "keys.flight: must be an integer (INTEGER column), got a number"),
    ({"keys": {**ROW, "distance": "far"}},
     "keys.distance: must be an integer or a number (DOUBLE column), got a string"),
    ({"keys": [ROW, 3]}, "keys[1]: must be an object of the key columns (carrier, flight, distance), got an integer"),
    ({"keys": [ROW] * (MAX_KEYS + 1)}, f"keys: {MAX_KEYS + 1:,} rows in one request; at most {MAX_KEYS:,} are allowed"),
    ({"keys": ROW, "prediction_time": "2013-01-31T18:00:00+01:00"},
     "prediction_time: '2013-01-31T18:00:00+01:00' carries a time zone offset; give the local time of the "
     "entity's time zone without an offset"),
])
def test_a_mistyped_field_is_named_with_what_is_allowed(body, message):
    with pytest.raises(BadRequestError) as raised:
        parse_request(body, KEYS)
    assert str(raised.value) == message and raised.value.status == 422


def test_the_openapi_document_references_only_schemas_it_defines():
    document = openapi_document()
    defined = set(document["components"]["schemas"])
    text = str(document)
    referenced = {part.split("'")[0] for part in text.split("#/components/schemas/")[1:]}
    assert referenced <= defined and {"PredictBody", "PredictAnswer", "ErrorBody", "Prediction"} <= defined
