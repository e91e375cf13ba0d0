"""Two training runs (or model versions) side by side: money with intervals, the same rows paired, metrics, the
decision, money by slice, the feature importance shift and the spec diff, from what the registry stored."""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd

from ml_platform.evaluation.importance import importance_shift
from ml_platform.evaluation.money import paired_bootstrap_interval
from ml_platform.evaluation.predictions_file import read_predictions
from ml_platform.evaluation.run_figures import RunFigures, decision_rows, metric_rows, slice_shifts, stored_figures
from ml_platform.project import Project
from ml_platform.provenance.describe import money, snapshot_rows, snapshot_windows
from ml_platform.provenance.records import (
    ProvenanceInputError, choices, known_versions, model_records, open_registry, recorded_payload, resolve_version,
    snapshot_record)
from ml_platform.provenance.spec_diff import diff_text, recorded_side
from ml_platform.records.registry import EvaluationRecord, ModelRecord, SnapshotRecord
from ml_platform.records.tasks import TaskEvaluationRecord
from ml_platform.specs.errors import did_you_mean
from ml_platform.storage import registry
from ml_platform.storage.artifacts import ArtifactStore

SEED = 20
SLICE_ROWS_SHOWN = 8


@dataclass(frozen=True)
class RunSide:
    """One side of a comparison: its trained model, snapshot, evaluation (binary) or task evaluation."""

    given: str
    model: ModelRecord
    snapshot: SnapshotRecord
    evaluation: EvaluationRecord | None
    task: TaskEvaluationRecord | None
    champion: bool


@dataclass(frozen=True)
class PairedMoney:
    """Both sides' decisions on the test rows they share, valued with one side's money values (binary runs)."""

    rows: int
    days: int
    valued_with: str  # "A" or "B"
    first: float
    second: float
    interval: tuple[float, float]  # 95%, of second - first, resampling whole days


@dataclass(frozen=True)
class Comparison:
    """What `ml-platform compare` reports."""

    first: RunSide
    second: RunSide
    paired: PairedMoney | None
    unpaired_why: str | None  # why the test rows could not be paired, when they could not
    spec_differs: bool
    spec_diff: str
    first_figures: RunFigures | None  # None when that run was not evaluated
    second_figures: RunFigures | None


def _trained(connection: duckdb.DuckDBPyConnection, given: str) -> ModelRecord:
    """The trained model a training run key or a model version (or its abbreviation) names."""
    runs = registry.models.all(connection, training_run=given)
    if runs:
        return runs[-1]
    if resolve_version(connection, given) is None:
        versions = known_versions(connection)
        raise ProvenanceInputError(f"'{given}' is neither a model version nor a trained training run in the "
                                   f"registry{did_you_mean(given, versions)} (versions, newest first: "
                                   f"{choices(versions)})")
    records = model_records(connection, given)
    if len(records) > 1:
        listing = ", ".join(record.training_run for record in records)
        raise ProvenanceInputError(f"'{given}' was trained by {len(records)} training runs ({listing}): give one "
                                   f"of those training runs instead")
    return records[0]


def _side(connection: duckdb.DuckDBPyConnection, given: str) -> RunSide:
    trained = _trained(connection, given)
    champion = registry.promotions.champion(connection, trained.model)
    return RunSide(given, trained, snapshot_record(connection, trained.model, trained.training_run),
                   registry.evaluations.get(connection, trained.model, trained.training_run),
                   registry.task_evaluations.get(connection, trained.model, trained.training_run),
                   champion is not None and champion.training_run == trained.training_run)


def _paired(connection: duckdb.DuckDBPyConnection, artifacts: ArtifactStore, first: RunSide,
            second: RunSide) -> tuple[PairedMoney | None, str | None]:
    """Both decisions on the shared test rows valued with B's money values (as the gate values a champion with a
    challenger's), with a paired interval resampling days; or why there are none to pair."""
    if first.evaluation is None or second.evaluation is None:
        if first.task is not None or second.task is not None:
            return None, ("paired on the same rows for binary runs only; a regression or multiclass challenger is "
                          "compared with its champion on the same rows by its gate's beats_champion check")
        return None, "a side has no stored evaluation"
    one = read_predictions(connection, artifacts, first.evaluation.summary)
    two = read_predictions(connection, artifacts, second.evaluation.summary)
    one, two = one[one["split"] == "test"], two[two["split"] == "test"]
    payload = recorded_payload(connection, second.model.spec_hash)
    identity = [*payload["sources"][payload["model"]["entity"]]["keys"], "partition_date"]
    if first.model.model != second.model.model and any(column not in one.columns for column in identity):
        return None, "the two models predict for different rows"
    joined = one.merge(two, on=identity, suffixes=("_a", "_b"))
    if joined.empty:
        return None, "the two test windows share no rows"
    days = pd.factorize(joined["partition_date"])[0]
    if_flagged, if_not = joined["money_if_flagged_b"].to_numpy(), joined["money_if_not_flagged_b"].to_numpy()
    money_a = np.where(joined["flagged_a"].to_numpy(dtype=bool), if_flagged, if_not)
    money_b = np.where(joined["flagged_b"].to_numpy(dtype=bool), if_flagged, if_not)
    interval = paired_bootstrap_interval(money_b, money_a, SEED, groups=days)
    return PairedMoney(len(joined), int(days.max()) + 1, "B", float(money_a.sum()), float(money_b.sum()),
                       interval), None


