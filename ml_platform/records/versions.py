"""The version of one stored partition (registry.partition_versions): a hash of what it was computed from."""

from __future__ import annotations

from typing import Any

from ml_platform.records.base import Record


class PartitionVersion(Record):
    """A partition's version and the components (definition, code, input versions) it hashes."""

    version: str
    components: dict[str, Any]
