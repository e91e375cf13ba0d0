"""Retrain a model version from its recorded snapshot and spec, outside the registry, and compare the artifact.

The retraining goes through `ml_platform.training.fit.train_model` itself, so it follows whatever production
training does. It runs against a private in-memory registry holding only the run's snapshot record and a temporary
artifact store whose snapshot entry links to the stored (verified) file: nothing is written to the project.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from ml_platform import names
from ml_platform.progress import Progress
from ml_platform.project import Project
from ml_platform.provenance.describe import snapshot_rows, timestamp
from ml_platform.provenance.records import (
    ProvenanceInputError, model_records, open_registry, recorded_catalog, recorded_spec, snapshot_record)
from ml_platform.records.registry import ModelRecord, SnapshotRecord
from ml_platform.records.search import SearchRecord
from ml_platform.records.training import ModelCard
from ml_platform.specs.catalog import Catalog
from ml_platform.specs.models import ModelSpec
from ml_platform.snapshots.pinning import DataCheck, check_pinned_versions, data_check_text
from ml_platform.storage import registry
from ml_platform.storage.artifacts import ArtifactStore, TamperedArtifactError
from ml_platform.storage.warehouse import prepare
from ml_platform.training.environment import environment_differences
from ml_platform.training.fit import train_model

# Model card entries that describe the run rather than what was learnt.
_RUN_FACTS = {"training_seconds", "python", "platform", "library_versions", "code_version", "library",
              "feature_importance"}


@dataclass
class Reproduction:
    """The outcome of retraining one model version."""

    model_version: str
    model: str
    training_run: str
    spec_hash: str
    spec_recorded_at: dt.datetime
    snapshot: SnapshotRecord
    algorithm: str
    seed: int
    recorded_sha256: str
    reproduced_sha256: str
    recorded_card: ModelCard
    reproduced_card: ModelCard
    stored_artifact: str
    seconds: float
    stored_problem: str | None = None  # why the stored artifact fails its check (modified or missing), if it does
    output: Path | None = None
    environment: list[tuple[str, str, str]] = field(default_factory=list)
    card_differences: list[tuple[str, str, str]] = field(default_factory=list)
    other_runs: list[str] = field(default_factory=list)  # later runs that produced the identical artifact
    data: DataCheck | None = None  # does the warehouse still hold the data versions the snapshot pinned?

    @property
    def identical(self) -> bool:
        """True when the reproduced artifact is byte for byte the recorded one."""
        return self.recorded_sha256 == self.reproduced_sha256

    @property
    def verified(self) -> bool:
        """True when the model version is sound: the stored artifact passes its check and reproduces identically."""
        return self.stored_problem is None and self.identical


def _card_differences(recorded_card: ModelCard, reproduced_card: ModelCard) -> list[tuple[str, str, str]]:
    """(fact, recorded, reproduced) of each fact both cards hold that differs, run facts left out."""
    recorded, reproduced = recorded_card.model_dump(mode="json"), reproduced_card.model_dump(mode="json")
    return [(key, str(recorded[key]), str(reproduced[key])) for key in sorted(set(recorded) & set(reproduced))
            if key not in _RUN_FACTS and recorded[key] != reproduced[key]]


def _check_output(output: Path | None, artifacts_root: Path) -> Path | None:
    if output is None:
        return None
    output = output.resolve()
    if output.is_relative_to(artifacts_root.resolve()):
        raise ProvenanceInputError(f"--output {output} lies inside the artifact store {artifacts_root}: "
                                   f"reproduce never writes there; choose a file elsewhere")
    if output.is_dir() or not output.parent.is_dir():
        raise ProvenanceInputError(f"--output {output} must name a file in an existing folder")
    return output


def reproduce(project: Project, model_version: str, output: Path | None = None,
              progress: Progress | None = None) -> Reproduction:
    """Retrain a registered model version from its run's snapshot and recorded spec; compare SHA-256. `progress`
    hears of the retraining's rounds every few seconds."""
    store = ArtifactStore(root=str(project.storage.artifacts))
    output = _check_output(output, project.storage.artifacts)
    with open_registry(project.storage.warehouse) as connection:
        recorded, *also = model_records(connection, model_version)
        snapshot = snapshot_record(connection, recorded.model, recorded.training_run)
        spec = recorded_spec(connection, recorded.spec_hash)
        catalog, model = recorded_catalog(spec.payload)
        data = check_pinned_versions(connection, catalog, snapshot.manifest)
    snapshot_path = store.verify(snapshot.path, snapshot.sha256)
    stored_problem = None
    try:
        store.verify(recorded.path, recorded.sha256)
        stored_artifact = f"{recorded.path}: SHA-256 verified"
    except TamperedArtifactError as error:
        stored_problem = str(error)
        stored_artifact = f"FAILS its check: {error}"
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="ml_platform-reproduce-") as scratch:
        private = ArtifactStore(root=scratch, private=True)  # a retrained copy to compare: never shared
        retrained = _retrain(private, Path(scratch), snapshot, snapshot_path, catalog, model, progress,
                             recorded.card.search)
        if output is not None:
            shutil.copyfile(private.path_of(retrained.path), output)
    return Reproduction(
        model_version=recorded.model_version, model=recorded.model, training_run=recorded.training_run,
        spec_hash=recorded.spec_hash, spec_recorded_at=spec.recorded_at, snapshot=snapshot,
        algorithm=model.algorithm.kind, seed=model.algorithm.seed, recorded_sha256=recorded.sha256,
        reproduced_sha256=retrained.sha256, recorded_card=recorded.card, reproduced_card=retrained.card,
        stored_artifact=stored_artifact, seconds=time.perf_counter() - started, stored_problem=stored_problem,
        output=output,
        environment=environment_differences(recorded.card.environment(), retrained.card.environment()),
        card_differences=_card_differences(recorded.card, retrained.card),
        other_runs=[other.training_run for other in also], data=data)


