"""Where a project's specs, data and Dagster instance live."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ml_platform.storage.resources import StoragePaths


@dataclass(frozen=True)
class Project:
    """A project folder: `model_specs/` with its specs, `.ml_platform/` with its data, `.dagster_home/`."""

    root: Path
    data_dir: Path
    dagster_home: Path

    @property
    def specs_dir(self) -> Path:
        """The folder of the project's spec files."""
        return self.root / "model_specs"

    @property
    def storage(self) -> StoragePaths:
        """Where the project keeps its warehouse and artifacts."""
        return StoragePaths(self.data_dir)

    @classmethod
    def at(cls, root: Path, data_dir: Path | None = None, dagster_home: Path | None = None) -> "Project":
        """A project rooted at a folder, with its default data and instance folders inside it."""
        root = Path(root).resolve()
        return cls(root, Path(data_dir or root / ".ml_platform").resolve(),
                   Path(dagster_home or root / ".dagster_home").resolve())

    @classmethod
    def from_environment(cls, root: Path | None = None) -> "Project":
        """The project at root (default: ML_PLATFORM_PROJECT, else the working folder), with its data and instance
        folders moved by ML_PLATFORM_DATA and DAGSTER_HOME when they are set."""
        root = Path(root or os.environ.get("ML_PLATFORM_PROJECT") or Path.cwd())
        data = os.environ.get("ML_PLATFORM_DATA")
        home = os.environ.get("DAGSTER_HOME")
        return cls.at(root, Path(data) if data else None, Path(home) if home else None)


MODELS_VARIABLE = "ML_PLATFORM_MODELS"  # a comma list: the definitions hold only these models (a replay of some)


def models_from_environment() -> list[str] | None:
    """The models ML_PLATFORM_MODELS names (a comma list), or None when it is unset or empty: every model."""
    names = [name.strip() for name in os.environ.get(MODELS_VARIABLE, "").split(",") if name.strip()]
    return names or None
