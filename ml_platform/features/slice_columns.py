"""The entity columns a model's money is sliced by, carried into its snapshot beside its features.

A slice that names one of the model's features needs no column of its own: the feature's values are in the
snapshot already. A slice that names an entity column (feature names never clash with entity columns) is copied
as it is into `slice__<name>`; the older `slice_column` keeps its one text column `slice`, so that the snapshots of
specs written before `slices` stay byte for byte the same.
"""

from __future__ import annotations

from ml_platform import names
from ml_platform.names import quote
from ml_platform.specs.models import ModelSpec


def slice_columns_sql(model: ModelSpec) -> str:
    """The select-list tail (starting with a comma; empty without slices) of the model's sliced entity columns,
    read from the entity's rows aliased `base` (a slice is a feature of the model or, checked at load, a column of
    its entity's rows, whether a source's or a population's)."""
    if model.slice_column:
        return f", CAST(base.{quote(model.slice_column)} AS VARCHAR) AS {names.SLICE_COLUMN}"
    # slice_column checks the name; the prefixed alias may pass the 63 characters of a spec name, never DuckDB's
    return "".join(f', base.{quote(name)} AS "{names.slice_column(name)}"' for name in model.slices
                   if name not in model.features)
