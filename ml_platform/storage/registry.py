"""Append-only registries in the warehouse: snapshots, models, evaluations, promotions and spec texts.

Rows are only ever inserted. Primary keys make a second write of the same identity fail instead of replacing it.
With `ML_PLATFORM_REGISTRY_URL` set (the cluster configuration), the same tables live in that PostgreSQL database
and every read and write below goes there instead of the warehouse connection it is handed
(storage/registry_postgres.py).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, Callable, Generic, TypeVar

import duckdb

from ml_platform import clock
from ml_platform.errors import PlatformError
from ml_platform.names import registry_table
from ml_platform.records.base import Record
from ml_platform.records.registry import EvaluationRecord, ModelRecord, PromotionRecord, SnapshotRecord, SpecRecord
from ml_platform.records.tasks import TaskEvaluationRecord
from ml_platform.storage.registry_postgres import postgres_registry

_TABLES = {
    "specs": """
        spec_hash VARCHAR PRIMARY KEY, model VARCHAR NOT NULL, payload JSON NOT NULL, recorded_at TIMESTAMP NOT NULL""",
    "snapshots": """
        training_run VARCHAR NOT NULL, model VARCHAR NOT NULL, snapshot_id VARCHAR NOT NULL,
        spec_hash VARCHAR NOT NULL, path VARCHAR NOT NULL, sha256 VARCHAR NOT NULL, manifest JSON NOT NULL,
        created_at TIMESTAMP NOT NULL, PRIMARY KEY (model, training_run)""",
    "models": """
        model_version VARCHAR NOT NULL, model VARCHAR NOT NULL, training_run VARCHAR NOT NULL,
        snapshot_id VARCHAR NOT NULL, spec_hash VARCHAR NOT NULL, path VARCHAR NOT NULL, sha256 VARCHAR NOT NULL,
        card JSON NOT NULL, created_at TIMESTAMP NOT NULL, PRIMARY KEY (model, training_run)""",
    "evaluations": """
        model VARCHAR NOT NULL, training_run VARCHAR NOT NULL, model_version VARCHAR NOT NULL,
        report_path VARCHAR NOT NULL, report_sha256 VARCHAR NOT NULL, summary JSON NOT NULL,
        gate_passed BOOLEAN NOT NULL, created_at TIMESTAMP NOT NULL, PRIMARY KEY (model, training_run)""",
    "promotions": """
        promotion_id BIGINT PRIMARY KEY, model VARCHAR NOT NULL, model_version VARCHAR NOT NULL,
        training_run VARCHAR NOT NULL, promoted_at TIMESTAMP NOT NULL, dagster_run_id VARCHAR NOT NULL,
        reason VARCHAR NOT NULL, gate JSON NOT NULL""",
    "task_evaluations": """
        model VARCHAR NOT NULL, training_run VARCHAR NOT NULL, model_version VARCHAR NOT NULL, task VARCHAR NOT NULL,
        decision VARCHAR NOT NULL, decision_parameter_name VARCHAR, decision_parameter DOUBLE, decision_rule VARCHAR,
        measurement_path VARCHAR NOT NULL, measurement_sha256 VARCHAR NOT NULL, report_path VARCHAR NOT NULL,
        report_sha256 VARCHAR NOT NULL, plots JSON NOT NULL, predictions_path VARCHAR NOT NULL,
        predictions_sha256 VARCHAR NOT NULL, test_money DOUBLE NOT NULL, test_money_interval_95 DOUBLE[] NOT NULL,
        test_window VARCHAR[] NOT NULL, test_rows BIGINT NOT NULL, currency VARCHAR NOT NULL, gate JSON NOT NULL,
        gate_passed BOOLEAN NOT NULL, created_at TIMESTAMP NOT NULL, PRIMARY KEY (model, training_run)""",
}


def create_registry_tables(connection: duckdb.DuckDBPyConnection) -> None:
    """Create the registry tables when missing."""
    for name, columns in _TABLES.items():
        connection.execute(f"CREATE TABLE IF NOT EXISTS {registry_table(name)} ({columns})")


def now() -> dt.datetime:
    """The platform clock's current UTC time without tzinfo, as the registries store it (simulated in a replay)."""
    return clock.now()


class RegistryConflictError(PlatformError, RuntimeError):
    """A second write of something the append-only registry already holds; the stored row is kept as it was."""


# What each registry holds, and the columns that identify one record (its primary key).
_RECORDS = {
    "specs": ("recorded spec", ("spec_hash",)),
    "snapshots": ("snapshot", ("model", "training_run")),
    "models": ("trained model", ("model", "training_run")),
    "evaluations": ("evaluation", ("model", "training_run")),
    "promotions": ("promotion", ("promotion_id",)),
    "task_evaluations": ("evaluation", ("model", "training_run")),
}


