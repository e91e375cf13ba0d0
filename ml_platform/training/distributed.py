"""LightGBM trained on a dask.distributed cluster (`lightgbm.dask`) when the training window reaches a configured size.

Chosen by configuration, read when a model step runs: `ML_PLATFORM_DISTRIBUTED_TRAINING_ROWS` (a positive whole
number of rows) and `ML_PLATFORM_DASK_ADDRESS` (the scheduler, which `.ci/services` writes). Without the first,
training is exactly the single-machine training of `training.algorithms` (same bytes). With it, a LightGBM model
whose training window holds at least that many rows is trained by lightgbm.dask on the scheduler's workers:

- the training rows are cut into one block of consecutive rows per worker. Rows of a snapshot file (a training
  run's) are read and encoded by each worker itself: the step's process learns the layout (the categories' values)
  from a scan of the category columns alone and sends each worker its block's bounds (file row numbers) and the
  layout; the worker finds the snapshot in its copy of the artifact store (fetched from the shared object store
  when missing), checks its SHA-256, reads its rows and encodes them with the same functions, so no process holds
  the whole matrix. Rows given in memory are encoded by the step's process and scattered. Either
  way the blocks are those of single-machine training's matrix (same layout, same codes); the workers train
  together (LightGBM's data-parallel learner, the spec's parameters and seed, `num_threads` = each worker's
  threads);
- the booster comes back to the step's process, which keeps the rounds early stopping would keep, judged on the
  whole validation window (`training.validation_rounds`), and stores it through the same artifact path: evaluation,
  the gate, scoring and explanations read it as any LightGBM model.

Distributed LightGBM is not bit-identical to single-machine LightGBM (each worker bins its own rows, histograms
are summed over the network): the platform states a tolerance (TOLERANCES) and the model card carries it.
scikit-learn algorithms have no distributed trainer, and a spec's live hyper-parameter search trains its trials on
one machine: above the size both train on this machine, and the card says why (`distributed_declined`).
A misconfiguration is an error naming the variable; nothing falls back to local training silently.
"""

from __future__ import annotations

import math
import os
import socket
import time
import warnings
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Mapping

import duckdb
import numpy as np

from ml_platform.errors import PlatformError
from ml_platform.features.partition_tasks import on_dask_worker
from ml_platform.hashing import file_sha256
from ml_platform.names import DASK_ADDRESS_VARIABLE, DISTRIBUTED_TRAINING_ROWS_VARIABLE, quote
from ml_platform.progress import Progress, silent
from ml_platform.records.training import DistributedTraining
from ml_platform.snapshots.columns import SplitRows, split_condition
from ml_platform.specs.models import LabelSpec, LightGBMAlgorithm
from ml_platform.training.algorithms import (THREADS, FeatureLayout, LightGBMPredictor, Rows, TrainingResult,
                                             lightgbm_parameters, targets)
from ml_platform.training.validation_rounds import choose_rounds

CONNECT_SECONDS = 10  # how long the scheduler may take to answer before the address is reported unreachable
ENGINE = "dask.distributed (lightgbm.dask)"

# What the platform states of a distributed model against single-machine LightGBM trained on the same rows with the
# same parameters and seed: measured by ml_platform_tests/cluster/test_distributed_training.py (the demo's January
# on 2 workers) and benchmarks/dask_training.py (synthetic rows, 2 workers); docs/scale-out.md gives the figures.
AUC_TOLERANCE = 0.01  # binary classification: validation AUC, absolute
LOSS_TOLERANCE = 0.02  # regression and multiclass: LightGBM's validation loss, relative
TOLERANCES = {
    "binary_classification": f"validation AUC within {AUC_TOLERANCE} of single-machine LightGBM on the same rows",
    "regression": f"validation loss within {LOSS_TOLERANCE:.0%} of single-machine LightGBM's on the same rows",
    "multiclass": f"validation loss within {LOSS_TOLERANCE:.0%} of single-machine LightGBM's on the same rows",
}


class DistributedTrainingError(PlatformError, RuntimeError):
    """Distributed training is misconfigured, or its cluster cannot train."""


@dataclass(frozen=True)
class DistributedSetting:
    """The configured scheduler and the size of a training window from which training is distributed."""

    address: str
    threshold_rows: int


