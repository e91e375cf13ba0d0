"""Checks of a source's availability times: each is one SQL expression over the source's stored columns (derived
columns and partition_date included) giving a TIMESTAMP."""

from __future__ import annotations

from ml_platform.specs.errors import SpecError
from ml_platform.specs.models import SourceSpec
from ml_platform.specs.sql_checks import SqlChecker


def availability_problems(checker: SqlChecker, source: SourceSpec) -> list[tuple[str, str]]:
    """(field, problem) of every availability expression of the source that is not a TIMESTAMP over its columns."""
    expressions = [("available_at", source.available_at)] + [
        (f"columns.{name}.available_at", column.available_at) for name, column in source.columns.items()]
    problems = []
    for field, expression in expressions:
        if expression is None:
            continue
        kind, problem = checker.expression_type(expression, source.name)
        if problem:
            problems.append((field, problem))
        elif kind != "TIMESTAMP":
            problems.append((field, f"must give a local TIMESTAMP, gives {kind} (e.g. CAST(... AS TIMESTAMP) or "
                                    f"a date plus an INTERVAL)"))
    return problems


def availability_errors(source: SourceSpec, file: str, checker: SqlChecker) -> list[SpecError]:
    """The availability problems of a source as spec errors."""
    return [SpecError(file, field, problem, source.kind, source.name)
            for field, problem in availability_problems(checker, source)]
