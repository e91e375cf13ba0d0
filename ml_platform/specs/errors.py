"""Spec errors a person can act on: file, spec, field, what was given, what is allowed, and a "did you mean"."""

from __future__ import annotations

import difflib
import re
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

from pydantic import ValidationError

from ml_platform.errors import PlatformError
from ml_platform.specs.models import IDENTIFIER_PATTERN


# What the patterns of the spec language mean, in words; a pattern missing here is shown as it is.
PATTERN_MEANINGS = {
    IDENTIFIER_PATTERN: "lower-case snake_case: a letter, then up to 62 lower-case letters, digits or _",
    r"^(team:[A-Za-z0-9_-]+|[^@\s]+@[^@\s]+\.[^@\s]+)$": "an e-mail address or team:<name>",
    r"^([01][0-9]|2[0-3]):[0-5][0-9]$": "a time of day as HH:MM, from 00:00 to 23:59",
    r"^[A-Za-z_][A-Za-z0-9_]*$": "an importable package name: letters, digits or _",
}


@dataclass(frozen=True)
class SpecError:
    """One problem in one spec file."""

    file: str
    field: str
    message: str
    kind: str | None = None
    name: str | None = None

    def __str__(self) -> str:
        where = self.file
        if self.name:  # "spec" when the kind itself is what is wrong
            where += f": {(self.kind or 'spec').replace('_', ' ')} '{self.name}'"
        if self.field:
            where += f", field '{self.field}'"
        return f"{where}: {self.message}"


class SpecErrors(PlatformError):
    """Every error found while loading the specs, raised together so that one run shows them all."""

    def __init__(self, errors: Sequence[SpecError]):
        self.errors = tuple(sorted(errors, key=lambda error: (error.file, natural_key(error.field), error.message)))
        count = len(self.errors)
        lines = [f"{count} error{'s' if count != 1 else ''} in the specs:"]
        lines += [f"  - {error}" for error in self.errors]
        super().__init__("\n".join(lines))


def natural_key(text: str) -> tuple:
    """A sort key that puts 'features[2]' before 'features[10]'."""
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text))


def did_you_mean(given: str, allowed: Iterable[str]) -> str:
    """A ' did you mean ...?' suffix naming the closest allowed value, or an empty string."""
    matches = difflib.get_close_matches(str(given), list(allowed), n=1, cutoff=0.6)
    return f"; did you mean '{matches[0]}'?" if matches else ""


def unknown_name(what: str, given: str, allowed: Iterable[str]) -> str:
    """The message for a name that refers to nothing: given, did you mean, and what is allowed."""
    allowed = sorted(allowed)
    listing = ", ".join(allowed) if allowed else "none are declared"
    return f"unknown {what} '{given}'{did_you_mean(given, allowed)} (allowed: {listing})"


def display_path(path: Path, root: Path | None) -> str:
    """The path relative to root when it lies inside it, for shorter messages."""
    if root is not None:
        try:
            return str(path.resolve().relative_to(root.resolve()))
        except ValueError:
            pass
    return str(path)


# Location elements pydantic inserts for its own validators (`function-after[...]`, `[key]`, `str`, ...): never
# field names, which are identifiers.
_INTERNAL_TAG = re.compile(r"^([a-z][a-z-]*\[.*\]|\[key\]|str|int|float|bool|none)$")


def _is_internal(current: Any, element: Any) -> bool:
    """True for a location element pydantic added: a union's tag or a validator's name, not a field written."""
    if isinstance(current, dict) and element in current:
        return False
    if isinstance(current, dict) and current.get("kind") == element:
        return True  # the discriminator tag of a union
    return bool(_INTERNAL_TAG.match(str(element)))


def _field_path(raw: Any, loc: tuple) -> str:
    """Turn a pydantic error location into the path the user wrote, dropping the tags pydantic inserts."""
    parts: list[str] = []
    current = raw
    for element in loc:
        if isinstance(element, int):
            parts.append(f"[{element}]")
            current = current[element] if isinstance(current, list) and element < len(current) else None
            continue
        if _is_internal(current, element):
            continue
        parts.append(f".{element}" if parts else str(element))
        current = current.get(element) if isinstance(current, dict) else None
    return "".join(parts)


