"""Explain one production prediction: score, decision, model, spec, snapshot, code, inputs, scoring and promotion."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

import duckdb

from ml_platform import names
from ml_platform.names import quote
from ml_platform.provenance.contributions import (
    DEFAULT_TOP, PredictionContributions, contributions_text, prediction_contributions)
from ml_platform.features.library import load_catalog
from ml_platform.project import Project
from ml_platform.provenance.contribution_money import MoneyView, contributions_money, money_text
from ml_platform.provenance.describe import count, day as event_day, snapshot_rows, snapshot_windows, timestamp
from ml_platform.provenance.records import (
    ProvenanceInputError, choices, recorded_spec, registered_models, snapshot_record)
from ml_platform.provenance.spec_text import spec_yaml
from ml_platform.records.registry import ModelRecord, PromotionRecord, SnapshotRecord
from ml_platform.scoring.inputs import feature_values
from ml_platform.specs.errors import did_you_mean
from ml_platform.specs.catalog import entity_row_keys
from ml_platform.specs.models import EntitySpec, ModelSpec
from ml_platform.storage import registry
from ml_platform.storage.artifacts import ArtifactStore, TamperedArtifactError
from ml_platform.storage.delta_tables import (DELTA_LATEST_ORDER, PREDICTIONS, SOURCES, DeltaKind,
                                              delta_store_from_environment)
from ml_platform.storage.warehouse import table_exists

_RUN_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@dataclass
class Explanation:
    """One prediction and everything that made it; `others` are earlier scorings of the same row."""

    model: str
    keys: dict[str, str]
    entity: str
    prediction: dict  # the stored row of the predictions table
    inputs: dict
    trained: ModelRecord
    snapshot: SnapshotRecord
    payload: dict  # the recorded spec's payload: model, feature sets, sources
    spec_recorded_at: dt.datetime
    promotion: PromotionRecord | None
    others: list[dict]
    artifact_problem: str | None = None  # why the model's stored artifact fails its check, if it does
    contributions: PredictionContributions | None = None  # None when the artifact fails its check


def _delta_table(connection: duckdb.DuckDBPyConnection, kind: DeltaKind, name: str) -> str | None:
    """With the Delta store named (the cluster configuration), its table of `kind` called `name` registered on the
    (read-only) connection, as the name to read it by; None without the store or the table."""
    store = delta_store_from_environment()
    if store is None or not store.exists(kind.path(name)):
        return None
    connection.register(kind.dataset_name(name), store.dataset(kind.path(name)))
    return quote(kind.dataset_name(name))


def _scored_models(connection: duckdb.DuckDBPyConnection) -> list[str]:
    """Models with a production predictions table (not the shadow tables of their challengers): the warehouse's,
    and with the Delta store named its Delta tables."""
    rows = connection.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = 'predictions' "
                              "AND table_type = 'BASE TABLE' ORDER BY 1").fetchall()
    store = delta_store_from_environment()
    found = {row[0] for row in rows} | set(PREDICTIONS.names(store) if store is not None else [])
    models = set(registered_models(connection))
    return sorted(name for name in found if name in models)


def _predictions_table(connection: duckdb.DuckDBPyConnection, model: str) -> str:
    """The model's predictions table (its Delta table's, registered, in the cluster configuration), or a clear
    error naming the models that have predictions."""
    scored = _scored_models(connection)
    if model in scored:
        return _delta_table(connection, PREDICTIONS, model) or names.predictions_table(model)
    if model in registered_models(connection):
        raise ProvenanceInputError(f"model '{model}' has training runs but has not scored anything yet "
                                   f"(models with predictions: {choices(scored)})")
    raise ProvenanceInputError(f"no predictions of model '{model}'{did_you_mean(model, scored)} "
                               f"(models with predictions: {choices(scored)})")


def _entity_keys(connection: duckdb.DuckDBPyConnection, model: str) -> tuple[str, list[str]]:
    """The entity a model predicts for and its key columns, from the model's latest recorded spec: a source's
    keys, or an entity spec's keys within a partition (an hourly row's hour among them)."""
    latest = registry.specs.find(connection, model=model)
    if latest is None:
        raise ProvenanceInputError(f"model '{model}' has predictions but no recorded spec in "
                                   f"{names.registry_table('specs')}")
    payload = latest.payload
    entity = payload["model"]["entity"]
    population = payload.get("entities", {}).get(entity)
    if population is not None:
        return entity, list(entity_row_keys(EntitySpec.model_validate(population)))
    return entity, list(payload["sources"][entity]["keys"])


def _key_values(key: str, columns: list[str], entity: str) -> dict[str, str]:
    values = [key] if len(columns) == 1 else key.split(",")
    if len(values) != len(columns):
        raise ProvenanceInputError(f"{entity} rows are identified by {len(columns)} columns ({', '.join(columns)}): "
                                   f"give KEY as their values separated by commas (given '{key}')")
    return dict(zip(columns, values))


def _where(keys: dict[str, str]) -> tuple[str, list[str]]:
    return " AND ".join(f"CAST({quote(column)} AS VARCHAR) = ?" for column in keys), list(keys.values())


def _key_text(keys: dict[str, str]) -> str:
    return ", ".join(f"{column} '{value}'" for column, value in keys.items())


def _not_scored(connection: duckdb.DuckDBPyConnection, target: str, model: str, entity: str,
                keys: dict[str, str], day: dt.date | None) -> ProvenanceInputError:
    """The error for a key without a prediction: scored on other days, a row never scored, or no such row."""
    where, values = _where(keys)
    first, last, count = connection.execute(
        f"SELECT min(partition_date), max(partition_date), count(*) FROM {target}").fetchall()[0]
    scored = f"{model} scored {count:,} rows dated {event_day(first)} to {event_day(last)}"
    if day is not None:
        days = [row[0] for row in connection.execute(
            f"SELECT DISTINCT partition_date FROM {target} WHERE {where} ORDER BY 1", values).fetchall()]
        if days:
            return ProvenanceInputError(f"{_key_text(keys)} was not scored for {day} by {model}; it was scored for "
                                        f"{choices([event_day(value) for value in days])}")
    source = _delta_table(connection, SOURCES, entity) or (
        names.source_table(entity) if table_exists(connection, "source", entity) else None)
    if source is not None:
        found = connection.execute(
            f"SELECT min(partition_date) FROM {source} WHERE {where}", values).fetchall()[0][0]
        if found is not None:
            when = f" for {day}" if day is not None else ""
            return ProvenanceInputError(f"{_key_text(keys)} is a {entity} row dated {event_day(found)}, but {model} "
                                        f"never scored it{when} ({scored})")
    suggestion = ""
    if len(keys) == 1:
        column, value = next(iter(keys.items()))
        closest = connection.execute(
            f"SELECT CAST({quote(column)} AS VARCHAR) AS key FROM {target} "
            f"ORDER BY levenshtein(CAST({quote(column)} AS VARCHAR), ?), key LIMIT 1", [value]).fetchall()
        if closest:
            suggestion = did_you_mean(value, [closest[0][0]]) or f"; e.g. '{closest[0][0]}'"
    return ProvenanceInputError(f"no {entity} row has {_key_text(keys)}{suggestion} ({scored})")


def explain(connection: duckdb.DuckDBPyConnection, model: str, key: str, day: dt.date | None,
            store: ArtifactStore) -> Explanation:
    """Everything recorded about the latest prediction of one entity row (of one day when given), the stored
    artifact of the model that made it checked against its recorded SHA-256."""
    target = _predictions_table(connection, model)
    # a warehouse table only grows (the newest row last); a Delta table's rows have no order
    order = "rowid DESC" if target == names.predictions_table(model) else DELTA_LATEST_ORDER
    entity, columns = _entity_keys(connection, model)
    keys = _key_values(key, columns, entity)
    where, values = _where(keys)
    if day is not None:
        where, values = f"{where} AND partition_date = ?", [*values, day]
    cursor = connection.execute(
        f"SELECT * FROM {target} WHERE {where} ORDER BY {order}", values)  # newest first
    columns_read = [description[0] for description in cursor.description]
    rows = [dict(zip(columns_read, row)) for row in cursor.fetchall()]
    if not rows:
        raise _not_scored(connection, target, model, entity, keys, day)
    return explanation_of(connection, store, model, keys, entity, rows[0], rows[1:])


def explanation_of(connection: duckdb.DuckDBPyConnection, store: ArtifactStore, model: str, keys: dict[str, str],
                   entity: str, row: dict, earlier: list[dict]) -> Explanation:
    """The explanation of one stored prediction row (batch, or served in the batch row's shape): its model, spec,
    snapshot and promotion as recorded, the artifact checked against its SHA-256, and its contributions."""
    trained = registry.models.get(connection, model, row["training_run"])
    snapshot = snapshot_record(connection, model, row["training_run"])
    spec = recorded_spec(connection, row["spec_hash"])
    promotion = registry.promotions.get(connection, row["promotion_id"])
    # a table's inputs may hold fields of other versions' features too: show those of this row's own spec
    inputs = feature_values(row["inputs"], spec.payload["model"]["features"])
    try:
        store.verify(trained.path, trained.sha256)
        problem = None
    except TamperedArtifactError as error:
        problem = str(error).replace("; refusing to load it", "")
    contributions = None if problem is not None else prediction_contributions(
        connection, store, trained, inputs, row, spec.payload["model"].get("label") or {})
    return Explanation(model, keys, entity, row, inputs, trained, snapshot, spec.payload, spec.recorded_at,
                       promotion, earlier, problem, contributions)


def _run(recorded_by: str) -> str:
    """A Dagster run id as such; anything else (e.g. a rollback from the command line) as recorded."""
    return f"Dagster run {recorded_by}" if _RUN_ID.fullmatch(recorded_by) else f"by {recorded_by}"


def _decision(row: dict) -> str:
    """A row's decision in a few words: binary threshold tables flag; task tables store the decision taken."""
    if "flagged" in row:
        return "FLAGGED" if row["flagged"] else "not flagged"
    decision = row[names.DECISION_COLUMN]
    if isinstance(decision, bool):
        return "ACTED ON" if decision else "not acted on"
    return f"decision {_value(decision)}"


def _prediction(row: dict) -> str:
    """A row's prediction in a few words: the score, or a task's predicted number or decided class's probability."""
    if "score" in row:
        return f"score {row['score']:.4f}"
    return f"prediction {row[names.PREDICTION_COLUMN]:.6g}"


def _prediction_line(row: dict) -> str:
    """The report's line of what was predicted and decided (names.py's columns of the row's table)."""
    if "flagged" in row:
        comparison = "≥" if row["flagged"] else "<"
        return f"  score         {row['score']:.4f} {comparison} threshold {row['threshold']:.4f}: {_decision(row)}"
    probabilities = {name.removeprefix(names.PROBABILITY_PREFIX): value for name, value in row.items()
                     if name.startswith(names.PROBABILITY_PREFIX) and value is not None}
    parameter = row.get(names.DECISION_PARAMETER_COLUMN)
    chosen = "" if parameter is None or parameter != parameter else \
        f" (decision parameter {parameter:g}, chosen on validation)"
    if probabilities:
        shown = ", ".join(f"{name} {value:.4f}" for name, value in probabilities.items())
        return (f"  prediction    class probabilities {shown}\n"
                f"  decision      {row[names.DECISION_COLUMN]} (its probability "
                f"{row[names.PREDICTION_COLUMN]:.4f}){chosen}")
    return (f"  prediction    {row[names.PREDICTION_COLUMN]:.6g}\n"
            f"  decision      {_decision(row).removeprefix('decision ')}{chosen}")


def _value(value) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return "missing" if value is None else str(value)


def explanation_text(result: Explanation, full_spec: bool = False, top: int = DEFAULT_TOP,
                     money: MoneyView | None = None) -> str:
    """The report `ml-platform explain` prints; `top` contributions that moved the prediction most, and their
    money (`money`, provenance.contribution_money) when valued."""
    row, card, manifest, payload = result.prediction, result.trained.card, result.snapshot.manifest, result.payload
    promotion = result.promotion
    made_live = (f"promotion #{promotion.promotion_id} at {timestamp(promotion.promoted_at)} UTC of training "
                 f"run {promotion.training_run} ({_run(promotion.dagster_run_id)}): {promotion.reason}"
                 if promotion else f"promotion #{row['promotion_id']} (not found in "
                                   f"{names.registry_table('promotions')})")
    trained_code = card.code_version or "not recorded in its model card"
    lines = [
        f"Prediction of {result.model} for {result.entity} {_key_text(result.keys)}, "
        f"dated {event_day(row['partition_date'])}",
        _prediction_line(row),
        f"  scored at     {timestamp(row['scored_at'])} UTC by Dagster run {row['dagster_run_id']}",
        f"  model         {row['model_version']} ({card.algorithm}, seed {card.seed}), trained "
        f"{timestamp(result.trained.created_at)} UTC in training run {row['training_run']}",
        f"  artifact      {result.trained.path}: "
        + ("SHA-256 verified" if result.artifact_problem is None else f"FAILS its check (TAMPERED): "
                                                                       f"{result.artifact_problem}"),
        f"  made live by  {made_live}",
        f"  snapshot      {row['snapshot_id']}: {snapshot_windows(manifest)}; {snapshot_rows(manifest)}",
        f"  code version  {row['code_version']} when scoring; {trained_code} when training",
        f"  spec          spec hash {row['spec_hash']}, recorded {timestamp(result.spec_recorded_at)} UTC; "
        f"feature sets {', '.join(sorted(payload['feature_sets']))}; sources {', '.join(sorted(payload['sources']))}",
        "",
        f"Feature values the model saw ({len(result.inputs)}):",
    ]
    feature_set_of = {name: set_name for set_name, spec in payload["feature_sets"].items() for name in spec["features"]}
    width = max([len(name) for name in result.inputs] or [0])
    values = {name: _value(value) for name, value in result.inputs.items()}
    value_width = max([len(text) for text in values.values()] or [0])
    lines += [f"  {name:<{width}}  {values[name]:>{value_width}}  ({feature_set_of.get(name, '?')})"
              for name in result.inputs]
    if result.contributions is not None:
        lines += ["", *contributions_text(result.contributions, top)]
        if money is not None:
            lines += ["", *money_text(money)]
    lines += ["", f"Spec of {result.model} as recorded then (spec hash {row['spec_hash']})"
              + ("" if full_spec else "; --full-spec adds its feature sets and sources") + ":"]
    lines += [f"  {line}" for line in spec_yaml(payload["model"]).splitlines()]
    if full_spec:
        for kind in ("feature_sets", "sources"):
            for name, document in sorted(payload[kind].items()):
                lines += ["", f"  # {kind[:-1].replace('_', ' ')} {name}"]
                lines += [f"  {line}" for line in spec_yaml(document).splitlines()]
    if result.others:
        lines += ["", f"Scored {count(len(result.others), 'other time')} before, newest first:"]
        for other in result.others:
            lines.append(f"  {timestamp(other['scored_at'])} UTC  {event_day(other['partition_date'])}  "
                         f"{other['model_version']}  {_prediction(other)}  {_decision(other)}  "
                         f"promotion #{other['promotion_id']}  Dagster run {other['dagster_run_id']}")
    return "\n".join(lines)


def explained_money(connection: duckdb.DuckDBPyConnection, project: Project, result: Explanation,
                    top: int = DEFAULT_TOP) -> MoneyView | None:
    """The money of the explained prediction's top contributions, valued with its recorded spec's money values on
    the row's outcome (provenance.contribution_money); None without contributions."""
    if result.contributions is None:
        return None
    catalog = load_catalog(project.specs_dir, project.root)
    model = ModelSpec.model_validate(result.payload["model"])
    return contributions_money(connection, catalog, model, result.keys, result.prediction, result.contributions, top)
