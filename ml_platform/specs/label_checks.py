"""Checks of a label that looks forward: its horizon, and aggregates over declared daily sources only.

An aggregate's SQL is placed inside the platform's correlated subquery (see `ml_platform.features.labels`), so it
must be one aggregate expression over the aggregated source's columns. The sandbox (`specs/sql_reach.py`,
`refuse_escapes`, run on every model expression, aggregates included, before any is bound) keeps it to that
source; `_escapes` also refuses comments and ';', which would cut the subquery it is placed in.
"""

from __future__ import annotations

import datetime as dt

from ml_platform.specs.catalog import Catalog
from ml_platform.specs.errors import unknown_name
from ml_platform.specs.models import LabelAggregate, ModelSpec, SourceSpec
from ml_platform.specs.sql_checks import SqlChecker

RESERVED_COLUMNS = ("label", "split", "slice")  # the snapshot's own columns beside the entity's


def _escapes(expression: str) -> str | None:
    """Why an aggregate's SQL could leave the subquery it is placed in, or None."""
    depth, quoted = 0, None
    for position, character in enumerate(expression):
        if quoted:
            if character == quoted:
                quoted = None
            continue
        if character in "'\"":
            quoted = character
        elif character == "(":
            depth += 1
        elif character == ")":
            depth -= 1
            if depth < 0:
                return f"closes a parenthesis it did not open (character {position + 1})"
        elif character == ";" or expression.startswith(("--", "/*"), position):
            return "must be one SQL expression, without comments or ';'"
    if quoted or depth:
        return "has an unclosed quote or parenthesis"
    return None


def label_sources(catalog: Catalog, model: ModelSpec) -> dict[str, SourceSpec]:
    """The declared sources the label's aggregates read, by name (unknown names left out: they are errors)."""
    return {name: catalog.sources[name] for name in model.label.label_sources() if name in catalog.sources}


def _check_aggregate(checker: SqlChecker, entity: SourceSpec, catalog: Catalog, name: str,
                     aggregate: LabelAggregate) -> tuple[list[tuple[str, str]], str | None]:
    field = f"label.aggregates.{name}"
    if name in entity.all_columns():
        return [(field, f"'{name}' is already a column of '{entity.name}': give the aggregate another name")], None
    if name in RESERVED_COLUMNS:
        return [(field, f"'{name}' is a column the platform adds to every row ({', '.join(RESERVED_COLUMNS)}): "
                        f"give the aggregate another name")], None
    source = catalog.sources.get(aggregate.source)
    if source is None:
        return [(f"{field}.source", unknown_name("source", aggregate.source, catalog.sources))], None
    if not source.is_daily:
        return [(f"{field}.source", f"source '{source.name}' is a reference table loaded whole: a label aggregates "
                                    f"the rows of a daily source over the days after the row's own")], None
    errors = []
    for entity_column, source_column in aggregate.match.items():
        for side, table, column in (("entity", entity, entity_column), ("source", source, source_column)):
            if column not in table.all_columns():
                problem = unknown_name("column", column, table.all_columns()).removeprefix("unknown ")
                errors.append((f"{field}.match", f"{side} '{table.name}' has no {problem}"))
    if errors:
        return errors, None
    problem = _escapes(aggregate.expression)
    if problem is None:
        _, problem = checker.expression_type(aggregate.expression, source.name)
    if problem is None:
        described, problem = checker.describe(
            f"SELECT ({aggregate.expression}) AS value FROM source.{source.name} GROUP BY ()",
            source.all_columns())
        if problem and "GROUP BY" in problem:
            problem = (f"must aggregate the rows of '{source.name}' in the window (e.g. sum(amount), count(*)): "
                       f"{problem}")
    if problem:
        return [(f"{field}.expression", problem)], None
    return [], described[0][1]


def check_label(catalog: Catalog, model: ModelSpec, entity: SourceSpec,
                checker: SqlChecker) -> tuple[list[tuple[str, str]], dict[str, str]]:
    """(field, message) problems of the label's horizon and aggregates, and {aggregate: SQL of a typed NULL} for
    checking the expressions that name the aggregates. `checker` must hold the entity and `label_sources`."""
    label = model.label
    if label.aggregates and label.horizon is None:
        return [("label.horizon", "the label's aggregates read rows after the row's own day: say how far, e.g. "
                                  "horizon: {days: 30}")], {}
    errors, columns = [], {}
    if label.horizon is not None:
        split = model.split
        for name, window, following in (("train", split.train, "validation"),
                                        ("validation", split.validation, "test")):
            reach = window.start + dt.timedelta(days=label.horizon.days)
            if reach >= getattr(split, following).start:
                errors.append(("label.horizon", (
                    f"{label.horizon.days} days reach from the first {name} day ({window.start}) into the "
                    f"{following} window (from {getattr(split, following).start}): every {name} row would be "
                    f"purged; shorten the horizon or lengthen split.{name}")))
    for name, aggregate in label.aggregates.items():
        problems, kind = _check_aggregate(checker, entity, catalog, name, aggregate)
        errors += problems
        if kind is not None:
            columns[name] = f"CAST(NULL AS {kind})"
    return errors, columns
