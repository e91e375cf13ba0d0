"""Plots and the report, drawn from an evaluation summary of synthetic rows."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
from PIL import Image

from ml_platform.evaluation.evaluate import summarize
from ml_platform.evaluation.plots import PLOTS, calibration_figure, draw_plots, money_by_threshold_figure
from ml_platform.evaluation.report import render_report
from ml_platform.records.evaluation import EvaluationSummary
from ml_platform.records.gate import ChampionComparison, Gate, GateCheck, MoneyFloorDetails
from ml_platform.specs.models import ModelSpec
from ml_platform_tests.helpers import january_model


def split_rows(days: list[str], seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    generator = np.random.default_rng(seed)
    rows = 300 * len(days)
    scores = generator.random(rows)
    label = generator.random(rows) < scores  # calibrated by construction
    frame = pd.DataFrame({
        "label": label, "partition_date": pd.to_datetime(np.repeat(days, 300)),
        "money_true_positive": 400.0, "money_false_positive": -100.0,
        "money_false_negative": 0.0, "money_true_negative": 0.0,
        "slice": generator.choice(["AA", "B6", "UA"], rows)})
    return frame, scores


def summary(with_slices: bool = True) -> EvaluationSummary:
    model = ModelSpec.model_validate(january_model())
    validation, validation_scores = split_rows(["2013-01-21", "2013-01-22"], seed=1)
    test, test_scores = split_rows(["2013-01-26", "2013-01-27", "2013-01-28"], seed=2)
    if not with_slices:
        validation, test = validation.drop(columns="slice"), test.drop(columns="slice")
    measured = summarize(model, validation, validation_scores, test, test_scores)
    gate = Gate(
        money_floor=GateCheck[MoneyFloorDetails](
            passed=True, why="test money above the floor",
            details=MoneyFloorDetails(money=measured.test.money, floor=0.0, currency="USD")),
        beats_champion=GateCheck[ChampionComparison](
            passed=False, why="not clearly better than the champion",
            details=ChampionComparison(margin=0.0, waived=False, currency="USD", rows=measured.test.rows,
                                       compared_at="2026-11-28T09:30:15", champion="flight_delay-aaaaaaaaaaaa")))
    return EvaluationSummary(**dict(measured), training_run="2013-01-31_0123456789ab",
                             model_version="flight_delay-0123456789ab", snapshot_id="0123456789abcdef",
                             spec_hash="0123456789ab", single_feature_roc_auc=(), gate=gate, gate_passed=False)


def test_every_plot_is_a_small_png():
    drawn = draw_plots(summary())
    assert list(drawn) == list(PLOTS)
    for name, png in drawn.items():
        image = Image.open(io.BytesIO(png))
        assert image.format == "PNG" and image.size == (480, 288), name
        assert len(png) < 40_000, (name, len(png))
    assert draw_plots(summary()) == drawn  # the same summary draws the same bytes


def test_without_slices_there_is_no_slice_plot():
    assert "money_by_slice" not in draw_plots(summary(with_slices=False))


def test_money_plot_shows_both_curves_and_marks_the_threshold_chosen_on_validation():
    result = summary()
    axes = money_by_threshold_figure(result).axes[0]
    lines = {line.get_label(): line for line in axes.get_lines()}
    curve = result.money_by_threshold
    assert list(lines["test 2013-01-26 to 2013-01-31"].get_ydata()) == list(curve.test)
    assert list(lines["validation 2013-01-21 to 2013-01-25"].get_ydata()) == list(curve.validation)
    marker = lines[f"threshold {result.threshold:.3f}, chosen on validation"]
    assert list(marker.get_xdata()) == [result.threshold] * 2
    # the validation curve peaks at the chosen threshold (to the curve's resolution)
    peak = curve.thresholds[int(np.argmax(curve.validation))]
    assert abs(peak - result.threshold) <= 0.02


def test_calibration_plot_follows_the_table():
    result = summary()
    axes = calibration_figure(result).axes[0]
    model = next(line for line in axes.get_lines() if line.get_label() == "model")
    assert list(model.get_xdata()) == [row.mean_predicted for row in result.calibration]
    assert list(model.get_ydata()) == [row.observed for row in result.calibration]


def test_report_reads_money_first_names_failed_checks_and_links_plots():
    result = summary()
    images = {name: f"plots/{name}.png" for name in PLOTS}
    report = render_report(result, images)
    lines = report.splitlines()
    assert lines[0] == "# flight_delay — evaluation of flight_delay-0123456789ab"
    assert "**Gate failed** (beats_champion): this model is not deployed." in lines[2]
    assert lines[4].startswith("**Money on the test window 2013-01-26 to 2013-01-31: ")
    assert "percentile bootstrap over the 3 test days" in lines[4]
    assert "chosen on the validation window 2013-01-21 to 2013-01-25" in report
    for name, title in PLOTS.items():
        assert f"![{title}](plots/{name}.png)" in report
    assert "| beats_champion | **failed** | not clearly better than the champion |" in report
    assert report.index("Money versus") < report.index("## Gate") < report.index("## Metrics (test)")
