"""The artifact store's shared copy on an S3-compatible object store (the cluster configuration, docs/scale-out.md).

With `ML_PLATFORM_ARTIFACTS=s3://BUCKET[/PREFIX]` in a process's environment, every artifact the process stores
(snapshots, models, reports) is also published under the same relative name in that bucket, and an artifact missing
from the process's local folder is fetched from there before use. The local folder stays the working copy (LightGBM,
DuckDB and pandas read files), so a worker on another machine reads the artifact a first worker wrote, and the
content-addressed rules hold across machines:
- an object is created once and never replaced: the upload is conditional (`If-None-Match: *`, which AWS S3, MinIO
  and moto honour); a second upload of the same name finds it, and the stored object is then checked to hold the
  same bytes (downloaded and hashed), exactly as the local store checks an existing file;
- every fetched object is hashed before it is linked into the local folder: bytes that do not hash to the name they
  are stored under (or to the hash the registry recorded) are refused with the object's URI, and nothing is kept;
- an S3 PUT is atomic, so a process killed during an upload leaves no object, and the registry row that names an
  artifact is written only after the upload returned.
"""

from __future__ import annotations

import base64
import functools
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from ml_platform.errors import PlatformError
from ml_platform.hashing import file_sha256
from ml_platform.names import ARTIFACTS_VARIABLE, OBJECT_STORE_ENDPOINT_VARIABLE

SINGLE_UPLOAD_LIMIT = 5 * 1024 ** 3  # S3's largest single PUT: a larger artifact is refused, not split


class ArtifactObjectStoreError(PlatformError, ValueError):
    """The shared artifact store is not usable: a bad URI, a missing client library, an artifact too large."""


@functools.lru_cache(maxsize=8)
def _client(endpoint: str | None, region: str):
    try:
        import boto3
    except ImportError as error:  # the embedded installation has no boto3: the cluster extra brings it
        raise ArtifactObjectStoreError(
            f"{ARTIFACTS_VARIABLE} names an object store, but boto3 is not installed: install the cluster extra "
            f"(pip install -e '.[cluster]') or unset {ARTIFACTS_VARIABLE}") from error
    return boto3.client("s3", endpoint_url=endpoint, region_name=region)


@dataclass(frozen=True)
class ObjectArtifacts:
    """Artifacts under `s3://bucket/prefix`, published once, fetched and hashed before use."""

    uri: str
    endpoint: str | None = None

    def __post_init__(self) -> None:
        bucket = self.uri.removeprefix("s3://").split("/", 1)[0]
        if not self.uri.startswith("s3://") or not bucket:
            raise ArtifactObjectStoreError(f"{ARTIFACTS_VARIABLE}={self.uri!r} is not s3://BUCKET[/PREFIX]")
        if self.endpoint is not None and not self.endpoint.startswith(("http://", "https://")):
            raise ArtifactObjectStoreError(f"{OBJECT_STORE_ENDPOINT_VARIABLE}={self.endpoint!r} is not an http:// or "
                                           f"https:// URL")

    @property
    def bucket(self) -> str:
        return self.uri.removeprefix("s3://").split("/", 1)[0]

    def key(self, relative_path: str) -> str:
        prefix = self.uri.removeprefix("s3://")[len(self.bucket):].strip("/")
        return f"{prefix}/{relative_path}" if prefix else relative_path

    def location(self, relative_path: str) -> str:
        """The artifact's URI, as the UI and the CLI show it."""
        return f"s3://{self.bucket}/{self.key(relative_path)}"

    def _client(self):
        return _client(self.endpoint, os.environ.get("AWS_REGION", "us-east-1"))

    def publish(self, local: Path, relative_path: str, sha256: str) -> None:
        """Create the object from the local file, unless it exists; an existing one must hold the same bytes."""
        from botocore.exceptions import ClientError

        size = local.stat().st_size
        if size > SINGLE_UPLOAD_LIMIT:
            raise ArtifactObjectStoreError(
                f"artifact {relative_path} is {size:,} bytes: the shared store takes at most {SINGLE_UPLOAD_LIMIT:,} "
                f"(one S3 PUT, which is what makes its creation exclusive)")
        checksum = base64.b64encode(bytes.fromhex(sha256)).decode("ascii")
        try:
            with open(local, "rb") as body:
                self._client().put_object(Bucket=self.bucket, Key=self.key(relative_path), Body=body,
                                          IfNoneMatch="*", ChecksumSHA256=checksum, Metadata={"sha256": sha256})
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") not in ("PreconditionFailed", "ConditionalRequestConflict"):
                raise
            self._check_existing(relative_path, sha256)

    def _check_existing(self, relative_path: str, sha256: str) -> None:
        from ml_platform.storage.artifacts import TamperedArtifactError

        with tempfile.TemporaryDirectory(prefix="ml-platform-artifact-") as folder:
            copy = Path(folder) / "existing"
            self._download(relative_path, copy)
            actual = file_sha256(copy)
        if actual != sha256:
            raise TamperedArtifactError(
                f"artifact {self.location(relative_path)} was modified: its SHA-256 is {actual}, its name says "
                f"{sha256}; the same content was written again and the stored object is left as it is, for "
                f"inspection, not replaced")

    def _download(self, relative_path: str, destination: Path) -> bool:
        """Download the object to destination; False when there is no such object."""
        from botocore.exceptions import ClientError

        try:
            self._client().download_file(self.bucket, self.key(relative_path), str(destination))
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True

    def fetch(self, relative_path: str, local: Path, sha256: str) -> bool:
        """Bring the object into `local` (atomically, by a link), after checking its bytes hash to sha256.
        False when the store has no such object; TamperedArtifactError when its bytes differ."""
        from ml_platform.storage.artifacts import TamperedArtifactError

        local.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=local.parent, prefix=".fetching-", suffix=local.suffix)
        os.close(handle)
        temporary_path = Path(temporary)
        try:
            if not self._download(relative_path, temporary_path):
                return False
            actual = file_sha256(temporary_path)
            if actual != sha256:
                raise TamperedArtifactError(
                    f"artifact {self.location(relative_path)} was modified: its SHA-256 is {actual}, recorded "
                    f"{sha256}; refusing to load it")
            try:
                os.link(temporary_path, local)
            except FileExistsError:  # another process fetched it meanwhile: its copy is checked by the caller
                pass
            return True
        finally:
            temporary_path.unlink(missing_ok=True)


def object_artifacts_from_environment(environment: Mapping[str, str] | None = None) -> ObjectArtifacts | None:
    """The shared artifact store the environment names, or None (artifacts only in the local folder: the default)."""
    environment = os.environ if environment is None else environment
    uri = environment.get(ARTIFACTS_VARIABLE, "").strip()
    if not uri:
        return None
    return ObjectArtifacts(uri=uri, endpoint=environment.get(OBJECT_STORE_ENDPOINT_VARIABLE, "").strip() or None)
