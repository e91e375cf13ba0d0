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


def test_a_scored_days_rows_are_made_as_plain_values_converts_their_columns():
    """scored_day.ScoredDay keeps a day's columns and makes a row JSON-ready when asked for it: every value as
    plain_values gives it, whichever row is asked first, and the same row object when asked again."""
    from ml_platform.serving.scored_day import ScoredDay, _column, _day

    length = 3
    frame = pd.DataFrame({name: pd.Series((column.tolist() * length)[:length], dtype=column.dtype)
                          for name, column in COLUMNS.items()})
    assert dict(frame.dtypes) == {name: column.dtype for name, column in COLUMNS.items()}
    keys = pd.Series(["a", "b", "c"])
    answers = {"score": pd.Series([0.25, np.nan, 1.0]), "decision": pd.Series([True, False, True]),
               "decision_parameter": pd.Series([0.5, 0.5, 0.5])}
    dates = pd.Series(pd.to_datetime(["2013-01-31", "2013-01-31", "2013-01-31"]))
    day = ScoredDay({key: position for position, key in enumerate(keys)}, {"flight_id": _column(keys)},
                    {name: _column(frame[name]) for name in frame.columns}, (dates.tolist(), _day),
                    {name: _column(column) for name, column in answers.items()}, "precomputed")
    assert len(day) == 3 and day.get("z") is None
    for position in (2, 0, 1):
        row = day.get(keys[position])
        expected_inputs = {name: plain_values(frame[name])[position] for name in frame.columns}
        assert json.dumps(row.inputs) == json.dumps(expected_inputs)
        assert [type(value) for value in row.inputs.values()] == [type(value) for value in expected_inputs.values()]
        assert row.keys == {"flight_id": keys[position]} and row.partition_date == "2013-01-31"
        assert json.dumps([row.score, row.decision, row.decision_parameter]) == json.dumps(
            [plain_values(answers[name])[position] for name in ("score", "decision", "decision_parameter")])
        assert row.features_served == "precomputed" and day.get(keys[position]) is row
