"""Train a model from its run's snapshot and store the artifact by content hash, once per training run."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd

from ml_platform.errors import PlatformError
from ml_platform.progress import Progress
from ml_platform.records.outcomes import Stored
from ml_platform.records.registry import ModelRecord
from ml_platform.records.search import SearchRecord
from ml_platform.records.training import ModelCard
from ml_platform.snapshots.columns import SplitRows
from ml_platform.specs.catalog import Catalog
from ml_platform.specs.models import LabelSpec, ModelSpec
from ml_platform.storage import registry
from ml_platform.storage.artifacts import ArtifactStore
from ml_platform.training.algorithms import Predictor, load_predictor, train
from ml_platform.training.distributed import SnapshotFile, place_training, train_distributed
from ml_platform.training.environment import training_environment
from ml_platform.training.search import SearchJudge, run_search, with_parameters


class TrainingError(PlatformError, RuntimeError):
    """Training cannot start: the snapshot is missing or unusable."""


def model_version(model: ModelSpec, sha256: str) -> str:
    """The model version: the model's name and the first characters of its artifact's hash."""
    return f"{model.name}-{sha256[:12]}"


def categorical_features(catalog: Catalog, model: ModelSpec) -> list[str]:
    """The model's features declared as categories."""
    index = catalog.feature_index()
    return [name for name in model.features if catalog.feature_sets[index[name]].features[name].type == "category"]


def label_problem(label: LabelSpec, values: np.ndarray) -> str | None:
    """Why a split's labels cannot train or judge the task (binary: both classes; regression: more than one value;
    multiclass: at least two classes), else None."""
    if len(values) == 0:
        return "needs rows"
    if label.task == "binary_classification" and values.min() == values.max():
        return "needs both classes"
    if label.task == "regression" and len(np.unique(values)) < 2:
        return "needs at least two distinct label values"
    if label.task == "multiclass" and len(set(values)) < 2:
        return f"needs at least two of the classes {', '.join(label.classes)}"
    return None


def label_facts(label: LabelSpec, values: np.ndarray) -> dict:
    """What the model card says of the training labels: the positive rate (binary), the mean (regression) or each
    class's share (multiclass)."""
    if label.task == "binary_classification":
        return {"training_positive_rate": round(float(values.mean()), 6)}
    if label.task == "regression":
        return {"training_label_mean": round(float(np.mean(values)), 6)}
    shares = pd.Series(values).value_counts(normalize=True)
    return {"training_class_shares": {name: round(float(shares.get(name, 0.0)), 6) for name in label.classes}}


def train_model(connection: duckdb.DuckDBPyConnection, artifacts: ArtifactStore, catalog: Catalog,
                model: ModelSpec, training_run: str, progress: Progress | None = None,
                judge: SearchJudge | None = None, recorded_search: SearchRecord | None = None) -> Stored[ModelRecord]:
    """Train the run's model once and record it; the stored one (reused) when the run is already trained.
    `progress` hears of the training rounds every few seconds. A spec with `algorithm.search` is searched, each
    trial scored on the validation rows by `judge`, unless `recorded_search` (a model card's) gives the chosen
    parameters: then the model is trained with them, without searching again (what reproduce does)."""
    existing = registry.models.get(connection, model.name, training_run)
    if existing is not None:
        artifacts.verify(existing.path, existing.sha256)
        return Stored(existing, reused=True)
    snapshot = registry.snapshots.get(connection, model.name, training_run)
    if snapshot is None:
        raise TrainingError(f"training run '{training_run}' of '{model.name}' has no snapshot: materialize it first")
    path = artifacts.verify(snapshot.path, snapshot.sha256)
    # only the labels are read here: each feature column is read when it is encoded, never a frame of them all
    rows = {name: SplitRows.read(connection, path, name) for name in ("train", "validation")}
    for name, split in rows.items():
        if problem := label_problem(model.label, split.label):
            raise TrainingError(f"the {name} window of '{model.name}' has {len(split)} rows and {problem}")
    columns, categorical = list(model.features), categorical_features(catalog, model)
    algorithm, search = model.algorithm, recorded_search
    searching = model.algorithm.search is not None and recorded_search is None
    # the environment may ask for training on a dask cluster from a size on (training.distributed)
    placement = place_training(model.algorithm, searching, len(rows["train"]))
    if searching:
        if judge is None:
            raise TrainingError(f"'{model.name}' declares algorithm.search, whose trials need the evaluation's judge "
                                f"of the validation window; none was given to train_model")
        outcome = run_search(model, columns, categorical, rows["train"], rows["validation"],
                             judge(model, rows["validation"]), progress)
        result, search = outcome.result, outcome.record
        algorithm = with_parameters(model.algorithm, search.chosen)
    else:
        if recorded_search is not None:
            algorithm = with_parameters(model.algorithm, recorded_search.chosen)
        if placement.setting is None:
            result = train(algorithm, columns, categorical, rows["train"], rows["validation"], progress,
                           label=model.label)
        else:
            result = train_distributed(algorithm, columns, categorical, rows["train"], rows["validation"],
                                       placement.setting, progress, label=model.label,
                                       snapshot=SnapshotFile(artifacts.root, snapshot.path, snapshot.sha256,
                                                             artifacts.private))
    if placement.declined is not None:
        result.details["distributed_declined"] = placement.declined
    layout = result.predictor.layout
    train_label, valid_label = rows["train"].label, rows["validation"].label
    stored = artifacts.write(f"models/{model.name}", ".model", result.predictor.save)
    card = ModelCard(
        algorithm=model.algorithm.kind,
        seed=model.algorithm.seed,
        parameters=algorithm.params.model_dump(),
        artifact_format=result.predictor.format,
        artifact_bytes=stored.size_bytes,
        training_rows=int(len(train_label)),
        validation_rows=int(len(valid_label)),
        **label_facts(model.label, train_label),
        features=tuple(layout.columns),
        categories={name: len(values) for name, values in layout.categories.items()},
        **training_environment(),  # python, platform, library versions, code version: what reproduce compares
        **result.details,
        search=search,
    )
    record = ModelRecord(model_version=model_version(model, stored.sha256), model=model.name,
                         training_run=training_run, snapshot_id=snapshot.snapshot_id, spec_hash=snapshot.spec_hash,
                         path=stored.path, sha256=stored.sha256, card=card, created_at=registry.now())
    registry.models.add(connection, record)
    return Stored(record, reused=False)


def load_model(artifacts: ArtifactStore, model: ModelRecord) -> Predictor:
    """Load a registered model after verifying its artifact's hash."""
    path = artifacts.verify(model.path, model.sha256)
    return load_predictor(path, model.card.artifact_format)
