"""The base of every record: frozen, no unknown keys, NaN kept through JSON, absent optional keys left out."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, SerializerFunctionWrapHandler, model_serializer


class Record(BaseModel):
    """A frozen pydantic model that rejects unknown keys and writes NaN and infinities as JSON constants.

    An optional field (default None) that is None is left out when dumped, to JSON or to Python: the dicts the
    records replace lacked such keys rather than holding null, and stored JSON keeps that shape.
    """

    # metrics such as precision are NaN when nothing is flagged: "constants" writes NaN as Python's json does
    model_config = ConfigDict(frozen=True, extra="forbid", ser_json_inf_nan="constants")

    @model_serializer(mode="wrap")
    def _leave_out_absent(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data = handler(self)
        for name, field in type(self).model_fields.items():
            if not field.is_required() and field.default is None and getattr(self, name) is None:
                data.pop(name, None)
        return data

    def plain(self) -> dict[str, Any]:
        """The record as plain Python values (nested records as dicts, lists as tuples), in the stored shape."""
        return self.model_dump()
