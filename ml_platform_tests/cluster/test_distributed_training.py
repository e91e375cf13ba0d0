"""LightGBM trained on dask.distributed (lightgbm.dask) on a LocalCluster of 2 worker processes, chosen by the
environment: the demo model's training run gives a model within the platform's stated tolerance of single-machine
LightGBM on the same rows, its card says how it was trained, and evaluation, the gate, deployment and scoring work
on it unchanged; regression and multiclass models on rows made here are within their tolerance too."""

from __future__ import annotations

import datetime as dt
import os

import numpy as np
import pandas as pd
import pytest

from ml_platform import names
from ml_platform.features.library import load_catalog
from ml_platform.names import DASK_ADDRESS_VARIABLE, DISTRIBUTED_TRAINING_ROWS_VARIABLE
from ml_platform.provenance.reproduce import reproduce, reproduction_text
from ml_platform.snapshots.columns import SplitRows
from ml_platform.specs.models import LabelSpec, LightGBMAlgorithm
from ml_platform.storage import registry
from ml_platform.storage.artifacts import ArtifactStore
from ml_platform.storage.warehouse import open_warehouse
from ml_platform.training.algorithms import FrameRows, targets, train
from ml_platform.training.distributed import (AUC_TOLERANCE, ENGINE, LOSS_TOLERANCE, TOLERANCES, DistributedSetting,
                                              train_distributed)
from ml_platform.training.fit import categorical_features, load_model
from ml_platform.training.validation_rounds import validation_loss
from ml_platform.training.algorithms import lightgbm_parameters
from ml_platform_tests.evaluation.january import MODEL, Runs, january_project, latest_event

pytestmark = [pytest.mark.slow, pytest.mark.cluster]


@pytest.fixture(scope="module")
def local_cluster():
    """A dask LocalCluster of 2 worker processes with one thread each, on 127.0.0.1."""
    pytest.importorskip("lightgbm.dask", reason="the cluster extra is not installed (pip install -e '.[cluster]')")
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster:
        yield cluster


def _auc(label: np.ndarray, score: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(label, score))


