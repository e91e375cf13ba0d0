"""The evaluation's plots, drawn from its summary alone: small PNGs for the report and the Dagster UI.

matplotlib is imported only when a plot is drawn, and only through its object API on the Agg canvas: no pyplot,
no global backend switch, nothing that needs a display.
"""

from __future__ import annotations

import io

import numpy as np

from ml_platform.names import slice_plot_name
from ml_platform.records.evaluation import EvaluationSummary, MeasuredSummary, SliceTable

PLOTS = {
    "money_by_threshold": "Money versus decision threshold",
    "roc": "ROC curve (test)",
    "calibration": "Calibration (test)",
}  # then one plot of money per slice the spec declares (see slice_plot_name and plot_title)
SIZE_INCHES = (6.0, 3.6)
DOTS_PER_INCH = 80
PALETTE_COLOURS = 64  # palette PNGs are a quarter of the size of true-colour ones and look the same here
BLUE, ORANGE, GREY, GREEN, RED = "#1f77b4", "#ff7f0e", "#7f7f7f", "#2ca02c", "#d62728"


def _figure(title: str):
    from matplotlib.figure import Figure

    figure = Figure(figsize=SIZE_INCHES, dpi=DOTS_PER_INCH, layout="constrained")
    axes = figure.add_subplot()
    axes.set_title(title, fontsize=10)
    axes.tick_params(labelsize=8)
    axes.grid(True, linewidth=0.4, alpha=0.5)
    return figure, axes


def _png(figure) -> bytes:
    """The figure as a small, deterministic palette PNG."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from PIL import Image

    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    image = Image.frombuffer("RGBA", canvas.get_width_height(), bytes(canvas.buffer_rgba()), "raw", "RGBA", 0, 1)
    palette = image.convert("RGB").quantize(colors=PALETTE_COLOURS, method=Image.Quantize.MEDIANCUT, dither=0)
    output = io.BytesIO()
    palette.save(output, format="PNG", optimize=True)
    return output.getvalue()


def _money_axis(axes, currency: str, axis: str = "y") -> None:
    from matplotlib.ticker import FuncFormatter

    def text(value: float, _position) -> str:
        if abs(value) >= 1_000_000:
            return f"{value / 1_000_000:,.1f}M"
        return f"{value / 1000:,.0f}k" if abs(value) >= 10_000 else f"{value:,.0f}"

    formatter = FuncFormatter(text)
    (axes.yaxis if axis == "y" else axes.xaxis).set_major_formatter(formatter)
    (axes.set_ylabel if axis == "y" else axes.set_xlabel)(f"money ({currency})", fontsize=8)


def money_by_threshold_figure(summary: MeasuredSummary):
    """Validation and test money at each threshold, the chosen threshold marked."""
    curve = summary.money_by_threshold
    currency, threshold = summary.currency, summary.threshold
    figure, axes = _figure(PLOTS["money_by_threshold"])
    validation, test = summary.validation, summary.test
    axes.plot(curve.thresholds, curve.validation, color=GREY, linewidth=1.2,
              label=f"validation {validation.window[0]} to {validation.window[1]}")
    axes.plot(curve.thresholds, curve.test, color=BLUE, linewidth=1.6,
              label=f"test {test.window[0]} to {test.window[1]}")
    axes.axhline(test.money_do_nothing, color="black", linewidth=0.8, linestyle=":", label="doing nothing (test)")
    axes.axvline(threshold, color=ORANGE, linewidth=1.2, linestyle="--",
                 label=f"threshold {threshold:.3f}, chosen on validation")
    axes.plot([threshold], [test.money], marker="o", color=ORANGE, markersize=5)
    axes.annotate(f"{test.money:,.0f} {currency}", (threshold, test.money), textcoords="offset points",
                  xytext=(6, -12), fontsize=8, color=ORANGE)
    axes.set_xlim(0, 1)
    axes.set_xlabel("threshold (flag rows scoring at least this)", fontsize=8)
    _money_axis(axes, currency)
    axes.legend(fontsize=7, loc="best")
    return figure


def roc_figure(summary: MeasuredSummary):
    """The test ROC curve with the operating point of the chosen threshold."""
    test = summary.test
    points = summary.roc_curve
    figure, axes = _figure(PLOTS["roc"])
    axes.plot([0, 1], [0, 1], color=GREY, linewidth=0.8, linestyle=":", label="chance")
    axes.plot(points.false_positive_rate, points.true_positive_rate, color=BLUE, linewidth=1.6,
              label=f"model, ROC AUC {test.roc_auc:.3f}")
    positives = test.rows * test.positive_rate
    negatives = test.rows - positives
    true_positives = (test.recall if test.recall == test.recall else 0.0) * positives
    false_positive_rate = (test.flagged - true_positives) / negatives if negatives else 0.0
    axes.plot([false_positive_rate], [true_positives / positives if positives else 0.0], marker="o", color=ORANGE,
              linestyle="none", label=f"threshold {summary.threshold:.3f}")
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1.01)
    axes.set_xlabel("false positive rate", fontsize=8)
    axes.set_ylabel("true positive rate", fontsize=8)
    axes.legend(fontsize=7, loc="lower right")
    return figure


def calibration_figure(summary: MeasuredSummary):
    """Observed positive rate against mean predicted probability per score bin, with the rows per bin."""
    table = summary.calibration
    figure, axes = _figure(PLOTS["calibration"])
    predicted = [row.mean_predicted for row in table]
    observed = [row.observed for row in table]
    rows = np.array([row.rows for row in table], dtype=float)
    share = axes.twinx()
    centres = [(float(row.bin.split("-")[0]) + float(row.bin.split("-")[1])) / 2 for row in table]
    share.bar(centres, rows / max(rows.sum(), 1.0), width=0.09, color=GREY, alpha=0.25, label="share of rows")
    share.set_ylabel("share of rows", fontsize=8)
    share.tick_params(labelsize=8)
    share.set_ylim(0, 1)
    axes.set_zorder(share.get_zorder() + 1)
    axes.patch.set_visible(False)
    axes.plot([0, 1], [0, 1], color=GREY, linewidth=0.8, linestyle=":", label="perfectly calibrated")
    axes.plot(predicted, observed, color=BLUE, marker="o", markersize=4, linewidth=1.4, label="model")
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1)
    axes.set_xlabel("mean predicted probability", fontsize=8)
    axes.set_ylabel("observed positive rate", fontsize=8)
    axes.legend(fontsize=7, loc="upper left")
    return figure


def slice_title(table: SliceTable) -> str:
    """The title of a slice's table and plot: `Money by carrier (test)`, deciles said when binned."""
    named = table.name or "slice"
    return f"Money by {named}{', deciles' if table.binning == 'deciles' else ''} (test)"


