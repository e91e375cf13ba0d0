"""What a chain of runs would have to recompute, decided from stored versions before any run starts.

A run whose every partition is already stored at the version it would produce does no work, but Dagster still
records one event per partition; the chain asks here first and launches only runs that have work to do.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import dagster as dg
import duckdb

from ml_platform import grains
from ml_platform.entities.population import population_version
from ml_platform.features.versions import stale_days
from ml_platform.monitoring.outcomes import judged_versions
from ml_platform.names import feature_asset, feature_key, population_asset, source_asset, stage_asset
from ml_platform.partitions import days
from ml_platform.records.registry import EvaluationRecord, PromotionRecord
from ml_platform.records.tasks import TaskEvaluationRecord
from ml_platform.records.versions import PartitionVersion
from ml_platform.scoring.score import scored_versions
from ml_platform.training.inference import ScoringError
from ml_platform.sources.loading import SourceLoadError, load_fingerprint
from ml_platform.sources.refresh import stale_partitions
from ml_platform.specs.catalog import Catalog
from ml_platform.storage.versions import WHOLE, partition_versions


@dataclass(frozen=True)
class Plan:
    """Partitions to (re)compute per asset; empty when everything is up to date."""

    stale: dict[str, int]

    @property
    def up_to_date(self) -> bool:
        """True when nothing is stale."""
        return not self.stale

    def assets_to_run(self, catalog: Catalog) -> list[dg.AssetKey] | None:
        """The assets a run needs: only stale feature sets and the sets using them, or None (the whole job)
        when a source is stale, since every feature reading it may change once it is loaded."""
        stale = {name for name in catalog.feature_sets if feature_asset(name) in self.stale}
        if not stale or len(stale) != len(self.stale):
            return None
        while True:
            users = {name for name, feature_set in catalog.feature_sets.items() if stale & set(feature_set.uses)}
            if users <= stale:
                break
            stale |= users
        return [feature_key(name) for name in sorted(stale)]

    def describe(self) -> str:
        """One line saying what is stale."""
        return ", ".join(f"{asset} ({count})" for asset, count in sorted(self.stale.items())) or "nothing"


def _stale_source_partitions(connection: duckdb.DuckDBPyConnection, catalog: Catalog, name: str,
                             keys: list[str]) -> int:
    """How many of a source's partitions (`keys`) a run would load again: all, when its file cannot be read."""
    try:
        fingerprint = load_fingerprint(catalog.sources[name], catalog.project_dir)
    except SourceLoadError:
        return len(keys)  # the run will say what is wrong
    return len(stale_partitions(partition_versions(connection, source_asset(name), keys), keys, fingerprint))


def plan_reference_sources(connection: duckdb.DuckDBPyConnection, catalog: Catalog) -> Plan:
    """Reference (unpartitioned) sources whose file or spec changed since they were loaded."""
    stale = {source_asset(name): _stale_source_partitions(connection, catalog, name, [WHOLE])
             for name, source in catalog.sources.items() if not source.is_daily}
    return Plan({asset: count for asset, count in stale.items() if count})


def plan_daily(connection: duckdb.DuckDBPyConnection, catalog: Catalog, start: dt.date, end: dt.date,
               sources: list[str] | None = None, feature_sets: list[str] | None = None) -> Plan:
    """Daily sources and feature partitions (all, or the given ones) of [start, end] that a run would load or
    compute."""
    keys = [day.isoformat() for day in days(start, end)]
    stale = {source_asset(name): _stale_source_partitions(connection, catalog, name, keys)
             for name, source in catalog.sources.items() if source.is_daily and (sources is None or name in sources)}
    stale = {asset: count for asset, count in stale.items() if count}
    if stale:
        return Plan(stale)  # feature versions depend on the data versions that loading will record
    for name, feature_set in catalog.feature_sets.items():
        if catalog.entity_rows(feature_set.entity).is_population or \
                (feature_sets is not None and name not in feature_sets):
            continue  # partitioned by its entity's grain: see plan_population; or not asked for
        _, outdated = stale_days(connection, catalog, feature_set, start, end)
        if outdated:
            stale[feature_asset(name)] = len(outdated)
    return Plan(stale)


def plan_population(connection: duckdb.DuckDBPyConnection, catalog: Catalog, model: str, start: dt.date,
                    end: dt.date) -> Plan:
    """An entity spec's partitions starting in [start, end] whose population or features a run would build: those
    stored at another version than their inputs give now (their daily sources must be loaded first)."""
    rows = catalog.entity_rows(catalog.models[model].entity)
    entity = rows.population
    stored = partition_versions(connection, population_asset(entity.name))
    stale_keys = []
    for first, last in grains.partition_days(rows.grain, start, end):
        bounds = grains.bounds(rows.grain, first.isoformat())
        expected = population_version(connection, catalog, entity, *bounds)
        if first.isoformat() not in stored or stored[first.isoformat()].version != expected.version:
            stale_keys.append(first.isoformat())
    stale = {population_asset(entity.name): len(stale_keys)} if stale_keys else {}
    if stale:
        return Plan(stale)  # feature versions depend on the population versions the run will record
    for feature_set in catalog.feature_sets_of(catalog.models[model]):
        _, outdated = stale_days(connection, catalog, feature_set, start, end)
        if outdated:
            stale[feature_asset(feature_set.name)] = len(outdated)
    return Plan(stale)


def training_done(evaluation: EvaluationRecord | TaskEvaluationRecord | None,
                  champion: PromotionRecord | None) -> str | None:
    """Why a training run needs no run, or None when it does: it is evaluated (snapshot, model and evaluation are
    stored once per run and reused) and its gate's decision stands: blocked, or its model is the live one."""
    if evaluation is None:
        return None
    if not evaluation.gate_passed:
        return f"{evaluation.model_version} was trained and evaluated; the gate blocked it"
    if champion is not None and champion.model_version == evaluation.model_version:
        return f"{evaluation.model_version} was trained, evaluated and is the live model (promotion " \
               f"#{champion.promotion_id})"
    return None


def _stale(connection: duckdb.DuckDBPyConnection, asset: str,
           expected: dict[str, PartitionVersion]) -> list[dt.date]:
    stored = partition_versions(connection, asset, expected)
    return [dt.date.fromisoformat(key) for key, entry in expected.items()
            if key not in stored or stored[key].version != entry.version]


def plan_scoring(connection: duckdb.DuckDBPyConnection, catalog: Catalog, model: str, model_version: str,
                 start: dt.date, end: dt.date) -> list[dt.date]:
    """Days of [start, end] not yet scored by `model_version` from the feature data stored for them now."""
    try:
        expected = scored_versions(connection, catalog, model_version, start, end)
    except ScoringError:
        return list(days(start, end))  # the scoring run will say what is wrong
    return _stale(connection, stage_asset("predictions", model), expected)


def plan_outcomes(connection: duckdb.DuckDBPyConnection, catalog: Catalog, model: str, start: dt.date,
                  end: dt.date) -> list[dt.date]:
    """Days of [start, end] whose outcomes were not judged from the predictions and labels stored now."""
    expected = judged_versions(connection, catalog, catalog.models[model], start, end)
    return _stale(connection, stage_asset("outcomes", model), expected)


def days_text(stale: list[dt.date]) -> str:
    """'3 days, 2013-02-01 to 2013-02-03' (the range a run covers)."""
    return f"{len(stale)} day{'s' if len(stale) != 1 else ''}, {min(stale)} to {max(stale)}"
