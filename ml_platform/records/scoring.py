"""The provenance every scored row carries: which model, spec, snapshot, code and promotion made it."""

from __future__ import annotations

import datetime as dt

from ml_platform.records.base import Record


class PredictionProvenance(Record):
    """The provenance columns of a batch of predictions."""

    model_version: str
    spec_hash: str
    snapshot_id: str
    training_run: str
    code_version: str
    scored_at: dt.datetime  # naive UTC
    promotion_id: int | None  # None for shadow predictions of a never promoted challenger
    dagster_run_id: str
