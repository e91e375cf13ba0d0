"""The manifest of a training snapshot: what it holds, and the exact data versions it read."""

from __future__ import annotations

from pydantic import Field

from ml_platform.records.base import Record


class PinnedVersions(Record):
    """The data versions a snapshot read of one source or feature set: per day, or one version of a whole source."""

    days: int  # 0 for a reference (unpartitioned) source
    trust: str | None = None  # sources only: how far the source is trusted, from the model's dependency
    first: str | None = None  # ISO dates of the first and last day read; absent for a reference source
    last: str | None = None
    versions_sha256: str | None = None  # hash of the "day version" lines of by_day
    by_day: dict[str, str] | None = None  # ISO day -> version
    version: str | None = None  # a reference source's single version


class SplitWindow(Record):
    """First and last day (ISO) of one split of a training run."""

    start: str
    end: str


class LabelWindows(Record):
    """Which rows' labels a snapshot could use: mature ones only, and none whose window reaches a later split."""

    horizon_days: int  # the label reads the days (day, day + horizon_days] after a row's own day
    mature_through: str  # ISO: the last row day whose label was mature and fully stored when the snapshot was made
    as_of: str  # ISO: the local day the snapshot was made on (the platform's clock)
    immature_excluded: dict[str, int]  # per split: rows left out because their label was not mature yet
    purged: dict[str, int]  # train, validation: rows left out because their label window reaches the next split


class SnapshotManifest(Record):
    """Everything a snapshot holds and read, as stored in registry.snapshots.manifest."""

    model: str
    training_run: str
    spec_hash: str
    snapshot_sha256: str
    size_bytes: int
    entity: str
    keys: tuple[str, ...]
    features: tuple[str, ...]
    feature_set_versions: dict[str, str]
    # absent from manifests made before data versions were pinned (pinning.check_pinned_versions handles that)
    source_data_versions: dict[str, PinnedVersions] | None = None
    feature_data_versions: dict[str, PinnedVersions] | None = None
    split_windows: dict[str, SplitWindow]  # train, validation, test
    rows: dict[str, int] = Field(description="rows per split present in the file")
    positive_rate: dict[str, float] | None = None  # binary classification: share of positive labels per split
    label_mean: dict[str, float] | None = None  # regression: the label's mean per split
    class_shares: dict[str, dict[str, float]] | None = None  # multiclass: split -> class -> share of its rows
    rows_without_label_excluded: int
    label_windows: LabelWindows | None = None  # absent from manifests made before labels could look forward
