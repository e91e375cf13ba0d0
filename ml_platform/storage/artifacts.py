"""A content-addressed artifact store: files named by their SHA-256, written atomically, verified before use."""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import dagster as dg

from ml_platform.errors import PlatformError
from ml_platform.storage.faults import pause_point


class TamperedArtifactError(PlatformError, RuntimeError):
    """An artifact's bytes no longer match the hash it was stored under."""


@dataclass(frozen=True)
class StoredArtifact:
    """Where an artifact lives (relative to the store's root), its hash and size."""

    path: str
    sha256: str
    size_bytes: int


def file_sha256(path: Path) -> str:
    """SHA-256 hex digest of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class ArtifactStore(dg.ConfigurableResource):
    """Immutable files (snapshots, models, reports) under one root folder."""

    root: str

    def _root(self) -> Path:
        return Path(self.root)

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
        return StoredArtifact(final.relative_to(self._root()).as_posix(), sha256, size)

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
            raise TamperedArtifactError(f"artifact {relative_path} is missing from {self.root}")
        actual = file_sha256(path)
        if actual != sha256:
            raise TamperedArtifactError(
                f"artifact {relative_path} was modified: its SHA-256 is {actual}, recorded {sha256}; refusing to load it"
            )
        return path

    def path_of(self, relative_path: str) -> Path:
        """Absolute path of a stored artifact (unverified: use verify() before loading it)."""
        return self._root() / relative_path
