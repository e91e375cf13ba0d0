"""The append-only log of served predictions: one JSON line per answered row, champion and shadow, with the same
provenance columns as batch predictions plus the request id, when it was served, how its features were served
and the exact inputs the model saw. A line is written whole (one write under a lock, then flushed) before the
answer leaves, so a prediction a client received is always in the log."""

from __future__ import annotations

import datetime as dt
import json
import math
import threading
from pathlib import Path

import numpy as np
import pandas as pd

from ml_platform.names import REQUEST_ID_COLUMN, SERVING_FOLDER, served_log_name
from ml_platform.serving.models import LoadedModel


def plain(value):
    """A JSON-ready value: numpy scalars as Python numbers, NaN, NaT and pandas' NA as null, dates as ISO text."""
    if isinstance(value, (np.generic,)):
        value = value.item()
    if value is None or value is pd.NaT or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, (pd.Timestamp, dt.datetime)):
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def plain_values(values: pd.Series) -> list:
    """plain() of every value of a column, without its per-value checks where the column's numpy type settles
    them: floats (NaN as null), integers and booleans as Python numbers; any other column value by value."""
    dtype = values.dtype
    if isinstance(dtype, np.dtype) and dtype.kind == "f":
        return [None if value != value else value for value in values.tolist()]  # NaN is the one value != itself
    if isinstance(dtype, np.dtype) and dtype.kind in "iub":
        return values.tolist()
    return [plain(value) for value in values.tolist()]


def log_path(data_dir: Path, model: str) -> Path:
    """Where a model's served predictions are logged."""
    return data_dir / SERVING_FOLDER / served_log_name(model)


class ServedLog:
    """Appends served rows to each model's log file."""

    def __init__(self, data_dir: Path):
        self.data_dir = data_dir
        self._lock = threading.Lock()

    def append(self, model: LoadedModel, rows: list, request_id: str, served_at: dt.datetime,
               prediction_time: dt.datetime | None, shadow: bool, shadowing: str | None = None) -> None:
        """Log every row (`scored_day.ServedRow`) of one request scored by one model version."""
        common = {REQUEST_ID_COLUMN: request_id, "served_at": served_at.isoformat(), "model": model.name,
                  "shadow": shadow, "shadowing": shadowing}
        provenance = model.provenance()
        moment = prediction_time.isoformat() if prediction_time else None
        lines = [json.dumps({**common, "keys": row.keys, "partition_date": row.partition_date,
                             "prediction_time": moment, "score": row.score, "decision": row.decision,
                             "decision_parameter": row.decision_parameter, "features_served": row.features_served,
                             "inputs": row.inputs, **provenance}, separators=(",", ":")) + "\n" for row in rows]
        path = log_path(self.data_dir, model.name)
        with self._lock:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "a", encoding="utf-8") as handle:
                handle.write("".join(lines))
                handle.flush()
