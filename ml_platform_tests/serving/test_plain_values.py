"""plain_values converts a column at a time to exactly what plain() gives value by value (the served answers and
the log depend on it)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from ml_platform.serving.log import plain, plain_values

COLUMNS = {
    "float with NaN": pd.Series([0.1 + 0.2, np.nan, -0.0, 1e300], dtype="float64"),
    "float32": pd.Series([0.1, np.nan], dtype="float32"),
    "integers": pd.Series([1, -2, 2 ** 40], dtype="int64"),
    "int32": pd.Series([7, 8], dtype="int32"),
    "booleans": pd.Series([True, False]),
    "nullable integers": pd.Series([1, None, 3], dtype="Int32"),
    "text with missing": pd.Series(["JFK", None, np.nan], dtype=object),
    "times": pd.Series(pd.to_datetime(["2013-01-31 18:00", None])),
    "dates": pd.Series([pd.Timestamp("2013-01-31").date(), None], dtype=object),
}


@pytest.mark.parametrize("name", list(COLUMNS))
def test_a_column_converts_as_each_of_its_values_does(name):
    column = COLUMNS[name]
    expected = [plain(value) for value in column.tolist()]
    got = plain_values(column)
    assert json.dumps(got) == json.dumps(expected)  # every value, its type and every bit of a float
    assert [type(value) for value in got] == [type(value) for value in expected]
