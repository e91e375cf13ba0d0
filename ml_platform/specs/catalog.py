"""The loaded, validated set of specs: sources, feature library and models, with their hashes."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from ml_platform.specs.models import FeatureSetSpec, ModelSpec, SourceSpec


def canonical_json(value) -> str:
    """Stable JSON text of a spec or of plain data, for hashing."""
    if hasattr(value, "model_dump"):
        value = value.model_dump(mode="json")
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def semantic(value):
    """A spec as plain data without the fields that change no computed value (descriptions, owners)."""
    if hasattr(value, "model_dump"):
        value = value.model_dump(mode="json")
    if isinstance(value, dict):
        return {key: semantic(item) for key, item in value.items() if key not in ("description", "owner")}
    if isinstance(value, list):
        return [semantic(item) for item in value]
    return value


def short_hash(text: str, length: int = 12) -> str:
    """The first characters of a SHA-256 hex digest of text."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:length]


@dataclass(frozen=True)
class Catalog:
    """Every spec of a project, validated together."""

    project_dir: Path
    specs_dir: Path
    sources: Mapping[str, SourceSpec]
    feature_sets: Mapping[str, FeatureSetSpec]
    models: Mapping[str, ModelSpec]
    files: Mapping[tuple[str, str], str] = field(default_factory=dict)

    def feature_index(self) -> dict[str, str]:
        """Feature name -> name of the feature set that computes it."""
        return {feature: fs.name for fs in self.feature_sets.values() for feature in fs.features}

    def feature_sets_of(self, model: ModelSpec) -> list[FeatureSetSpec]:
        """The feature sets a model reads, in a stable order."""
        index = self.feature_index()
        names = sorted({index[feature] for feature in model.features})
        return [self.feature_sets[name] for name in names]

    def sources_of(self, model: ModelSpec) -> list[SourceSpec]:
        """Every source the model depends on, through its entity and its features."""
        names = {model.entity}
        for feature_set in self.feature_sets_of(model):
            names.update([feature_set.entity, *feature_set.reads])
        return [self.sources[name] for name in sorted(names)]

    def feature_set_hash(self, feature_set: FeatureSetSpec) -> str:
        """Version of what a feature set computes: its SQL and types, the sources it reads, the feature sets it
        uses (recursively) and the source code of the functions it calls; descriptions and owners do not count."""
        from ml_platform.features.functions import REGISTRY

        sources = [self.sources[name] for name in sorted({feature_set.entity, *feature_set.reads})
                   if name in self.sources]
        used = {name: self.feature_set_hash(self.feature_sets[name]) for name in sorted(feature_set.uses)
                if name in self.feature_sets and name != feature_set.name}
        functions = {name: REGISTRY[name].version() if name in REGISTRY else "unregistered"
                     for name in sorted(feature_set.functions)}
        return short_hash(canonical_json({
            "feature_set": semantic(feature_set), "sources": [semantic(source) for source in sources],
            "uses": used, "functions": functions}))

    def model_payload(self, model: ModelSpec) -> dict:
        """Everything that defines what a model learns: its spec, its feature sets and its sources."""
        return {
            "model": model.model_dump(mode="json"),
            "feature_sets": {fs.name: fs.model_dump(mode="json") for fs in self.feature_sets_of(model)},
            "sources": {source.name: source.model_dump(mode="json") for source in self.sources_of(model)},
        }

    def spec_hash(self, model: ModelSpec) -> str:
        """The model's spec hash: changes whenever anything the model depends on in the specs changes."""
        return short_hash(canonical_json(self.model_payload(model)))

    def file_of(self, kind: str, name: str) -> str:
        """The spec file (relative to the project) that declares a spec."""
        return self.files.get((kind, name), "?")
