"""Records of the task metrics beyond binary classification: a multiclass confusion table, residuals by slice."""

from __future__ import annotations

from ml_platform.records.base import Record


class ClassConfusion(Record):
    """Rows per actual class (rows of `counts`) and most likely class (columns), in the spec's order of classes."""

    classes: tuple[str, ...]
    counts: tuple[tuple[int, ...], ...]


class SliceResiduals(Record):
    """A regression's errors within one slice (a value of the spec's slice column)."""

    slice: str
    rows: int
    mean_residual: float  # label minus prediction: positive when the model predicts too low
    mae: float
