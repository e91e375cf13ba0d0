"""The evaluation report a person reads: money first, then the gate, the champion, the metrics and the plots."""

from __future__ import annotations

import base64

from ml_platform.evaluation.importance_report import importance_section
from ml_platform.evaluation.leakage import MATERIAL_SIGNAL
from ml_platform.evaluation.side_by_side import side_by_side_markdown
from ml_platform.evaluation.plots import PLOTS, money_by_threshold_svg, slice_title
from ml_platform.evaluation.search_report import search_section
from ml_platform.names import slice_plot_name
from ml_platform.records.evaluation import EvaluationSummary, SliceTable, TestMetrics
from ml_platform.records.gate import FeatureAuc


def _money(value: float, currency: str) -> str:
    return f"{value:,.0f} {currency}"


def readable_money(value: float, currency: str = "") -> str:
    """Money as a person reads it: whole units, thousands separated, a true minus sign, the currency if given."""
    text = f"{round(value):,}".replace("-", "\u2212")
    return f"{text} {currency}" if currency else text


def money_interval(interval: tuple[float, float], currency: str) -> str:
    """A money interval as a person reads it: `−353,876 to 2,498,511 USD`."""
    return f"{readable_money(interval[0])} to {readable_money(interval[1], currency)}"


def headline_parts(summary: EvaluationSummary) -> tuple[str, str, str, str]:
    """The headline's parts: the test money with its 95% interval, the threshold, the test window, the verdict."""
    test, currency = summary.test, summary.currency
    failed = [name for name, _ in summary.gate.failures()]
    verdict = ("gate passed" if summary.gate_passed else
               f"gate failed: not deployed ({', '.join(failed) or 'checks missing'})")
    collapsed = out_of_time_features(summary)
    if collapsed:
        verdict += f"; warning: {', '.join(repr(name) for name in collapsed)} lost signal out of time"
    return (f"{readable_money(test.money, currency)} (95% interval {money_interval(test.money_interval_95, '')})",
            f"threshold {summary.threshold:.3f}", f"test window {test.window[0]} to {test.window[1]}", verdict)


def out_of_time_features(summary: EvaluationSummary) -> tuple[str, ...]:
    """The features the leakage guard's out-of-time warning flags (none when it was not measured)."""
    check = summary.gate.no_leakage
    warning = check.details.out_of_time if check is not None else None
    return tuple(row.feature for row in warning.collapsed) if warning is not None and warning.flagged else ()


def headline(summary: EvaluationSummary) -> str:
    """One line: the test money with its 95% interval, the decision threshold and the gate's verdict."""
    money, threshold, window, verdict = headline_parts(summary)
    return f"{money} at {threshold} on the {window}; {verdict}"


SLICE_ROWS_SHOWN = 40  # a slice with more values shows the 30 that make the most money and the 10 that make least
SLICE_ROWS_LAST = 10
INLINE_MARKDOWN_LIMIT = 1000  # Dagster 1.13's UI shows a markdown entry inline below this length, else behind a click
PLOT_CAPTION = "blue: money by threshold, orange: threshold, dotted: 0"


def headline_markdown(summary: EvaluationSummary) -> str:
    """The headline, short lines (the UI's table cell does not wrap; about 60 characters show), and the drawing of
    money by threshold with its caption: short enough for the UI to show without a click."""
    money, threshold, window, verdict = headline_parts(summary)
    text = f"**{money}**\n\nat {threshold}, {window}\n\n**{verdict}**"
    svg = money_by_threshold_svg(summary)
    image = "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")
    with_plot = f"{text}\n\n![money by threshold]({image})\n\n{PLOT_CAPTION}"
    # a long verdict could cross the limit: then the headline alone, the drawing staying in the report
    return with_plot if len(with_plot) < INLINE_MARKDOWN_LIMIT else text


def _percent(value: float) -> str:
    return "n/a" if value != value else f"{100 * value:.1f}%"


def _row_interval(test: TestMetrics, currency: str) -> str:
    """The interval from resampling single rows, shown to explain why the day-resampled one is wider."""
    if test.money_interval_95_rows is None:
        return ""
    low, high = test.money_interval_95_rows
    return (f" Resampling single rows instead of days would give {_money(low, currency)} to {_money(high, currency)}:"
            f" too narrow, as rows of one day share its conditions.")


def _image(images: dict[str, str], name: str, title: str | None = None) -> list[str]:
    return ["", f"![{title or PLOTS[name]}]({images[name]})"] if name in images else []


