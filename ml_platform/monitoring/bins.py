"""Population stability of a feature or of scores against a reference population, binned once per reference.

PSI = sum over bins of (day share - reference share) * ln(day share / reference share). Numbers are binned at the
reference's deciles, categories by their reference values' text (unseen ones share one bin), and a missing value
is a bin of its own, so a feature that stops arriving drifts too.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

_FLOOR = 1e-4  # share given to an empty bin, so that PSI stays finite
_BINS = 10


def psi(reference: np.ndarray, current: np.ndarray) -> float:
    """Population stability index of two vectors of bin shares."""
    expected = np.maximum(np.asarray(reference, dtype=float), _FLOOR)
    actual = np.maximum(np.asarray(current, dtype=float), _FLOOR)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def _shares(codes: np.ndarray, bins: int) -> np.ndarray:
    return shares_of(np.bincount(codes, minlength=bins))


def shares_of(counts: np.ndarray) -> np.ndarray:
    """Bin shares from bin counts (a population's, or the sum of its parts': the same counts, the same shares)."""
    counts = np.asarray(counts).astype(float)
    return counts / max(counts.sum(), 1.0)


def is_category(values: pd.Series) -> bool:
    """Whether a reference column is binned by category (text, booleans) rather than at deciles."""
    return values.dtype == object or isinstance(values.dtype, pd.StringDtype) or values.dtype == bool


def _numbers(values) -> np.ndarray:
    return pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=float)


@dataclass(frozen=True)
class Bins:
    """A reference population's bins (deciles, or categories by text) and its share in each."""

    edges: np.ndarray | None  # numbers: the deciles' distinct values
    categories: dict[str, int] | None  # categories: each value's text and its bin
    shares: np.ndarray

    @classmethod
    def of(cls, reference: pd.Series, bins: int = _BINS) -> "Bins":
        """The bins of a reference column (numbers: at its `bins`-quantiles) and its shares in them."""
        if is_category(reference):
            categories = {text: index for index, text in enumerate(sorted(reference.dropna().astype(str).unique()))}
            binned = cls(None, categories, np.array([]))
        else:
            known = _numbers(reference)
            present = known[np.isfinite(known)]
            edges = np.unique(np.quantile(present, np.linspace(0, 1, bins + 1)[1:-1])) if len(present) else \
                np.array([])
            binned = cls(edges, None, np.array([]))
        return replace(binned, shares=_shares(binned.codes(reference), binned.size))

    @property
    def size(self) -> int:
        """The number of bins: the deciles' intervals, or the categories and one for unseen ones; then missing."""
        return (len(self.edges) if self.categories is None else len(self.categories)) + 2

    def codes(self, values: pd.Series) -> np.ndarray:
        """Each value's bin; the last bin holds missing values (NaN or infinite numbers, missing categories)."""
        missing = self.size - 1
        if self.categories is None:
            numbers = _numbers(values)
            return np.where(np.isfinite(numbers), np.searchsorted(self.edges, numbers, side="right"), missing)
        # the text of each distinct value is looked up once, not the text of every row
        codes, distinct = pd.factorize(pd.Series(values), use_na_sentinel=True)
        unseen = len(self.categories)
        lookup = np.array([self.categories.get(str(value), unseen) for value in distinct] + [missing], dtype=int)
        return lookup[codes]

    def psi(self, values: pd.Series) -> float:
        """PSI of a population against this reference."""
        return psi(self.shares, _shares(self.codes(values), self.size))

    def counts(self, values: pd.Series) -> np.ndarray:
        """How many of the values fall in each bin: a part of a population, whose parts' counts add up."""
        return np.bincount(self.codes(values), minlength=self.size)

    def psi_of_counts(self, counts: np.ndarray) -> float:
        """PSI of a population given by its bin counts (`counts`, summed over its parts) against this reference:
        the same value as `psi` of the population's values."""
        return psi(self.shares, shares_of(counts))


def feature_psi(reference: pd.Series, current: pd.Series) -> float:
    """PSI of one feature: reference deciles (or categories) as bins, missing values as a bin of their own."""
    return Bins.of(reference).psi(current)


def score_psi(reference: np.ndarray, current: np.ndarray) -> float:
    """PSI of scores, binned at the reference scores' deciles."""
    return feature_psi(pd.Series(reference, dtype=float), pd.Series(current, dtype=float))
