"""Money broken down by each slice a spec declares: an entity column or one of the model's features.

Text, booleans, dates and numbers with at most MOST_VALUES distinct values on the test rows slice by value, most
money first. Other numbers are cut into deciles of the test rows (fewer bins when values repeat), shown in order:
a continuous feature has too many values for one row each, and deciles need no bins declared in the spec. Missing
values are the slice "(missing)" either way.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from ml_platform import names
from ml_platform.errors import PlatformError
from ml_platform.evaluation.money import OutcomeValues
from ml_platform.records.evaluation import SliceMoney, SliceTable
from ml_platform.specs.models import ModelSpec

MISSING = "(missing)"
MOST_VALUES = 10  # a number with more distinct values on the test rows is cut into deciles
DECILES = 10


class SliceError(PlatformError, RuntimeError):
    """A declared slice has no column in the rows being evaluated."""


def slice_column_of(model: ModelSpec, name: str, frame: pd.DataFrame) -> pd.Series:
    """The values of slice `name` in a snapshot's rows: its entity column (copied under `slice__<name>`, or the
    older `slice` text column) or else the model's feature of that name."""
    if model.slice_column == name and names.SLICE_COLUMN in frame:
        return frame[names.SLICE_COLUMN]
    for column in (names.slice_column(name), name):
        if column in frame:
            return frame[column]
    raise SliceError(f"model '{model.name}' slices its money by '{name}', but the evaluated rows have neither the "
                     f"entity column {names.slice_column(name)} nor the feature {name}: the snapshot was written "
                     f"without it (columns: {', '.join(map(str, frame.columns))})")


def sliced_entity_columns(frame: pd.DataFrame) -> list[str]:
    """The snapshot columns that carry entity columns only for slicing (kept in the predictions file beside the
    rows' money, so that every slice's figures can be recomputed from it)."""
    return [column for column in frame.columns
            if column == names.SLICE_COLUMN or str(column).startswith(names.SLICE_PREFIX)]


def _plain(value):
    """A slice value as the record stores it: str, bool, int or float."""
    if isinstance(value, pd.Timestamp) and value == value.normalize():
        return value.date().isoformat()  # a date column reads back from Parquet as midnight timestamps
    if isinstance(value, (dt.date, pd.Timestamp)):
        return value.isoformat()
    value = value.item() if hasattr(value, "item") else value
    return value if isinstance(value, (str, bool, int, float)) else str(value)


def _edge(value: float) -> str:
    return f"{value:.4g}"


def _deciles(values: pd.Series) -> tuple[np.ndarray, list[str]]:
    """Each row's decile (as the position of its label; -1 when missing) and the labels of the bins, in order."""
    numbers = values.astype(float).to_numpy()
    present = ~np.isnan(numbers)
    edges = np.unique(np.quantile(numbers[present], np.linspace(0.0, 1.0, DECILES + 1)))
    inner = edges[1:-1]
    bins = np.where(present, np.searchsorted(inner, np.where(present, numbers, 0.0), side="right"), -1)
    labels = [f"[{_edge(low)}, {_edge(high)})" for low, high in zip(edges[:-2], edges[1:-1])]
    labels.append(f"[{_edge(edges[-2] if len(edges) > 1 else edges[0])}, {_edge(edges[-1])}]")
    return bins, labels


def _is_number(values: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)


def slice_money(values: pd.Series, flags: np.ndarray, outcomes: OutcomeValues,
                binning: str = "values") -> tuple[SliceMoney, ...]:
    """The test money of each value of `values` (or of each decile, with binning "deciles") at the given flags."""
    table = pd.DataFrame({"money": outcomes.per_row(flags), "flagged": flags,
                          "perfect": np.maximum(outcomes.if_flagged, outcomes.if_not_flagged),
                          "do_nothing": outcomes.if_not_flagged})
    if binning == "deciles":
        positions, labels = _deciles(values)
        table["order"] = np.where(positions < 0, len(labels), positions)
        table["slice"] = [labels[position] if position >= 0 else MISSING for position in positions]
    else:
        table["slice"] = values.reset_index(drop=True).astype(object).where(values.notna().to_numpy(), MISSING)
        table["order"] = 0
    grouped = table.groupby(["order", "slice"], sort=False).agg(
        rows=("money", "size"), flagged=("flagged", "sum"), money=("money", "sum"),
        do_nothing=("do_nothing", "sum"), perfect=("perfect", "sum")).reset_index()
    if binning == "deciles":
        grouped = grouped.sort_values("order")
    else:
        grouped["text"] = grouped["slice"].map(str)
        grouped = grouped.sort_values(["money", "text"], ascending=[False, True])
    return tuple(SliceMoney(slice=_plain(row.slice), rows=int(row.rows), flagged=int(row.flagged),
                            money=float(row.money), do_nothing=float(row.do_nothing), perfect=float(row.perfect))
                 for row in grouped.itertuples(index=False))


def money_by_slices(model: ModelSpec, frame: pd.DataFrame, flags: np.ndarray,
                    outcomes: OutcomeValues) -> tuple[SliceTable, ...]:
    """One table of test money per slice the model declares, in the spec's order (none without slices)."""
    tables = []
    for name in model.slice_names():
        values = slice_column_of(model, name, frame)
        binning = "deciles" if _is_number(values) and values.nunique(dropna=True) > MOST_VALUES else "values"
        tables.append(SliceTable(name=name, binning=binning, rows=slice_money(values, flags, outcomes, binning)))
    return tuple(tables)