def _slice_section(table: SliceTable, currency: str, images: dict[str, str]) -> list[str]:
    """One slice's table of test money, its binning said, and its plot."""
    binning = (" Its values are cut into deciles of the test rows, shown in order." if table.binning == "deciles"
               else " Most money first.")
    lines = ["", f"## {slice_title(table)}", "", f"Test money by {table.name or 'slice'} at the chosen threshold."
             + binning, "",
             f"| {table.name or 'slice'} | rows | flagged | money ({currency}) | doing nothing | perfect |",
             "|---|---|---|---|---|---|"]
    rows = table.rows
    if len(rows) > SLICE_ROWS_SHOWN:  # e.g. one slice per plane: the UI shows a report of bounded length
        rows = rows[:SLICE_ROWS_SHOWN - SLICE_ROWS_LAST] + (None,) + rows[-SLICE_ROWS_LAST:]
    lines += [f"| {row.slice} | {row.rows:,} | {row.flagged:,} | {row.money:,.0f} | "
              f"{row.do_nothing:,.0f} | {row.perfect:,.0f} |" if row is not None else
              f"| ... {len(table.rows) - SLICE_ROWS_SHOWN:,} more slices (every one is in the evaluation summary) "
              f"| | | | | |" for row in rows]
    return lines + _image(images, slice_plot_name(table.name), slice_title(table))


def _champion_section(summary: EvaluationSummary) -> list[str]:
    check = summary.gate.beats_champion
    if check is None or check.details.gain is None:
        return []  # nothing was compared: the gate table says why
    details, currency = check.details, summary.currency
    low, high = details.gain_interval_95
    required = ("waived by the spec" if details.margin is None else
                f"required: at least {_money(details.margin, currency)}, interval above 0")
    return ["", "## Against the live champion", "",
        f"Same {details.rows:,} test rows, {details.window[0]} to {details.window[1]}, valued with this "
        f"model's money values; the champion decides with its own spec and threshold "
        f"({details.champion_threshold:.4f}).",
        "",
        "| model | money |",
        "|---|---|",
        f"| this model ({summary.model_version}) | {_money(details.challenger_money, currency)} |",
        f"| champion ({details.champion}, promotion #{details.champion_promotion_id}) | "
        f"{_money(details.champion_money, currency)} |",
        f"| gain | **{_money(details.gain, currency)}** (paired 95% interval {_money(low, currency)} to "
        f"{_money(high, currency)}, resampling {details.days if details.days is not None else '?'} days; "
        f"{required}) |",
    ] + (["", f"{details.rows_outside_champion_filter:,} of these rows fall outside the champion's filter "
                   f"and count as not flagged by it."] if details.rows_outside_champion_filter else [])


def _label_windows_lines(summary: EvaluationSummary) -> list[str]:
    """The rows a label that looks forward kept out of the snapshot: purged per window, and not yet mature."""
    windows = summary.label_windows
    if windows is None:
        return []
    immature = ", ".join(f"{windows.immature_excluded.get(name, 0):,} {name}"
                         for name in ("train", "validation", "test"))
    return ["", f"The label reads the {windows.horizon_days} days after each row's day. Purged because their label "
                f"window reaches the next window: {windows.purged.get('train', 0):,} training rows (into "
                f"validation) and {windows.purged.get('validation', 0):,} validation rows (into test). Left out "
                f"because their label was not mature on {windows.as_of} (labels usable through "
                f"{windows.mature_through}): {immature}."]


