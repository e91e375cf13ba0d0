"""The shape of error text, independent of the spec models: where, field paths without pydantic's tags, ordering."""

from __future__ import annotations

from typing import Annotated, Union

import pytest
from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError

from ml_platform.specs.errors import SpecError, SpecErrors, from_validation_error, unknown_name


def _not_negative(value: int) -> int:
    if value < 0:
        raise ValueError("must not be negative")
    return value


class _Size(BaseModel):
    model_config = ConfigDict(extra="forbid")
    size: Union[Annotated[int, AfterValidator(_not_negative)], Annotated[str, AfterValidator(str.strip)]]


class _Document(BaseModel):
    model_config = ConfigDict(extra="forbid")
    parts: dict[str, _Size]


def _errors(raw: dict) -> list[str]:
    with pytest.raises(ValidationError) as caught:
        _Document.model_validate(raw)
    return [str(error) for error in from_validation_error(caught.value, raw, _Document, "f.yaml", "model", "m")]


def test_field_paths_drop_the_validator_tags_pydantic_inserts():
    assert _errors({"parts": {"wheel": {"size": -2}}}) == [
        "f.yaml: model 'm', field 'parts.wheel.size': must not be negative (given -2)",
        "f.yaml: model 'm', field 'parts.wheel.size': Input should be a valid string (given -2)",
    ]


def test_unknown_field_inside_a_mapping_value():
    assert _errors({"parts": {"wheel": {"size": 1, "colour": "red"}}}) == [
        "f.yaml: model 'm', field 'parts.wheel': unknown field 'colour' (allowed: size)"]


def test_missing_field_is_kept_even_when_absent_from_the_document():
    assert _errors({"parts": {"wheel": {}}}) == ["f.yaml: model 'm', field 'parts.wheel.size': missing required field"]


def test_where_an_error_is():
    assert str(SpecError("a.yaml", "", "bad")) == "a.yaml: bad"
    assert str(SpecError("a.yaml", "kind", "bad")) == "a.yaml, field 'kind': bad"
    assert str(SpecError("a.yaml", "kind", "bad", None, "x")) == "a.yaml: spec 'x', field 'kind': bad"
    assert str(SpecError("a.yaml", "sql", "bad", "feature_set", "x")) == "a.yaml: feature set 'x', field 'sql': bad"


def test_errors_are_listed_by_file_then_field_in_natural_order():
    errors = SpecErrors([SpecError("b.yaml", "name", "z"), SpecError("a.yaml", "features[10]", "y"),
                         SpecError("a.yaml", "features[9]", "x")])

    assert str(errors) == ("3 errors in the specs:\n  - a.yaml, field 'features[9]': x\n"
                           "  - a.yaml, field 'features[10]': y\n  - b.yaml, field 'name': z")
    assert str(SpecErrors([SpecError("a.yaml", "", "bad")])) == "1 error in the specs:\n  - a.yaml: bad"


def test_unknown_name_when_nothing_is_declared():
    assert unknown_name("source", "flights", []) == "unknown source 'flights' (allowed: none are declared)"