def test_the_demo_models_run_trains_on_two_workers_within_the_tolerance_and_evaluates_deploys_and_scores(
        tmp_path, monkeypatch, local_cluster):
    project = january_project(tmp_path / "project")
    monkeypatch.setenv("DAGSTER_HOME", str(project.dagster_home))
    monkeypatch.setenv(DASK_ADDRESS_VARIABLE, local_cluster.scheduler_address)
    monkeypatch.setenv(DISTRIBUTED_TRAINING_ROWS_VARIABLE, "1000")  # January's training window holds ~16,000 rows
    runs = Runs(project)
    trained = runs.train()
    assert trained.outcome.success, trained.outcome.failures
    with open_warehouse(project.storage.warehouse) as connection:
        record = registry.models.get(connection, MODEL, trained.training_run)
        snapshot = registry.snapshots.get(connection, MODEL, trained.training_run)
    card = record.card
    assert card.training_rows > 1000
    distributed = card.distributed
    assert distributed is not None and distributed.engine == ENGINE
    assert distributed.scheduler == local_cluster.scheduler_address
    assert distributed.workers == 2 and distributed.threads_per_worker == (1, 1)
    assert sum(distributed.rows_per_worker) == card.training_rows and min(distributed.rows_per_worker) > 0
    assert distributed.threshold_rows == 1000 and distributed.rounds_trained == 60  # the spec's n_estimators
    assert distributed.tolerance == TOLERANCES["binary_classification"]
    assert card.trees == distributed.rounds_trained or card.stopped_early
    event = latest_event(names.stage_key("model", MODEL))
    trained_on = event.asset_materialization.metadata["trained_on"].value
    assert trained_on.startswith(f"{ENGINE}: 2 workers of {local_cluster.scheduler_address}")

    # the evaluation, the gate and the deployment ran on it, and it scores days as the champion
    assert trained.evaluation is not None and trained.evaluation.model_version == record.model_version
    assert trained.champion is not None and trained.champion.model_version == record.model_version
    assert runs.score(dt.date(2013, 1, 30), dt.date(2013, 1, 31)).success
    scored = runs.query(f"SELECT model_version, count(*) FROM {names.predictions_table(MODEL)} GROUP BY 1")
    assert len(scored) == 1 and scored[0][0] == record.model_version and scored[0][1] > 1000

    # single-machine LightGBM on the same rows, with the same parameters and seed
    catalog = load_catalog(project.specs_dir, project.root)
    model = catalog.models[MODEL]
    artifacts = ArtifactStore(root=str(project.storage.artifacts))
    with open_warehouse(project.storage.warehouse) as connection:
        path = artifacts.verify(snapshot.path, snapshot.sha256)
        rows = {name: SplitRows.read(connection, path, name) for name in ("train", "validation")}
        local = train(model.algorithm, list(model.features), categorical_features(catalog, model), rows["train"],
                      rows["validation"], label=model.label)
        valid = pd.DataFrame({name: rows["validation"].column(name) for name in model.features})
    distributed_model = load_model(artifacts, record)
    label = rows["validation"].label
    distributed_auc, local_auc = _auc(label, distributed_model.predict(valid)), _auc(label, local.predictor.predict(valid))
    print(f"validation AUC: distributed {distributed_auc:.5f}, single machine {local_auc:.5f}, "
          f"difference {distributed_auc - local_auc:+.5f}; trees {card.trees} against {local.details['trees']}")
    assert abs(distributed_auc - local_auc) <= AUC_TOLERANCE
    # the card's loss is the distributed model's own on the validation window
    parameters = lightgbm_parameters(model.algorithm, model.label)
    assert distributed.validation_loss == pytest.approx(
        validation_loss(parameters, label, distributed_model.predict(valid)), rel=1e-6)
    assert trained.evaluation.summary.validation.roc_auc == pytest.approx(distributed_auc, abs=1e-9)

    # reproduced on one machine (the threshold unset), it differs, and `reproduce` says why rather than "report it"
    monkeypatch.delenv(DISTRIBUTED_TRAINING_ROWS_VARIABLE)
    result = reproduce(project, record.model_version)
    assert not result.identical and result.reproduced_card.distributed is None
    text = reproduction_text(result)
    assert (f"the recorded model was trained on {ENGINE} (2 workers of {local_cluster.scheduler_address}), which is "
            f"not bit-identical from one training to the next: the platform states "
            f"{TOLERANCES['binary_classification']}") in text
    assert "please report it" not in text


def _made_rows(task: str, rows: int, seed: int) -> FrameRows:
    """Rows with a signal in two numbers and a category: a number (regression) or one of three classes."""
    generator = np.random.default_rng(seed)
    frame = pd.DataFrame({"distance": generator.gamma(2.0, 400.0, rows), "hour": generator.integers(5, 23, rows),
                          "carrier": generator.choice(["AA", "B6", "DL", "EV", "UA"], rows)})
    signal = frame["distance"] / 100 + 2.0 * (frame["carrier"] == "EV") + 0.3 * frame["hour"] \
        + generator.normal(scale=3.0, size=rows)
    if task == "regression":
        return FrameRows(frame, signal.to_numpy())
    classes = np.array(["early", "on_time", "late"])
    return FrameRows(frame, classes[np.digitize(signal, np.quantile(signal, [0.3, 0.7]))].astype(object))


LABELS = {
    "regression": {"task": "regression", "expression": "x", "objective": {"kind": "quantile", "alpha": 0.8}},
    "multiclass": {"task": "multiclass", "expression": "x", "classes": ["early", "on_time", "late"]},
}