def render_report(summary: EvaluationSummary, images: dict[str, str] | None = None,
                  champion: EvaluationSummary | None = None) -> str:
    """Markdown report of an evaluation; `images` maps plot names (see PLOTS) to image URLs or relative paths;
    `champion`, the stored evaluation of the champion the gate compared with, sets it beside this model."""
    images = images or {}
    currency = summary.currency
    test = summary.test
    low, high = test.money_interval_95
    checks = summary.gate.checks()
    failed = [name for name, _ in summary.gate.failures()]
    verdict = ("**Gate passed**: every check below passed." if not failed else
               f"**Gate failed** ({', '.join(failed)}): this model is not deployed.")
    lines = [
        f"# {summary.model} — evaluation of {summary.model_version}",
        "",
        f"Training run `{summary.training_run}`, snapshot `{summary.snapshot_id}`, "
        f"spec `{summary.spec_hash}`. {verdict}",
        "",
        f"**Money on the test window {test.window[0]} to {test.window[1]}: "
        f"{_money(test.money, currency)}** (95% interval {_money(low, currency)} to "
        f"{_money(high, currency)}, {test.money_interval_method}), against "
        f"{_money(test.money_do_nothing, currency)} for doing nothing and "
        f"{_money(test.money_perfect, currency)} for a perfect model ({_percent(test.share_of_perfect)} of "
        f"the possible gain).{_row_interval(test, currency)}",
        "",
        f"Decision threshold {summary.threshold:.4f}, chosen on the validation window "
        f"{summary.validation.window[0]} to {summary.validation.window[1]} (where it made "
        f"{_money(summary.validation.money, currency)}), never on test; it flags {test.flagged:,} of "
        f"{test.rows:,} test rows.",
    ]
    lines += _image(images, "money_by_threshold")
    lines += _label_windows_lines(summary)
    lines += ["", "## Gate", "", "| check | result | why |", "|---|---|---|"]
    lines += [f"| {name} | {'passed' if check.passed else '**failed**'} | {check.why} |" for name, check in checks]
    lines += _champion_section(summary)
    lines += side_by_side_markdown(summary, champion)
    lines += search_section(summary, images)
    lines += [
        "", "## Metrics (test)", "",
        "| metric | value |",
        "|---|---|",
        f"| ROC AUC | {test.roc_auc:.4f} |",
        f"| log loss | {test.log_loss:.4f} |",
        f"| Brier score | {test.brier:.4f} |",
        f"| precision at threshold | {_percent(test.precision)} |",
        f"| recall at threshold | {_percent(test.recall)} |",
        f"| positive rate | {_percent(test.positive_rate)} |",
    ]
    lines += _image(images, "roc")
    for table in summary.slice_tables():
        lines += _slice_section(table, currency, images)
    lines += ["", "## Calibration (test)", "", "| score bin | rows | mean predicted | observed |", "|---|---|---|---|"]
    lines += [f"| {row.bin} | {row.rows:,} | {row.mean_predicted:.3f} | {row.observed:.3f} |"
              for row in summary.calibration]
    lines += _image(images, "calibration")
    lines += importance_section(summary, images)
    lines += _single_features_section(summary)
    return "\n".join(lines).rstrip() + "\n"


def _kept(row: FeatureAuc) -> str:
    """The share of a feature's training signal (score - 0.5) it keeps on validation."""
    if row.validation_roc_auc is None or row.roc_auc - 0.5 < MATERIAL_SIGNAL:
        return "–"
    return f"{(row.validation_roc_auc - 0.5) / (row.roc_auc - 0.5):.0%}"


def _single_features_section(summary: EvaluationSummary) -> list[str]:
    """The leakage guard's features: the strongest eight and every flagged one, training beside validation."""
    check = summary.gate.no_leakage
    warning = check.details.out_of_time if check is not None else None
    flagged = set(out_of_time_features(summary))
    shown = [row for index, row in enumerate(summary.single_feature_roc_auc) if index < 8 or row.feature in flagged]
    if not shown:
        return []
    score = check.details.score if check is not None else "ROC AUC"
    if all(row.validation_roc_auc is None for row in shown):  # stored before the validation window was measured
        return ["", "## Strongest single features (training rows, leakage guard)", "",
                f"| feature | type | {score} alone |", "|---|---|---|"] + \
            [f"| {row.feature} | {row.type} | {row.roc_auc:.4f} |" for row in shown]
    lines = ["", "## Single features alone (leakage guard)", "",
             f"Each feature's {score} alone (0.5: no signal), on the training rows and on the validation window's "
             f"rows, same method and seed; the gate decides on training (limit {check.details.limit}). "
             f"Signal kept: (validation − 0.5) / (training − 0.5), for a training signal of at least "
             f"{MATERIAL_SIGNAL:g}.", "",
             f"| feature | type | {score} training | {score} validation | signal kept |", "|---|---|---|---|---|"]
    for row in shown:
        mark = " **(lost out of time)**" if row.feature in flagged else ""
        validation = "–" if row.validation_roc_auc is None else f"{row.validation_roc_auc:.4f}"
        lines.append(f"| {row.feature}{mark} | {row.type} | {row.roc_auc:.4f} | {validation} | {_kept(row)} |")
    if warning is not None:
        said = f"**Warning (does not block the gate)**: {warning.why}" if warning.flagged else \
            warning.why[:1].upper() + warning.why[1:]
        lines += ["", f"{said}.", "", f"Rule: {warning.rule}; a feature's importance that drifts is a reason to "
                  f"look, not proof the model is worse, which the test checks above measure."]
    return lines
