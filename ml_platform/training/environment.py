"""The software a model was trained with, recorded in its model card and compared when reproducing it."""

from __future__ import annotations

import platform
import sys
from importlib import metadata

from ml_platform.code_version import code_version

# Distributions whose versions can change what training produces, by their names on the package index.
TRAINING_LIBRARIES = ("numpy", "pandas", "scikit-learn", "lightgbm", "duckdb")


def library_versions() -> dict[str, str]:
    """Installed versions of the libraries training depends on (read from metadata, nothing is imported)."""
    versions = {}
    for name in TRAINING_LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def training_environment() -> dict[str, object]:
    """This process's training environment, as the model card records it."""
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "library_versions": library_versions(),
        "code_version": code_version(),
    }


def environment_differences(recorded: dict, current: dict) -> list[tuple[str, str, str]]:
    """(what, recorded, now) for each part of the environment that differs; 'not recorded' when the card lacks it."""
    recorded_libraries = recorded.get("library_versions") or {}
    current_libraries = current.get("library_versions") or {}
    pairs = [("python", recorded.get("python"), current.get("python")),
             ("platform", recorded.get("platform"), current.get("platform")),
             ("code_version", recorded.get("code_version"), current.get("code_version"))]
    pairs += [(name, recorded_libraries.get(name), current_libraries.get(name))
              for name in sorted(set(recorded_libraries) | set(current_libraries) | set(TRAINING_LIBRARIES))]
    return [(what, str(then) if then is not None else "not recorded", str(now) if now is not None else "not recorded")
            for what, then, now in pairs if then != now]