@pytest.mark.parametrize("task", sorted(LABELS))
def test_regression_and_multiclass_train_on_two_workers_within_the_tolerance(task, local_cluster):
    label = LabelSpec.model_validate(LABELS[task])
    algorithm = LightGBMAlgorithm.model_validate({"kind": "lightgbm", "seed": 11, "params": {
        "n_estimators": 200, "learning_rate": 0.1, "min_child_samples": 50}})
    train_rows, valid_rows = _made_rows(task, 60_000, 1), _made_rows(task, 15_000, 2)
    columns, categorical = ["distance", "hour", "carrier"], ["carrier"]
    local = train(algorithm, columns, categorical, train_rows, valid_rows, label=label)
    distributed = train_distributed(algorithm, columns, categorical, train_rows, valid_rows,
                                    DistributedSetting(local_cluster.scheduler_address, 1), label=label)
    assert distributed.details["distributed"].workers == 2
    assert distributed.details["distributed"].tolerance == TOLERANCES[task]
    parameters = lightgbm_parameters(algorithm, label)
    truth = targets(label, valid_rows.label, "validation")
    losses = [validation_loss(parameters, truth, result.predictor.predict(valid_rows.frame))
              for result in (distributed, local)]
    print(f"{task}: validation {parameters['metric']} distributed {losses[0]:.5f}, single machine {losses[1]:.5f}, "
          f"relative difference {losses[0] / losses[1] - 1:+.4%}")
    assert abs(losses[0] / losses[1] - 1) <= LOSS_TOLERANCE


def _train_on_a_worker(address: str) -> tuple[int, int]:
    """What a model step placed on a dask worker by dagster-dask does: train on that worker's own cluster."""
    import os

    algorithm = LightGBMAlgorithm.model_validate({"kind": "lightgbm", "seed": 5, "params": {"n_estimators": 20}})
    label = LabelSpec.model_validate(LABELS["regression"])
    result = train_distributed(algorithm, ["distance", "hour", "carrier"], ["carrier"], _made_rows("regression",
                               20_000, 3), _made_rows("regression", 5_000, 4), DistributedSetting(address, 1),
                               label=label)
    return os.getpid(), result.details["distributed"].workers


def test_a_step_running_on_a_worker_of_the_scheduler_trains_with_its_own_worker_taking_part(local_cluster):
    # with one thread per worker, the step's worker can train only if the step's thread secedes (worker_client):
    # otherwise lightgbm.dask's task for that worker would wait for the step, which waits for it
    from distributed import Client

    with Client(local_cluster.scheduler_address, set_as_default=False) as client:
        worker_pids = set(client.run(os.getpid).values())
        pid, workers = client.submit(_train_on_a_worker, local_cluster.scheduler_address, pure=False).result(timeout=300)
    assert pid in worker_pids and pid != os.getpid()
    assert workers == 2


def test_workers_read_and_encode_their_own_rows_of_a_snapshot_file_and_the_step_never_holds_the_matrix(
        tmp_path, monkeypatch, local_cluster):
    import duckdb

    from ml_platform.training import arrow_matrix
    from ml_platform_tests.training.test_distributed_blocks import CATEGORICAL, COLUMNS, _snapshot

    path = _snapshot(tmp_path / "snapshot.parquet", rows=40_000)
    connection = duckdb.connect()
    train_rows, valid_rows = (SplitRows.read(connection, path, split) for split in ("train", "validation"))
    algorithm = LightGBMAlgorithm.model_validate({"kind": "lightgbm", "seed": 5, "params": {"n_estimators": 40}})
    local = train(algorithm, COLUMNS, CATEGORICAL, train_rows, valid_rows)

    def refused(*arguments):
        raise AssertionError("the step's process encoded the training matrix")

    monkeypatch.setattr(arrow_matrix, "training_matrix", refused)
    read = train_distributed(algorithm, COLUMNS, CATEGORICAL, train_rows, valid_rows,
                             DistributedSetting(local_cluster.scheduler_address, 1))
    rows = read.details["distributed"].rows_per_worker
    assert len(rows) == 2 and sum(rows) == len(train_rows) and abs(rows[0] - rows[1]) <= 1
    assert read.predictor.layout == local.predictor.layout
    valid = valid_rows.label.astype(int)
    frame = pd.DataFrame({name: valid_rows.column(name) for name in COLUMNS})
    aucs = [_auc(valid, result.predictor.predict(frame)) for result in (read, local)]
    assert aucs[1] > 0.7 and abs(aucs[0] - aucs[1]) <= AUC_TOLERANCE, aucs
