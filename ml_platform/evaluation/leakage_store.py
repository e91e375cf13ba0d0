"""The leakage guard's figures, measured once per question and kept in the artifact store.

The guard (leakage.py `measure_leakage`) scores every feature alone on fixed-seed samples of a snapshot's training
and validation rows: its figures follow from the snapshot file's bytes, the features' kinds, the limit, the seed
and the task (for multiclass, the classes the labels are coded by), and from the code that measures them. A training run after a hyper-parameter change reuses the
snapshot of the run before it (same features, same rows), so its guard would measure the same figures again, about
a second and a half on the demo's snapshot. Instead the figures are stored under a key hashed from all of those
(the platform's code version and the versions of the libraries that sample and score included), and a later
evaluation asking the same question reads them back, the same figures to the bit, as recomputing would give.

A stored answer is written whole or not at all (a temporary file renamed into place) and names its own key; one
that cannot be read or names another key is an error naming the file, never silently measured again over.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb

from ml_platform.code_version import code_version
from ml_platform.errors import PlatformError
from ml_platform.evaluation.leakage import (
    LEAKAGE_ROWS, SCORE_NAMES, leakage_result, measure_leakage, single_feature_aucs)
from ml_platform.records.base import Record
from ml_platform.records.gate import FeatureAuc, GateCheck, LeakageDetails
from ml_platform.records.registry import SnapshotRecord
from ml_platform.specs.catalog import Catalog
from ml_platform.snapshots.columns import sample_split
from ml_platform.specs.models import ModelSpec
from ml_platform.storage import stored_answers
from ml_platform.storage.artifacts import ArtifactStore
from ml_platform.training.algorithms import class_positions
from ml_platform.training.fit import categorical_features

LEAKAGE_FOLDER = "leakage"  # in the artifact store's root folder


class StoredLeakageError(PlatformError, RuntimeError):
    """A stored leakage answer is unreadable or answers another question."""


class LeakageAnswer(Record):
    """What the guard measured for one question: every feature's scores and the no_leakage check."""

    key: str
    question: dict
    aucs: tuple[FeatureAuc, ...]
    check: GateCheck[LeakageDetails]


@dataclass(frozen=True)
class LeakageQuestion:
    """Everything the guard's figures are a function of."""

    snapshot_sha256: str
    kinds: tuple[tuple[str, str], ...]  # (feature, "number" or "category"), in the model's feature order
    limit: float
    seed: int
    task: str
    classes: tuple[str, ...] = ()  # multiclass: the spec's classes, whose positions code the labels

    def described(self) -> dict:
        import numpy
        import pandas

        described = {"snapshot_sha256": self.snapshot_sha256, "kinds": [list(pair) for pair in self.kinds],
                     "limit": self.limit, "seed": self.seed, "task": self.task, "platform": code_version(),
                     "duckdb": duckdb.__version__, "numpy": numpy.__version__, "pandas": pandas.__version__}
        if self.classes:
            described["classes"] = list(self.classes)
        return described

    def key(self) -> str:
        return hashlib.sha256(json.dumps(self.described(), sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class MeasuredLeakage:
    """The guard's figures, and the stored answer they were read from (None: measured now, and stored)."""

    aucs: tuple[FeatureAuc, ...]
    check: GateCheck[LeakageDetails]
    reused_from: Path | None

    def reuse_line(self, snapshot_id: str) -> str | None:
        """What the run's log says when the figures were read back (None when they were measured now)."""
        if self.reused_from is None:
            return None
        return (f"leakage guard: figures read from {self.reused_from}, measured by an earlier evaluation of snapshot "
                f"{snapshot_id} with the same features, limit, seed and code")


def answer_path(root: Path, question: LeakageQuestion) -> Path:
    return root / LEAKAGE_FOLDER / f"{question.key()}.json"


def read_answer(path: Path, question: LeakageQuestion) -> LeakageAnswer:
    """The stored answer at path, checked to answer this question."""
    return stored_answers.read_answer(path, LeakageAnswer, question.key(), question.described(), StoredLeakageError,
                                      "leakage figures", "measure them again", answers="answer")


def leakage_question(catalog: Catalog, model: ModelSpec, snapshot_sha256: str) -> LeakageQuestion:
    """The question a model's evaluation asks the guard of the snapshot file whose bytes hash to snapshot_sha256:
    its features as numbers or categories, the gate's limit, the spec's seed, its task (and classes)."""
    categories = set(categorical_features(catalog, model))
    task = model.label.task
    return LeakageQuestion(snapshot_sha256,
                           tuple((name, "category" if name in categories else "number") for name in model.features),
                           float(model.gate.max_feature_roc_auc), int(model.algorithm.seed), task,
                           tuple(model.label.classes) if task == "multiclass" else ())


def _measure(connection: duckdb.DuckDBPyConnection, path: Path, question: LeakageQuestion
             ) -> tuple[tuple[FeatureAuc, ...], GateCheck[LeakageDetails]]:
    """The guard's figures for a question: binary and regression on the training and validation rows, with the
    out-of-time warning (measure_leakage); multiclass on the training rows, its labels coded by the classes'
    positions, each feature's largest one-vs-rest ROC AUC."""
    kinds = dict(question.kinds)
    if question.task != "multiclass":
        return measure_leakage(connection, path, kinds, question.limit, question.seed, task=question.task)
    train, available = sample_split(connection, path, "train", ["label", *kinds], LEAKAGE_ROWS, seed=question.seed)
    codes = class_positions(question.classes, train["label"].to_numpy(dtype=object), "train")
    aucs = single_feature_aucs(train, kinds, codes, seed=question.seed, task=question.task)
    return aucs, leakage_result(aucs, question.limit, len(train), available, score=SCORE_NAMES[question.task])


def snapshot_leakage(connection: duckdb.DuckDBPyConnection, artifacts: ArtifactStore, catalog: Catalog,
                     model: ModelSpec, snapshot: SnapshotRecord,
                     say: Callable[[str], None] | None = None) -> MeasuredLeakage:
    """The guard's figures for a training run's snapshot (its file's hash verified by the caller), measured or read
    back (measured_leakage); `say` is told when they were read back."""
    guard = measured_leakage(connection, Path(artifacts.root), artifacts.path_of(snapshot.path),
                             leakage_question(catalog, model, snapshot.sha256))
    if say is not None and (line := guard.reuse_line(snapshot.snapshot_id)):
        say(line)
    return guard


def measured_leakage(connection: duckdb.DuckDBPyConnection, root: Path, snapshot_path: Path,
                     question: LeakageQuestion) -> MeasuredLeakage:
    """`measure_leakage` of the snapshot file (whose bytes hash to the question's snapshot_sha256, as its caller
    verified), or the answer stored for the same question under `root` (the artifact store's folder); a new answer
    is stored."""
    path = answer_path(root, question)
    if path.is_file():
        answer = read_answer(path, question)
        return MeasuredLeakage(answer.aucs, answer.check, path)
    aucs, check = _measure(connection, snapshot_path, question)
    stored_answers.write_answer(path, LeakageAnswer(key=question.key(), question=question.described(), aucs=aucs,
                                                    check=check))
    return MeasuredLeakage(aucs, check, None)

