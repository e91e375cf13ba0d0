"""Recorded specs as YAML text, block scalars for SQL and other multi-line strings, for reading and diffing."""

from __future__ import annotations

import yaml
from pydantic import ValidationError

from ml_platform.specs.models import KINDS


class _SpecDumper(yaml.SafeDumper):
    """A safe dumper that writes multi-line strings as literal blocks, like the spec files do."""


def _string(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    if "\n" in value.rstrip("\n"):
        style = "|"  # SQL and other text whose lines matter
    elif len(value) > 80:
        style = ">"  # a long sentence, folded as the spec files write it
    else:
        style = None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_SpecDumper.add_representer(str, _string)


def spec_yaml(document: dict) -> str:
    """A spec document as YAML, its fields in the order the spec language declares them."""
    return yaml.dump(declared_order(document), Dumper=_SpecDumper, sort_keys=False, allow_unicode=True, width=110)


def declared_order(document: dict) -> dict:
    """The same document with its fields in the spec language's order (recorded specs are stored sorted).

    Only the order changes, never the content: a field today's language does not know stays, after the known
    ones, and a default added since is not shown, so what is printed is exactly what was recorded.
    """
    kind = KINDS.get(document.get("kind"))
    try:
        template = kind.model_validate(document).model_dump(mode="json") if kind else {}
    except ValidationError:
        template = {}
    return _ordered_like(document, template)


def _ordered_like(value, template):
    if isinstance(value, dict):
        template = template if isinstance(template, dict) else {}
        keys = [key for key in template if key in value] + sorted(key for key in value if key not in template)
        return {key: _ordered_like(value[key], template.get(key)) for key in keys}
    if isinstance(value, list) and isinstance(template, list) and len(template) == len(value):
        return [_ordered_like(item, pattern) for item, pattern in zip(value, template)]
    return value
