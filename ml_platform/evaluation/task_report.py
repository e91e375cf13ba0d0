"""The report of a regression or multiclass measurement: money first, then the decision, the task's metrics and
their gate bounds, the slices, (multiclass) the confusion table and the global feature importance; plots of the
money curve, predicted against actual, residuals by slice, the confusion table and the top features' dependence."""

from __future__ import annotations

import numpy as np

from ml_platform.evaluation.importance_report import importance_figures, importance_lines
from ml_platform.evaluation.plots import BLUE, GREY, ORANGE, _figure, _money_axis, _png
from ml_platform.evaluation.report import money_interval, readable_money
from ml_platform.evaluation.search_report import search_lines, search_plots
from ml_platform.records.tasks import TaskMeasurement

PARAMETER_TEXT = {"threshold": "threshold {:.3f}", "rows_per_day": "top {:.0f} rows a day",
                  "share_per_day": "top {:.1%} of each day's rows", "offset": "offset {:+g}"}


def decision_text(measurement: TaskMeasurement) -> str:
    """The decision in words, with its parameter chosen on validation."""
    if measurement.decision_parameter_name is None:
        return {"most_money": "the class of highest expected money", "most_likely": "the most likely class"}.get(
            measurement.decision_rule or "", measurement.decision)
    return PARAMETER_TEXT[measurement.decision_parameter_name].format(measurement.decision_parameter)


def task_headline_parts(measurement: TaskMeasurement) -> tuple[str, str, str, str]:
    """The headline's parts: the test money with its 95% interval, the decision, the test window, the verdict."""
    failed = [name for name, check in measurement.metric_checks.items() if not check.passed]
    verdict = "metric bounds met" if not failed else f"metric bounds failed: {', '.join(failed)}"
    if measurement.sanity_problems:
        verdict += "; predictions not sane"
    return (f"{readable_money(measurement.test_money, measurement.currency)} (95% interval "
            f"{money_interval(measurement.test_money_interval_95, '')})", decision_text(measurement),
            f"test window {measurement.test_window[0]} to {measurement.test_window[1]}", verdict)


def task_headline(measurement: TaskMeasurement) -> str:
    """One line: test money with its 95% interval, the decision and the metric bounds' verdict."""
    money, decision, window, verdict = task_headline_parts(measurement)
    return f"{money} at {decision} on the {window}; {verdict}"


def task_headline_markdown(measurement: TaskMeasurement) -> str:
    """The headline for the UI's metadata table: one short paragraph per part, since the table's cell does not wrap
    and shows about 60 characters (the one-line headline was cut there, in the middle of its verdict)."""
    money, decision, window, verdict = task_headline_parts(measurement)
    return f"**{money}**\n\nat {decision}\n\n{window}\n\n**{verdict}**"


def render_task_report(measurement: TaskMeasurement, beside_champion: list[str] | tuple[str, ...] = ()) -> str:
    """The measurement as markdown (its plots, the search's among them, travel beside it as files), with the
    champion the gate compared it with set beside it (`beside_champion`, evaluation.side_by_side's lines)."""
    currency = measurement.currency
    lines = [f"# {measurement.model}: {measurement.task_text()}", "", task_headline(measurement), "",
             "## Money", "", "| | validation | test |", "|---|---|---|",
             f"| money | {readable_money(measurement.validation_money, currency)} | "
             f"{readable_money(measurement.test_money, currency)} |",
             f"| deciding knowing the label | | {readable_money(measurement.test_money_perfect, currency)} |", "",
             f"Decision: {decision_text(measurement)}, chosen on the validation window "
             f"{measurement.validation_window[0]} to {measurement.validation_window[1]}. Test interval: "
             f"{measurement.money_interval_method}.", "", "## Metrics", "", "| metric | validation | test | gate |",
             "|---|---|---|---|"]
    for name, value in measurement.test_metrics.items():
        check = measurement.metric_checks.get(name)
        gate = "" if check is None else ("passed: " if check.passed else "FAILED: ") + check.why
        lines.append(f"| {name} | {measurement.validation_metrics[name]:.4g} | {value:.4g} | {gate} |")
    if measurement.sanity_problems:
        lines += ["", "Predictions not sane: " + "; ".join(measurement.sanity_problems)]
    lines += search_lines(measurement.search, currency, {})
    if measurement.money_by_slice:
        lines += ["", "## Money by slice (test)"]
        sliced_by = list(dict.fromkeys(row.slice_name for row in measurement.money_by_slice))
        for name in sliced_by:
            lines += ["", *([f"By {name}:", ""] if name is not None else []),
                      "| slice | rows | money | knowing the label |", "|---|---|---|---|"]
            lines += [f"| {row.slice} | {row.rows:,} | {readable_money(row.money, currency)} | "
                      f"{readable_money(row.perfect, currency)} |" for row in measurement.money_by_slice
                      if row.slice_name == name]
    if measurement.residuals_by_slice:
        lines += ["", "## Residuals by slice (test; label minus prediction)", "", "| slice | rows | mean | MAE |",
                  "|---|---|---|---|"]
        lines += [f"| {row.slice} | {row.rows:,} | {row.mean_residual:+.3g} | {row.mae:.3g} |"
                  for row in measurement.residuals_by_slice]
    if measurement.confusion is not None:
        classes = measurement.confusion.classes
        lines += ["", "## Confusion (test; rows: actual, columns: most likely)", "",
                  "| actual | " + " | ".join(classes) + " |", "|---" * (len(classes) + 1) + "|"]
        lines += [f"| {name} | " + " | ".join(f"{count:,}" for count in row) + " |"
                  for name, row in zip(classes, measurement.confusion.counts)]
    # the dependence plots are drawn with the report's other plots (draw_task_plots)
    lines += importance_lines(measurement.importance, {})
    if measurement.importance_note:
        lines += ["", "## Feature importance (test)", "", measurement.importance_note]
    lines += list(beside_champion)
    return "\n".join(lines) + "\n"


