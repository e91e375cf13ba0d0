"""The JSON schema of spec files, for editors (e.g. yaml-language-server)."""

from __future__ import annotations

from pydantic import TypeAdapter

from ml_platform.specs.models import SpecDocument


def spec_json_schema() -> dict:
    """JSON schema accepting any spec document: a source, a feature set or a model."""
    schema = TypeAdapter(SpecDocument).json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "ml_platform spec (version 1)"
    return schema
