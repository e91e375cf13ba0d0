"""Rank statistics of the leakage guard, in O(n log n): ROC AUC, Harrell's concordance, their standard error when a
score carries no signal, and intraclass correlations within groups (rows of one day)."""

from __future__ import annotations

import numpy as np


def roc_auc(label: np.ndarray, scores: np.ndarray) -> float:
    """ROC AUC of scores for a 0/1 label: the chance that a positive row outranks a negative one, ties counting half.

    The same figure as sklearn's roc_auc_score (the area under the ROC curve is this Mann-Whitney statistic),
    counted per distinct score: the leakage guard scores every feature of every training row two to four times.
    """
    values, inverse = np.unique(scores, return_inverse=True)
    return coded_roc_auc(label, inverse, len(values))


def coded_roc_auc(label: np.ndarray, codes: np.ndarray, size: int) -> float:
    """roc_auc of scores given as codes: each row's position among the `size` distinct scores in increasing order
    (np.unique's inverse), for a caller that has sorted the scores once and reads them several times."""
    positives = np.bincount(codes, weights=label, minlength=size)
    negatives = np.bincount(codes, minlength=size) - positives
    total_positive, total_negative = positives.sum(), negatives.sum()
    if total_positive == 0 or total_negative == 0:
        raise ValueError("ROC AUC needs both classes among the rows")
    below = np.cumsum(negatives) - negatives  # negatives with a lower score than each distinct value
    return float(np.sum(positives * (below + 0.5 * negatives)) / (total_positive * total_negative))


def strict_inversions(ranks: np.ndarray) -> int:
    """The number of pairs i < j with ranks[i] > ranks[j] (non-negative integers), by a bottom-up merge sort.

    Each of the log2(n) passes merges neighbouring sorted blocks with one stable sort (which finds the two runs)
    and counts, for every element of a right block, the elements of its left block above it with one search.
    """
    current = np.asarray(ranks, dtype=np.int64).copy()
    size = len(current)
    if size < 2:
        return 0
    span = int(current.max()) + 1
    positions = np.arange(size, dtype=np.int64)
    inversions = 0
    width = 1
    while width < size:
        block = positions // width
        pair = block // 2
        right = (block % 2) == 1
        keyed = current + pair * span  # blocks stay sorted and every pair's values sit above the previous pair's
        left_keyed = keyed[~right]  # the left blocks one after the other: sorted as a whole
        right_keyed = keyed[right]
        left_end = pair[right] * width + width  # a left block with a right partner is always full
        inversions += int(np.sum(left_end - np.searchsorted(left_keyed, right_keyed, side="right")))
        current = np.sort(keyed, kind="stable") - pair * span
        width *= 2
    return inversions


def _pairs(counts: np.ndarray) -> int:
    """The number of unordered pairs within groups of these sizes."""
    counts = counts.astype(np.int64)
    return int(np.sum(counts * (counts - 1) // 2))


def concordance(label: np.ndarray, scores: np.ndarray) -> float:
    """Harrell's C of scores for a numeric label: over the pairs of rows with different labels, the chance that
    the higher label has the higher score, score ties counting half. Equals roc_auc for a 0/1 label.

    With the rows sorted by label and then score, a pair with different labels is discordant exactly when it is
    an inversion of the scores' ranks, so concordant - discordant = all pairs - score-tied pairs - 2 inversions
    - the pairs inside a label group that differ in score (all of them counted as concordant by the sort).
    """
    score_values, score_codes = np.unique(np.asarray(scores, dtype="float64"), return_inverse=True)
    return coded_concordance(label, score_codes, len(score_values))


def coded_concordance(label: np.ndarray, score_codes: np.ndarray, size: int) -> float:
    """concordance of scores given as codes: each row's position among the `size` distinct scores in increasing
    order (np.unique's inverse)."""
    label = np.asarray(label, dtype="float64")
    label_values, label_codes = np.unique(label, return_inverse=True)
    if len(label_values) < 2:
        raise ValueError("the concordance index needs at least two different labels among the rows")
    score_codes = np.asarray(score_codes, dtype=np.int64)
    order = np.lexsort((score_codes, label_codes))
    size = len(label)
    all_pairs = size * (size - 1) // 2
    score_tied = _pairs(np.bincount(score_codes))
    label_tied = _pairs(np.bincount(label_codes))
    both_tied = _pairs(np.unique(label_codes.astype(np.int64) * size + score_codes,
                                 return_counts=True)[1])
    excess = all_pairs - score_tied - 2 * strict_inversions(score_codes[order]) - (label_tied - both_tied)
    return 0.5 + 0.5 * excess / (all_pairs - label_tied)


def null_concordance_error(label: np.ndarray) -> float:
    """The standard error of the concordance (ROC AUC for a 0/1 label) of a score unrelated to this label.

    Kendall's null variance of concordant - discordant pairs with tied labels and untied scores,
    (n(n-1)(2n+5) - sum over label groups of u(u-1)(2u+5)) / 18, over twice the pairs with different labels: for a
    0/1 label the Mann-Whitney variance (n + 1) / (12 n0 n1). Ties among the scores only lower it.
    """
    counts = [int(count) for count in np.unique(np.asarray(label), return_counts=True)[1]]
    size = sum(counts)
    different = size * (size - 1) // 2 - sum(count * (count - 1) // 2 for count in counts)
    if different == 0:
        raise ValueError("a score's standard error needs at least two different labels among the rows")
    variance = (size * (size - 1) * (2 * size + 5) - sum(c * (c - 1) * (2 * c + 5) for c in counts)) / 18
    return float(np.sqrt(variance) / (2 * different))


def intraclass_correlation(values: np.ndarray, groups: np.ndarray) -> float:
    """The one-way ANOVA intraclass correlation of values within groups (integer codes), clipped to [0, 1]."""
    size = len(values)
    counts = np.bincount(groups).astype("float64")
    counts = counts[counts > 0]
    clusters = len(counts)
    if clusters < 2 or size <= clusters:
        return 0.0
    sums = np.bincount(groups, weights=values)
    sums = sums[np.bincount(groups) > 0]
    squares = float(np.sum((values - values.mean()) ** 2))
    between = float(np.sum(sums ** 2 / counts) - values.sum() ** 2 / size)
    within = squares - between
    mean_between, mean_within = between / (clusters - 1), within / (size - clusters)
    typical = (size - np.sum(counts ** 2) / size) / (clusters - 1)
    denominator = mean_between + (typical - 1) * mean_within
    if denominator <= 0:
        return 0.0
    return float(np.clip((mean_between - mean_within) / denominator, 0.0, 1.0))


def agreement_correlation(codes: np.ndarray, groups: np.ndarray) -> float:
    """For a nominal variable: how much likelier two rows of one group share a value than two rows at random,
    (P_within - P_any) / (1 - P_any), clipped to [0, 1] (the kappa form of an intraclass correlation)."""
    size = len(codes)
    counts = np.bincount(groups)
    within_pairs = float(np.sum(counts * (counts - 1.0)))
    if within_pairs == 0 or size < 2:
        return 0.0
    _, shared = np.unique(groups.astype(np.int64) * (int(codes.max()) + 1) + codes, return_counts=True)
    within = float(np.sum(shared * (shared - 1.0))) / within_pairs
    overall = np.bincount(codes).astype("float64")
    anywhere = float(np.sum(overall * (overall - 1.0))) / (size * (size - 1.0))
    if anywhere >= 1.0:
        return 0.0
    return float(np.clip((within - anywhere) / (1.0 - anywhere), 0.0, 1.0))
