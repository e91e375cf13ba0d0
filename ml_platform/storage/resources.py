"""The resources every generated asset receives, built from the project's storage paths."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import duckdb
from dagster_duckdb import DuckDBResource

from ml_platform.storage.artifacts import ArtifactStore
from ml_platform.storage.delta_tables import delta_store_from_environment, delta_views
from ml_platform.storage.warehouse import open_warehouse


class Warehouse(DuckDBResource):
    """The project's DuckDB warehouse, with its schemas and registries in place on every connection.

    Unlike the stock resource it closes the connection when the step fails, creates a missing folder at once
    instead of retrying for two minutes, and waits only while another process holds the file's lock.
    """

    @contextmanager
    def get_connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection to the warehouse, closed when the block ends (see open_warehouse); when the environment
        names Delta tables (the cluster configuration), they read as `features.<name>`, `source.<name>`,
        `population.<name>`, `predictions.<model>` and `monitoring.<model>__<kind>` in it (and when it names the
        registries' database too and no warehouse file exists, the connection is a private in-memory one that
        never creates the file: warehouse.file_free)."""
        store = delta_store_from_environment()
        if store is None:
            with open_warehouse(self.database) as connection:
                yield connection
            return
        with open_warehouse(self.database) as connection:
            with delta_views(connection, store):
                yield connection


@dataclass(frozen=True)
class StoragePaths:
    """Where a project keeps its warehouse and artifacts."""

    data_dir: Path

    @property
    def warehouse(self) -> Path:
        """The DuckDB warehouse file."""
        return self.data_dir / "warehouse.duckdb"

    @property
    def artifacts(self) -> Path:
        """The artifact store's root folder."""
        return self.data_dir / "artifacts"


def build_resources(paths: StoragePaths) -> dict:
    """The `warehouse` and `artifacts` resources for a project."""
    return {
        "warehouse": Warehouse(database=str(paths.warehouse)),
        "artifacts": ArtifactStore(root=str(paths.artifacts)),
    }