def money_curve_figure(measurement: TaskMeasurement):
    """Money at each candidate of the decision's parameter, validation and test; None for a class decision."""
    if not measurement.curve_candidates:
        return None
    figure, axes = _figure(f"Money versus {measurement.decision_parameter_name}")
    axes.plot(measurement.curve_candidates, measurement.curve_validation, color=GREY, label="validation")
    axes.plot(measurement.curve_candidates, measurement.curve_test, color=BLUE, label="test")
    axes.axvline(measurement.decision_parameter, color=ORANGE, linewidth=1, label="chosen on validation")
    _money_axis(axes, measurement.currency)
    axes.legend(fontsize=7)
    return figure


def predicted_against_actual_figure(label: np.ndarray, predicted: np.ndarray):
    """Regression: predicted against actual on test (a density of points), the diagonal marked."""
    figure, axes = _figure("Predicted against actual (test)")
    axes.hexbin(label, predicted, gridsize=40, mincnt=1, cmap="Blues", bins="log")
    low, high = float(np.nanmin([label.min(), predicted.min()])), float(np.nanmax([label.max(), predicted.max()]))
    axes.plot([low, high], [low, high], color=ORANGE, linewidth=1)
    axes.set_xlabel("actual", fontsize=8)
    axes.set_ylabel("predicted", fontsize=8)
    return figure


def residuals_figure(measurement: TaskMeasurement, most: int = 16):
    """Regression: mean residual per slice with its MAE; None without slices."""
    table = measurement.residuals_by_slice[:most]
    if not table:
        return None
    figure, axes = _figure("Residuals by slice (test)")
    positions = np.arange(len(table))
    axes.barh(positions, [row.mae for row in table][::-1], height=0.8, color=GREY, alpha=0.3, label="MAE")
    axes.barh(positions, [row.mean_residual for row in table][::-1], height=0.5, color=BLUE, label="mean residual")
    axes.set_yticks(positions, [row.slice for row in table][::-1], fontsize=7)
    axes.legend(fontsize=7)
    return figure


def confusion_figure(measurement: TaskMeasurement):
    """Multiclass: the confusion table as a heat map of each actual class's shares; None otherwise."""
    if measurement.confusion is None:
        return None
    counts = np.array(measurement.confusion.counts, dtype="float64")
    shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    figure, axes = _figure("Confusion (test): share of each actual class")
    axes.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    classes = measurement.confusion.classes
    axes.set_xticks(range(len(classes)), classes, fontsize=7)
    axes.set_yticks(range(len(classes)), classes, fontsize=7)
    axes.grid(False)
    for (row, column), value in np.ndenumerate(shares):
        axes.text(column, row, f"{value:.0%}", ha="center", va="center", fontsize=7)
    return figure


def draw_task_plots(measurement: TaskMeasurement, test_label: np.ndarray | None = None,
                    test_predictions: np.ndarray | None = None) -> dict[str, bytes]:
    """Every plot the measurement supports, as PNG bytes by name (predicted against actual needs the test rows)."""
    figures = {"money_curve": money_curve_figure(measurement), "residuals_by_slice": residuals_figure(measurement),
               "confusion": confusion_figure(measurement), **importance_figures(measurement.importance)}
    if measurement.task == "regression" and test_label is not None and test_predictions is not None:
        figures["predicted_against_actual"] = predicted_against_actual_figure(
            np.asarray(test_label, dtype="float64"), np.asarray(test_predictions, dtype="float64"))
    return {**{name: _png(figure) for name, figure in figures.items() if figure is not None},
            **search_plots(measurement.search, measurement.currency)}
