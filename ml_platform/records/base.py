"""The base of every record: frozen, no unknown keys, NaN kept through JSON, optional keys left out when unset."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class Record(BaseModel):
    """A frozen pydantic model that rejects unknown keys and writes NaN and infinities as JSON constants."""

    # metrics such as precision are NaN when nothing is flagged: "constants" writes NaN as Python's json does
    model_config = ConfigDict(frozen=True, extra="forbid", ser_json_inf_nan="constants")

    def plain(self) -> dict[str, Any]:
        """The record as plain Python values; optional keys it was made without stay absent, as in the old dicts."""
        return self.model_dump(exclude_unset=True)
