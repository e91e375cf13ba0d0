"""Features missing on a scored day far more than in training: the day is scored, but flagged as degraded.

A model learns from how often each feature is missing in its training rows. A day on which a feature is missing on
far more rows (a vendor feed that lapsed, a source day refused the evening before, so that the next day's "eve"
features have nothing to read) is scored by a model that never saw such rows: its scores are not the ones its
evaluation promised. The rule: a feature is degraded on a day when its missing share exceeds its share in the
champion's training rows by more than MAX_EXTRA_MISSING (0.5: e.g. never missing in training, missing on more than
half of the day's rows). The predictions asset's warning check `feature_missing` fails and names each degraded day
and feature, the run and its metadata show it, and `ml-platform demo` prints it in its summary.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import duckdb

from ml_platform.grains import PERIOD_NOUN
from ml_platform.features.compute import feature_matrix_sql
from ml_platform.names import quote
from ml_platform.records.registry import ModelRecord
from ml_platform.snapshots.columns import split_condition
from ml_platform.specs.catalog import Catalog
from ml_platform.storage import registry
from ml_platform.storage.artifacts import ArtifactStore
from ml_platform.training.inference import ScoringError, trained_spec

MAX_EXTRA_MISSING = 0.5  # a feature missing on this much more of a day's rows than of the training rows: degraded
CHECK_NAME = "feature_missing"


@dataclass(frozen=True)
class MissingFeature:
    """One feature missing on a scored day far more than in training."""

    day: dt.date
    feature: str
    share: float  # of the day's scored rows
    training_share: float  # of the champion's training rows
    rows: int  # the day's scored rows

    def text(self) -> str:
        """'2013-02-02: eve_pressure_mb missing on 100% of 1,023 rows (0.4% in training)'."""
        return (f"{self.day}: {self.feature} missing on {self.share:.0%} of {self.rows:,} rows "
                f"({self.training_share:.1%} in training)")


def _null_shares(columns: list[str]) -> str:
    return ", ".join(f"avg(CASE WHEN {quote(name)} IS NULL THEN 1.0 ELSE 0.0 END) AS {quote(name)}"
                     for name in columns)


def training_missing_shares(connection: duckdb.DuckDBPyConnection, artifacts: ArtifactStore,
                            trained: ModelRecord) -> dict[str, float]:
    """{feature: share of the training rows where it is missing} in the model's verified snapshot."""
    snapshot = registry.snapshots.get(connection, trained.model, trained.training_run)
    if snapshot is None:
        raise ScoringError(f"{trained.model_version} has no recorded snapshot in the registry")
    path = artifacts.verify(snapshot.path, snapshot.sha256)
    features = list(trained.card.features)
    row = connection.execute(f"SELECT {_null_shares(features)} FROM read_parquet(?) WHERE "
                             f"{split_condition('train')}", [str(path)]).fetchall()[0]
    return {name: float(value or 0.0) for name, value in zip(features, row)}


def degraded_features(connection: duckdb.DuckDBPyConnection, artifacts: ArtifactStore, catalog: Catalog,
                      trained: ModelRecord, start: dt.date, end: dt.date) -> list[MissingFeature]:
    """Each (day, feature) of [start, end] whose missing share exceeds the training share by more than
    MAX_EXTRA_MISSING, on the rows the model scores (its own spec's features and filter), by day then feature."""
    spec = trained_spec(connection, catalog, trained)
    training = training_missing_shares(connection, artifacts, trained)
    features = [name for name in spec.features if name in training]
    rows = connection.execute(
        f"SELECT CAST(partition_date AS DATE) AS day, count(*) AS rows, {_null_shares(features)} FROM "
        f"({feature_matrix_sql(catalog, spec, start, end, with_outcomes=False)}) GROUP BY ALL ORDER BY day"
    ).fetchall()
    found = []
    for day, count, *shares in rows:
        for name, share in zip(features, shares):
            if share - training[name] > MAX_EXTRA_MISSING:
                found.append(MissingFeature(day, name, float(share), training[name], int(count)))
    return found


def degraded_text(found: list[MissingFeature], grain: str = "daily") -> str:
    """The check's description: each degraded partition (day, week, ...) and feature, or that there is none."""
    noun = PERIOD_NOUN[grain]
    if not found:
        return (f"no feature is missing on more than {MAX_EXTRA_MISSING:.0%} more of a {noun}'s rows than of the "
                f"training rows")
    days = sorted({item.day for item in found})
    return (f"DEGRADED: {len(days)} scored {noun}(s) with a feature missing far more than in training (more than "
            f"{MAX_EXTRA_MISSING:.0%} of the rows above its training share); their scores are not the ones the "
            f"evaluation promised: " + "; ".join(item.text() for item in found))
