"""A content-addressed artifact store: files named by their SHA-256, written atomically, verified before use.

The files live in the project's artifact folder. With `ML_PLATFORM_ARTIFACTS=s3://BUCKET[/PREFIX]` in the
environment of the process that runs a step (the cluster configuration), each stored artifact is also published
under the same name in that object store, and one missing from the local folder is fetched (and hashed) from there:
see storage/object_artifacts.py."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import dagster as dg

from ml_platform.errors import PlatformError
from ml_platform.hashing import file_sha256  # imported from here too (sources.loading, tests)
from ml_platform.storage.faults import pause_point
from ml_platform.storage.object_artifacts import ObjectArtifacts, object_artifacts_from_environment


class TamperedArtifactError(PlatformError, RuntimeError):
    """An artifact's bytes no longer match the hash it was stored under."""


@dataclass(frozen=True)
class StoredArtifact:
    """Where an artifact lives (relative to the store's root), its hash and size."""

    path: str
    sha256: str
    size_bytes: int


class ArtifactStore(dg.ConfigurableResource):
    """Immutable files (snapshots, models, reports) under one root folder, shared through an object store when the
    environment names one (`private` stores, such as a reproduction's scratch folder, never are)."""

    root: str
    private: bool = False

    def _root(self) -> Path:
        return Path(self.root)

    def _shared(self) -> ObjectArtifacts | None:
        return None if self.private else object_artifacts_from_environment()

    def write(self, folder: str, suffix: str, produce: Callable[[Path], None]) -> StoredArtifact:
        """Let `produce` write a temporary file, then publish it under its hash; an existing file is kept as is."""
        target_dir = self._root() / folder
        target_dir.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=target_dir, prefix=".incoming-", suffix=suffix)
        os.close(handle)
        os.unlink(temporary)
        temporary_path = Path(temporary)
        try:
            produce(temporary_path)
            pause_point(f"artifact-written:{folder.split('/')[0]}")
            with open(temporary_path, "rb") as written:
                os.fsync(written.fileno())
            sha256 = file_sha256(temporary_path)
            final = target_dir / f"{sha256}{suffix}"
            try:
                os.link(temporary_path, final)  # fails when the name exists: never replaces a stored artifact
            except FileExistsError:
                self._check_existing(final, sha256)
            size = final.stat().st_size
        finally:
            temporary_path.unlink(missing_ok=True)
        relative = final.relative_to(self._root()).as_posix()
        shared = self._shared()
        if shared is not None:  # before the caller records it: a registry row never names an unpublished artifact
            shared.publish(final, relative, sha256)
        return StoredArtifact(relative, sha256, size)

    def _check_existing(self, final: Path, sha256: str) -> None:
        """The file already stored under this content's name must hold this content; it is never replaced."""
        relative = final.relative_to(self._root()).as_posix()
        actual = file_sha256(final)
        if actual != sha256:
            raise TamperedArtifactError(
                f"artifact {relative} was modified: its SHA-256 is {actual}, its name says {sha256}; the same "
                f"content was written again and the stored file is left as it is, for inspection, not replaced")

    def verify(self, relative_path: str, sha256: str) -> Path:
        """The artifact's absolute path, after checking its bytes still hash to sha256."""
        path = self._root() / relative_path
        if not path.is_file():
            shared = self._shared()
            if shared is None or not shared.fetch(relative_path, path, sha256):
                where = self.root if shared is None else f"{self.root} and from {shared.location(relative_path)}"
                raise TamperedArtifactError(f"artifact {relative_path} is missing from {where}")
        actual = file_sha256(path)
        if actual != sha256:
            raise TamperedArtifactError(
                f"artifact {relative_path} was modified: its SHA-256 is {actual}, recorded {sha256}; refusing to load it"
            )
        return path

    def path_of(self, relative_path: str) -> Path:
        """Absolute path of a stored artifact (unverified: use verify() before loading it). With a shared store, an
        artifact not yet in the local folder is fetched first, checked against the hash its name carries."""
        path = self._root() / relative_path
        shared = self._shared()
        if shared is not None and not path.is_file():
            named = Path(relative_path).name.split(".", 1)[0]
            if len(named) != 64 or not shared.fetch(relative_path, path, named):
                raise TamperedArtifactError(f"artifact {relative_path} is missing from {self.root} and from "
                                            f"{shared.location(relative_path)}")
        return path

    def location_of(self, relative_path: str) -> str:
        """Where a stored artifact can be found, as the UI and the CLI show it: its object-store URI when artifacts
        are shared, else its path in the local folder."""
        shared = self._shared()
        return shared.location(relative_path) if shared is not None else str(self._root() / relative_path)
