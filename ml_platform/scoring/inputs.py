"""The feature values each prediction saw, as its table's `inputs` column stores them: a STRUCT, one field per
feature."""

from __future__ import annotations

import duckdb

from ml_platform.errors import PlatformError
from ml_platform.names import quote

COLUMN = "inputs"
STRUCT = "struct"


class InputsColumnError(PlatformError, RuntimeError):
    """A predictions table's inputs column cannot hold a batch's feature values as the platform stores them."""


def packed_sql(features: list[str]) -> str:
    """The STRUCT of the given feature columns, one field each, in order."""
    return f"struct_pack({', '.join(f'{quote(name)} := {quote(name)}' for name in features)})"


def stored_fields(connection: duckdb.DuckDBPyConnection, target: str) -> dict[str, str]:
    """The fields (name: DuckDB type) of the inputs column of an existing predictions table, a STRUCT."""
    kind = connection.sql(f"SELECT {COLUMN} FROM {target}").types[0]
    if kind.id != STRUCT:
        raise InputsColumnError(f"column {COLUMN} of {target} is {kind}: the platform stores the inputs of a "
                                f"prediction as a STRUCT (one field per feature)")
    return {name: str(field) for name, field in kind.children}


def writable_sql(connection: duckdb.DuckDBPyConnection, target: str, features: dict[str, str]) -> str:
    """The expression that writes a batch's feature values (name: DuckDB type) into target's inputs column.

    The STRUCT gains the fields it lacks (earlier rows hold NULL there, and readers keep to the features of each
    row's own spec). A feature whose type differs from its stored field fails: its stored values would change
    type. Run inside the scoring transaction, so a failed scoring leaves the column unchanged.
    """
    fields = stored_fields(connection, target)
    changed = [f"{name} is {kind} (stored as {fields[name]})" for name, kind in features.items()
               if fields.get(name, kind) != kind]
    if changed:
        raise InputsColumnError(f"the features of this batch do not fit column {COLUMN} of {target}: "
                                f"{'; '.join(changed)}; a feature keeps its type once a prediction stored it "
                                f"(cast it in its feature set, or give the new type a new feature name)")
    for name, kind in features.items():
        if name not in fields:
            connection.execute(f"ALTER TABLE {target} ADD COLUMN {COLUMN}.{quote(name)} {kind}")
    return packed_sql(list(features))


def feature_values(stored: dict, features: list[str]) -> dict:
    """One row's stored inputs as {feature: value}, for its spec's features in order."""
    return {name: stored[name] for name in features if name in stored}
