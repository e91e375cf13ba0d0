"""Compare two specs of a model, each a spec file or a model version's recorded spec, with what they depend on."""

from __future__ import annotations

import difflib
import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ml_platform.project import Project
from ml_platform.provenance.describe import count
from ml_platform.provenance.records import (
    ProvenanceInputError, choices, known_versions, open_registry, recorded_payload, resolve_version)
from ml_platform.provenance.spec_text import spec_yaml
from ml_platform.hashing import canonical_json, short_hash
from ml_platform.specs.catalog import Catalog
from ml_platform.specs.errors import SpecErrors, did_you_mean
from ml_platform.features.library import load_catalog
from ml_platform.specs.loader import SPEC_SUFFIXES
from ml_platform.storage import registry


@dataclass(frozen=True)
class SpecSide:
    """One side of a diff: where its spec comes from and the payload it defines (model, feature sets, sources)."""

    label: str
    payload: dict

    @property
    def spec_hash(self) -> str:
        """The spec hash the payload defines."""
        return short_hash(canonical_json(self.payload))


def _specs_folder(path: Path) -> Path | None:
    """The nearest folder named model_specs that holds the file."""
    return next((parent for parent in path.parents if parent.name == "model_specs"), None)


def _load(specs_dir: Path, heading: str, renamed: tuple[str, str] | None = None) -> Catalog:
    """The catalog of a specs folder; its errors under a heading, a temporary file shown by its real name."""
    try:
        return load_catalog(specs_dir, specs_dir.parent)
    except SpecErrors as errors:
        text = str(errors).replace(*renamed) if renamed else str(errors)
        raise ProvenanceInputError(f"{heading}:\n{text}") from errors


def _model_declared_in(catalog: Catalog, path: Path, shown: str):
    for (kind, name), relative in catalog.files.items():
        if (catalog.project_dir / relative).resolve() == path:
            if kind != "model":
                raise ProvenanceInputError(f"{shown} declares the {kind.replace('_', ' ')} '{name}': diff compares "
                                           f"models (give a model spec file or a model version)")
            return catalog.models[name]
    raise ProvenanceInputError(f"{shown} is not a spec file of {catalog.specs_dir}")


def file_side(project: Project, given: str) -> SpecSide:
    """A spec file's model with the feature sets and sources of its specs folder (else of the project)."""
    path = Path(given).resolve()
    folder = _specs_folder(path)
    if folder is not None:
        catalog = _load(folder, f"{given} cannot be read with the specs of {folder}")
        model = _model_declared_in(catalog, path, given)
        return SpecSide(f"{given} (spec hash {catalog.spec_hash(model)})", catalog.model_payload(model))
    # a file outside any specs folder: read it with the project's sources and feature library
    library = _load(project.specs_dir, f"the specs of {project.specs_dir} do not load")
    with tempfile.TemporaryDirectory(prefix="ml_platform-diff-") as scratch:
        specs_dir = Path(scratch) / "model_specs"
        for (kind, _), relative in library.files.items():
            if kind != "model":
                target = specs_dir / Path(relative).relative_to("model_specs")
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(library.project_dir / relative, target)
        copy = specs_dir / path.name
        shutil.copyfile(path, copy)
        catalog = _load(specs_dir, f"{given} cannot be read with the sources and feature sets of "
                                   f"{project.specs_dir}", (f"model_specs/{path.name}", given))
        model = _model_declared_in(catalog, copy.resolve(), given)
        return SpecSide(f"{given} (spec hash {catalog.spec_hash(model)})", catalog.model_payload(model))


def recorded_side(project: Project, given: str) -> SpecSide:
    """The spec recorded for a training run, named by its key or by the model version it trained."""
    with open_registry(project.storage.warehouse) as connection:
        runs = registry.snapshots.all(connection, training_run=given)
        version = None if runs else resolve_version(connection, given)
        rows = runs or registry.models.all(connection, model_version=version)
        if not rows:
            versions = known_versions(connection)
            raise ProvenanceInputError(f"'{given}' is neither a spec file, a model version nor a training run in "
                                       f"the registry{did_you_mean(given, versions)} "
                                       f"(versions, newest first: {choices(versions)})")
        if len({row.spec_hash for row in rows}) > 1:
            listing = ", ".join(f"{row.training_run} (spec hash {row.spec_hash})" for row in rows)
            raise ProvenanceInputError(f"'{given}' was trained by several training runs whose specs differ: "
                                       f"{listing}; give one of those training runs instead")
        row = rows[0]  # a snapshot or a trained model: both name their training run, model and spec hash
        payload = recorded_payload(connection, row.spec_hash)
    if runs:
        return SpecSide(f"training run {given} of {row.model} (spec hash {row.spec_hash})", payload)
    return SpecSide(f"{version} (training run {row.training_run}, spec hash {row.spec_hash})", payload)


def side(project: Project, given: str) -> SpecSide:
    """A spec file when `given` names one, else a model version or a training run key."""
    path = Path(given)
    if path.is_file():
        return file_side(project, given)
    if path.suffix in SPEC_SUFFIXES or "/" in given:
        raise ProvenanceInputError(f"no spec file {given} (from {Path.cwd()})")
    return recorded_side(project, given)


def _sections(payload: dict) -> dict[tuple[str, str], tuple[str, str]]:
    """(kind, name) -> (shown name, YAML text); the model is one section whatever its name."""
    payload = json.loads(canonical_json(payload))  # both sides as recorded: mappings sorted, so order never differs
    sections = {("model", ""): (payload["model"]["name"], spec_yaml(payload["model"]))}
    for kind, plural in (("feature set", "feature_sets"), ("source", "sources")):
        for name, document in sorted(payload[plural].items()):
            sections[(kind, name)] = (name, spec_yaml(document))
    return sections


def diff_text(first: SpecSide, second: SpecSide) -> tuple[bool, str]:
    """Whether the two specs differ, and a summary followed by a unified diff of each part that differs."""
    old, new = _sections(first.payload), _sections(second.payload)
    lines = [f"--- A: {first.label}", f"+++ B: {second.label}"]
    if first.payload == second.payload:
        lines.append(f"no differences: both define spec hash {first.spec_hash} (the model, its "
                     f"{count(len(first.payload['feature_sets']), 'feature set')} and "
                     f"{count(len(first.payload['sources']), 'source')})")
        return False, "\n".join(lines)
    summary, hunks, unchanged = [], [], {"model": 0, "feature set": 0, "source": 0}
    order = list(old) + [key for key in new if key not in old]
    for key in order:
        kind = key[0]
        if key not in new:
            summary.append(f"  {kind} {old[key][0]}: only in A")
        elif key not in old:
            summary.append(f"  {kind} {new[key][0]}: only in B")
        elif old[key][1] == new[key][1]:
            unchanged[kind] += 1
            continue
        else:
            names = old[key][0] if old[key][0] == new[key][0] else f"{old[key][0]} (A), {new[key][0]} (B)"
            summary.append(f"  {kind} {names}: changed")
        before = old[key][1].splitlines() if key in old else []
        after = new[key][1].splitlines() if key in new else []
        title = f"{kind} {(old.get(key) or new.get(key))[0]}"
        hunks += ["", *difflib.unified_diff(before, after, f"A: {title}", f"B: {title}", lineterm="")]
    kept = [count(number, kind) for kind, number in unchanged.items() if number]
    if kept:
        summary.append(f"  unchanged: {', '.join(kept)}")
    return True, "\n".join(lines + summary + hunks)