def _retrain(private: ArtifactStore, scratch: Path, snapshot: SnapshotRecord, snapshot_path: Path, catalog: Catalog,
             model: ModelSpec, progress: Progress | None = None,
             recorded_search: SearchRecord | None = None) -> ModelRecord:
    """Train the run again from its snapshot into the private store, through a registry in memory holding only
    that snapshot; the retrained model's record. A searched model is retrained with the parameters its search
    chose (`recorded_search`), without searching again."""
    link = scratch / snapshot.path
    link.parent.mkdir(parents=True)
    os.symlink(snapshot_path, link)  # read through the link; train_model verifies the hash again
    with duckdb.connect() as memory:
        prepare(memory)
        registry.snapshots.add(memory, snapshot)
        return train_model(memory, private, catalog, model, snapshot.training_run, progress,
                           recorded_search=recorded_search).record


def reproduction_text(result: Reproduction) -> str:
    """The report `ml-platform reproduce` prints."""
    lines = [
        f"Reproducing {result.model_version} (training run {result.training_run} of {result.model})",
        f"  snapshot    {result.snapshot.snapshot_id}: SHA-256 verified, {snapshot_rows(result.snapshot.manifest)}",
        f"  spec        spec hash {result.spec_hash} as recorded at {timestamp(result.spec_recorded_at)} UTC "
        f"({names.registry_table('specs')}, not today's spec file)",
        f"  training    {result.algorithm}, seed {result.seed}, through ml_platform.training into a temporary "
        f"file ({result.seconds:.1f} s)",
        *([f"  search      not run again: trained with the parameters the recorded search chose (trial "
            f"{result.recorded_card.search.best_trial} of {len(result.recorded_card.search.trials)}, "
            f"{result.recorded_card.search.objective} on the validation window)"]
          if result.recorded_card.search is not None else []),
        f"  stored      {result.stored_artifact}",
        *([f"  data        {data_check_text(result.data)}"] if result.data is not None else []),
        f"  recorded    sha256 {result.recorded_sha256}",
        f"  reproduced  sha256 {result.reproduced_sha256}",
    ]
    if result.other_runs:
        lines.append(f"  also        the artifact of training run(s) {', '.join(result.other_runs)}, trained later "
                     f"from another revision of the spec that does not change what is learnt")
    if result.output is not None:
        lines.append(f"  written to  {result.output}")
    now = result.reproduced_card
    libraries = ", ".join(f"{name} {version}" for name, version in (now.library_versions or {}).items())
    environment = f"python {now.python}, {libraries}; platform code {now.code_version}"
    if result.stored_problem is not None:
        lines.append(f"TAMPERED: the stored artifact of {result.model_version} is not the one recorded; whatever "
                     f"loads it (scoring, a rollback) refuses it.")
        lines.append(f"  {result.stored_problem.replace('; refusing to load it', '')}")
        if result.identical:
            lines.append("  the retrained artifact matches the recorded SHA-256: the recorded model can be made "
                         "again (--output FILE keeps it), but the stored file is not it")
        else:
            lines.append("  the retrained artifact does not match the recorded SHA-256 either")
        return "\n".join(lines)
    if result.identical:
        lines.append("IDENTICAL: the reproduced artifact is byte for byte the recorded one.")
        lines.append(f"  environment now: {environment}")
        if result.environment:
            lines.append("  (recorded with a different " + ", ".join(what for what, _, _ in result.environment)
                         + ": it made no difference to the artifact)")
        return "\n".join(lines)
    lines.append("DIFFERENT: the reproduced artifact's SHA-256 is not the recorded one.")
    distributed = result.recorded_card.distributed
    if distributed is not None:
        lines.append(f"  the recorded model was trained on {distributed.engine} ({distributed.workers} workers of "
                     f"{distributed.scheduler}), which is not bit-identical from one training to the next: the "
                     f"platform states {distributed.tolerance}")
    if result.environment:
        width = max(len(what) for what, _, _ in result.environment)
        lines.append("  what differs between the recorded training environment and now:")
        lines += [f"    {what:<{width}}  {then}  ->  {now_value}" for what, then, now_value in result.environment]
    elif distributed is None:
        lines.append(f"  the environment is the one recorded ({environment}): training was not "
                     f"deterministic here; please report it")
    if result.card_differences:
        lines.append("  model card facts that differ (recorded -> reproduced):")
        lines += [f"    {key}: {then} -> {now_value}" for key, then, now_value in result.card_differences]
    return "\n".join(lines)
