"""The challenger beside the champion it was compared with: money on the same rows (the gate's paired comparison),
each one's own test money, the task's metrics, the decision, money by slice and the feature importance shift, as
Markdown for the evaluation report and the deployment asset's page, for every task (evaluation/run_figures.py)."""

from __future__ import annotations

import duckdb

from ml_platform.evaluation.importance import importance_shift
from ml_platform.evaluation.run_figures import (
    RunFigures, decision_rows, measurement_figures, metric_rows, slice_shifts, stored_figures, summary_figures)
from ml_platform.records.evaluation import EvaluationSummary
from ml_platform.records.gate import ChampionComparison, GateCheck
from ml_platform.records.tasks import TaskMeasurement
from ml_platform.storage import registry
from ml_platform.storage.artifacts import ArtifactStore

SHOWN_FEATURES = 8


def compared_champion(connection: duckdb.DuckDBPyConnection, summary: EvaluationSummary) -> EvaluationSummary | None:
    """The stored evaluation of the champion the summary's gate compared with; None when none was compared or
    the champion's evaluation is not a binary one."""
    check = summary.gate.beats_champion
    if check is None or check.details.champion_training_run is None:
        return None
    stored = registry.evaluations.get(connection, summary.model, check.details.champion_training_run)
    return stored.summary if stored is not None else None


def compared_champion_figures(connection: duckdb.DuckDBPyConnection, artifacts: ArtifactStore, model: str,
                              check: GateCheck[ChampionComparison] | None) -> RunFigures | None:
    """The figures of the champion a beats_champion check compared with (binary or task); None when none was."""
    if check is None or check.details.champion_training_run is None:
        return None
    return stored_figures(connection, artifacts, model, check.details.champion_training_run)


def _money(value: float, currency: str) -> str:
    return f"{value:,.0f} {currency}"


def _metric(value: float | None, digits: int = 4) -> str:
    return "–" if value is None or value != value else f"{value:.{digits}f}"


def side_by_side_markdown(challenger: EvaluationSummary, champion: EvaluationSummary | None,
                          heading: str = "##") -> list[str]:
    """Markdown lines setting a binary challenger beside the champion; none when no champion was compared."""
    if champion is None:
        return []
    return figures_side_by_side(summary_figures(challenger), summary_figures(champion),
                                challenger.gate.beats_champion.details, heading)


def figures_side_by_side(challenger: RunFigures, champion: RunFigures | None, details: ChampionComparison,
                         heading: str = "##") -> list[str]:
    """Markdown lines setting a challenger beside the champion its gate compared (`details`), for any task."""
    if champion is None:
        return []
    currency = challenger.currency
    lines = ["", f"{heading} Challenger beside the champion", ""]
    if details.gain is not None:
        low, high = details.gain_interval_95
        lines += [f"On the same {details.rows:,} test rows ({details.window[0]} to {details.window[1]}), valued with "
                  f"the challenger's money values: challenger {_money(details.challenger_money, currency)}, "
                  f"champion {_money(details.champion_money, currency)}, gain **{_money(details.gain, currency)}** "
                  f"(paired 95% interval {_money(low, currency)} to {_money(high, currency)}).", ""]
    one, two = champion, challenger

    def money_cell(figures: RunFigures) -> str:
        low, high = figures.test_interval
        return (f"{_money(figures.test_money, figures.currency)} (95% {_money(low, figures.currency)} to "
                f"{_money(high, figures.currency)})")

    rows = [("test money (own window, own values)", money_cell(one), money_cell(two)),
            ("test window", f"{one.test_window[0]} to {one.test_window[1]}",
             f"{two.test_window[0]} to {two.test_window[1]}")]
    rows += [(name, _metric(first), _metric(second)) for name, first, second in metric_rows(one, two)]
    rows += [(f"{name} (chosen on validation)", first, second) for name, first, second in decision_rows(one, two)]
    rows.append(("validation money", _money(one.validation_money, one.currency),
                 _money(two.validation_money, two.currency)))
    if one.decided_on_test is not None and two.decided_on_test is not None:
        rows.append(("flagged on test", one.decided_on_test, two.decided_on_test))
    lines += [f"| | champion {one.model_version} | challenger {two.model_version} |", "|---|---|---|"]
    lines += [f"| {name} | {first} | {second} |" for name, first, second in rows]
    for name, shared, moved in slice_shifts(one, two):
        lines += ["", f"Money by {name or 'slice'} (test, each one's own window and money values; the {len(moved)} of "
                      f"{shared} shared slices that moved most):", "",
                  f"| {name or 'slice'} | champion | challenger | challenger - champion |", "|---|---|---|---|"]
        lines += [f"| {value} | {first:,.0f} | {second:,.0f} | {second - first:+,.0f} |"
                  for value, first, second in moved]
    if one.importance is not None and two.importance is not None:
        shift = importance_shift(one.importance, two.importance)
        lines += ["", "Feature importance (share of mean |contribution| on each one's test rows):", "",
                  "| feature | champion | challenger |", "|---|---|---|"]
        lines += [f"| {name} | {'–' if first is None else f'{first:.1%}'} | "
                  f"{'–' if second is None else f'{second:.1%}'} |" for name, first, second in shift[:SHOWN_FEATURES]]
    else:
        notes = [f"{who}: {figures.importance_note or 'not measured'}"
                 for who, figures in (("champion", one), ("challenger", two)) if figures.importance is None]
        lines += ["", "Feature importance shift not shown (" + "; ".join(notes) + ")."]
    return lines


def task_side_by_side(connection: duckdb.DuckDBPyConnection, artifacts: ArtifactStore, measurement: TaskMeasurement,
                      model_version: str, check: GateCheck[ChampionComparison], heading: str = "##") -> list[str]:
    """Markdown lines setting a regression or multiclass challenger beside the champion its gate compared."""
    champion = compared_champion_figures(connection, artifacts, measurement.model, check)
    return figures_side_by_side(measurement_figures(measurement, model_version), champion, check.details, heading)
