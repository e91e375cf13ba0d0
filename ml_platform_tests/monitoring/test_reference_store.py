"""A snapshot's drift bins measured once and read back: the same bins to the bit as binning again, a new question
(another snapshot, other features, partition-level features off) binned anew, and a damaged or foreign stored
answer refused with its file named, never binned over."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml_platform.hashing import file_sha256
from ml_platform.monitoring import drift
from ml_platform.monitoring.bins import Bins
from ml_platform.monitoring.reference_store import (REFERENCE_FOLDER, FeatureBinsQuestion, StoredReferenceError,
                                                    answer_path, stored_feature_bins)
from ml_platform_tests.evaluation.test_leakage_store import write_snapshot

FEATURES = ("feed", "noise", "carrier", "day_share")


@pytest.fixture
def snapshot(tmp_path):
    """A snapshot whose numbers have full float64 digits, whose category has missing values, and with a feature
    constant within each day (found by partition)."""
    path = write_snapshot(tmp_path / "plain.parquet", 5, (30, 8, 4), 60, lambda minutes: (minutes > 30).astype(int))
    import duckdb

    with duckdb.connect() as connection:
        connection.execute(f"COPY (SELECT *, hash(partition_date) % 1000 / 7.0 AS day_share "
                           f"FROM read_parquet('{path}')) TO '{tmp_path / 'snapshot.parquet'}' (FORMAT parquet)")
    return tmp_path / "snapshot.parquet"


def measured(path, features=FEATURES, by_partition=True):
    import duckdb

    with duckdb.connect() as connection:
        return drift.snapshot_feature_bins(connection, path, list(features), by_partition)


def same_bins(left, right) -> bool:
    """Bins equal to the bit: the same edges and shares (and dtypes), the same categories, in the same order."""
    (left_bins, left_levels), (right_bins, right_levels) = left, right
    if list(left_bins) != list(right_bins) or left_levels != right_levels:
        return False
    for name, first in left_bins.items():
        second = right_bins[name]
        if (first.edges is None) != (second.edges is None) or first.categories != second.categories:
            return False
        if first.edges is not None and (first.edges.dtype != second.edges.dtype or
                                        first.edges.tobytes() != second.edges.tobytes()):
            return False
        if first.shares.dtype != second.shares.dtype or first.shares.tobytes() != second.shares.tobytes():
            return False
    return True


def test_bins_are_stored_once_and_read_back_to_the_bit(tmp_path, snapshot):
    root = tmp_path / "artifacts"
    question = FeatureBinsQuestion(file_sha256(snapshot), FEATURES, True)
    first = stored_feature_bins(root, question, lambda: measured(snapshot))
    assert first[1] == {"day_share": ()}  # the feature constant within a day was found
    assert first[0]["carrier"].categories is not None and len(first[0]["feed"].edges) == 9
    assert list((root / REFERENCE_FOLDER).iterdir()) == [answer_path(root, question)]

    def refuse():
        raise AssertionError("binned again instead of read back")

    again = stored_feature_bins(root, question, refuse)
    assert same_bins(again, first) and same_bins(again, measured(snapshot))


def test_another_question_is_binned_anew(tmp_path, snapshot):
    root = tmp_path / "artifacts"
    sha = file_sha256(snapshot)
    calls = []

    def counted(features, by_partition):
        calls.append((features, by_partition))
        return measured(snapshot, features, by_partition)

    stored_feature_bins(root, FeatureBinsQuestion(sha, FEATURES, True), lambda: counted(FEATURES, True))
    rows_only = stored_feature_bins(root, FeatureBinsQuestion(sha, FEATURES, False), lambda: counted(FEATURES, False))
    fewer = stored_feature_bins(root, FeatureBinsQuestion(sha, FEATURES[:2], True), lambda: counted(FEATURES[:2], True))
    other = stored_feature_bins(root, FeatureBinsQuestion("0" * 64, FEATURES, True), lambda: counted(FEATURES, True))
    assert len(calls) == 4 and len(list((root / REFERENCE_FOLDER).glob("*.json"))) == 4
    assert rows_only[1] == {} and rows_only[0]["day_share"].edges is not None
    assert list(fewer[0]) == list(FEATURES[:2]) and other[1] == {"day_share": ()}


def test_a_damaged_or_foreign_stored_answer_is_refused_with_its_file_named(tmp_path, snapshot):
    root = tmp_path / "artifacts"
    sha = file_sha256(snapshot)
    question, other = FeatureBinsQuestion(sha, FEATURES, True), FeatureBinsQuestion(sha, FEATURES, False)
    stored_feature_bins(root, question, lambda: measured(snapshot))
    stored_feature_bins(root, other, lambda: measured(snapshot, by_partition=False))
    path, other_path = answer_path(root, question), answer_path(root, other)

    def refuse():
        raise AssertionError("binned again over a stored answer")

    path.write_bytes(path.read_bytes()[:200])  # cut short
    with pytest.raises(StoredReferenceError, match=f"the stored drift reference {path} cannot be read"):
        stored_feature_bins(root, question, refuse)
    path.write_bytes(other_path.read_bytes())  # whole, but another question's
    with pytest.raises(StoredReferenceError, match=f"{path} answers another question .*remove the file"):
        stored_feature_bins(root, question, refuse)
    assert path.read_bytes() == other_path.read_bytes()  # nothing was written over


def test_no_half_written_answer_is_left_when_writing_fails(tmp_path, snapshot, monkeypatch):
    root = tmp_path / "artifacts"
    question = FeatureBinsQuestion(file_sha256(snapshot), FEATURES, True)

    def failing_replace(source, target):
        raise OSError("disk full")

    monkeypatch.setattr("ml_platform.storage.stored_answers.os.replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        stored_feature_bins(root, question, lambda: measured(snapshot))
    assert list((root / REFERENCE_FOLDER).iterdir()) == []


def test_the_reference_of_frames_is_the_stored_bins_with_the_scores(snapshot):
    """reference_of (the frames' reference, as tests and tools build it) bins the features as the store does."""
    import duckdb

    with duckdb.connect() as connection:
        rows = connection.execute(f"SELECT * FROM read_parquet('{snapshot}') WHERE split = 'train'").df()
        rows["partition_date"] = pd.to_datetime(rows["partition_date"]).dt.date
    scores = pd.Series(np.linspace(0, 1, 101))
    reference = drift.reference_of("v", rows, list(FEATURES), scores)
    bins = drift.feature_bins(rows, list(FEATURES))
    assert same_bins((reference.features, reference.partition_level), bins)
    expected = Bins.of(scores)
    assert np.array_equal(reference.scores.edges, expected.edges)
    assert np.array_equal(reference.scores.shares, expected.shares)


def test_a_large_snapshot_is_binned_from_a_fixed_seed_sample_of_its_training_rows(tmp_path, snapshot, monkeypatch):
    """Above REFERENCE_ROWS training rows the bins are a fixed-seed sample's (the same rows on every binning, the
    partition-level features still found); at or below it, every training row's, as before."""
    import duckdb

    from ml_platform.monitoring import reference_store
    from ml_platform.snapshots.columns import sample_split

    with duckdb.connect() as connection:
        training_rows = connection.execute(f"SELECT count(*) FROM '{snapshot}' WHERE split = 'train'").fetchone()[0]
    whole = measured(snapshot)
    monkeypatch.setattr(reference_store, "REFERENCE_ROWS", training_rows)  # at the bound: every row
    assert same_bins(measured(snapshot), whole)
    monkeypatch.setattr(reference_store, "REFERENCE_ROWS", 600)
    sampled = measured(snapshot)
    assert same_bins(measured(snapshot), sampled) and not same_bins(sampled, whole)
    assert sampled[1] == whole[1] == {"day_share": ()}
    with duckdb.connect() as connection:  # the sample's bins: those of the 600 rows the guard's sampler draws
        rows, available = sample_split(connection, snapshot, "train", ["partition_date", *FEATURES], 600, seed=0)
    assert available == training_rows and len(rows) == 600
    rows.insert(0, "day", pd.to_datetime(rows.pop("partition_date")).dt.floor("D"))
    assert same_bins(drift.feature_bins(rows, list(FEATURES), True, "day"), sampled)
    # the bound is part of the stored answer's question: a stored answer of another bound is not read back
    assert FeatureBinsQuestion("0" * 64, FEATURES, True).described()["rows_at_most"] == 600
