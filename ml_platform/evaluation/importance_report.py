"""The evaluation report's feature importance section and its dependence plots, drawn from the summary alone."""

from __future__ import annotations

import numpy as np

from ml_platform.evaluation.plots import BLUE, GREY, _figure
from ml_platform.names import dependence_plot_name
from ml_platform.records.evaluation import DependencePoints, EvaluationSummary, GlobalImportance

SHOWN_FEATURES = 12
MOST_CATEGORIES = 16


def dependence_title(points: DependencePoints, scale: str) -> str:
    """The title of a feature's dependence plot."""
    if points.label_class is not None:
        return f"{points.feature}: contribution to class '{points.label_class}' ({scale}) by value (test)"
    return f"{points.feature}: contribution ({scale}) by value (test)"


def dependence_figure(points: DependencePoints, scale: str):
    """A feature's contribution against its value: a scatter for numbers, a strip per category (the most
    frequent categories); missing values apart at the left. None without points."""
    if not points.values:
        return None
    figure, axes = _figure(dependence_title(points, scale))
    contributions = np.asarray(points.contributions, dtype="float64")
    missing = np.array([value is None for value in points.values])
    if points.kind == "number":
        values = np.array([np.nan if value is None else float(value) for value in points.values])
        axes.scatter(values[~missing], contributions[~missing], s=6, color=BLUE, alpha=0.5)
        axes.set_xlabel(points.feature, fontsize=8)
    else:
        labels = [str(value) for value in points.values]
        counts: dict[str, int] = {}
        for label, absent in zip(labels, missing):
            if not absent:
                counts[label] = counts.get(label, 0) + 1
        kept = sorted(sorted(counts), key=lambda label: -counts[label])[:MOST_CATEGORIES]
        position = {label: index for index, label in enumerate(sorted(kept))}
        shown = np.array([label in position and not absent for label, absent in zip(labels, missing)])
        jitter = np.random.default_rng(0).uniform(-0.2, 0.2, len(labels))
        xs = np.array([position.get(label, 0) for label in labels], dtype="float64") + jitter
        axes.scatter(xs[shown], contributions[shown], s=6, color=BLUE, alpha=0.5)
        axes.set_xticks(range(len(position)), list(position), fontsize=7, rotation=45)
    if missing.any():
        axes.scatter(np.full(int(missing.sum()), axes.get_xlim()[0]), contributions[missing], s=6, color=GREY,
                     label="missing")
        axes.legend(fontsize=7, loc="best")
    axes.axhline(0, color="black", linewidth=0.8)
    axes.set_ylabel(f"contribution ({scale})", fontsize=8)
    return figure


def dependence_figures(summary: EvaluationSummary) -> dict:
    """The dependence plots of the summary's top features, by plot name (none before importance was measured)."""
    return importance_figures(summary.importance)


def importance_figures(importance: GlobalImportance | None) -> dict:
    """The dependence plots of an importance's top features, by plot name (none without importance)."""
    if importance is None:
        return {}
    figures = {dependence_plot_name(points.feature): dependence_figure(points, importance.scale)
               for points in importance.dependence}
    return {name: figure for name, figure in figures.items() if figure is not None}


def _scale_text(importance: GlobalImportance) -> str:
    return {"log-odds": "log-odds (the binary LightGBM model's raw score)", "probability": "probability",
            "value": "the predicted value", CLASS_SCALE: "each class's raw score (before softmax), summed over "
            "the classes"}.get(importance.scale, importance.scale)


CLASS_SCALE = "class raw score"


def importance_section(summary: EvaluationSummary, images: dict[str, str]) -> list[str]:
    """The report's section: mean |contribution| of each feature on the test rows, and the top dependence plots."""
    return importance_lines(summary.importance, images)


def importance_lines(importance: GlobalImportance | None, images: dict[str, str]) -> list[str]:
    """The importance section of a report, with the dependence plots among `images` (by plot name)."""
    if importance is None:
        return []
    lines = ["", "## Feature importance (test)", "",
             f"Mean |contribution| of each feature over {importance.rows:,} test rows, in "
             f"{_scale_text(importance)}; method: {importance.method}. Share: of the sum over features.", "",
             "| feature | mean abs. contribution | share |", "|---|---|---|"]
    lines += [f"| {item.feature} | {item.mean_absolute:.4f} | {item.share:.1%} |"
              for item in importance.features[:SHOWN_FEATURES]]
    if len(importance.features) > SHOWN_FEATURES:
        lines.append(f"| ... {len(importance.features) - SHOWN_FEATURES} more (every one is in the evaluation "
                     f"summary) | | |")
    for points in importance.dependence:
        name = dependence_plot_name(points.feature)
        if name in images:
            lines += ["", f"![{dependence_title(points, importance.scale)}]({images[name]})"]
    return lines