def _insert(connection: duckdb.DuckDBPyConnection, name: str, row: dict[str, Any]) -> None:
    """Append one row, JSON-valued fields as sorted-key JSON text. A second write of a record fails."""
    if name not in _TABLES:
        raise ValueError(f"unknown registry {name!r}")
    values = [json.dumps(value, sort_keys=True) if isinstance(value, (dict, list)) else value for value in row.values()]
    shared = postgres_registry(_TABLES)
    if shared is not None:
        shared.insert(name, dict(zip(row, values)), lambda: _conflict_message(connection, name, row))
        return
    columns = ", ".join(row)
    marks = ", ".join("?" for _ in row)
    try:
        connection.execute(f"INSERT INTO {registry_table(name)} ({columns}) VALUES ({marks})", values)
    except duckdb.ConstraintException:
        raise RegistryConflictError(_conflict_message(connection, name, row)) from None  # the message says it all


def _conflict_message(connection: duckdb.DuckDBPyConnection, name: str, row: dict[str, Any]) -> str:
    """Why a row cannot be appended: which stored record already has its identity."""
    what, identity = _RECORDS[name]
    try:
        found = _rows(connection, name, **{column: row[column] for column in identity})
        existing = found[-1] if found else None
    except (KeyError, duckdb.Error):  # a partial row, or a failed transaction where nothing can be read
        existing = None
    return f"{_describe(name, row, existing)}; {registry_table(name)} is append-only: the stored {what} is kept and " \
           f"never replaced"


def _describe(name: str, row: dict[str, Any], existing: dict | None) -> str:
    created = ""
    if existing and "created_at" in existing:
        created = f", created {existing['created_at']:%Y-%m-%d %H:%M:%S} UTC"
    if name == "specs":
        return f"spec hash {row['spec_hash']} of model '{row.get('model', '?')}' is already recorded"
    if name == "promotions":
        return f"promotion #{row['promotion_id']} already exists"
    owner = f"training run '{row['training_run']}' of model '{row['model']}'"
    if name == "snapshots":
        stored = f" (snapshot {existing['snapshot_id']}{created})" if existing else ""
        return f"{owner} already has a snapshot{stored}"
    stored = f" ({'' if name == 'models' else 'of '}{existing['model_version']}{created})" if existing else ""
    return f"{owner} already has {'a trained model' if name == 'models' else 'an evaluation'}{stored}"


def _rows(connection: duckdb.DuckDBPyConnection, name: str, order_by: str | None = None,
          **where: Any) -> list[dict[str, Any]]:
    """Every row matching all conditions, JSON fields decoded: what a record is validated from."""
    if name not in _TABLES:
        raise ValueError(f"unknown registry {name!r}")
    clause = " AND ".join(f"{column} = ?" for column in where) or "TRUE"
    order = f" ORDER BY {order_by}" if order_by else ""
    shared = postgres_registry(_TABLES)
    if shared is not None:
        columns, fetched = shared.rows(name, clause, order, list(where.values()))
    else:
        cursor = connection.execute(f"SELECT * FROM {registry_table(name)} WHERE {clause}{order}",
                                    list(where.values()))
        columns, fetched = [description[0] for description in cursor.description], cursor.fetchall()
    result = []
    for values in fetched:
        row = dict(zip(columns, values))
        for key in ("payload", "manifest", "card", "summary", "gate", "plots"):
            if isinstance(row.get(key), str):
                row[key] = json.loads(row[key])
        result.append(row)
    return result


# The registry API: records in, records out.

Stored = TypeVar("Stored", bound=Record)


class RecordTable(Generic[Stored]):
    """One registry table read and written as records of one type; JSON columns hold sorted-key JSON text."""

    def __init__(self, name: str, record_type: type[Stored], identity: tuple[str, ...], order_by: str):
        self.name = name
        self.record_type = record_type
        self.identity = identity  # the primary key's columns, the arguments of get()
        self.order_by = order_by  # the order of all()

    def add(self, connection: duckdb.DuckDBPyConnection, record: Stored) -> None:
        """Append the record; RegistryConflictError naming the stored record when its identity is already stored."""
        row = {column: getattr(record, column) for column in type(record).model_fields}
        # nested records as their plain dicts, written as sorted-key JSON text
        _insert(connection, self.name, {column: value.plain() if isinstance(value, Record) else value
                                       for column, value in row.items()})

    def get(self, connection: duckdb.DuckDBPyConnection, *identity: Any) -> Stored | None:
        """The record with this identity (the primary key's values, in order), or None."""
        if len(identity) != len(self.identity):
            raise TypeError(f"{registry_table(self.name)} records are identified by {', '.join(self.identity)}")
        return self.find(connection, **dict(zip(self.identity, identity)))

    def find(self, connection: duckdb.DuckDBPyConnection, **where: Any) -> Stored | None:
        """The last record (in the table's order) matching all conditions, or None."""
        records = self.all(connection, **where)
        return records[-1] if records else None

    def all(self, connection: duckdb.DuckDBPyConnection, **where: Any) -> list[Stored]:
        """Every record matching all conditions, in the table's order."""
        return [self.record_type.model_validate(row)
                for row in _rows(connection, self.name, order_by=self.order_by, **where)]


