"""Plots and the report, drawn from an evaluation summary of synthetic rows."""

from __future__ import annotations

import base64
import io
import re
from xml.etree import ElementTree

import numpy as np
import pandas as pd
from PIL import Image

from ml_platform.evaluation.evaluate import summarize
from ml_platform.evaluation.factory import check_metadata
from ml_platform.evaluation.plots import PLOTS, calibration_figure, draw_plots, money_by_threshold_figure
from ml_platform.evaluation.report import (
    INLINE_MARKDOWN_LIMIT, headline, headline_markdown, headline_parts, money_interval, readable_money, render_report)
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
        model = model.model_copy(update={"slice_column": None})
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
    assert list(drawn) == [*PLOTS, "money_by_slice__carrier"]
    for name, png in drawn.items():
        image = Image.open(io.BytesIO(png))
        assert image.format == "PNG" and image.size == (480, 288), name
        assert len(png) < 40_000, (name, len(png))
    assert draw_plots(summary()) == drawn  # the same summary draws the same bytes


def test_without_slices_there_is_no_slice_plot():
    assert list(draw_plots(summary(with_slices=False))) == list(PLOTS)


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


def test_headline_reads_money_interval_threshold_and_verdict_as_a_person_would():
    measured = summary()
    result = measured.model_copy(update={"test": measured.test.model_copy(
        update={"money": 861520.4, "money_interval_95": (-353876.49, 2498511.2)})})
    text = headline(result)
    assert text == ("861,520 USD (95% interval \u2212353,876 to 2,498,511) at threshold "
                    f"{result.threshold:.3f} on the test window 2013-01-26 to 2013-01-31; "
                    "gate failed: not deployed (beats_champion)")
    assert len(f"{result.threshold:.3f}") == 5
    assert "." not in text.split(" at threshold")[0]  # whole units: no cents anywhere in the money
    assert readable_money(861520.4, "USD") == "861,520 USD"
    assert readable_money(-353876.49) == "\u2212353,876"
    assert money_interval((-353876.49, 2498511.2), "USD") == "\u2212353,876 to 2,498,511 USD"


def test_headline_markdown_is_short_enough_to_show_inline_with_its_drawing():
    result = summary()
    text = headline_markdown(result)
    assert len(text) < INLINE_MARKDOWN_LIMIT == 1000
    money, threshold, window, verdict = headline_parts(result)
    assert text.startswith(f"**{money}**\n\nat {threshold}, {window}\n\n**{verdict}**\n\n")
    assert f"{money} at {threshold} on the {window}; {verdict}" == headline(result)
    assert text.endswith("\n\nblue: money by threshold, orange: threshold, dotted: 0")
    # each line short enough for the UI's table cell, which does not wrap
    assert all(len(line) <= 60 for line in text.splitlines() if not line.startswith("!["))
    url = re.search(r"!\[money by threshold\]\((data:image/svg\+xml;base64,[^)]+)\)", text)[1]
    svg = base64.b64decode(url.split(",", 1)[1]).decode()
    root = ElementTree.fromstring(svg)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    # the curve has a vertex per sampled threshold, left to right; the threshold's line sits at its x
    points = [tuple(map(int, pair.split(","))) for pair in
              root.find("{http://www.w3.org/2000/svg}polyline").get("points").split()]
    assert 10 <= len(points) <= 20 and [x for x, _ in points] == sorted(x for x, _ in points)
    best = max(range(len(points)), key=lambda index: -points[index][1])  # highest money: smallest y
    curve = result.money_by_threshold
    step = -(-len(curve.thresholds) // 20)
    sampled = curve.test[::step]
    pixel = (max(max(sampled), 0) - min(min(sampled), 0)) / 64  # the drawing's 64-pixel money axis
    assert max(sampled) - sampled[best] <= pixel
    marker = root.findall("{http://www.w3.org/2000/svg}path")[1].get("d")
    assert marker.startswith(f"M{round(4 + 232 * result.threshold)} ")


def test_gate_check_figures_are_text_in_the_currency_not_numbers_to_chart():
    result = summary()
    champion = check_metadata(result.gate.beats_champion.model_copy(update={"details": ChampionComparison(
        margin=5000.0, waived=False, currency="USD", rows=6486, compared_at="2026-11-28T09:30:15",
        champion="flight_delay-aaaaaaaaaaaa", champion_threshold=0.35, gain=-12345.67,
        gain_interval_95=(-40000.2, 15000.9))}))
    assert {key: value for key, value in champion.items() if key in
            ("margin", "rows", "gain", "gain_interval_95", "champion_threshold", "waived")} == {
        "margin": "5,000 USD", "rows": "6,486", "gain": "\u221212,346 USD",
        "gain_interval_95": "\u221240,000 to 15,001 USD", "champion_threshold": "0.3500", "waived": "False"}
    floor = check_metadata(result.gate.money_floor)
    assert floor["floor"] == "0 USD" and floor["money"] == readable_money(result.test.money, "USD")
    assert all(isinstance(value, str) for value in {**champion, **floor}.values())


def test_a_headline_too_long_to_show_inline_keeps_its_words_and_leaves_the_drawing_to_the_report():
    result = summary()
    failing = result.model_copy(update={"gate": result.gate.model_copy(update={"money_floor": GateCheck[
        MoneyFloorDetails](passed=False, why="x" * 10, details=result.gate.money_floor.details)})})
    long_window = failing.model_copy(update={"test": failing.test.model_copy(
        update={"window": ("2013-01-26" + " " * 250, "2013-01-31")})})
    text = headline_markdown(long_window)
    money, threshold, window, verdict = headline_parts(long_window)
    assert text == f"**{money}**\n\nat {threshold}, {window}\n\n**{verdict}**" and "data:image" not in text
    assert "money_floor, beats_champion" in verdict
