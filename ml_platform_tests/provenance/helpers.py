"""Reading the shared project's registry and predictions in tests."""

from __future__ import annotations

import hashlib
from pathlib import Path

from ml_platform.project import Project
from ml_platform.records.base import Record
from ml_platform.storage import registry
from ml_platform.storage.warehouse import open_warehouse

# the shared history's features (conftest.py builds it with them)
SCHEDULE_FEATURES = ["departure_hour", "day_of_week", "carrier_code", "origin_airport"]
WEAK_FEATURES = ["distance_miles"]


def fetch(project: Project, name: str, **where) -> Record:
    """One registry record: the last of the named registry (specs, snapshots, models, ...) matching all conditions."""
    with open_warehouse(project.storage.warehouse) as connection:
        record = getattr(registry, name).find(connection, **where)
    assert record is not None, (name, where)
    return record


def query(project: Project, sql: str, *parameters) -> list[tuple]:
    """Rows of a query on the project's warehouse."""
    with open_warehouse(project.storage.warehouse) as connection:
        return connection.execute(sql, list(parameters)).fetchall()


def folder_hashes(folder: Path) -> dict[str, str]:
    """Relative path -> SHA-256 of every file under a folder."""
    return {path.relative_to(folder).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(folder.rglob("*")) if path.is_file()}
