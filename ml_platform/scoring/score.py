"""Score days of production rows with the live champion, through the same feature code as training.

The challenger (the newest run that passed the gate but was never promoted) can score the same days in shadow,
into `predictions.<model>__shadow`, so that it is judged on live rows before anyone promotes it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from ml_platform import grains, names
from ml_platform.code_version import code_version
from ml_platform.features.compute import day_ranges, feature_matrix_sql
from ml_platform.names import quote
from ml_platform.records.registry import EvaluationRecord, ModelRecord
from ml_platform.records.scoring import PredictionProvenance
from ml_platform.records.tasks import TaskEvaluationRecord
from ml_platform.scoring import contributions as stored_contributions
from ml_platform.scoring.inputs import COLUMN as INPUTS, packed_sql, writable_sql
from ml_platform.scoring.staging import (BATCH_ROWS, VIEW as STAGED, StagedRows, require_insertion_order,
                                     staged_rows)
from ml_platform.scoring.task_score import score_task_into
from ml_platform.scoring.writes import latest_partition_by, prediction_writes
from ml_platform.specs.catalog import Catalog
from ml_platform.specs.models import ModelSpec
from ml_platform.specs.sql_reach import require_contained_model
from ml_platform.specs.tasks import judged_by_decision, require_judged_today
from ml_platform.storage import registry
from ml_platform.storage.artifacts import ArtifactStore
from ml_platform.storage.versions import partition_version, version_names
from ml_platform.records.versions import PartitionVersion
from ml_platform.training.arrow_matrix import predict_relation
from ml_platform.training.fit import load_model
from ml_platform.training.inference import ScoringError, require_features, trained_spec


@dataclass(frozen=True)
class ScoringResult:
    """What one scoring of a range of days wrote: rows, how many were flagged (binary threshold models; None for
    a task decision, whose `decisions` says what was decided), and their provenance."""

    rows: int
    flagged: int | None
    provenance: PredictionProvenance
    decisions: str | None = None


def uses_task_scoring(spec: ModelSpec) -> bool:
    """Whether a model's predictions are stored as a task's (prediction, decision): every regression and multiclass
    model, and a binary one with a top decision; binary threshold models keep score, flagged and threshold."""
    return judged_by_decision(spec)


def _score_task(connection: duckdb.DuckDBPyConnection, artifacts: ArtifactStore, catalog: Catalog,
                trained: ModelRecord, start: dt.date, end: dt.date, name: str, constants: dict, latest: bool,
                provenance: PredictionProvenance, versions: dict[str, PartitionVersion] | None = None,
                contributions: bool = False) -> ScoringResult:
    """Score with a task model, its decision read from its stored task evaluation (scoring.task_score)."""
    record = registry.task_evaluations.get(connection, trained.model, trained.training_run)
    types = {name: PROVENANCE_TYPES.get(name, "VARCHAR") for name in constants}
    rows, decisions = score_task_into(connection, artifacts, catalog, trained, record, start, end, name,
                                      constants, types, latest, versions, contributions)
    return ScoringResult(rows, None, provenance, decisions)


# the stored type of each provenance column, as the first scoring of a model creates its table
PROVENANCE_TYPES = {"model_version": "VARCHAR", "spec_hash": "VARCHAR", "snapshot_id": "VARCHAR",
                    "training_run": "VARCHAR", "code_version": "VARCHAR", "scored_at": "TIMESTAMP",
                    "promotion_id": "BIGINT", "dagster_run_id": "VARCHAR"}


def _output_sql(catalog: Catalog, spec: ModelSpec, columns: dict[str, str], inputs: str,
                contributions: str = "") -> str:
    """The stored rows of the batch: each staged row (scoring.staging) with its score, a column of the same staged
    table: keys, date, score, decision, the exact feature values the model saw (the `inputs` expression, to
    explain it later), the `contributions` item when stored, then the threshold and the given constant columns
    (one parameter each)."""
    keys = ", ".join(quote(key) for key in catalog.entity_rows(spec.entity).keys)
    constants = "".join(f", CAST(? AS {kind}) AS {quote(name)}" for name, kind in columns.items())
    return (f"SELECT {keys}, CAST(CAST(partition_date AS DATE) AS TIMESTAMP) AS partition_date, score, "
            f"score >= threshold AS flagged, threshold, {inputs} AS {INPUTS}{contributions}{constants} FROM "
            f"(SELECT *, CAST(? AS DOUBLE) AS threshold FROM {STAGED})")


def _score_batch(connection: duckdb.DuckDBPyConnection, spec: ModelSpec, predictor, staged: StagedRows,
                 contributions: bool = False) -> np.ndarray:
    """Score the staged rows and add their scores (`score`, with the contribution columns when stored) to the
    staged table, in the rows' order; returns the scores.

    The features reach a LightGBM model as the staged Arrow columns (training.arrow_matrix; any other predictor, or
    TreeSHAP, reads DuckDB's pandas frame of them); keys and inputs stay in the Arrow table that the write reads
    back, and the scores become its columns: no row number, no join.
    """
    features = connection.sql(f"SELECT {', '.join(quote(name) for name in spec.features)} FROM {STAGED}")
    if contributions:  # TreeSHAP reads the pandas frame; its cost dwarfs the frame's
        frame = features.df()
        scores = predictor.predict(frame) if len(frame) else np.array([], dtype="float64")
        staged.add_frame(pd.concat(
            [pd.DataFrame({"score": scores}), stored_contributions.batch_columns(predictor, spec, frame)], axis=1))
        return scores
    scores = predict_relation(predictor, features, staged.table.select(list(spec.features)))
    staged.add_columns(pa.table({"score": pa.array(scores, type=pa.float64())}))
    return scores


def _provenance(model: ModelRecord, promotion_id: int | None, dagster_run_id: str) -> PredictionProvenance:
    """The provenance columns of a batch scored now by a registered model."""
    return PredictionProvenance(
        model_version=model.model_version, spec_hash=model.spec_hash, snapshot_id=model.snapshot_id,
        training_run=model.training_run, code_version=code_version(), scored_at=registry.now(),
        promotion_id=promotion_id, dagster_run_id=dagster_run_id)


def scored_versions(connection: duckdb.DuckDBPyConnection, catalog: Catalog, model_version: str,
                    start: dt.date, end: dt.date) -> dict[str, PartitionVersion]:
    """{day: version} of the production predictions of [start, end] when scored by `model_version`: the model
    version and the stored data version of each feature set it reads, that day. A day whose stored version is
    this one is already scored by the same model from the same feature data: scoring it again adds nothing."""
    trained = registry.models.by_version(connection, model_version)
    if trained is None:
        raise ScoringError(f"{model_version} has no registered model artifact")
    spec = trained_spec(connection, catalog, trained)
    stored = {feature_set.name: version_names(connection, names.feature_asset(feature_set.name))
              for feature_set in catalog.feature_sets_of(spec)}
    result = {}
    for day, _ in grains.partition_days(catalog.entity_rows(spec.entity).grain, start, end):
        key = day.isoformat()
        components = {"model_version": model_version}
        components.update({f"features {name}": versions.get(key, "absent")
                           for name, versions in sorted(stored.items())})
        result[key] = partition_version(components)
    return result


def _score_into(connection: duckdb.DuckDBPyConnection, artifacts: ArtifactStore, catalog: Catalog,
                trained: ModelRecord, threshold: float, start: dt.date, end: dt.date, name: str, constants: dict,
                latest: bool, versions: dict[str, PartitionVersion] | None = None,
                contributions: bool = False) -> tuple[int, int]:
    """Score [start, end] batch by batch into `predictions.<name>` (and, when `latest`, refresh its latest-per-row
    view), stored at once (scoring.writes); with each row's feature contributions when `contributions`
    (scoring.contributions).

    Each batch's rows are read from DuckDB once, as Arrow (scoring.staging), and written back from it: keys and
    the inputs never become Python objects. Returns the rows written and how many were flagged.
    """
    spec = trained_spec(connection, catalog, trained)
    require_contained_model(spec)  # the spec recorded at training, checked again before its SQL runs
    require_features(connection, catalog, spec, trained, start, end)
    require_insertion_order(connection)
    predictor = load_model(artifacts, trained)
    types = {name: PROVENANCE_TYPES.get(name, "VARCHAR") for name in constants}
    batch_parameters = [*constants.values(), float(threshold)]  # in the order of the placeholders
    contributed = stored_contributions.column_sql(predictor, spec) if contributions else ""
    rows = flagged = 0
    latest_by = latest_partition_by(catalog, spec) if latest else None
    with prediction_writes(connection, name, latest_by, versions, spec.name) as writes:
        for first, last in day_ranges(connection, catalog, spec.entity, start, end, BATCH_ROWS):
            with staged_rows(connection, feature_matrix_sql(catalog, spec, first, last, False)) as staged:
                scores = _score_batch(connection, spec, predictor, staged, contributions)
                connection.execute(
                    f"{writes.create} AS SELECT * FROM "
                    f"({_output_sql(catalog, spec, types, packed_sql(spec.features), contributed)}) LIMIT 0",
                    batch_parameters)
                if contributions:
                    stored_contributions.add_column(connection, writes.table)
                select = _output_sql(catalog, spec, types,
                                     writable_sql(connection, writes.table, staged.features(list(spec.features))),
                                     contributed)
                rows += connection.execute(f"INSERT INTO {writes.table} BY NAME {select}",
                                           batch_parameters).fetchall()[0][0]
                flagged += int(np.count_nonzero(scores >= float(threshold)))
    return rows, flagged


def score_days(connection: duckdb.DuckDBPyConnection, artifacts: ArtifactStore, catalog: Catalog,
               model: ModelSpec, start: dt.date, end: dt.date, dagster_run_id: str) -> ScoringResult:
    """Append predictions for [start, end] to predictions.<model>, each row carrying its provenance."""
    champion = registry.promotions.champion(connection, model.name)
    if champion is None:
        raise ScoringError(f"no version of '{model.name}' has been deployed yet: train it and pass the gate first")
    trained = registry.models.by_version(connection, champion.model_version)
    provenance = _provenance(trained, champion.promotion_id, dagster_run_id)
    versions = scored_versions(connection, catalog, trained.model_version, start, end)
    if uses_task_scoring(model):
        return _score_task(connection, artifacts, catalog, trained, start, end, model.name,
                           provenance.plain(), True, provenance, versions,
                           stored_contributions.stored_by(model))
    require_judged_today(model, "scoring")
    evaluation = registry.evaluations.get(connection, model.name, champion.training_run)
    rows, flagged = _score_into(connection, artifacts, catalog, trained, evaluation.summary.threshold, start, end,
                                model.name, provenance.plain(), True, versions,
                                stored_contributions.stored_by(model))
    return ScoringResult(rows, flagged, provenance)


def score_shadow_days(connection: duckdb.DuckDBPyConnection, artifacts: ArtifactStore, catalog: Catalog,
                      model: ModelSpec, challenger: EvaluationRecord | TaskEvaluationRecord, start: dt.date,
                      end: dt.date,
                      dagster_run_id: str) -> ScoringResult:
    """Append the challenger's predictions for [start, end] to predictions.<model>__shadow, with provenance.

    `challenger` is the challenger's evaluation. Shadow rows carry the same provenance columns as production rows
    (promotion_id is empty: the challenger was never promoted) plus the champion version they shadowed.
    """
    trained = registry.models.by_version(connection, challenger.model_version)
    if trained is None:
        raise ScoringError(f"challenger {challenger.model_version} has no registered model artifact")
    provenance = _provenance(trained, None, dagster_run_id)
    champion = registry.promotions.champion(connection, model.name)
    constants = {**provenance.plain(), "shadowing": champion.model_version if champion else None}
    if isinstance(challenger, TaskEvaluationRecord):
        return _score_task(connection, artifacts, catalog, trained, start, end, names.shadow_table_name(model.name),
                           constants, False, provenance, None, stored_contributions.stored_by(model))
    rows, flagged = _score_into(connection, artifacts, catalog, trained, challenger.summary.threshold, start, end,
                                names.shadow_table_name(model.name), constants, False, None,
                                stored_contributions.stored_by(model))
    return ScoringResult(rows, flagged, provenance)
