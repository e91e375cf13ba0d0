"""Stable text and short hashes of specs and plain data: the versions every floor computes and compares."""

from __future__ import annotations

import hashlib
import json


def canonical_json(value) -> str:
    """Stable JSON text of a spec or of plain data, for hashing."""
    if hasattr(value, "model_dump"):
        value = value.model_dump(mode="json")
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def short_hash(text: str, length: int = 12) -> str:
    """The first characters of a SHA-256 hex digest of text."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:length]
