"""The evaluation report's section on the spec's hyper-parameter search: every trial, and money against trial."""

from __future__ import annotations

from ml_platform.evaluation.plots import BLUE, GREY, ORANGE, _figure, _money_axis, _png
from ml_platform.records.evaluation import EvaluationSummary
from ml_platform.records.search import SearchRecord

SEARCH_PLOT = "search_trials"
SEARCH_TITLE = "Validation money by search trial"


def search_figure(search: SearchRecord, currency: str):
    """Each trial's validation money in the order tried, the best so far as a line, the chosen trial marked."""
    trials = [trial for trial in search.trials if trial.validation_money is not None]
    figure, axes = _figure(SEARCH_TITLE)
    numbers = [trial.number for trial in trials]
    money = [trial.validation_money for trial in trials]
    axes.scatter(numbers, money, color=BLUE, s=14, label="trial (validation money at its best decision)")
    best_so_far, running = [], None
    for value in money:
        running = value if running is None else max(running, value)
        best_so_far.append(running)
    if search.objective == "money":
        axes.step(numbers, best_so_far, where="post", color=GREY, linewidth=1.0, label="best so far")
    chosen = search.best()
    if chosen.validation_money is not None:
        axes.plot([chosen.number], [chosen.validation_money], marker="o", markersize=8, markerfacecolor="none",
                  color=ORANGE, label=f"chosen: trial {chosen.number} ({search.objective})")
    axes.set_xlabel("trial", fontsize=8)
    _money_axis(axes, currency)
    axes.legend(fontsize=7, loc="lower right")
    return figure


def draw_search_plot(summary: EvaluationSummary) -> dict[str, bytes]:
    """The search plot as PNG bytes by name; nothing for a model trained without a search."""
    return search_plots(summary.search, summary.currency)


def search_plots(search: SearchRecord | None, currency: str) -> dict[str, bytes]:
    """The plot of a search's trials as PNG bytes by name (binary and task reports); nothing without a search."""
    if search is None:
        return {}
    return {SEARCH_PLOT: _png(search_figure(search, currency))}


def _baseline_lines(search: SearchRecord, currency: str) -> list[str]:
    baseline, chosen = search.baseline(), search.best()
    if baseline is None or baseline.validation_money is None or chosen.validation_money is None:
        return ["The spec's own params lie outside the searched ranges: the search has no baseline trial.", ""]
    gain = chosen.validation_money - baseline.validation_money
    return [f"Validation money of the chosen trial: {chosen.validation_money:,.0f} {currency}, against "
            f"{baseline.validation_money:,.0f} {currency} for the spec's own params (trial {baseline.number}): "
            f"{gain:+,.0f} {currency}.", ""]


def _parallel_lines(search: SearchRecord) -> list[str]:
    if search.parallel == 1:
        return []
    threads = "" if search.trial_threads is None else f", {search.trial_threads} LightGBM thread(s) each"
    return [f"{search.parallel} trials at a time (proposed in fixed batches{threads}); the chosen parameters were "
            f"trained once more with the platform's threads, so the model judged above is the one `train` and "
            f"`reproduce` give with them (its validation figures may differ slightly from the trial's, which ran "
            f"with fewer threads).", ""]


def search_section(summary: EvaluationSummary, images: dict[str, str]) -> list[str]:
    """The report's lines on the search: how it ran, why it ended, the chosen parameters and every trial."""
    return search_lines(summary.search, summary.currency, images)


def search_lines(search: SearchRecord | None, currency: str, images: dict[str, str]) -> list[str]:
    """The lines of the search section of any task's report (the plot's link when `images` holds its path)."""
    if search is None:
        return []
    chosen = search.best()
    lines = ["", "## Hyper-parameter search (validation window only)", "",
             f"{len(search.trials)} trials by Optuna {search.library.get('optuna', '')} ({search.sampler}), "
             f"{search.direction} {search.objective} on the validation window: {search.ending()} in "
             f"{search.seconds:,.1f} s. The test window was never seen by the search; the model judged above is "
             f"trial {chosen.number}'s, whose parameters the model card records (reproduce retrains them without "
             f"searching).", "",
             *_parallel_lines(search),
             *_baseline_lines(search, currency),
             "| trial | " + search.objective + f" | validation money ({currency}) | seconds | state | parameters |",
             "|---|---|---|---|---|---|"]
    for trial in search.trials:
        mark = (" **chosen**" if trial.number == chosen.number else "") + \
            (" (the spec's params)" if trial.origin == "params" else "")
        value = "" if trial.value is None else (f"{trial.value:,.0f}" if search.objective == "money"
                                                 else f"{trial.value:.4f}")
        money = "" if trial.validation_money is None else f"{trial.validation_money:,.0f}"
        parameters = ", ".join(f"{name} {value:.4g}" if isinstance(value, float) else f"{name} {value}"
                               for name, value in trial.parameters.items())
        lines.append(f"| {trial.number}{mark} | {value} | {money} | {trial.seconds:.1f} | {trial.state.lower()} | "
                     f"{parameters} |")
    if SEARCH_PLOT in images:
        lines += ["", f"![{SEARCH_TITLE}]({images[SEARCH_PLOT]})"]
    return lines
