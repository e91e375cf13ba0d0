"""Read-only access to the registry, and look-ups whose errors say what was given and what exists."""

from __future__ import annotations

import re
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import duckdb

from ml_platform import names
from ml_platform.errors import PlatformError
from ml_platform.features.functions import REGISTRY
from ml_platform.hashing import canonical_json, short_hash
from ml_platform.records.registry import ModelRecord, SnapshotRecord, SpecRecord
from ml_platform.specs.catalog import Catalog
from ml_platform.specs.errors import did_you_mean
from ml_platform.specs.models import FeatureSetSpec, ModelSpec, SourceSpec
from ml_platform.storage import registry
from ml_platform.storage.warehouse import file_free, open_private_warehouse

LOCK_WAIT_SECONDS = 60.0
SHOWN_CHOICES = 8
_RECORD_TABLES = [name for name in names.REGISTRY_TABLES if name != "partition_versions"]  # the registries proper
_ABBREVIATION = re.compile(r"[a-z][a-z0-9_]*-[0-9a-f]{4,}")  # a model's name and the start of a version's hash


class ProvenanceInputError(PlatformError, ValueError):
    """The command named something the project does not hold; the message says what was given and what exists."""


class RecordedSpecError(PlatformError, RuntimeError):
    """A recorded spec no longer hashes to its spec hash, or no longer parses as a spec."""


@contextmanager
def open_registry(warehouse: Path, wait_seconds: float = LOCK_WAIT_SECONDS) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection to the warehouse (nothing can be written through it), always closed afterwards; in
    the cluster configuration with no file (storage.warehouse.file_free), a private in-memory one holding no rows
    (the registries are read from PostgreSQL, the tables from the Delta store)."""
    warehouse = Path(warehouse)
    if not warehouse.exists() and file_free(warehouse):  # the cluster configuration without a file
        with open_private_warehouse(warehouse) as connection:
            yield connection
        return
    if not warehouse.is_file():
        raise ProvenanceInputError(f"no warehouse at {warehouse}: nothing was trained in this project yet "
                                   f"(run `ml-platform demo`, or pass --project)")
    deadline = time.monotonic() + wait_seconds
    delay = 0.05
    while True:
        try:
            connection = duckdb.connect(str(warehouse), read_only=True)
            break
        except duckdb.IOException as error:  # another process writes to it: wait for it, as the assets do
            if "lock" not in str(error).lower() or time.monotonic() >= deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 2.0)
    try:
        tables = {row[0] for row in connection.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'registry'").fetchall()}
        if not set(_RECORD_TABLES) <= tables:
            raise ProvenanceInputError(f"{warehouse} holds no ml_platform registry (registry.* tables are missing)")
        yield connection
    finally:
        connection.close()


def choices(values: list[str], limit: int = SHOWN_CHOICES) -> str:
    """A short listing of values, saying how many were left out."""
    if not values:
        return "none"
    shown = ", ".join(values[:limit])
    return shown + (f", and {len(values) - limit} more" if len(values) > limit else "")


def registered_models(connection: duckdb.DuckDBPyConnection) -> list[str]:
    """Names of the models that have at least one training run in the registry."""
    return registry.models_in(connection, "snapshots", "models")


def require_model(connection: duckdb.DuckDBPyConnection, model: str) -> None:
    """Fail clearly when the registry holds no training run of the model."""
    known = registered_models(connection)
    if model not in known:
        raise ProvenanceInputError(f"no training runs of model '{model}' in the registry{did_you_mean(model, known)} "
                                   f"(models with training runs: {choices(known)})")


def known_versions(connection: duckdb.DuckDBPyConnection) -> list[str]:
    """Every model version in the registry, newest first."""
    return [row[0] for row in registry.read_registry(
        connection, f"SELECT model_version FROM {names.registry_table('models')} GROUP BY 1 "
                    f"ORDER BY max(created_at) DESC, 1")]


def resolve_version(connection: duckdb.DuckDBPyConnection, given: str) -> str | None:
    """The version `given` names: itself, or the only version it abbreviates (e.g. flight_delay-7588); else None."""
    versions = known_versions(connection)
    if given in versions or not _ABBREVIATION.fullmatch(given):
        return given if given in versions else None
    matches = [version for version in versions if version.startswith(given)]
    if len(matches) > 1:
        raise ProvenanceInputError(f"'{given}' abbreviates several model versions ({choices(matches)}): "
                                   f"give more of it")
    return matches[0] if matches else None


def model_records(connection: duckdb.DuckDBPyConnection, model_version: str) -> list[ModelRecord]:
    """The trained models of a model version, oldest first (two training runs can produce the identical artifact)."""
    resolved = resolve_version(connection, model_version)
    if resolved is not None:
        return registry.models.all(connection, model_version=resolved)
    versions = known_versions(connection)
    raise ProvenanceInputError(f"unknown model version '{model_version}'{did_you_mean(model_version, versions)} "
                               f"(versions in the registry, newest first: {choices(versions)})")


def snapshot_record(connection: duckdb.DuckDBPyConnection, model: str, training_run: str) -> SnapshotRecord:
    """The snapshot of a training run (every registered model has one)."""
    snapshot = registry.snapshots.get(connection, model, training_run)
    if snapshot is None:
        raise RecordedSpecError(f"training run '{training_run}' of '{model}' has a model but no snapshot record")
    return snapshot


def recorded_spec(connection: duckdb.DuckDBPyConnection, spec_hash: str) -> SpecRecord:
    """The spec recorded under a spec hash (model, feature sets, sources), after checking it still hashes to it."""
    recorded = registry.specs.get(connection, spec_hash)
    if recorded is None:
        raise RecordedSpecError(f"no spec is recorded under spec hash {spec_hash} in {names.registry_table('specs')}")
    actual = short_hash(canonical_json(recorded.payload))
    if actual != spec_hash:
        raise RecordedSpecError(f"the spec recorded under spec hash {spec_hash} was modified: it now hashes to "
                                f"{actual}; refusing to use it")
    return recorded


def recorded_payload(connection: duckdb.DuckDBPyConnection, spec_hash: str) -> dict:
    """The payload (model, feature sets, sources) of the spec recorded under a spec hash, checked as recorded_spec."""
    return recorded_spec(connection, spec_hash).payload


def recorded_catalog(payload: dict) -> tuple[Catalog, ModelSpec]:
    """A catalog holding only what a recorded payload declares, and its model, parsed by today's spec language."""
    try:
        model = ModelSpec.model_validate(payload["model"])
        feature_sets = {name: FeatureSetSpec.model_validate(spec) for name, spec in payload["feature_sets"].items()}
        sources = {name: SourceSpec.model_validate(spec) for name, spec in payload["sources"].items()}
    except (KeyError, ValueError) as error:
        first = str(error).splitlines()[0]
        raise RecordedSpecError(f"the recorded spec no longer parses with today's spec language: {first}") from error
    here = Path(".")
    return Catalog(here, here, sources, feature_sets, {model.name: model}, functions=REGISTRY), model
