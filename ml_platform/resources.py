"""The resources every generated asset receives, built from the project's storage paths."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import duckdb
from dagster_duckdb import DuckDBResource

from ml_platform.storage.artifacts import ArtifactStore
from ml_platform.storage.warehouse import prepare


class Warehouse(DuckDBResource):
    """The project's DuckDB warehouse, with its schemas and registries in place on every connection."""

    @contextmanager
    def get_connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        # A missing folder would otherwise only surface after DuckDB's two-minute connect retries.
        Path(self.database).parent.mkdir(parents=True, exist_ok=True)
        with super().get_connection() as connection:
            prepare(connection)
            yield connection


@dataclass(frozen=True)
class StoragePaths:
    """Where a project keeps its warehouse and artifacts."""

    data_dir: Path

    @property
    def warehouse(self) -> Path:
        return self.data_dir / "warehouse.duckdb"

    @property
    def artifacts(self) -> Path:
        return self.data_dir / "artifacts"


def build_resources(paths: StoragePaths) -> dict:
    """The `warehouse` and `artifacts` resources for a project."""
    return {
        "warehouse": Warehouse(database=str(paths.warehouse)),
        "artifacts": ArtifactStore(root=str(paths.artifacts)),
    }