def plot_title(summary: MeasuredSummary, name: str) -> str:
    """The title of the summary's plot `name` (a key of PLOTS or a slice's plot)."""
    if name in PLOTS:
        return PLOTS[name]
    tables = {slice_plot_name(table.name): table for table in summary.slice_tables()}
    return slice_title(tables[name]) if name in tables else name


def money_by_slice_figure(summary: MeasuredSummary, table: SliceTable, most: int = 16):
    """Money of each slice at the chosen threshold, beside what a perfect model would make; None without rows.
    Values show the `most` that make the most money; deciles show in order."""
    rows = table.rows[:most]
    if not rows:
        return None
    currency = summary.currency
    figure, axes = _figure(slice_title(table) + (f", top {most}" if len(table.rows) > most else ""))
    labels = [str(row.slice) for row in rows][::-1]
    money = [row.money for row in rows][::-1]
    perfect = [row.perfect for row in rows][::-1]
    positions = np.arange(len(labels))
    from matplotlib.patches import Patch

    axes.barh(positions, perfect, height=0.8, color=GREY, alpha=0.3)
    axes.barh(positions, money, height=0.5, color=[GREEN if value >= 0 else RED for value in money])
    axes.axvline(0, color="black", linewidth=0.8)
    axes.set_yticks(positions, labels, fontsize=7)
    _money_axis(axes, currency, axis="x")
    axes.legend(handles=[Patch(color=GREEN, label="model makes money"), Patch(color=RED, label="model loses money"),
                         Patch(color=GREY, alpha=0.3, label="a perfect model")], fontsize=7, loc="best")
    return figure


FIGURES = {"money_by_threshold": money_by_threshold_figure, "roc": roc_figure, "calibration": calibration_figure}


def plot_names(summary: MeasuredSummary) -> list[str]:
    """The names of the plots the summary can have, in the report's order: those of PLOTS, then one per slice."""
    return [*PLOTS, *(slice_plot_name(table.name) for table in summary.slice_tables())]


def draw_plots(summary: MeasuredSummary) -> dict[str, bytes]:
    """Every plot the summary supports, as PNG bytes by name: those of PLOTS in order, then one per slice."""
    figures = {name: FIGURES[name](summary) for name in PLOTS}
    figures.update({slice_plot_name(table.name): money_by_slice_figure(summary, table)
                    for table in summary.slice_tables()})
    if isinstance(summary, EvaluationSummary):
        from ml_platform.evaluation.importance_report import dependence_figures

        figures.update(dependence_figures(summary))
    return {name: _png(figure) for name, figure in figures.items() if figure is not None}


def money_by_threshold_svg(summary: MeasuredSummary, points: int = 20) -> str:
    """A small SVG of test money by threshold, zero and the chosen threshold marked: short enough to inline.

    Dagster's UI renders a markdown metadata entry inline only when it is under 1,000 characters, so this drawing
    spends few: at most `points` vertices in a 240x80 box, whole-number coordinates, single-quoted attributes.
    """
    curve = summary.money_by_threshold
    step = max(1, -(-len(curve.thresholds) // points))
    pairs = list(zip(curve.thresholds, curve.test))[::step]
    low, high = min(min(v for _, v in pairs), 0.0), max(max(v for _, v in pairs), 0.0)
    span = (high - low) or 1.0
    x = lambda threshold: round(4 + 232 * threshold)  # noqa: E731 - the thresholds lie in [0, 1]
    y = lambda money: round(74 - 64 * (money - low) / span)  # noqa: E731
    line = " ".join(f"{x(threshold)},{y(money)}" for threshold, money in pairs)
    chosen = x(summary.threshold)
    return ("<svg xmlns='http://www.w3.org/2000/svg' width='360' height='120' viewBox='0 0 240 80'>"
            "<rect width='240' height='80' fill='#fff'/>"
            f"<path d='M4 {y(0)}H236' stroke='#999' stroke-dasharray='2'/>"
            f"<path d='M{chosen} 4V78' stroke='{ORANGE}'/>"
            f"<polyline points='{line}' fill='none' stroke='{BLUE}' stroke-width='2'/></svg>")
