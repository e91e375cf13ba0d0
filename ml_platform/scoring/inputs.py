"""The feature values each prediction saw, as its table's `inputs` column stores them.

A new table stores them as a typed STRUCT, one field per feature. Tables written before hold their JSON text
(VARCHAR): such a table keeps receiving JSON text, so no stored row changes form, and every reader takes both.
"""

from __future__ import annotations

import json

import duckdb

from ml_platform.errors import PlatformError
from ml_platform.storage.warehouse import quote

COLUMN = "inputs"
TEXT, STRUCT = "varchar", "struct"


class InputsColumnError(PlatformError, RuntimeError):
    """A predictions table's inputs column has a type the platform never writes."""


def packed_sql(features: list[str]) -> str:
    """The STRUCT of the given feature columns, one field each, in order."""
    return f"struct_pack({', '.join(f'{quote(name)} := {quote(name)}' for name in features)})"


def stored_type(connection: duckdb.DuckDBPyConnection, target: str) -> duckdb.DuckDBPyType:
    """The type of the inputs column of an existing predictions table, after checking it is STRUCT or VARCHAR."""
    kind = connection.sql(f"SELECT {COLUMN} FROM {target}").types[0]
    if kind.id not in (TEXT, STRUCT):
        raise InputsColumnError(f"column {COLUMN} of {target} is {kind}: the platform stores the inputs of a "
                                f"prediction as STRUCT (one field per feature) or VARCHAR (their JSON text)")
    return kind


def writable_sql(connection: duckdb.DuckDBPyConnection, target: str, features: dict[str, str]) -> str:
    """The expression that writes a batch's feature values (name: DuckDB type) into target's inputs column.

    A STRUCT column gains the fields it lacks (earlier rows hold NULL there, and readers keep to the features of
    each row's own spec); a feature whose type differs from its field turns the column into JSON text, which
    holds both types without loss. Run inside the scoring transaction, so a failed scoring leaves it unchanged.
    """
    packed = packed_sql(list(features))
    kind = stored_type(connection, target)
    if kind.id == STRUCT:
        fields = {name: str(field) for name, field in kind.children}
        if all(fields.get(name, field) == field for name, field in features.items()):
            for name, field in features.items():
                if name not in fields:
                    connection.execute(f"ALTER TABLE {target} ADD COLUMN {COLUMN}.{quote(name)} {field}")
            return packed
        connection.execute(f"ALTER TABLE {target} ALTER {COLUMN} TYPE VARCHAR "
                           f"USING CAST(to_json({COLUMN}) AS VARCHAR)")
    return f"CAST(to_json({packed}) AS VARCHAR)"


def feature_values(stored, features: list[str]) -> dict:
    """One row's stored inputs (a STRUCT's dict or JSON text) as {feature: value}, for its spec's features in order."""
    values = json.loads(stored) if isinstance(stored, str) else stored
    return {name: values[name] for name in features if name in values}
