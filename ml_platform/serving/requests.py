"""A predict request, checked field by field: the entity keys (one object or a list), an optional prediction time
and how features are to be served. Every problem becomes a BadRequestError naming the field and what is allowed."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from ml_platform.serving.errors import BadRequestError

FEATURE_MODES = ("auto", "on_demand")
MAX_KEYS = 10_000
FIELDS = ("keys", "prediction_time", "features")
# the JSON values a key column of each DuckDB type accepts
_ACCEPTED = {"VARCHAR": (str,), "BIGINT": (int,), "INTEGER": (int,), "SMALLINT": (int,), "HUGEINT": (int,),
             "DOUBLE": (int, float), "FLOAT": (int, float), "DATE": (str,), "TIMESTAMP": (str,)}
# key columns of these types are given as ISO 8601 text and held as datetimes (a date as its midnight), as the
# served indexes hold them (`keys.key_value`)
_TEMPORAL = {"DATE": ("an ISO date", "2013-05-20"), "TIMESTAMP": ("an ISO local time", "2013-03-02T14:00:00")}
_JSON_NAMES = {str: "a string", int: "an integer", float: "a number"}


@dataclass(frozen=True)
class PredictRequest:
    """A checked request: one dict of key values per entity row, in the order given."""

    keys: tuple[dict, ...]
    single: bool  # `keys` was one object, so the answer holds one prediction
    prediction_time: dt.datetime | None
    features: str


def shown(values: dict, key_types: dict[str, str]) -> dict:
    """A request's key values as the client wrote them: a DATE key's as an ISO date, a TIMESTAMP key's as an ISO
    time (they are held as datetimes)."""
    def text(name: str, value):
        if not isinstance(value, dt.date):
            return value
        return value.date().isoformat() if key_types.get(name) == "DATE" else value.isoformat()

    return {name: text(name, value) for name, value in values.items()}


def _json_kind(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    return {str: "a string", int: "an integer", float: "a number", list: "a list", dict: "an object"}.get(
        type(value), type(value).__name__)


def _checked_keys(item, where: str, key_types: dict[str, str]) -> dict:
    if not isinstance(item, dict):
        raise BadRequestError(f"{where}: must be an object of the key columns ({', '.join(key_types)}), "
                              f"got {_json_kind(item)}")
    unknown = sorted(set(item) - set(key_types))
    if unknown:
        raise BadRequestError(f"{where}: unknown key column(s) {', '.join(unknown)} (the entity's keys: "
                              f"{', '.join(key_types)})")
    missing = [name for name in key_types if name not in item]
    if missing:
        raise BadRequestError(f"{where}: missing key column(s) {', '.join(missing)} (the entity's keys: "
                              f"{', '.join(key_types)})")
    checked = {}
    for name, kind in key_types.items():
        value = item[name]
        accepted = _ACCEPTED.get(kind, (str,))
        if isinstance(value, bool) or not isinstance(value, accepted):
            allowed = " or ".join(_JSON_NAMES[python] for python in accepted)
            raise BadRequestError(f"{where}.{name}: must be {allowed} ({kind} column), got {_json_kind(value)}")
        checked[name] = _temporal(value, f"{where}.{name}", kind) if kind in _TEMPORAL else value
    return checked


def _temporal(value: str, where: str, kind: str) -> dt.datetime:
    """A DATE or TIMESTAMP key given as ISO text, as a naive datetime (a date: its midnight)."""
    what, example = _TEMPORAL[kind]
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise BadRequestError(f"{where}: {value!r} is not {what} ({kind} column; for example {example})") from None
    if moment.tzinfo is not None or (kind == "DATE" and moment.time() != dt.time()):
        raise BadRequestError(f"{where}: {value!r} is not {what} ({kind} column; for example {example}, "
                              f"without {'a time zone offset' if moment.tzinfo else 'a time of day'})")
    return moment


def parse_prediction_time(value) -> dt.datetime | None:
    """The request's prediction time, a naive local ISO 8601 time (the entity's time zone), or None."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadRequestError(f"prediction_time: must be an ISO 8601 local time as a string (for example "
                              f"2013-01-31T18:00:00), got {_json_kind(value)}")
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise BadRequestError(f"prediction_time: '{value}' is not an ISO 8601 time (for example "
                              f"2013-01-31T18:00:00)") from None
    if moment.tzinfo is not None:
        raise BadRequestError(f"prediction_time: '{value}' carries a time zone offset; give the local time of the "
                              f"entity's time zone without an offset")
    return moment


def parse_request(body, key_types: dict[str, str]) -> PredictRequest:
    """Check a decoded JSON body against the entity's key columns (name: DuckDB type)."""
    if not isinstance(body, dict):
        raise BadRequestError(f"body: must be a JSON object with `keys`, got {_json_kind(body)}")
    unknown = sorted(set(body) - set(FIELDS))
    if unknown:
        raise BadRequestError(f"body: unknown field(s) {', '.join(unknown)} (allowed: {', '.join(FIELDS)})")
    if "keys" not in body:
        raise BadRequestError("keys: missing; give {\"keys\": {...}} for one row or {\"keys\": [{...}, ...]} "
                              "for several")
    given = body["keys"]
    single = isinstance(given, dict)
    if single:
        keys = (_checked_keys(given, "keys", key_types),)
    elif isinstance(given, list):
        if not given:
            raise BadRequestError("keys: the list is empty; give at least one row's keys")
        if len(given) > MAX_KEYS:
            raise BadRequestError(f"keys: {len(given):,} rows in one request; at most {MAX_KEYS:,} are allowed")
        keys = tuple(_checked_keys(item, f"keys[{position}]", key_types) for position, item in enumerate(given))
        seen = set()
        for position, item in enumerate(keys):
            identity = tuple(item.values())
            if identity in seen:
                raise BadRequestError(f"keys[{position}]: the same row is requested twice ({shown(item, key_types)})")
            seen.add(identity)
    else:
        raise BadRequestError(f"keys: must be an object (one row) or a list of objects, got {_json_kind(given)}")
    features = body.get("features", "auto")
    if features not in FEATURE_MODES:
        raise BadRequestError(f"features: must be one of {', '.join(FEATURE_MODES)}, got {features!r}")
    return PredictRequest(keys, single, parse_prediction_time(body.get("prediction_time")), features)
