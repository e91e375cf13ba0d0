"""Reading the shared project's registry and predictions in tests."""

from __future__ import annotations

import hashlib
from pathlib import Path

from ml_platform.project import Project
from ml_platform.storage import registry
from ml_platform.storage.warehouse import open_warehouse


def fetch(project: Project, name: str, **where) -> dict:
    """One registry row."""
    with open_warehouse(project.storage.warehouse) as connection:
        row = registry.fetch_one(connection, name, **where)
    assert row is not None, (name, where)
    return row


def query(project: Project, sql: str, *parameters) -> list[tuple]:
    """Rows of a query on the project's warehouse."""
    with open_warehouse(project.storage.warehouse) as connection:
        return connection.execute(sql, list(parameters)).fetchall()


def folder_hashes(folder: Path) -> dict[str, str]:
    """Relative path -> SHA-256 of every file under a folder."""
    return {path.relative_to(folder).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(folder.rglob("*")) if path.is_file()}
