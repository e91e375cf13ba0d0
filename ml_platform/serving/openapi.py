"""The service's OpenAPI description, its schemas generated from typed pydantic models of the bodies."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ml_platform.serving.requests import FEATURE_MODES, MAX_KEYS


class PredictBody(BaseModel):
    """A predict request."""

    model_config = ConfigDict(extra="forbid")
    keys: dict[str, Any] | list[dict[str, Any]] = Field(
        description=f"the entity's key columns of one row, or a list of them (at most {MAX_KEYS:,}); a population's "
                    f"row also names its partition: `partition_date` (the period's first day, ISO date), or an "
                    f"hourly row's `partition_start` (ISO local time)")
    prediction_time: str | None = Field(
        None, description="local ISO 8601 time the request is made at (no later than the data, no earlier than "
                          "the rows' features are known); the features are those known at each row's prediction "
                          "time, as batch scoring computes them")
    features: str = Field("auto", description=f"one of {', '.join(FEATURE_MODES)}: `auto` serves precomputed "
                                              f"partitions and computes missing days; `on_demand` computes always")


class Prediction(BaseModel):
    """One row's answer."""

    keys: dict[str, Any]
    partition_date: str
    score: float = Field(description="the model's score: a probability, or the predicted number")
    decision: Any = Field(description="what the spec's decision decides: flagged (threshold; top: among the "
                                      "day's best rows, ranked over the whole day as batch scoring ranks it), a "
                                      "quantity, a class")
    decision_kind: str
    decision_parameter: float | None
    features_served: str = Field(description="precomputed or on_demand")


class PredictAnswer(BaseModel):
    """The answer: the predictions and the provenance of the version that made them."""

    request_id: str
    model: str
    model_version: str
    spec_hash: str
    snapshot_id: str
    training_run: str
    code_version: str
    promotion_id: int | None
    served_at: str
    predictions: list[Prediction]


class ErrorBody(BaseModel):
    """A refused or failed request."""

    error: str
    request_id: str


def openapi_document() -> dict:
    """The OpenAPI 3.1 document of the service."""
    schemas = {model.__name__: model.model_json_schema(ref_template="#/components/schemas/{model}")
               for model in (PredictBody, PredictAnswer, ErrorBody)}
    for schema in list(schemas.values()):
        schemas.update(schema.pop("$defs", {}))

    def body(name: str) -> dict:
        return {"content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}}}

    errors = {str(status): {"description": text, **body("ErrorBody")} for status, text in (
        (400, "the body is not JSON"), (404, "unknown model or key"), (422, "a missing or mistyped field, or a "
        "prediction time outside the data"), (500, "internal fault (the request id names it in the server log)"),
        (503, "the model cannot be served"))}
    return {"openapi": "3.1.0", "info": {"title": "ml_platform online predictions", "version": "1"},
            "paths": {
                "/v1/models/{name}/predict": {"post": {
                    "summary": "Score entity rows with the model's live champion",
                    "parameters": [{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}],
                    "requestBody": {"required": True, **body("PredictBody")},
                    "responses": {"200": {"description": "the predictions", **body("PredictAnswer")}, **errors}}},
                "/health": {"get": {"summary": "Served models and reload status",
                                    "responses": {"200": {"description": "status"}}}}},
            "components": {"schemas": schemas}}
