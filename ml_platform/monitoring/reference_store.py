"""A snapshot's drift bins, measured once per snapshot and kept in the artifact store.

Drift monitoring compares each scored day with the champion's training rows, binned (drift.py): every feature's
deciles or categories, and for a feature constant within partitions, its partitions' values. Those bins follow from
the snapshot file's bytes, its features, whether partition-level features are found, and the code that bins them
(the platform's code version, and the versions of the libraries that read and bin the rows). Before, every scoring
run read the whole snapshot and binned it again: a scoring run started by the daemon is a process of its own, so a
champion's reference was built once a day, a second on the demo's snapshot and more on a large one. Now they are
stored under a key hashed from all of the above, and a later run asking the same question reads them back, the same
bins to the bit (JSON keeps a float64 exactly). A training run after a hyper-parameter change reuses its snapshot,
so its champion's bins are read back too.

A stored answer is written whole or not at all (a temporary file renamed into place) and names its own key; one that
cannot be read or names another key is an error naming the file, never silently measured again over.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np

from ml_platform.code_version import code_version
from ml_platform.errors import PlatformError
from ml_platform.monitoring.bins import Bins
from ml_platform.records.base import Record
from ml_platform.storage import stored_answers

REFERENCE_FOLDER = "drift_references"  # in the artifact store's root folder
REFERENCE_ROWS = 1_000_000  # training rows binned at most: a fixed-seed sample of them when a snapshot has more
REFERENCE_SEED = 0  # the seed of that sample: the same rows on every binning of the same snapshot


class StoredReferenceError(PlatformError, RuntimeError):
    """A stored drift reference is unreadable or answers another question."""


class StoredBins(Record):
    """One feature's bins as stored: a number's decile edges, or a category's values and bins; and the shares."""

    edges: list[float] | None = None
    categories: dict[str, int] | None = None
    shares: list[float]

    @classmethod
    def of(cls, bins: Bins) -> "StoredBins":
        return cls(edges=None if bins.edges is None else [float(edge) for edge in bins.edges],
                   categories=None if bins.categories is None else dict(bins.categories),
                   shares=[float(share) for share in bins.shares])

    def bins(self) -> Bins:
        edges = None if self.edges is None else np.array(self.edges, dtype=np.float64)
        return Bins(edges, None if self.categories is None else dict(self.categories),
                    np.array(self.shares, dtype=np.float64))


class FeatureBinsAnswer(Record):
    """The bins of a snapshot's training rows, one per feature, and its partition-level features' groupings."""

    key: str
    question: dict
    bins: dict[str, StoredBins]
    partition_level: dict[str, list[str]]


@dataclass(frozen=True)
class FeatureBinsQuestion:
    """Everything a snapshot's feature bins are a function of."""

    snapshot_sha256: str
    features: tuple[str, ...]  # in the snapshot's manifest order
    by_partition: bool

    def described(self) -> dict:
        import pandas

        return {"snapshot_sha256": self.snapshot_sha256, "features": list(self.features),
                "by_partition": self.by_partition, "rows_at_most": REFERENCE_ROWS, "sample_seed": REFERENCE_SEED,
                "platform": code_version(), "duckdb": duckdb.__version__, "numpy": np.__version__,
                "pandas": pandas.__version__}

    def key(self) -> str:
        return hashlib.sha256(json.dumps(self.described(), sort_keys=True).encode()).hexdigest()


FeatureBins = tuple[dict[str, Bins], dict[str, tuple[str, ...]]]  # bins by feature, partition-level groupings


def answer_path(root: Path, question: FeatureBinsQuestion) -> Path:
    return root / REFERENCE_FOLDER / f"{question.key()}.json"


def read_answer(path: Path, question: FeatureBinsQuestion) -> FeatureBins:
    """The stored bins at path, checked to answer this question."""
    answer = stored_answers.read_answer(path, FeatureBinsAnswer, question.key(), question.described(),
                                        StoredReferenceError, "drift reference", "bin the snapshot again")
    if list(answer.bins) != list(question.features):
        raise StoredReferenceError(f"the stored drift reference {path} bins the features {list(answer.bins)}, not the "
                                   f"snapshot's {list(question.features)}; remove the file to bin the snapshot again")
    return ({name: stored.bins() for name, stored in answer.bins.items()},
            {name: tuple(groups) for name, groups in answer.partition_level.items()})


def write_answer(path: Path, question: FeatureBinsQuestion, measured: FeatureBins) -> None:
    """Write the bins whole or not at all: a temporary file beside them, renamed into place."""
    bins, levels = measured
    answer = FeatureBinsAnswer(key=question.key(), question=question.described(),
                               bins={name: StoredBins.of(bins[name]) for name in question.features},
                               partition_level={name: list(groups) for name, groups in levels.items()})
    stored_answers.write_answer(path, answer)


def stored_feature_bins(root: Path, question: FeatureBinsQuestion, measure: Callable[[], FeatureBins]) -> FeatureBins:
    """The bins stored under `root` (the artifact store's folder) for the question, or `measure()`'s, stored now."""
    path = answer_path(root, question)
    if path.is_file():
        return read_answer(path, question)
    measured = measure()
    write_answer(path, question, measured)
    return measured
