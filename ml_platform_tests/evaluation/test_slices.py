"""Money by each declared slice: values, deciles, missing values, the older slice_column, and where they show."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml_platform.evaluation.evaluate import summarize
from ml_platform.evaluation.money import OutcomeValues
from ml_platform.evaluation.plots import PLOTS, draw_plots, plot_title
from ml_platform.evaluation.report import render_report
from ml_platform.evaluation.slices import SliceError, money_by_slices, slice_money
from ml_platform.records.evaluation import EvaluationSummary, SliceMoney
from ml_platform.specs.models import ModelSpec
from ml_platform_tests.evaluation.test_plots_and_report import summary as legacy_summary
from ml_platform_tests.helpers import january_model

ROWS = 900


def model_slicing(*names: str) -> ModelSpec:
    document = january_model(slices=list(names))
    del document["slice_column"]
    return ModelSpec.model_validate(document)


def scored_rows(seed: int = 2) -> tuple[pd.DataFrame, np.ndarray]:
    """Scored test rows with an entity column, a continuous feature with missing values, a small integer feature,
    a boolean and a date column."""
    generator = np.random.default_rng(seed)
    scores = generator.random(ROWS)
    distance = generator.random(ROWS) * 2000
    distance[:45] = np.nan
    frame = pd.DataFrame({
        "label": generator.random(ROWS) < scores,
        "partition_date": pd.to_datetime(np.repeat(["2013-01-26", "2013-01-27", "2013-01-28"], ROWS // 3)),
        "money_true_positive": 400.0, "money_false_positive": -100.0,
        "money_false_negative": 0.0, "money_true_negative": 0.0,
        "slice__origin": generator.choice(["EWR", "JFK", "LGA", None], ROWS),
        "distance_miles": distance,
        "day_of_week": generator.integers(1, 8, ROWS),
        "slice__is_holiday": generator.random(ROWS) < 0.2,
        "slice__partition_date": pd.to_datetime(np.repeat(["2013-01-26", "2013-01-27", "2013-01-28"], ROWS // 3))})
    return frame, scores


def tables_of(*names: str):
    frame, scores = scored_rows()
    flags = scores >= 0.3
    outcomes = OutcomeValues.from_frame(frame)
    return money_by_slices(model_slicing(*names), frame, flags, outcomes), outcomes.money(flags), flags


def test_every_declared_slice_adds_up_to_the_test_money_in_the_spec_order():
    names = ("origin", "distance_miles", "day_of_week", "is_holiday", "partition_date")
    tables, money, flags = tables_of(*names)
    assert [table.name for table in tables] == list(names)
    for table in tables:
        assert sum(row.rows for row in table.rows) == ROWS, table.name
        assert sum(row.flagged for row in table.rows) == int(flags.sum()), table.name
        assert sum(row.money for row in table.rows) == pytest.approx(money), table.name


def test_text_slices_by_value_most_money_first_and_missing_values_are_a_slice():
    (origin,), _, _ = tables_of("origin")
    assert origin.binning == "values"
    assert {row.slice for row in origin.rows} == {"EWR", "JFK", "LGA", "(missing)"}
    assert [row.money for row in origin.rows] == sorted((row.money for row in origin.rows), reverse=True)


def test_a_continuous_number_is_cut_into_deciles_in_order_with_its_missing_values_last():
    (distance,), _, _ = tables_of("distance_miles")
    frame, _ = scored_rows()
    assert distance.binning == "deciles"
    labels = [row.slice for row in distance.rows]
    assert len(labels) == 11 and labels[-1] == "(missing)" and distance.rows[-1].rows == 45
    bins = distance.rows[:-1]
    assert all(row.rows in (85, 86) for row in bins)  # 855 present values in ten bins of nearly equal size
    assert labels[0].startswith("[") and labels[0].endswith(")") and labels[-2].endswith("]")
    lows = [float(label[1:].split(",")[0]) for label in labels[:-1]]
    assert lows == sorted(lows) and lows[0] == pytest.approx(np.nanmin(frame["distance_miles"]), rel=1e-3)


def test_few_distinct_numbers_booleans_and_dates_slice_by_value():
    day, holiday, date = tables_of("day_of_week", "is_holiday", "partition_date")[0]
    assert day.binning == "values" and sorted(row.slice for row in day.rows) == [1, 2, 3, 4, 5, 6, 7]
    assert holiday.binning == "values" and {row.slice for row in holiday.rows} == {True, False}
    assert sorted(row.slice for row in date.rows) == ["2013-01-26", "2013-01-27", "2013-01-28"]


def test_repeated_values_give_fewer_bins_and_never_an_empty_one():
    values = pd.Series(np.r_[np.zeros(500), np.arange(1.0, 501.0)])
    outcomes = OutcomeValues.from_frame(pd.DataFrame({"label": np.ones(1000, dtype=bool),
        "money_true_positive": np.ones(1000), "money_false_positive": -np.ones(1000),
        "money_false_negative": np.zeros(1000), "money_true_negative": np.zeros(1000)}))
    rows = slice_money(values, np.ones(1000, dtype=bool), outcomes, "deciles")
    # half the values are 0: the first five decile edges coincide, leaving one bin for them and five for the rest
    assert rows[0] == SliceMoney(slice="[0, 0.5)", rows=500, flagged=500, money=500.0, do_nothing=0.0, perfect=500.0)
    assert [row.slice for row in rows[1:]] == ["[0.5, 100.4)", "[100.4, 200.3)", "[200.3, 300.2)", "[300.2, 400.1)",
                                               "[400.1, 500]"]
    assert [row.rows for row in rows[1:]] == [100] * 5


def test_a_slice_missing_from_the_rows_is_an_error_naming_it_not_an_empty_table():
    frame, scores = scored_rows()
    with pytest.raises(SliceError, match="model 'flight_delay' slices its money by 'carrier', but the evaluated "
                                         "rows have neither the entity column slice__carrier nor the feature "
                                         "carrier: the snapshot was written without it"):
        money_by_slices(model_slicing("carrier"), frame, scores >= 0.5, OutcomeValues.from_frame(frame))


def full_summary(*names: str) -> EvaluationSummary:
    frame, scores = scored_rows(seed=2)
    validation, validation_scores = scored_rows(seed=1)
    measured = summarize(model_slicing(*names), validation, validation_scores, frame, scores)
    base = legacy_summary()
    return base.model_copy(update={"slices": measured.slices, "money_by_slice": ()})


def test_the_report_and_the_plots_show_each_declared_slice():
    result = full_summary("origin", "distance_miles")
    drawn = draw_plots(result)
    assert list(drawn) == [*PLOTS, "money_by_slice__origin", "money_by_slice__distance_miles"]
    images = {name: f"plots/{name}.png" for name in drawn}
    report = render_report(result, images)
    assert "## Money by origin (test)" in report and "| origin | rows | flagged | money (USD) |" in report
    assert "## Money by distance_miles, deciles (test)" in report
    assert "cut into deciles of the test rows, shown in order" in report
    assert "![Money by origin (test)](plots/money_by_slice__origin.png)" in report
    assert "![Money by distance_miles, deciles (test)](plots/money_by_slice__distance_miles.png)" in report
    assert report.index("## Money by origin") < report.index("## Money by distance_miles") < report.index(
        "## Calibration")
    assert plot_title(result, "money_by_slice__origin") == "Money by origin (test)"


def test_a_summary_stored_before_slices_still_shows_its_one_slice():
    measured = legacy_summary()
    (table,) = measured.slices
    older = measured.model_copy(update={"slices": (), "money_by_slice": table.rows})
    assert EvaluationSummary.model_validate_json(older.model_dump_json()) == older
    drawn = draw_plots(older)
    assert list(drawn) == [*PLOTS, "money_by_slice"]
    report = render_report(older, {"money_by_slice": "plots/old.png"})
    assert "## Money by slice (test)" in report and "| slice | rows |" in report
    assert "![Money by slice (test)](plots/old.png)" in report
    # and a stored summary of that shape, with no `slices` key at all, still reads
    document = older.plain()
    del document["slices"]
    assert EvaluationSummary.model_validate(document).slice_tables()[0].rows == table.rows


def test_a_slice_with_many_values_shows_the_best_and_the_worst_and_says_how_many_more():
    frame, scores = scored_rows()
    frame["slice__tailnum"] = [f"N{index % 200:03d}" for index in range(ROWS)]
    validation, validation_scores = scored_rows(seed=1)
    validation["slice__tailnum"] = "N000"
    measured = summarize(model_slicing("tailnum"), validation, validation_scores, frame, scores)
    (table,) = measured.slices
    assert len(table.rows) == 200 and table.binning == "values"
    report = render_report(legacy_summary().model_copy(update={"slices": measured.slices}))
    shown = [line for line in report.splitlines() if line.startswith("| N")]
    assert len(shown) == 40  # the 30 that make the most money and the 10 that make the least
    assert shown[0].startswith(f"| {table.rows[0].slice} |") and shown[-1].startswith(f"| {table.rows[-1].slice} |")
    assert shown[29].startswith(f"| {table.rows[29].slice} |") and shown[30].startswith(f"| {table.rows[190].slice} |")
    assert "| ... 160 more slices (every one is in the evaluation summary) | | | | | |" in report