def compare(project: Project, first: str, second: str) -> Comparison:
    """Compare two training runs or model versions of the project's registry."""
    artifacts = ArtifactStore(root=str(project.storage.artifacts))
    with open_registry(project.storage.warehouse) as connection:
        one, two = _side(connection, first), _side(connection, second)
        paired, why = _paired(connection, artifacts, one, two)
        figures = [stored_figures(connection, artifacts, side.model.model, side.model.training_run)
                   for side in (one, two)]
    differs, text = diff_text(recorded_side(project, one.model.training_run),
                              recorded_side(project, two.model.training_run))
    return Comparison(one, two, paired, why, differs, text, *figures)


def _side_lines(letter: str, side: RunSide) -> list[str]:
    card, manifest = side.model.card, side.snapshot.manifest
    evaluation = side.evaluation
    gate = evaluation.gate_passed if evaluation else side.task.gate_passed if side.task else None
    status = "not evaluated" if gate is None else ("gate passed" if gate else "gate FAILED")
    return [f"{letter}: {side.model.model_version} (training run {side.model.training_run}, spec hash "
            f"{side.model.spec_hash}){'; the live champion' if side.champion else ''}",
            f"   {card.algorithm}, seed {card.seed}, {len(card.features)} features; {status}",
            f"   snapshot {side.snapshot.snapshot_id}: {snapshot_windows(manifest)}; {snapshot_rows(manifest)}"]


def _number(value: float | None, digits: int = 4) -> str:
    return "-" if value is None or value != value else f"{value:.{digits}f}"


def _difference(first: float | None, second: float | None, digits: int = 4) -> str:
    if first is None or second is None or first != first or second != second:
        return "-"
    return f"{second - first:+.{digits}f}"


def _table(rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    return ["  " + "  ".join(cell.ljust(width) if column == 0 else cell.rjust(width)
                             for column, (cell, width) in enumerate(zip(row, widths))).rstrip() for row in rows]


def _money_lines(comparison: Comparison) -> list[str]:
    lines = ["", "Money on each run's own test window, valued with its own spec (95% interval, resampling days):"]
    for letter, figures in (("A", comparison.first_figures), ("B", comparison.second_figures)):
        if figures is None:
            lines.append(f"  {letter}  not evaluated")
            continue
        low, high = figures.test_interval
        lines.append(f"  {letter}  {money(figures.test_money, figures.currency)} (95% {low:,.0f} to {high:,.0f})  "
                     f"test {figures.test_window[0]} to {figures.test_window[1]}")
    paired = comparison.paired
    if paired is not None:
        low, high = paired.interval
        currency = comparison.second_figures.currency
        lines += ["", f"Same rows: the {paired.rows:,} test rows both runs scored ({paired.days} days), each run's "
                      f"decisions valued with B's money values:",
                  f"  A {money(paired.first, currency)}, B {money(paired.second, currency)}: B - A "
                  f"{paired.second - paired.first:+,.0f} {currency} (paired 95% interval {low:+,.0f} to "
                  f"{high:+,.0f}, resampling days)"]
    else:
        lines += ["", f"Same rows: not compared ({comparison.unpaired_why})"]
    return lines


def _figure_sections(one: RunFigures, two: RunFigures) -> list[str]:
    """Metrics, decision and money by slice of two evaluated runs, whatever their task."""
    lines = ["", "Metrics (test):"]
    rows = [("metric", "A", "B", "B - A")]
    rows += [(name, _number(first), _number(second), _difference(first, second))
             for name, first, second in metric_rows(one, two)]
    lines += _table(rows)
    lines += ["", "Decision (chosen on validation):"]
    rows = [("", "A", "B"), *decision_rows(one, two),
            ("validation money", money(one.validation_money, one.currency), money(two.validation_money, two.currency))]
    if one.decided_on_test is not None and two.decided_on_test is not None:
        rows.append(("flagged on test", one.decided_on_test, two.decided_on_test))
    lines += _table(rows)
    for name, shared, moved in slice_shifts(one, two, SLICE_ROWS_SHOWN):
        lines += ["", f"Money by {name or 'slice'} (test, each run's own window and money values; the "
                      f"{len(moved)} of {shared} shared slices that moved most):"]
        rows = [(name or "slice", "A", "B", "B - A")]
        rows += [(value, f"{first:,.0f}", f"{second:,.0f}", f"{second - first:+,.0f}") for value, first, second in moved]
        lines += _table(rows)
    return lines


def _importance_lines(one: RunFigures, two: RunFigures) -> list[str]:
    sides = [one.importance, two.importance]
    if None in sides:
        notes = [f"{letter}: {figures.importance_note or 'evaluated before importance was measured'}"
                 for letter, figures in (("A", one), ("B", two)) if figures.importance is None]
        return ["", "Feature importance shift: not measured (" + "; ".join(notes) + ")"]
    lines = ["", f"Feature importance shift (share of mean |contribution| on each run's test rows; A: "
                 f"{sides[0].method}, B: {sides[1].method}):"]
    rows = [("feature", "A", "B", "B - A")]
    for name, first, second in importance_shift(*sides):
        rows.append((name, "-" if first is None else f"{first:.1%}", "-" if second is None else f"{second:.1%}",
                     "-" if first is None or second is None else f"{(second - first) * 100:+.1f} pts"))
    return lines + _table(rows)


def comparison_text(comparison: Comparison) -> str:
    """The report `ml-platform compare` prints."""
    lines = ["Comparing A and B", *_side_lines("A", comparison.first), *_side_lines("B", comparison.second)]
    lines += _money_lines(comparison)
    one, two = comparison.first_figures, comparison.second_figures
    if one is not None and two is not None:
        lines += _figure_sections(one, two)
        lines += _importance_lines(one, two)
    lines += ["", "Spec diff:" if comparison.spec_differs else "Spec diff: none", comparison.spec_diff]
    return "\n".join(lines)