class ModelTable(RecordTable[ModelRecord]):
    """registry.models, also read by model version."""

    def by_version(self, connection: duckdb.DuckDBPyConnection, model_version: str) -> ModelRecord | None:
        """The trained model of a model version, or None."""
        return self.find(connection, model_version=model_version)


class PromotionTable(RecordTable[PromotionRecord]):
    """registry.promotions: the append-only promotion log."""

    def log(self, connection: duckdb.DuckDBPyConnection, model: str) -> list[PromotionRecord]:
        """The model's promotions, oldest first."""
        return self.all(connection, model=model)

    def champion(self, connection: duckdb.DuckDBPyConnection, model: str) -> PromotionRecord | None:
        """The model's latest promotion (its live champion), or None when nothing was ever promoted."""
        return self.find(connection, model=model)

    def next_id(self, connection: duckdb.DuckDBPyConnection) -> int:
        """The id the next promotion record takes."""
        return read_registry(connection, f"SELECT coalesce(max(promotion_id), 0) + 1 FROM "
                                         f"{registry_table('promotions')}")[0][0]

    def add_next(self, connection: duckdb.DuckDBPyConnection,
                 build: Callable[[int], PromotionRecord]) -> PromotionRecord:
        """Append `build(id)` under the next id, the id taken and the row written as one step: in PostgreSQL in one
        transaction holding the table's lock (promoters on other machines wait); in the warehouse file, whose one
        writer process is the only promoter, one after the other."""
        shared = postgres_registry(_TABLES)
        if shared is None:
            record = build(self.next_id(connection))
            self.add(connection, record)
            return record
        built: list[PromotionRecord] = []

        def row_of(promotion_id: int) -> dict[str, Any]:
            built.append(build(promotion_id))
            plain = {column: getattr(built[-1], column) for column in type(built[-1]).model_fields}
            plain = {column: value.plain() if isinstance(value, Record) else value for column, value in plain.items()}
            return {column: json.dumps(value, sort_keys=True) if isinstance(value, (dict, list)) else value
                    for column, value in plain.items()}

        shared.append_numbered("promotions", "promotion_id", row_of,
                               lambda row: _conflict_message(connection, "promotions", row))
        return built[-1]

    def fingerprint(self, connection: duckdb.DuckDBPyConnection) -> tuple:
        """(count, highest id) of the promotion log: it changes with every promotion or rollback."""
        return tuple(read_registry(connection, f"SELECT count(*), max(promotion_id) FROM "
                                               f"{registry_table('promotions')}")[0])


specs = RecordTable("specs", SpecRecord, ("spec_hash",), "recorded_at")
snapshots = RecordTable("snapshots", SnapshotRecord, ("model", "training_run"), "created_at")
models = ModelTable("models", ModelRecord, ("model", "training_run"), "created_at")
evaluations = RecordTable("evaluations", EvaluationRecord, ("model", "training_run"), "created_at")
promotions = PromotionTable("promotions", PromotionRecord, ("promotion_id",), "promotion_id")
task_evaluations = RecordTable("task_evaluations", TaskEvaluationRecord, ("model", "training_run"), "created_at")


def read_registry(connection: duckdb.DuckDBPyConnection, sql: str) -> list[tuple]:
    """The rows of a read-only query over the registry tables (named `registry.<name>`, no parameters), wherever
    the registries live: the warehouse connection, or the PostgreSQL database the environment names."""
    shared = postgres_registry(_TABLES)
    return shared.scalar_rows(sql) if shared is not None else connection.execute(sql).fetchall()


def models_in(connection: duckdb.DuckDBPyConnection, *tables: str) -> list[str]:
    """The distinct model names stored in the given registries, sorted."""
    union = " UNION ".join(f"SELECT DISTINCT model FROM {registry_table(name)}" for name in tables)
    return sorted(row[0] for row in read_registry(connection, union))


def evaluation_of(connection: duckdb.DuckDBPyConnection, model: str, training_run: str
                  ) -> EvaluationRecord | TaskEvaluationRecord | None:
    """A training run's stored evaluation whatever its task: binary in registry.evaluations, regression and
    multiclass in registry.task_evaluations (a run has at most one of the two), or None."""
    return evaluations.get(connection, model, training_run) or task_evaluations.get(connection, model, training_run)


def all_evaluations(connection: duckdb.DuckDBPyConnection, model: str
                    ) -> list[EvaluationRecord | TaskEvaluationRecord]:
    """Every stored evaluation of a model, binary and task, oldest first."""
    found = [*evaluations.all(connection, model=model), *task_evaluations.all(connection, model=model)]
    return sorted(found, key=lambda record: record.created_at)
