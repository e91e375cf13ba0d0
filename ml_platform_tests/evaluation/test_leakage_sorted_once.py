"""The leakage guard sorts each number column once and reads every score through codes of its distinct values:
each piece gives the same bits as the plain computation it replaced (kept here as the reference), on columns
with ties, missing and infinite values, values where adding 1 changes nothing, and texts that two values share."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml_platform.evaluation import leakage
from ml_platform.evaluation.leakage import (
    FOLDS, QUANTILE_BINS, _average_ranks, _bin_codes, _category_codes, _Columns, _feature_score,
    _out_of_fold_codes, _out_of_fold_rate, _sorted_values)
from ml_platform.evaluation.rank_statistics import concordance, roc_auc


def reference_auc(label, scores, task):
    """The guard's score of plain scores, as it was taken before (np.ptp, then a sort of every row's score)."""
    if np.ptp(scores) == 0:
        return 0.5
    auc = concordance(label, scores) if task == "regression" else roc_auc(label, scores)
    return max(auc, 1.0 - auc)


def reference_bins(numbers):
    codes = np.full(len(numbers), -1, dtype=np.int64)
    present = np.isfinite(numbers)
    if present.any():
        distinct = np.unique(numbers[present])
        if len(distinct) <= QUANTILE_BINS:
            codes[present] = np.searchsorted(distinct, numbers[present])
        else:
            codes[present] = np.asarray(pd.qcut(numbers[present], QUANTILE_BINS, labels=False, duplicates="drop"),
                                        dtype=np.int64)
    return codes + 1


def reference_score(frame, name, kind, label, folds, task):
    """_feature_score as it was computed before, on plain scores."""
    values = frame[name]
    if values.nunique(dropna=False) <= 1:
        return 0.5
    if kind == "category":
        text = values.astype("string").fillna("\x00missing")
        codes = pd.factorize(text, sort=True)[0].astype(np.int64)
        return reference_auc(label, _out_of_fold_rate(codes, label, folds), task)
    numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    missing = ~np.isfinite(numbers)
    best = reference_auc(label, _out_of_fold_rate(reference_bins(numbers), label, folds), task)
    if not missing.any():
        return max(best, reference_auc(label, numbers, task))
    if (~missing).any():
        low, high = np.nanmin(numbers[~missing]), np.nanmax(numbers[~missing])
        for fill in (low - 1.0, high + 1.0):
            best = max(best, reference_auc(label, np.where(missing, fill, numbers), task))
    return best


def awkward_frame(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ties = rng.integers(0, 40, rows).astype(float)
    ties[rng.random(rows) < 0.1] = np.nan
    ties[rng.random(rows) < 0.02] = np.inf
    few = rng.integers(0, 5, rows).astype(float)
    few[rng.random(rows) < 0.05] = np.nan
    huge = 1e17 + rng.integers(0, 30, rows) * 64.0  # 1.0 is below a unit in the last place here
    huge[rng.random(rows) < 0.1] = np.nan
    texts = np.array(["b", "a", "True", None, "1", "c"], dtype=object)
    mixed = np.array([True, "True", 1, 1.0, "1", None, np.nan, "z"], dtype=object)
    return pd.DataFrame({
        "smooth": rng.normal(size=rows),
        "ties": ties,
        "few": few,
        "huge": huge,
        "all_missing": np.full(rows, np.nan),
        "constant": np.full(rows, 3.0),
        "text": texts[rng.integers(0, len(texts), rows)],
        "mixed": mixed[rng.integers(0, len(mixed), rows)],
        "day": rng.integers(0, 7, rows),
    })


KINDS = {"smooth": "number", "ties": "number", "few": "number", "huge": "number", "all_missing": "number",
         "constant": "number", "text": "category", "mixed": "category", "day": "category"}


@pytest.mark.parametrize("task", ["binary_classification", "regression", "multiclass"])
@pytest.mark.parametrize("seed", [1, 2])
def test_every_score_is_the_bits_of_the_plain_computation(task, seed):
    frame = awkward_frame(3_000, seed)
    rng = np.random.default_rng(seed + 10)
    label = {"binary_classification": (rng.random(len(frame)) < 0.3).astype(np.int64),
             "regression": np.round(rng.normal(size=len(frame)), 1),
             "multiclass": rng.integers(0, 3, len(frame)).astype(np.int64)}[task]
    label = label.copy()
    if task != "regression":  # some signal, so that the scores are not all near 0.5
        label[frame["few"].to_numpy() == 4.0] = 1
    folds = np.random.default_rng(seed).permutation(len(label)) % FOLDS
    columns = _Columns(frame)
    for name, kind in KINDS.items():
        if task == "multiclass":
            expected = max(reference_score(frame, name, kind, (label == code).astype(int), folds,
                                           "binary_classification") for code in np.unique(label))
        else:
            expected = reference_score(frame, name, kind, label, folds, task)
        assert _feature_score(columns, name, kind, label, folds, task) == expected, name


def test_number_pieces_match_pandas_and_numpy():
    frame = awkward_frame(5_000, 3)
    for name in ("smooth", "ties", "few", "huge", "all_missing", "constant"):
        numbers = frame[name].to_numpy(dtype="float64")
        distinct, positions = _sorted_values(numbers)
        assert np.array_equal(_bin_codes(distinct, positions), reference_bins(numbers)), name
        ranks = pd.Series(np.where(np.isfinite(numbers), numbers, -np.inf)).rank().to_numpy()
        assert np.array_equal(_average_ranks(distinct, positions), ranks), name


def test_category_codes_match_the_texts_sorted():
    frame = awkward_frame(2_000, 4)
    for name in ("text", "mixed", "day", "few", "all_missing"):
        expected = pd.factorize(frame[name].astype("string").fillna("\x00missing"), sort=True)[0]
        assert np.array_equal(_category_codes(frame[name]), expected), name
    # True and "True" are one text, 1 and "1" another, 1.0 a third: the codes follow the texts
    codes = _category_codes(pd.Series([True, "True", 1, "1", 1.0, None], dtype=object))
    assert codes[0] == codes[1] and codes[2] == codes[3] != codes[4] and codes[5] == 0


def test_out_of_fold_codes_order_the_rates():
    rng = np.random.default_rng(5)
    codes = rng.integers(0, 30, 4_000)
    folds = rng.permutation(4_000) % FOLDS
    for label in (rng.integers(0, 2, 4_000), rng.normal(size=4_000)):
        rates = _out_of_fold_rate(codes, label, folds)
        coded, size = _out_of_fold_codes(codes, label, folds)
        distinct, inverse = np.unique(rates, return_inverse=True)
        assert size == len(distinct) and np.array_equal(coded, inverse)


def test_a_snapshot_sample_counts_before_it_reads(tmp_path, monkeypatch):
    """A split no larger than the sample is read whole with its count; a larger one is drawn as before."""
    import duckdb

    from ml_platform.snapshots.columns import sample_split

    path = tmp_path / "snapshot.parquet"
    with duckdb.connect() as connection:
        connection.execute(f"COPY (SELECT i AS x, CASE WHEN i % 4 = 0 THEN 'validation' ELSE 'train' END AS split "
                           f"FROM range(1000) t(i)) TO '{path}' (FORMAT parquet)")
        whole, available = sample_split(connection, path, "train", ["x"], 10_000, seed=1)
        assert available == 750 and whole["x"].tolist() == [i for i in range(1000) if i % 4]
        drawn, available = sample_split(connection, path, "train", ["x"], 100, seed=1)
        assert available == 750 and len(drawn) == 100 and drawn["x"].is_monotonic_increasing
        assert set(drawn["x"]) <= set(whole["x"])


def test_the_module_keeps_no_plain_score_path():
    """Every score goes through the codes (the plain `roc_auc(label, scores)` sorts every row's score again)."""
    assert not hasattr(leakage, "roc_auc") and not hasattr(leakage, "concordance")
