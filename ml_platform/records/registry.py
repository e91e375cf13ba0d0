"""The rows of the append-only registries (registry.specs, snapshots, models, evaluations, promotions)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from ml_platform.records.base import Record
from ml_platform.records.evaluation import EvaluationSummary
from ml_platform.records.gate import Gate
from ml_platform.records.snapshots import SnapshotManifest
from ml_platform.records.tasks import TaskGate
from ml_platform.records.training import ModelCard


class SpecRecord(Record):
    """A model spec's text as recorded when its first snapshot was made, by spec hash."""

    spec_hash: str
    model: str
    payload: dict[str, Any]  # the spec's canonical payload (specs.catalog.Catalog.model_payload)
    recorded_at: dt.datetime  # naive UTC


class SnapshotRecord(Record):
    """A training run's snapshot file and its manifest."""

    training_run: str
    model: str
    snapshot_id: str  # the first 16 characters of sha256
    spec_hash: str
    path: str  # in the artifact store
    sha256: str
    manifest: SnapshotManifest
    created_at: dt.datetime  # naive UTC


class ModelRecord(Record):
    """A training run's trained model artifact and its card."""

    model_version: str  # "<model>-<first 12 characters of sha256>"
    model: str
    training_run: str
    snapshot_id: str
    spec_hash: str
    path: str
    sha256: str
    card: ModelCard
    created_at: dt.datetime  # naive UTC


class EvaluationRecord(Record):
    """A training run's stored evaluation: its JSON report file and summary."""

    model: str
    training_run: str
    model_version: str
    report_path: str
    report_sha256: str
    summary: EvaluationSummary
    gate_passed: bool
    created_at: dt.datetime  # naive UTC


class PromotionRecord(Record):
    """One entry of a model's promotion log; the latest is the live champion."""

    promotion_id: int
    model: str
    model_version: str
    training_run: str
    promoted_at: dt.datetime  # naive UTC, the platform clock's time of the decision
    dagster_run_id: str  # or "ml-platform rollback"
    reason: str
    gate: Gate | TaskGate  # binary or task; the gate the promotion was decided on (beats_champion compared again when the champion changed)
