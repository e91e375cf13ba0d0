"""Partition definitions derived from specs, and partition keys read back as dates."""

from __future__ import annotations

import datetime as dt

import dagster as dg

from ml_platform.specs.models import DailyPartitioning, ModelSpec, SourceSpec


def daily_partitions(partitioning: DailyPartitioning) -> dg.DailyPartitionsDefinition:
    """One partition per local event date, from the source's first to its last day."""
    end = (partitioning.end + dt.timedelta(days=1)).isoformat() if partitioning.end else None
    return dg.DailyPartitionsDefinition(
        start_date=partitioning.start.isoformat(), end_date=end, timezone=partitioning.timezone
    )


def source_partitions(source: SourceSpec) -> dg.DailyPartitionsDefinition | None:
    """The source's daily partitions, or None for a table loaded whole."""
    return daily_partitions(source.partitioning) if isinstance(source.partitioning, DailyPartitioning) else None


def training_runs(model: ModelSpec) -> dg.DynamicPartitionsDefinition:
    """One partition per training run of a model, shared by its snapshot, model, evaluation and deployment."""
    return dg.DynamicPartitionsDefinition(name=f"{model.name}__training_runs")


def training_run_key(model: ModelSpec, spec_hash: str) -> str:
    """The key of the training run that a spec revision defines: its data cut-off and its spec hash."""
    return f"{model.split.test.end.isoformat()}_{spec_hash}"


def date_range(context: dg.AssetExecutionContext) -> tuple[dt.date, dt.date]:
    """First and last day of the daily partitions this step materializes."""
    keys = context.partition_key_range
    return dt.date.fromisoformat(keys.start), dt.date.fromisoformat(keys.end)


def days(start: dt.date, end: dt.date) -> list[dt.date]:
    """Every day of the inclusive range."""
    return [start + dt.timedelta(days=offset) for offset in range((end - start).days + 1)]
