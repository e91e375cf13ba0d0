"""Daily sources must share one partitioning: the daily job loads every daily source and computes every feature set a
day at a time, and a Dagster job holds assets of one partitions definition only.

Two daily sources that differ in start, end or time zone once passed `validate` and failed at run time with a long
Dagster traceback ("Selected assets must have the same partitions definitions"); this check says so at load, with
the files, the fields and the dates.
"""

from __future__ import annotations

from ml_platform.names import DAILY_JOB
from ml_platform.specs.catalog import Catalog
from ml_platform.specs.errors import SpecError
from ml_platform.specs.models import DailyPartitioning, SourceSpec

FIELDS = ("start", "end", "timezone")


def _shape(source: SourceSpec) -> tuple:
    partitioning = source.partitioning
    return tuple(getattr(partitioning, field) for field in FIELDS)


def _shown(value) -> str:
    return "open-ended (no end)" if value is None else str(value)


def check_daily_partitionings(catalog: Catalog) -> list[SpecError]:
    """One error per field in which a daily source's partitioning differs from the one most daily sources share."""
    daily = sorted((source for source in catalog.sources.values()
                    if isinstance(source.partitioning, DailyPartitioning)),
                   key=lambda source: catalog.file_of("source", source.name))
    if len(daily) < 2:
        return []
    entities = {spec.entity for spec in [*catalog.feature_sets.values(), *catalog.models.values()]}
    groups: dict[tuple, list[SourceSpec]] = {}
    for source in daily:
        groups.setdefault(_shape(source), []).append(source)
    # the reference: the partitioning most daily sources share, then one that an entity has, then the first file's
    reference_shape = max(groups, key=lambda shape: (len(groups[shape]),
                                                     any(source.name in entities for source in groups[shape]),
                                                     -daily.index(groups[shape][0])))
    reference = next((source for source in groups[reference_shape] if source.name in entities),
                     groups[reference_shape][0])
    errors = []
    for source in daily:
        for field, given, expected in zip(FIELDS, _shape(source), reference_shape):
            if given == expected:
                continue
            errors.append(SpecError(
                catalog.file_of("source", source.name), f"partitioning.{field}",
                f"{_shown(given)} differs from partitioning.{field} of daily source '{reference.name}' "
                f"({catalog.file_of('source', reference.name)}: {_shown(expected)}); the job '{DAILY_JOB}' loads "
                f"every daily source and computes every feature set one day at a time, so all daily sources share "
                f"start, end and timezone: give the daily sources the same {field}, or load this one whole "
                f"(partitioning: {{kind: none}})",
                "source", source.name))
    return errors
