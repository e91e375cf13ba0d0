"""Spec errors a person can act on: file, spec, field, what was given, what is allowed, and a "did you mean"."""

from __future__ import annotations

import difflib
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

from pydantic import ValidationError


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
        if self.kind and self.name:
            where += f": {self.kind.replace('_', ' ')} '{self.name}'"
        if self.field:
            where += f", field '{self.field}'"
        return f"{where}: {self.message}"


class SpecErrors(Exception):
    """Every error found while loading the specs, raised together so that one run shows them all."""

    def __init__(self, errors: Sequence[SpecError]):
        self.errors = tuple(sorted(errors, key=lambda error: (error.file, error.field, error.message)))
        count = len(self.errors)
        lines = [f"{count} error{'s' if count != 1 else ''} in the specs:"]
        lines += [f"  - {error}" for error in self.errors]
        super().__init__("\n".join(lines))


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


def _field_path(raw: Any, loc: tuple) -> str:
    """Turn a pydantic error location into the path the user wrote, dropping union tags pydantic inserts."""
    parts: list[str] = []
    current = raw
    for element in loc:
        if isinstance(element, int):
            parts.append(f"[{element}]")
            current = current[element] if isinstance(current, list) and element < len(current) else None
            continue
        if isinstance(current, dict) and element not in current and current.get("kind") == element:
            continue  # the discriminator tag of a union, not a field the user wrote
        if isinstance(current, dict) and element not in current and element.startswith(("function-", "str")):
            continue
        parts.append(f".{element}" if parts else str(element))
        current = current.get(element) if isinstance(current, dict) else None
    return "".join(parts)


def _allowed_fields(model: type, raw: Any, loc: tuple) -> list[str]:
    """The field names the model allows at the location of an unknown field."""
    from pydantic import BaseModel

    annotation: Any = model
    current_raw = raw
    for element in loc[:-1]:
        annotation = _resolve(annotation, current_raw)
        if isinstance(current_raw, dict) and element not in current_raw and current_raw.get("kind") == element:
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
            return []
        current_raw = current_raw[element] if _has(current_raw, element) else None
    annotation = _resolve(annotation, current_raw)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return list(annotation.model_fields)
    return []


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
        kind_of_error = item["type"]
        if kind_of_error == "extra_forbidden":
            allowed = _allowed_fields(model, raw, loc)
            unknown = str(loc[-1])
            message = f"unknown field '{unknown}'{did_you_mean(unknown, allowed)} (allowed: {', '.join(allowed)})"
            field = _field_path(raw, loc[:-1])
        elif kind_of_error == "missing":
            message = "missing required field"
        elif kind_of_error in ("literal_error", "union_tag_invalid"):
            expected = item.get("ctx", {}).get("expected") or item.get("ctx", {}).get("expected_tags", "")
            allowed = [part.strip(" '\"") for part in str(expected).replace(" or ", ",").split(",") if part.strip()]
            if kind_of_error == "union_tag_invalid":
                given = item.get("ctx", {}).get("tag", given)
                field = f"{field}.kind" if field else "kind"
            message = f"given {given!r}{did_you_mean(str(given), allowed)} (allowed: {', '.join(allowed)})"
        elif kind_of_error == "union_tag_not_found":
            message = "missing field 'kind' that says which variant this is"
        else:
            text = item["msg"].removeprefix("Value error, ")
            message = f"{text} (given {given!r})" if _short(given) else text
        result.append(SpecError(file=file, field=field, message=message, kind=kind, name=name))
    return result


def _short(value: Any) -> bool:
    """True for a given value that is small enough to echo in a message."""
    return isinstance(value, (str, int, float, bool)) and len(str(value)) <= 80
