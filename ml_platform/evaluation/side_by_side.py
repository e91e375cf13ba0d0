"""The challenger beside the champion it was compared with: money on the same rows (the gate's paired comparison),
each one's own test money and metrics, its decision and the feature importance shift, as Markdown for the
evaluation report and the deployment asset's page."""

from __future__ import annotations

import duckdb

from ml_platform.evaluation.importance import importance_shift
from ml_platform.records.evaluation import EvaluationSummary
from ml_platform.storage import registry

SHOWN_FEATURES = 8


def compared_champion(connection: duckdb.DuckDBPyConnection, summary: EvaluationSummary) -> EvaluationSummary | None:
    """The stored evaluation of the champion the summary's gate compared with; None when none was compared or
    the champion's evaluation is not a binary one."""
    check = summary.gate.beats_champion
    if check is None or check.details.champion_training_run is None:
        return None
    stored = registry.evaluations.get(connection, summary.model, check.details.champion_training_run)
    return stored.summary if stored is not None else None


def _money(value: float, currency: str) -> str:
    return f"{value:,.0f} {currency}"


def _metric(value: float, digits: int = 4) -> str:
    return "–" if value != value else f"{value:.{digits}f}"


def side_by_side_markdown(challenger: EvaluationSummary, champion: EvaluationSummary | None,
                          heading: str = "##") -> list[str]:
    """Markdown lines setting the challenger beside the champion; none when no champion was compared."""
    if champion is None:
        return []
    details = challenger.gate.beats_champion.details
    currency = challenger.currency
    lines = ["", f"{heading} Challenger beside the champion", ""]
    if details.gain is not None:
        low, high = details.gain_interval_95
        lines += [f"On the same {details.rows:,} test rows ({details.window[0]} to {details.window[1]}), valued with "
                  f"the challenger's money values: challenger {_money(details.challenger_money, currency)}, "
                  f"champion {_money(details.champion_money, currency)}, gain **{_money(details.gain, currency)}** "
                  f"(paired 95% interval {_money(low, currency)} to {_money(high, currency)}).", ""]
    one, two = champion.test, challenger.test
    rows = [("test money (own window, own values)",
             f"{_money(one.money, champion.currency)} (95% {_money(one.money_interval_95[0], champion.currency)} "
             f"to {_money(one.money_interval_95[1], champion.currency)})",
             f"{_money(two.money, currency)} (95% {_money(two.money_interval_95[0], currency)} to "
             f"{_money(two.money_interval_95[1], currency)})"),
            ("test window", f"{one.window[0]} to {one.window[1]}", f"{two.window[0]} to {two.window[1]}"),
            ("ROC AUC", _metric(one.roc_auc), _metric(two.roc_auc)),
            ("log loss", _metric(one.log_loss), _metric(two.log_loss)),
            ("Brier score", _metric(one.brier), _metric(two.brier)),
            ("precision", _metric(one.precision), _metric(two.precision)),
            ("recall", _metric(one.recall), _metric(two.recall)),
            ("threshold (chosen on validation)", f"{champion.threshold:.4f}", f"{challenger.threshold:.4f}"),
            ("flagged on test", f"{one.flagged:,} of {one.rows:,}", f"{two.flagged:,} of {two.rows:,}")]
    lines += [f"| | champion {champion.model_version} | challenger {challenger.model_version} |", "|---|---|---|"]
    lines += [f"| {name} | {first} | {second} |" for name, first, second in rows]
    if champion.importance is not None and challenger.importance is not None:
        shift = importance_shift(champion.importance, challenger.importance)
        lines += ["", "Feature importance (share of mean |contribution| on each one's test rows):", "",
                  "| feature | champion | challenger |", "|---|---|---|"]
        lines += [f"| {name} | {'–' if first is None else f'{first:.1%}'} | "
                  f"{'–' if second is None else f'{second:.1%}'} |" for name, first, second in shift[:SHOWN_FEATURES]]
    return lines