def _annotation_at(model: type, raw: Any, loc: tuple) -> Any:
    """The type annotation that applies at a pydantic error location (None when it cannot be followed)."""
    from pydantic import BaseModel

    annotation: Any = model
    current_raw = raw
    for element in loc:
        annotation = _resolve(annotation, current_raw)
        if not isinstance(element, int) and _is_internal(current_raw, element):
            continue
        origin = typing.get_origin(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            field = annotation.model_fields.get(element)
            annotation = field.annotation if field is not None else None
        elif origin is dict:
            annotation = typing.get_args(annotation)[1]
        elif origin is list:
            annotation = typing.get_args(annotation)[0]
        else:
            return None
        current_raw = current_raw[element] if _has(current_raw, element) else None
    return annotation


def _allowed_fields(model: type, raw: Any, loc: tuple) -> list[str]:
    """The field names the model allows at a location (for an unknown field, the location of its parent)."""
    from pydantic import BaseModel

    annotation = _resolve(_annotation_at(model, raw, loc), _value_at(raw, loc))
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return list(annotation.model_fields)
    return []


def _allowed_kinds(model: type, raw: Any, loc: tuple) -> list[str]:
    """The `kind` values of the union members allowed at a location."""
    annotation = _annotation_at(model, raw, loc)
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    kinds: list[str] = []
    for member in typing.get_args(annotation):
        kind_field = getattr(member, "model_fields", {}).get("kind")
        if kind_field is not None:
            kinds += [str(value) for value in typing.get_args(kind_field.annotation)]
    return kinds


def _value_at(raw: Any, loc: tuple) -> Any:
    """The raw value the user wrote at a location, skipping pydantic's tags (None when absent)."""
    current = raw
    for element in loc:
        if not isinstance(element, int) and _is_internal(current, element):
            continue
        current = current[element] if _has(current, element) else None
    return current


def _has(container: Any, element: Any) -> bool:
    if isinstance(container, dict):
        return element in container
    return isinstance(container, list) and isinstance(element, int) and element < len(container)


def _resolve(annotation: Any, raw: Any) -> Any:
    """Unwrap Annotated and Optional, and pick the union member whose `kind` matches the raw value."""
    from pydantic import BaseModel

    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        members = [_resolve(member, raw) for member in typing.get_args(annotation) if member is not type(None)]
        models = [member for member in members if isinstance(member, type) and issubclass(member, BaseModel)]
        for member in models:
            kind_field = member.model_fields.get("kind")
            if kind_field is not None and isinstance(raw, dict) and raw.get("kind") in typing.get_args(
                    kind_field.annotation):
                return member
        return models[0] if len(models) == 1 else (members[0] if len(members) == 1 else None)
    return annotation


def from_validation_error(
    error: ValidationError, raw: dict, model: type, file: str, kind: str | None, name: str | None
) -> list[SpecError]:
    """Convert pydantic's errors into SpecErrors that say what was given and what is allowed."""
    result = []
    for item in error.errors(include_url=False):
        loc = tuple(item["loc"])
        field = _field_path(raw, loc)
        given = item.get("input")
        context = item.get("ctx") or {}
        kind_of_error = item["type"]
        if kind_of_error == "extra_forbidden":
            allowed = _allowed_fields(model, raw, loc[:-1])
            unknown = str(loc[-1])
            message = f"unknown field '{unknown}'{did_you_mean(unknown, allowed)} (allowed: {', '.join(allowed)})"
            field = _field_path(raw, loc[:-1])
        elif kind_of_error == "missing":
            message = "missing required field"
        elif kind_of_error in ("literal_error", "union_tag_invalid"):
            expected = context.get("expected") or context.get("expected_tags", "")
            allowed = [part.strip(" '\"") for part in str(expected).replace(" or ", ",").split(",") if part.strip()]
            if kind_of_error == "union_tag_invalid":
                given = context.get("tag", given)
                field = f"{field}.kind" if field else "kind"
            message = f"given {given!r}{did_you_mean(str(given), allowed)} (allowed: {', '.join(allowed)})"
        elif kind_of_error == "union_tag_not_found":
            allowed = _allowed_kinds(model, raw, loc)
            field = f"{field}.kind" if field else "kind"
            message = f"missing required field (allowed: {', '.join(allowed)})"
        elif kind_of_error == "string_pattern_mismatch":
            pattern = context.get("pattern")
            meaning = PATTERN_MEANINGS.get(pattern, f"text matching the pattern {pattern}")
            subject = "the name " if loc and loc[-1] == "[key]" else ""  # a mapping's key, e.g. a column name
            message = f"{subject}must be {meaning} (given {given!r})"
        elif kind_of_error in ("model_type", "model_attributes_type", "dict_type"):
            fields, kinds = _allowed_fields(model, raw, loc), _allowed_kinds(model, raw, loc)
            shape = (f"a mapping with the fields {', '.join(fields)}" if fields else
                     f"a mapping with a field 'kind', one of: {', '.join(kinds)}" if kinds else "a mapping")
            message = f"must be {shape}" + (f" (given {given!r})" if _short(given) else "")
        else:
            text = item["msg"].removeprefix("Value error, ")
            echo = _short(given, containers=kind_of_error.endswith("_type"))  # a list where text was expected
            message = f"{text} (given {given!r})" if echo and repr(given) not in text else text
        result.append(SpecError(file=file, field=field, message=message, kind=kind, name=name))
    return result


def _short(value: Any, containers: bool = False) -> bool:
    """True for a given value that is small enough to echo in a message (lists and mappings only if asked)."""
    kinds = (str, int, float, bool, list, dict) if containers else (str, int, float, bool)
    return isinstance(value, kinds) and len(repr(value)) <= 80
