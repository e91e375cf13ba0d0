"""Dagster's sqlite run and schedule storages, opened without reading Alembic's migration scripts again.

Written for Dagster 1.13.27: subclasses of `SqliteRunStorage` and `SqliteScheduleStorage`
(dagster._core.storage.runs.sqlite.sqlite_run_storage, dagster._core.storage.schedules.sqlite.sqlite_schedule_storage)
overriding `from_config_value` and `from_local`, whose Dagster versions do nothing to a database stamped with an
Alembic revision (and, for runs, holding its instance_info table) but construct the storage; re-check both on
another version (ml_platform_tests/adapters/test_dagster_version.py).

Every `DagsterInstance` built from a reference opens its storages with `from_local`, and Dagster's reads every
Alembic migration script to learn the head revision before it looks at the database: about 40 ms a storage. A
schedule or sensor tick whose function reads its context's resources or instance builds such an instance, so a
replayed day (two moments, each ticking the schedules and the retraining sensor) paid about 0.17 s for it. These
read the database's stamp with one query instead, and construct the storage as Dagster would; a database without a
stamp (a new one, or one older than Dagster's stamping) or that cannot be read goes Dagster's way, which creates,
stamps or reports it.
"""

from __future__ import annotations

import os
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any, Mapping

import yaml

from dagster._core.storage.runs import SqliteRunStorage
from dagster._core.storage.schedules import SqliteScheduleStorage
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS, create_db_conn_string
from dagster._serdes import ConfigurableClassData

CONFIG_FILE = "dagster.yaml"


def is_stamped(path: str, *tables: str) -> bool:
    """True when the sqlite database at path has one Alembic revision stamped and holds these tables; False when it
    has not (or does not exist, or cannot be read: opening it Dagster's way then says why)."""
    if not os.path.isfile(path):
        return False
    try:
        with closing(sqlite3.connect(path, timeout=SQLITE_BUSY_TIMEOUT_SECONDS)) as connection:
            names = {name for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if "alembic_version" not in names or not set(tables) <= names:
                return False
            stamps = connection.execute("SELECT version_num FROM alembic_version").fetchall()
    except sqlite3.Error:
        return False
    return len(stamps) == 1 and bool(stamps[0][0])


class _OpenedByStamp:
    """`from_config_value` and `from_local` of a sqlite storage whose database (`_database` in base_dir, holding
    `_tables`) is opened by reading its stamp when it has one, and Dagster's way (the next class's) otherwise."""

    _database: str
    _tables: tuple[str, ...]

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData | None, config_value: Mapping[str, Any]):
        return cls.from_local(inst_data=inst_data, **config_value)

    @classmethod
    def from_local(cls, base_dir: str, inst_data: ConfigurableClassData | None = None):
        if is_stamped(os.path.join(base_dir, f"{cls._database}.db"), *cls._tables):
            return cls(create_db_conn_string(base_dir, cls._database), inst_data)
        return super().from_local(base_dir, inst_data)


class StampedSqliteRunStorage(_OpenedByStamp, SqliteRunStorage):
    """SqliteRunStorage whose opening of a stamped database reads its stamp, not Alembic's scripts."""

    _database, _tables = "runs", ("runs", "instance_info")


class StampedSqliteScheduleStorage(_OpenedByStamp, SqliteScheduleStorage):
    """SqliteScheduleStorage whose opening of a stamped database reads its stamp, not Alembic's scripts."""

    _database, _tables = "schedules", ("jobs", "job_ticks")


def stamped_storages(home: Path) -> dict[str, Any]:
    """The instance overrides that open the folder's run and schedule databases with these storages, where they
    are the ones Dagster would use (the folder's dagster.yaml names no storage of its own); else nothing."""
    path = Path(home) / CONFIG_FILE
    settings = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}) if path.is_file() else {}
    if any(settings.get(key) for key in ("storage", "run_storage", "schedule_storage")):
        return {}
    return {"run_storage": {"module": __name__, "class": StampedSqliteRunStorage.__name__,
                            "config": {"base_dir": os.path.join(str(home), "history", "")}},
            "schedule_storage": {"module": __name__, "class": StampedSqliteScheduleStorage.__name__,
                                 "config": {"base_dir": os.path.join(str(home), "schedules")}}}
