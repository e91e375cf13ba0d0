"""Challenger against champion in money for a regression or multiclass model: the task gate's `beats_champion`.

As for binary models (evaluation.comparison), the champion is judged on the challenger's test rows and both sets of
decisions are valued with the challenger's money expression for those rows; the gain's 95% interval is a paired
bootstrap over whole test days, and the same two rules decide (comparison.champion_rule).

The champion's predictions on those rows come from its own stored evaluation when that covers every row (it was
made with the features the champion was trained on); otherwise its model predicts the challenger's snapshot rows,
which is allowed only when its feature sets are unchanged since it was trained (inference.trained_spec), it reads
the same filter (a row the champion would never score has no decision of the champion's to value) and the rows
hold all its features. The champion's decision is its own: the kind and the parameter it chose on its validation
window, applied with the challenger's decision settings (budget, scale, class rule); a champion of another task or
decision kind cannot be compared and the check fails, unless the spec waives the comparison.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd

from ml_platform import names
from ml_platform.evaluation.comparison import judge_in_money
from ml_platform.evaluation.decisions import ChosenDecision, Decided, apply
from ml_platform.records.gate import ChampionComparison, GateCheck
from ml_platform.records.registry import PromotionRecord
from ml_platform.records.tasks import TaskEvaluationRecord
from ml_platform.specs.catalog import Catalog
from ml_platform.specs.models import ModelSpec
from ml_platform.storage import registry
from ml_platform.storage.artifacts import ArtifactStore
from ml_platform.training.fit import load_model
from ml_platform.training.inference import ScoringError, trained_spec



def chosen_of(record: TaskEvaluationRecord) -> ChosenDecision:
    """The decision a stored task evaluation chose on its validation window, ready to apply to other rows."""
    return ChosenDecision(record.decision, record.decision_parameter_name, record.decision_parameter, 0.0, (), ())


def prediction_columns(model: ModelSpec) -> list[str]:
    """The stored columns holding a task model's predictions: `prediction`, or one probability per class."""
    if model.label.task == "multiclass":
        return [names.probability_column(name) for name in model.label.classes]
    return [names.PREDICTION_COLUMN]


def stored_test_rows(connection: duckdb.DuckDBPyConnection, artifacts: ArtifactStore,
                     record: TaskEvaluationRecord) -> pd.DataFrame:
    """The test rows a task evaluation stored (keys, day, label, predictions, decision, money), hash verified."""
    path = artifacts.verify(record.predictions_path, record.predictions_sha256)
    return connection.execute(f"SELECT * FROM read_parquet('{path}')").df()


@dataclass(frozen=True)
class ChampionOnRows:
    """The champion's decisions on the challenger's rows, valued with the challenger's money expression."""

    decided: Decided
    facts: dict


def champion_on_rows(connection: duckdb.DuckDBPyConnection, artifacts: ArtifactStore, catalog: Catalog,
                     champion: PromotionRecord, model: ModelSpec, rows: pd.DataFrame) -> ChampionOnRows:
    """The champion's own decision on the given snapshot rows (see the module docstring); ScoringError when it
    cannot be made."""
    record = registry.task_evaluations.get(connection, model.name, champion.training_run)
    trained = registry.models.by_version(connection, champion.model_version)
    if record is None or trained is None:
        raise ScoringError(f"{champion.model_version} has no registered artifact or task evaluation")
    kind = model.money.decision.kind
    if record.task != model.label.task or record.decision != kind:
        raise ScoringError(f"{champion.model_version} is a {record.task} model deciding by {record.decision}, this "
                           f"spec a {model.label.task} deciding by {kind}: their decisions cannot be compared")
    facts = {"champion": champion.model_version, "champion_training_run": champion.training_run,
             "champion_promotion_id": champion.promotion_id, "rows_outside_champion_filter": 0}
    keys = list(catalog.entity_rows(model.entity).keys)
    columns = prediction_columns(model)
    stored = stored_test_rows(connection, artifacts, record)
    predictions = None
    if set(keys + columns) <= set(stored.columns):
        joined = rows[keys].merge(stored[keys + columns].drop_duplicates(keys), on=keys, how="left",
                                  validate="one_to_one")
        if not joined[columns].isna().any().any():
            predictions = joined[columns].to_numpy(dtype="float64")
            facts["champion_scores_from"] = "its own evaluation on the same test rows"
    if predictions is None:
        spec = trained_spec(connection, catalog, trained)
        if spec.entity != model.entity or (spec.filter or "") != (model.filter or ""):
            raise ScoringError(f"{champion.model_version} was trained on other rows (entity '{spec.entity}', filter "
                               f"{spec.filter!r}) than this spec's ('{model.entity}', {model.filter!r})")
        absent = sorted(set(trained.card.features) - set(rows.columns))
        if absent:
            raise ScoringError(f"{champion.model_version} needs features this run's rows lack: {', '.join(absent)}")
        predictions = np.asarray(load_model(artifacts, trained).predict(rows), dtype="float64")
        facts["champion_scores_from"] = "its model on this run's snapshot rows (its feature sets unchanged)"
    if model.label.task != "multiclass":
        predictions = predictions.reshape(-1)
    decided = apply(model, chosen_of(record), rows, predictions)
    if record.decision_parameter is not None:
        facts["champion_threshold"] = float(record.decision_parameter)  # the champion's own decision parameter
    return ChampionOnRows(decided, facts)


def task_beats_champion(connection: duckdb.DuckDBPyConnection, artifacts: ArtifactStore, catalog: Catalog,
                        model: ModelSpec, challenger_version: str, rows: pd.DataFrame,
                        challenger_per_row: np.ndarray, seed: int) -> GateCheck[ChampionComparison]:
    """The beats_champion check of a task model: its per-row money on its test rows against the champion's."""
    def champion_money(champion: PromotionRecord) -> tuple[np.ndarray, dict]:
        on_rows = champion_on_rows(connection, artifacts, catalog, champion, model, rows)
        return on_rows.decided.per_row, on_rows.facts

    return judge_in_money(connection, model, challenger_version, rows, challenger_per_row, champion_money, seed,
                          lambda: catalog.entity_rows(model.entity).grain)
