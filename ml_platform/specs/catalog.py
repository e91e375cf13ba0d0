"""The loaded, validated set of specs: sources, feature library, entities and models, with their hashes."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from ml_platform.hashing import canonical_json, short_hash
from ml_platform.names import PARTITION_START_COLUMN
from ml_platform.specs.functions import FunctionLibrary
from ml_platform.specs.models import AcceptedSource, EntitySpec, FeatureSetSpec, ModelSpec, SourceSpec

NEEDS_OPT_IN = ("external_vendor", "model_output")


def partition_grain(grain: str) -> str:
    """The grain of the partitions that hold an entity's rows: an hourly entity's hours are kept in daily
    partitions (one Dagster run scores a day's hours together), every other grain in its own periods."""
    return "daily" if grain == "hourly" else grain


def entity_row_keys(entity: EntitySpec) -> tuple[str, ...]:
    """The columns that name one row of an entity's population within a partition: its keys, and for an hourly
    entity the row's hour (partition_start), as a daily partition holds a key once in each of its hours."""
    return (*entity.keys, PARTITION_START_COLUMN) if entity.grain == "hourly" else tuple(entity.keys)


def semantic(value):
    """A spec as plain data without the fields that change no computed value (descriptions, owners)."""
    if hasattr(value, "model_dump"):
        value = value.model_dump(mode="json")
    if isinstance(value, dict):
        return {key: semantic(item) for key, item in value.items() if key not in ("description", "owner")}
    if isinstance(value, list):
        return [semantic(item) for item in value]
    return value


@dataclass(frozen=True)
class SourceDependency:
    """One source a model depends on: its trust level, what pulls it in, and the spec's opt-in to it."""

    source: str
    trust: str
    daily: bool
    via: tuple[str, ...]  # "entity", or chains of feature sets such as "route_load > flight_schedule"
    features: tuple[str, ...]  # the model's features computed from it
    accepted: AcceptedSource | None

    @property
    def needs_opt_in(self) -> bool:
        """True when the source is not internal, so the model's spec must accept it."""
        return self.trust in NEEDS_OPT_IN


@dataclass(frozen=True)
class EntityRows:
    """What a model or feature set predicts for, whichever spec declares it: a daily source's rows, or an entity
    spec's population at its grain. Every stage that reads entity rows asks for this, never for a source."""

    name: str
    keys: tuple[str, ...]  # an hourly population's include partition_start: a key has a row in each hour of a day
    grain: str  # of its partitions (every stage's unit): "daily" for a source's rows and for hourly populations
    schema: str  # the warehouse schema of its table: "source" or "population"
    timezone: str
    start: dt.date
    end: dt.date | None
    source: SourceSpec | None = None  # the source whose rows these are
    population: EntitySpec | None = None  # the entity spec whose population these are
    row_grain: str = "daily"  # of its rows: an hourly population's rows are hours within its daily partitions

    @property
    def is_population(self) -> bool:
        """True for an entity spec's population, False for a daily source's rows."""
        return self.population is not None

    def reads(self) -> tuple[str, ...]:
        """The sources its rows come from."""
        return tuple(self.population.reads) if self.population else (self.name,)


@dataclass(frozen=True)
class Catalog:
    """Every spec of a project, validated together."""

    project_dir: Path
    specs_dir: Path
    sources: Mapping[str, SourceSpec]
    feature_sets: Mapping[str, FeatureSetSpec]
    models: Mapping[str, ModelSpec]
    files: Mapping[tuple[str, str], str] = field(default_factory=dict)
    functions: FunctionLibrary = field(default_factory=dict)  # registered feature functions, by SQL name
    entities: Mapping[str, EntitySpec] = field(default_factory=dict)  # entity specs: populations at a grain

    def feature_set_paths(self, model: ModelSpec) -> dict[str, list[tuple[str, ...]]]:
        """Every feature set the model reads, directly or through `uses`, with the chains of sets that reach it
        (a direct set's chain is its own name); unknown names are skipped."""
        index = self.feature_index()
        paths: dict[str, list[tuple[str, ...]]] = {}
        stack = [(index[feature],) for feature in model.features if feature in index]
        while stack:
            path = stack.pop()
            if path in paths.get(path[-1], []) or path[-1] not in self.feature_sets:
                continue
            paths.setdefault(path[-1], []).append(path)
            stack += [(*path, used) for used in self.feature_sets[path[-1]].uses if used not in path]
        return {name: sorted(found) for name, found in sorted(paths.items())}

    def source_dependencies(self, model: ModelSpec) -> list["SourceDependency"]:
        """Every source the model depends on, through its entity, its label and its feature sets (used sets included), with
        its trust level, what pulls it in and the spec's opt-in; sorted by source name."""
        index = self.feature_index()
        via: dict[str, set[str]] = {name: {"entity"} for name in self._entity_sources(model.entity)}
        features: dict[str, set[str]] = {name: set() for name in self._entity_sources(model.entity)}
        for name, chains in self.feature_set_paths(model).items():
            feature_set = self.feature_sets[name]
            read = {*feature_set.reads} | (set(self._entity_sources(feature_set.entity))
                                           if feature_set.entity != model.entity else set())
            for source in read:
                for chain in chains:
                    via.setdefault(source, set()).add(" > ".join(chain))
                    features.setdefault(source, set()).update(
                        feature for feature in model.features if index.get(feature) == chain[0])
        for source in model.label.label_sources():
            if source != model.entity:
                via.setdefault(source, set()).add("label")
                features.setdefault(source, set())
        accepted = model.data_dependencies.accept
        return [SourceDependency(
            source=name, trust=self.sources[name].trust, daily=self.sources[name].is_daily,
            via=tuple(sorted(via[name], key=lambda text: (text != "entity", text))),
            features=tuple(feature for feature in model.features if feature in features[name]),
            accepted=accepted.get(name)) for name in sorted(via) if name in self.sources]

    def entity_rows(self, name: str) -> EntityRows:
        """The rows an `entity:` field names: an entity spec's population, or a daily source's rows.
        Raises KeyError for a name that is neither (the loader reports such names before anything asks)."""
        if name in self.entities:
            entity = self.entities[name]
            return EntityRows(name=name, keys=entity_row_keys(entity), grain=partition_grain(entity.grain),
                              schema="population", timezone=entity.timezone, start=entity.start, end=entity.end,
                              population=entity, row_grain=entity.grain)
        source = self.sources[name]
        partitioning = source.partitioning
        return EntityRows(name=name, keys=tuple(source.keys), grain="daily", schema="source",
                          timezone=getattr(partitioning, "timezone", "UTC"), start=getattr(partitioning, "start", None),
                          end=getattr(partitioning, "end", None), source=source)

    def feature_index(self) -> dict[str, str]:
        """Feature name -> name of the feature set that computes it."""
        return {feature: fs.name for fs in self.feature_sets.values() for feature in fs.features}

    def feature_sets_of(self, model: ModelSpec) -> list[FeatureSetSpec]:
        """The feature sets a model reads, in a stable order."""
        index = self.feature_index()
        names = sorted({index[feature] for feature in model.features})
        return [self.feature_sets[name] for name in names]

    def sources_of(self, model: ModelSpec) -> list[SourceSpec]:
        """Every source the model depends on, through its entity, its label's aggregates and its features."""
        names = {*self._entity_sources(model.entity), *model.label.label_sources()}
        for feature_set in self.feature_sets_of(model):
            names.update([*self._entity_sources(feature_set.entity), *feature_set.reads])
        return [self.sources[name] for name in sorted(names) if name in self.sources]  # unknown: a spec error

    def _entity_sources(self, name: str) -> list[str]:
        """The sources behind an `entity:` name: an entity spec's reads, or the source itself."""
        return list(self.entities[name].reads) if name in self.entities else [name]

    def feature_set_hash(self, feature_set: FeatureSetSpec) -> str:
        """Version of what a feature set computes: its SQL and types, the sources it reads, the feature sets it
        uses (recursively) and the source code of the functions it calls; descriptions and owners do not count."""
        sources = [self.sources[name] for name in sorted({*self._entity_sources(feature_set.entity),
                                                          *feature_set.reads}) if name in self.sources]
        used = {name: self.feature_set_hash(self.feature_sets[name]) for name in sorted(feature_set.uses)
                if name in self.feature_sets and name != feature_set.name}
        functions = {name: self.functions[name].version() if name in self.functions else "unregistered"
                     for name in sorted(feature_set.functions)}
        payload = {"feature_set": semantic(feature_set), "sources": [semantic(source) for source in sources],
                   "uses": used, "functions": functions}
        if feature_set.entity in self.entities:  # only then, so that the versions of source-entity sets stay put
            payload["entity"] = self.entity_hash(self.entities[feature_set.entity])
        return short_hash(canonical_json(payload))

    def model_payload(self, model: ModelSpec) -> dict:
        """Everything that defines what a model learns: its spec, its feature sets and its sources."""
        payload = {
            # what scoring stores (`scoring`) does not change what the model learns: turning it on does not retrain
            "model": model.model_dump(mode="json", exclude={"scoring"}),
            "feature_sets": {fs.name: fs.model_dump(mode="json") for fs in self.feature_sets_of(model)},
            "sources": {source.name: source.without_availability() for source in self.sources_of(model)},
        }
        entities = sorted({model.entity, *(fs.entity for fs in self.feature_sets_of(model))} & set(self.entities))
        if entities:  # only then, so that the spec hash of a model over a source's rows stays put
            payload["entities"] = {name: self.entities[name].model_dump(mode="json") for name in entities}
        return payload

    def spec_hash(self, model: ModelSpec) -> str:
        """The model's spec hash: changes whenever anything the model depends on in the specs changes."""
        return short_hash(canonical_json(self.model_payload(model)))

    def file_of(self, kind: str, name: str) -> str:
        """The spec file (relative to the project) that declares a spec."""
        return self.files.get((kind, name), "?")

    def entity_hash(self, entity: EntitySpec) -> str:
        """Version of what an entity's population is: its spec and the sources it reads (descriptions and owners
        do not count)."""
        sources = [semantic(self.sources[name]) for name in sorted(entity.reads) if name in self.sources]
        return short_hash(canonical_json({"entity": semantic(entity), "sources": sources}))
