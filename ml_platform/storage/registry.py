"""Append-only registries in the warehouse: snapshots, models, evaluations, promotions and spec texts.

Rows are only ever inserted. Primary keys make a second write of the same identity fail instead of replacing it.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import duckdb

from ml_platform.errors import PlatformError

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
}


def create_registry_tables(connection: duckdb.DuckDBPyConnection) -> None:
    """Create the registry tables when missing."""
    for name, columns in _TABLES.items():
        connection.execute(f"CREATE TABLE IF NOT EXISTS registry.{name} ({columns})")


def now() -> dt.datetime:
    """The current UTC time without tzinfo, as the registries store it."""
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


class RegistryConflictError(PlatformError, RuntimeError):
    """A second write of something the append-only registry already holds; the stored row is kept as it was."""


# What each registry holds, and the columns that identify one record (its primary key).
_RECORDS = {
    "specs": ("recorded spec", ("spec_hash",)),
    "snapshots": ("snapshot", ("model", "training_run")),
    "models": ("trained model", ("model", "training_run")),
    "evaluations": ("evaluation", ("model", "training_run")),
    "promotions": ("promotion", ("promotion_id",)),
}


def insert(connection: duckdb.DuckDBPyConnection, name: str, row: dict[str, Any]) -> None:
    """Append one row; JSON-valued fields may be given as Python objects. A second write of a record fails."""
    if name not in _TABLES:
        raise ValueError(f"unknown registry {name!r}")
    values = [json.dumps(value, sort_keys=True) if isinstance(value, (dict, list)) else value for value in row.values()]
    columns = ", ".join(row)
    marks = ", ".join("?" for _ in row)
    try:
        connection.execute(f"INSERT INTO registry.{name} ({columns}) VALUES ({marks})", values)
    except duckdb.ConstraintException:
        raise RegistryConflictError(conflict_message(connection, name, row)) from None  # the message says it all


def conflict_message(connection: duckdb.DuckDBPyConnection, name: str, row: dict[str, Any]) -> str:
    """Why a row cannot be appended: which stored record already has its identity."""
    what, identity = _RECORDS[name]
    try:
        existing = fetch_one(connection, name, **{column: row[column] for column in identity})
    except (KeyError, duckdb.Error):  # a partial row, or a failed transaction where nothing can be read
        existing = None
    return f"{_describe(name, row, existing)}; registry.{name} is append-only: the stored {what} is kept and " \
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


def fetch_one(connection: duckdb.DuckDBPyConnection, name: str, **where: Any) -> dict[str, Any] | None:
    """The single row matching all conditions, as a dict with JSON fields decoded, or None."""
    rows = fetch_all(connection, name, **where)
    return rows[-1] if rows else None


def fetch_all(connection: duckdb.DuckDBPyConnection, name: str, order_by: str | None = None,
              **where: Any) -> list[dict[str, Any]]:
    """Every row matching all conditions, JSON fields decoded."""
    if name not in _TABLES:
        raise ValueError(f"unknown registry {name!r}")
    clause = " AND ".join(f"{column} = ?" for column in where) or "TRUE"
    order = f" ORDER BY {order_by}" if order_by else ""
    cursor = connection.execute(f"SELECT * FROM registry.{name} WHERE {clause}{order}", list(where.values()))
    columns = [description[0] for description in cursor.description]
    result = []
    for values in cursor.fetchall():
        row = dict(zip(columns, values))
        for key in ("payload", "manifest", "card", "summary", "gate"):
            if isinstance(row.get(key), str):
                row[key] = json.loads(row[key])
        result.append(row)
    return result


def champion(connection: duckdb.DuckDBPyConnection, model: str) -> dict[str, Any] | None:
    """The latest promotion of a model: its live champion, or None when nothing was ever promoted."""
    rows = fetch_all(connection, "promotions", order_by="promotion_id", model=model)
    return rows[-1] if rows else None


def next_promotion_id(connection: duckdb.DuckDBPyConnection) -> int:
    """The id the next promotion record takes."""
    return connection.execute("SELECT coalesce(max(promotion_id), 0) + 1 FROM registry.promotions").fetchall()[0][0]
