"""A Dagster instance opened from its folder, without reading or setting DAGSTER_HOME.

Written for Dagster 1.13.27: `InstanceRef.from_dir` (dagster._core.instance.ref) with `overrides` merged shallowly
over the folder's dagster.yaml (a top-level key replaces the file's). Re-check on another version
(ml_platform_tests/adapters/test_dagster_version.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import dagster as dg
import yaml
from dagster._core.instance.ref import InstanceRef

from ml_platform.adapters.event_log import BatchingSqliteEventLogStorage, events_folder

CONFIG_FILE = "dagster.yaml"


def open_instance(home: Path, overrides: Mapping[str, Any] | None = None) -> dg.DagsterInstance:
    """The instance whose folder is home (configured by its dagster.yaml, then overrides)."""
    settings = {**_event_log_folder(home), **(overrides or {})}
    return dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home), overrides=settings))


def _event_log_folder(home: Path) -> dict[str, Any]:
    """The batching event log's entry with its folder set, when dagster.yaml configures it without one.

    Its folder would otherwise come from DAGSTER_HOME, which names another instance, or none, in this process.
    """
    path = Path(home) / CONFIG_FILE
    settings = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}) if path.is_file() else {}
    event_log = settings.get("event_log_storage") or {}
    ours = (event_log.get("module"), event_log.get("class")) == (BatchingSqliteEventLogStorage.__module__,
                                                                 BatchingSqliteEventLogStorage.__name__)
    config = event_log.get("config") or {}
    if not ours or config.get("base_dir"):
        return {}
    return {"event_log_storage": {**event_log, "config": {**config, "base_dir": events_folder(str(home))}}}
