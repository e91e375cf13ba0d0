"""The leakage guard's figures measured once per question (snapshot bytes, kinds, limit, seed, task, code) and read
back by a later evaluation asking the same: the same figures as measuring again, a new question measured anew, and
a damaged stored answer refused with its file named."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from ml_platform.evaluation import leakage_store
from ml_platform.evaluation.leakage import measure_leakage
from ml_platform.evaluation.leakage_store import (LEAKAGE_FOLDER, LeakageQuestion, StoredLeakageError,
                                                  measured_leakage)
from ml_platform.hashing import file_sha256

KINDS = {"feed": "number", "noise": "number", "carrier": "category"}


def write_snapshot(path, seed: int, days: tuple[int, int, int], per_day: int, label) -> Path:
    """A snapshot file of train, validation and test days of flights: `label(minutes)` is each row's label, a
    feature ("feed") follows the minutes, another is noise, a category ("carrier") has missing values."""
    generator = np.random.default_rng(seed)
    frames = []
    for split, count, start in zip(("train", "validation", "test"), days, ("2013-01-01", "2013-02-01", "2013-02-10")):
        size = count * per_day
        minutes = generator.gamma(2.0, 15.0, size)
        frames.append(pd.DataFrame({
            "split": split, "label": label(minutes),
            "feed": minutes + generator.normal(scale=10.0, size=size), "noise": generator.normal(size=size),
            "carrier": generator.choice(["AA", "B6", "DL", None], size=size),
            "partition_date": pd.Timestamp(start) + pd.to_timedelta(np.repeat(np.arange(count), per_day), unit="D")}))
    with duckdb.connect() as connection:
        connection.register("rows", pd.concat(frames, ignore_index=True))
        connection.execute(f"COPY rows TO '{path}' (FORMAT parquet)")
    return path


@pytest.fixture
def snapshot(tmp_path):
    return write_snapshot(tmp_path / "snapshot.parquet", 3, (30, 8, 4), 80, lambda minutes: (minutes > 30).astype(int))


def question(path, seed: int = 7) -> LeakageQuestion:
    return LeakageQuestion(file_sha256(path), tuple(KINDS.items()), 0.97, seed, "binary_classification")


def as_text(aucs, check) -> str:
    return "".join(auc.model_dump_json() for auc in aucs) + check.model_dump_json()


def test_a_second_evaluation_of_the_same_snapshot_reads_the_same_figures_back(tmp_path, snapshot, monkeypatch):
    root = tmp_path / "artifacts"
    with duckdb.connect() as connection:
        first = measured_leakage(connection, root, snapshot, question(snapshot))
        expected = measure_leakage(connection, snapshot, KINDS, 0.97, seed=7)
        assert first.reused_from is None
        assert as_text(first.aucs, first.check) == as_text(*expected)
        stored = list((root / LEAKAGE_FOLDER).glob("*.json"))
        assert len(stored) == 1 and not list((root / LEAKAGE_FOLDER).glob(".incoming-*"))

        def measured_again(*arguments, **options):
            raise AssertionError("the guard measured again a question already answered")

        monkeypatch.setattr(leakage_store, "measure_leakage", measured_again)
        second = measured_leakage(connection, root, snapshot, question(snapshot))
    assert second.reused_from == stored[0]
    assert as_text(second.aucs, second.check) == as_text(*expected)


@pytest.mark.parametrize("change", ["seed", "limit", "kinds", "snapshot", "task", "code"])
def test_another_question_is_measured_anew(tmp_path, snapshot, monkeypatch, change):
    root, asked = tmp_path / "artifacts", question(snapshot)
    with duckdb.connect() as connection:
        measured_leakage(connection, root, snapshot, asked)
        if change == "seed":
            asked = dataclasses.replace(asked, seed=8)
        elif change == "limit":
            asked = dataclasses.replace(asked, limit=0.9)
        elif change == "kinds":
            asked = dataclasses.replace(asked, kinds=tuple({**KINDS, "noise": "category"}.items()))
        elif change == "snapshot":
            asked = dataclasses.replace(asked, snapshot_sha256="0" * 64)
        elif change == "task":
            asked = dataclasses.replace(asked, task="regression")
        else:  # a change to the platform's code changes its version
            monkeypatch.setattr(leakage_store, "code_version", lambda: "0.0.0+changed")
        again = measured_leakage(connection, root, snapshot, asked)
    assert again.reused_from is None
    assert len(list((root / LEAKAGE_FOLDER).glob("*.json"))) == 2


def test_a_damaged_or_foreign_stored_answer_is_refused_naming_its_file(tmp_path, snapshot):
    root = tmp_path / "artifacts"
    with duckdb.connect() as connection:
        measured_leakage(connection, root, snapshot, question(snapshot))
        [stored] = (root / LEAKAGE_FOLDER).glob("*.json")
        text = stored.read_text()
        stored.write_text(text[: len(text) // 2])  # cut short
        with pytest.raises(StoredLeakageError, match=f"{stored}.*cannot be read.*remove the file"):
            measured_leakage(connection, root, snapshot, question(snapshot))
        # a whole answer to another question copied under this one's name
        measured_leakage(connection, root, snapshot, question(snapshot, seed=8))
        other = next(path for path in (root / LEAKAGE_FOLDER).glob("*.json") if path != stored)
        stored.write_bytes(other.read_bytes())
        with pytest.raises(StoredLeakageError, match="answer another question"):
            measured_leakage(connection, root, snapshot, question(snapshot))


def task_snapshot(tmp_path, task: str):
    """A snapshot whose label is a number (regression) or a class name (multiclass), from the same rows."""
    def label(minutes):
        return minutes if task == "regression" else np.select([minutes < 15, minutes < 45], ["early", "on_time"],
                                                               "late")

    return write_snapshot(tmp_path / f"{task}.parquet", 5, (20, 6, 3), 60, label)


@pytest.mark.parametrize("task", ["regression", "multiclass"])
def test_every_task_is_measured_once_and_read_back(tmp_path, monkeypatch, task):
    """A regression model's guard (training and validation, with the out-of-time warning) and a multiclass one's
    (training rows, labels coded by the classes' positions) are stored and read back like a binary one's."""
    from ml_platform.evaluation.leakage import leakage_result, single_feature_aucs
    from ml_platform.snapshots.columns import sample_split

    path, root = task_snapshot(tmp_path, task), tmp_path / "artifacts"
    classes = ("early", "on_time", "late") if task == "multiclass" else ()
    asked = LeakageQuestion(file_sha256(path), tuple(KINDS.items()), 0.97, 7, task, classes)
    with duckdb.connect() as connection:
        if task == "regression":
            expected = measure_leakage(connection, path, KINDS, 0.97, seed=7, task=task)
        else:
            train, available = sample_split(connection, path, "train", ["label", *KINDS], 10**6, seed=7)
            codes = pd.Index(classes).get_indexer(train["label"])
            aucs = single_feature_aucs(train, KINDS, codes, seed=7, task=task)
            expected = aucs, leakage_result(aucs, 0.97, len(train), available, score="one-vs-rest ROC AUC")
        first = measured_leakage(connection, root, path, asked)
        assert first.reused_from is None and as_text(first.aucs, first.check) == as_text(*expected)
        assert first.check.details.out_of_time is not None if task == "regression" else \
            first.check.details.out_of_time is None

        def measured_again(*arguments, **options):
            raise AssertionError("the guard measured again a question already answered")

        monkeypatch.setattr(leakage_store, "_measure", measured_again)
        second = measured_leakage(connection, root, path, asked)
        assert second.reused_from is not None and as_text(second.aucs, second.check) == as_text(*expected)
        assert second.reuse_line("S1").startswith(f"leakage guard: figures read from {second.reused_from}")
        if task == "multiclass":  # the classes in another order code the labels otherwise: another question
            monkeypatch.undo()
            reordered = measured_leakage(connection, root, path, dataclasses.replace(asked, classes=classes[::-1]))
            assert reordered.reused_from is None


def test_a_label_outside_the_classes_is_refused_naming_it(tmp_path):
    from ml_platform.training.algorithms import LabelError

    path = task_snapshot(tmp_path, "multiclass")
    asked = LeakageQuestion(file_sha256(path), tuple(KINDS.items()), 0.97, 7, "multiclass", ("early", "on_time"))
    with duckdb.connect() as connection, pytest.raises(LabelError, match="'late'.*allowed: early, on_time"):
        measured_leakage(connection, tmp_path / "artifacts", path, asked)
    assert not (tmp_path / "artifacts" / LEAKAGE_FOLDER).exists() or \
        not list((tmp_path / "artifacts" / LEAKAGE_FOLDER).iterdir())