def distributed_setting(environment: Mapping[str, str] | None = None) -> DistributedSetting | None:
    """The distributed training the environment asks for, or None (the default: every model trains here)."""
    environment = os.environ if environment is None else environment
    text = environment.get(DISTRIBUTED_TRAINING_ROWS_VARIABLE, "").strip()
    if not text:
        return None
    try:
        rows = int(text)
    except ValueError:
        rows = 0
    if rows < 1:
        raise DistributedTrainingError(
            f"{DISTRIBUTED_TRAINING_ROWS_VARIABLE}={text!r} is not a positive whole number of rows: set it to the "
            f"size of a training window from which LightGBM trains on the dask cluster (e.g. 1000000), or unset it")
    address = environment.get(DASK_ADDRESS_VARIABLE, "").strip()
    if not address:
        raise DistributedTrainingError(
            f"{DISTRIBUTED_TRAINING_ROWS_VARIABLE}={text} asks for distributed training, but {DASK_ADDRESS_VARIABLE} "
            f"names no dask scheduler: set it to tcp://HOST:PORT (`.ci/services start` writes it), or unset "
            f"{DISTRIBUTED_TRAINING_ROWS_VARIABLE}")
    return DistributedSetting(address, rows)


@dataclass(frozen=True)
class Placement:
    """Where a model trains: on the cluster (setting), or here; `declined` says why it trains here although its
    training window reached the distributed size."""

    setting: DistributedSetting | None
    declined: str | None = None


def place_training(algorithm, searching: bool, training_rows: int,
                   environment: Mapping[str, str] | None = None) -> Placement:
    """Whether a model with this algorithm and training window trains on the configured cluster."""
    setting = distributed_setting(environment)
    if setting is None or training_rows < setting.threshold_rows:
        return Placement(None)
    reached = (f"the training window's {training_rows} rows reach {DISTRIBUTED_TRAINING_ROWS_VARIABLE}="
               f"{setting.threshold_rows}")
    if not isinstance(algorithm, LightGBMAlgorithm):
        return Placement(None, f"{reached}, but {algorithm.kind} has no distributed trainer (only lightgbm does): "
                               f"trained on one machine")
    if searching:
        return Placement(None, f"{reached}, but the trials of algorithm.search train on one machine, and so does "
                               f"the model they choose")
    return Placement(setting)


