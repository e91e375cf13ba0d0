"""Stable text and short hashes of specs and plain data: the versions every floor computes and compares; and the
SHA-256 of a file's bytes, which names an artifact and versions a source file."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path


def canonical_json(value) -> str:
    """Stable JSON text of a spec or of plain data, for hashing."""
    if hasattr(value, "model_dump"):
        value = value.model_dump(mode="json")
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def short_hash(text: str, length: int = 12) -> str:
    """The first characters of a SHA-256 hex digest of text."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:length]


def file_sha256(path: Path) -> str:
    """SHA-256 hex digest of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
