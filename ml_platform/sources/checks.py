"""Data checks on a staged load: a source's new rows replace the stored ones only when every check passes."""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from ml_platform.sources.health import HEALTH_CHECK_NAMES, health_judgements, summary
from ml_platform.specs.models import SourceSpec
from ml_platform.names import quote

CHECK_NAMES = {
    "schema": "every declared column is present and its values convert to the declared type",
    "row_count": "every day has at least checks.min_rows_per_day rows",
    "unique_keys": "no two rows share the source's keys",
    "not_null": "the columns listed under checks.not_null are never missing",
    "value_ranges": "numeric values lie within checks.ranges",
    **HEALTH_CHECK_NAMES,
}


def declared_checks(source: SourceSpec) -> list[str]:
    """The checks a source's asset declares: schema and row count always, the others when its spec asks for them."""
    checks = source.checks
    return ["schema", "row_count"] + (["unique_keys"] if checks.unique_keys else []) + (
        ["not_null"] if checks.not_null else []) + (["value_ranges"] if checks.ranges else []) + (
        ["distribution_shift", "null_surge"] if source.is_daily else [])


@dataclass(frozen=True)
class CheckOutcome:
    """One data check's verdict on a staged load."""

    name: str
    passed: bool
    message: str


def conversion_problems(connection: duckdb.DuckDBPyConnection, source: SourceSpec, raw_sql: str) -> list[str]:
    """Declared columns whose raw values do not convert to the declared type, with a count and an example."""
    parts = []
    for name, column in source.columns.items():
        quoted = quote(name)
        parts.append(f"count_if({quoted} IS NOT NULL AND TRY_CAST({quoted} AS {column.type}) IS NULL)")
        parts.append(f"any_value(CAST({quoted} AS VARCHAR)) FILTER "
                     f"({quoted} IS NOT NULL AND TRY_CAST({quoted} AS {column.type}) IS NULL)")
    values = connection.execute(f"SELECT {', '.join(parts)} FROM ({raw_sql})").fetchall()[0]
    problems = []
    for index, (name, column) in enumerate(source.columns.items()):
        count, example = values[2 * index], values[2 * index + 1]
        if count:
            problems.append(f"column {name}: {count} value(s) are not {column.type} (e.g. {example!r})")
    return problems


def check_staged(connection: duckdb.DuckDBPyConnection, source: SourceSpec, staged: str,
                 days: list[str]) -> list[CheckOutcome]:
    """Run the source's checks (but schema) on the staged rows."""
    checks = source.checks
    outcomes = []
    if source.is_daily:
        counts = dict(connection.execute(
            f"SELECT CAST(partition_date AS VARCHAR), count(*) FROM {staged} GROUP BY 1").fetchall())
        short = [f"{day} ({counts.get(day, 0)})" for day in days if counts.get(day, 0) < checks.min_rows_per_day]
        empty = [day for day in days if not counts.get(day, 0) and checks.min_rows_per_day > 0]
        outcomes.append(CheckOutcome("row_count", not short, (
            f"{len(short)} day(s) with fewer than {checks.min_rows_per_day} row(s): {', '.join(short[:5])}"
            + (f"; empty day(s), nothing delivered for {source.name}: {', '.join(empty[:5])}" if empty else "")
            if short else f"every day has at least {checks.min_rows_per_day} row(s)")))
    else:
        total = connection.execute(f"SELECT count(*) FROM {staged}").fetchall()[0][0]
        outcomes.append(CheckOutcome("row_count", total >= max(checks.min_rows_per_day, 1),
                                     f"{total} row(s)"))
    if checks.unique_keys:
        keys = ", ".join(quote(key) for key in source.keys)
        duplicated, example = connection.execute(
            f"SELECT count(*), any_value(CAST(({keys}) AS VARCHAR)) FROM "
            f"(SELECT {keys} FROM {staged} GROUP BY ALL HAVING count(*) > 1)").fetchall()[0]
        outcomes.append(CheckOutcome("unique_keys", duplicated == 0, (
            f"{duplicated} key(s) appear more than once, e.g. {example}" if duplicated
            else f"keys ({', '.join(source.keys)}) are unique")))
    if checks.not_null:
        counts = connection.execute(
            "SELECT " + ", ".join(f"count_if({quote(name)} IS NULL)" for name in checks.not_null)
            + f" FROM {staged}").fetchall()[0]
        missing = [f"{name} ({count})" for name, count in zip(checks.not_null, counts) if count]
        outcomes.append(CheckOutcome("not_null", not missing, (
            f"missing values in {', '.join(missing)}" if missing else "no missing values")))
    if checks.ranges:
        problems, cleared = [], []
        for name, bounds in checks.ranges.items():
            conditions = [f"{quote(name)} < {bounds.min!r}" if bounds.min is not None else None,
                          f"{quote(name)} > {bounds.max!r}" if bounds.max is not None else None]
            condition = " OR ".join(part for part in conditions if part)
            count, low, high = connection.execute(
                f"SELECT count_if({condition}), min({quote(name)}), max({quote(name)}) FROM {staged}").fetchall()[0]
            if not count:
                continue
            described = f"{name}: {count} value(s) outside [{bounds.min}, {bounds.max}] (seen {low} to {high})"
            if bounds.outside == "set_missing":
                connection.execute(f"UPDATE {staged} SET {quote(name)} = NULL WHERE {condition}")
                cleared.append(described + ", set missing")
            else:
                problems.append(described)
        message = "; ".join(problems + cleared) or "every value within its range"
        outcomes.append(CheckOutcome("value_ranges", not problems, message))
    if source.is_daily:  # after value_ranges: impossible values set missing do not count as sizes
        for name, judgements in health_judgements(connection, source, staged, days).items():
            outcomes.append(CheckOutcome(name, *summary(source, name, judgements)))
    return outcomes