@contextmanager
def cluster_client(address: str, timeout: float = CONNECT_SECONDS) -> Iterator:
    """A dask client of the scheduler at `address`. In a step that runs on a worker of that scheduler (dagster-dask's
    executor), the worker's own client, with the step's thread seceded so that its worker trains too."""
    from distributed import Client, get_worker, worker_client

    if on_dask_worker() and _same_scheduler(get_worker().scheduler.address, address):
        with worker_client(separate_thread=True) as client:
            yield client
        return
    try:
        client = Client(address, timeout=timeout, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as error:
        raise DistributedTrainingError(
            f"{DASK_ADDRESS_VARIABLE}={address!r}: no dask scheduler answered within {timeout:g} s "
            f"({type(error).__name__}: {error}); start the cluster (`.ci/services start DIR N`) or correct the "
            f"address") from error
    try:
        yield client
    finally:
        client.close()


def _same_scheduler(first: str, second: str) -> bool:
    strip = lambda address: address.removeprefix("tcp://").replace("localhost", "127.0.0.1")  # noqa: E731
    return strip(first) == strip(second)


def _bounds(rows: int, workers: int) -> list[tuple[int, int]]:
    """[start, end) of one block of consecutive rows per worker, as even as whole blocks allow."""
    size = math.ceil(rows / workers)
    return [(position * size, min(rows, (position + 1) * size)) for position in range(workers)]


@dataclass(frozen=True)
class SnapshotFile:
    """Where a training run's snapshot is stored: its artifact store's root, its name there and its SHA-256 (and
    whether the store is private: a reproduction's scratch folder, never fetched from the shared store)."""

    root: str
    relative_path: str
    sha256: str
    private: bool = False

    @classmethod
    def at(cls, path: Path) -> "SnapshotFile":
        """A file given by its path alone (no artifact store): its folder as the root, its bytes hashed here."""
        return cls(str(path.parent), path.name, file_sha256(path), private=True)


@dataclass(frozen=True)
class SnapshotBlock:
    """One worker's rows of a snapshot's split: those whose file row numbers lie in [first, last], `rows` of them."""

    snapshot: SnapshotFile
    split: str
    first: int
    last: int
    rows: int


def encode_block(block: SnapshotBlock, layout: FeatureLayout) -> np.ndarray:
    """(On a worker.) The block's rows of the snapshot encoded with the layout, exactly as the rows of the whole
    split are encoded in one process (arrow_matrix.layout_matrix). The worker finds the snapshot in its own copy of
    the artifact store, fetching it from the shared object store when its folder lacks it (ML_PLATFORM_ARTIFACTS
    in the worker's environment), and hashes it first: missing or other bytes are refused, naming the artifact."""
    from ml_platform.storage.artifacts import ArtifactStore, TamperedArtifactError
    from ml_platform.training.arrow_matrix import layout_matrix

    snapshot = block.snapshot
    try:
        path = ArtifactStore(root=snapshot.root, private=snapshot.private).verify(snapshot.relative_path,
                                                                                  snapshot.sha256)
    except TamperedArtifactError as error:
        raise DistributedTrainingError(f"the dask worker on {socket.gethostname()} cannot train on the snapshot: "
                                       f"{error}") from error
    columns = ", ".join(quote(name) for name in layout.columns)
    with closing(duckdb.connect()) as connection:
        connection.execute("SET threads = 1")  # the worker's own thread; LightGBM trains after
        table = connection.sql(
            f"SELECT {columns} FROM read_parquet(?, file_row_number = true) WHERE {split_condition(block.split)} "
            f"AND file_row_number BETWEEN ? AND ?", params=[str(path), block.first, block.last]).to_arrow_table()
    if table.num_rows != block.rows:
        raise DistributedTrainingError(f"the dask worker on {socket.gethostname()} read {table.num_rows} rows of "
                                       f"{path} between file rows {block.first} and {block.last}, not {block.rows}")
    return np.ascontiguousarray(layout_matrix(layout, table))


def _file_blocks(rows: SplitRows, snapshot: SnapshotFile, workers: int) -> list[SnapshotBlock]:
    """One block of the split's rows per worker, in the file's order (the order of the rows' labels)."""
    positions = rows.connection.execute(
        f"SELECT file_row_number FROM read_parquet(?, file_row_number = true) WHERE {split_condition(rows.split)} "
        f"ORDER BY file_row_number", [str(rows.path)]).fetchnumpy()["file_row_number"]
    if len(positions) != len(rows.label):
        raise DistributedTrainingError(f"{rows.path} holds {len(positions)} {rows.split} rows, not the "
                                       f"{len(rows.label)} whose labels were read")
    return [SnapshotBlock(snapshot, rows.split, int(positions[start]), int(positions[end - 1]), end - start)
            for start, end in _bounds(len(positions), workers)]


def _learn_layout(rows: SplitRows, columns: list[str], categorical: list[str]) -> FeatureLayout | None:
    """The layout single-machine training learns from these rows (each category's values, from a scan of the
    category columns alone), or None when a column has a type only the pandas path encodes."""
    from ml_platform.training.arrow_matrix import category_vocabularies, encodable

    if not encodable(rows.arrow_schema(columns), columns, categorical):
        return None
    batches = rows.record_batches(categorical) if categorical else []
    return FeatureLayout(tuple(columns), category_vocabularies(batches, categorical))


def _spread(client, train_rows: Rows, columns: list[str], categorical: list[str], label: np.ndarray,
            workers: list[str], snapshot: SnapshotFile | None = None):
    """The training rows' layout, and their matrix and labels as dask arrays of one block of consecutive rows per
    worker, each block made on its worker (rows of a snapshot file: `snapshot` says where it is stored, else the
    rows' own path) or sent to it (rows in memory): lightgbm.dask trains each worker on the blocks it holds. Also
    the rows per worker."""
    import dask.array as da

    from ml_platform.training.arrow_matrix import training_matrix

    layout = _learn_layout(train_rows, columns, categorical) if isinstance(train_rows, SplitRows) else None
    bounds = _bounds(len(label), len(workers))
    blocks, labels = [], []
    if layout is not None:
        stored = snapshot if snapshot is not None else SnapshotFile.at(Path(train_rows.path))
        for block, worker in zip(_file_blocks(train_rows, stored, len(workers)), workers):
            data = client.submit(encode_block, block, layout, workers=[worker], allow_other_workers=False,
                                 pure=False)
            blocks.append(da.from_delayed(data, shape=(block.rows, len(layout.columns)), dtype="float64"))
    else:
        layout, matrix = training_matrix(train_rows, columns, categorical)
        for (start, end), worker in zip(bounds, workers):
            data = client.scatter(np.ascontiguousarray(matrix[start:end]), workers=[worker], hash=False)
            blocks.append(da.from_delayed(data, shape=(end - start, matrix.shape[1]), dtype=matrix.dtype))
        del matrix
    for (start, end), worker in zip(bounds, workers):
        target = client.scatter(np.ascontiguousarray(label[start:end]), workers=[worker], hash=False)
        labels.append(da.from_delayed(target, shape=(end - start,), dtype=label.dtype))
    return layout, da.concatenate(blocks), da.concatenate(labels), [end - start for start, end in bounds]


def train_distributed(algorithm: LightGBMAlgorithm, columns: list[str], categorical: list[str], train_rows: Rows,
                      valid_rows: Rows, setting: DistributedSetting, progress: Progress | None = None,
                      label: LabelSpec | None = None, snapshot: SnapshotFile | None = None) -> TrainingResult:
    """Train the spec's LightGBM model with lightgbm.dask on the configured cluster's workers: the same layout,
    parameters and seed as `train`, the rounds kept chosen on the validation rows as early stopping would.
    `snapshot` names the stored artifact the rows of a snapshot file come from, which each worker reads."""
    from lightgbm.dask import DaskLGBMRegressor

    from ml_platform.training.arrow_matrix import rows_matrix

    progress = progress if progress is not None else silent()
    started = time.perf_counter()
    train_label = targets(label, train_rows.label, "train")
    valid_label = targets(label, valid_rows.label, "validation")
    parameters = lightgbm_parameters(algorithm, label)
    parameters.pop("num_threads")  # lightgbm.dask gives each worker its own threads
    with cluster_client(setting.address) as client:
        workers = sorted(client.scheduler_info(n_workers=-1)["workers"].items())
        if not workers:
            raise DistributedTrainingError(f"the dask scheduler at {DASK_ADDRESS_VARIABLE}={setting.address!r} has "
                                           f"no workers: start some, or unset {DISTRIBUTED_TRAINING_ROWS_VARIABLE}")
        workers = workers[:len(train_label)]
        progress.report(f"training {algorithm.kind} on dask.distributed: {len(train_label)} rows on "
                        f"{len(workers)} workers of {setting.address}")
        layout, data, target, rows = _spread(client, train_rows, columns, categorical, train_label.astype("float64"),
                                             [name for name, _ in workers], snapshot)
        # the generic estimator: the parameters say the objective (binary, multiclass with num_class), the booster
        # is what is kept; the classifier would re-encode the labels and count only the classes present
        estimator = DaskLGBMRegressor(client=client, n_estimators=algorithm.params.n_estimators, **parameters)
        with warnings.catch_warnings(), client.as_current():  # lightgbm.dask waits through the current client
            warnings.filterwarnings("ignore", message="Parameter n_jobs will be ignored")
            estimator.fit(data, target, feature_name=list(layout.columns),
                          categorical_feature=[index for index, name in enumerate(layout.columns)
                                               if name in layout.categories])
        booster = estimator.to_local().booster_
        threads = tuple(int(info.get("nthreads", 1)) for _, info in workers)
    valid_matrix = rows_matrix(layout, valid_rows)
    rounds_trained = booster.current_iteration()
    choice = choose_rounds(booster, parameters, valid_matrix, valid_label, algorithm.params.early_stopping_rounds,
                           THREADS)
    import lightgbm

    booster = lightgbm.Booster(model_str=booster.model_to_string(num_iteration=choice.kept))
    gains = booster.feature_importance(importance_type="gain")
    task = label.task if label is not None else "binary_classification"
    details = {"trees": booster.current_iteration(),
               "stopped_early": booster.current_iteration() < algorithm.params.n_estimators,
               "feature_importance": {name: float(gain) for name, gain in zip(layout.columns, gains)},
               "importance_kind": "total gain", "library": {"lightgbm": lightgbm.__version__},
               "distributed": DistributedTraining(
                   engine=ENGINE, scheduler=setting.address, workers=len(workers), threads_per_worker=threads,
                   rows_per_worker=tuple(rows), threshold_rows=setting.threshold_rows, rounds_trained=rounds_trained,
                   validation_metric=choice.metric, validation_loss=round(choice.best_loss, 8),
                   tolerance=TOLERANCES[task]),
               "training_seconds": round(time.perf_counter() - started, 3)}
    return TrainingResult(LightGBMPredictor(booster, layout), details)
