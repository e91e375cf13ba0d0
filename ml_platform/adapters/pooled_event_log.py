"""The batching sqlite event log with its databases kept open: what `ml-platform replay` records its runs in.

Written for Dagster 1.13.27: it overrides `SqliteEventLogStorage._connect` (a new engine without a pool for every
statement: dagster._core.storage.event_log.sqlite.sqlite_event_log), `wipe` and `dispose`; re-check them on another
version (ml_platform_tests/adapters/test_dagster_version.py).

Dagster's sqlite event log opens the run's database (and the index) anew for every event it stores, and closing the
last connection of a database in WAL mode checkpoints and syncs it: a replayed day of two runs stored about 300
events, and opening, committing and closing cost about 40% of its wall time. Here the index and the few run
databases in use keep one open connection each (`MAX_OPEN_RUNS`, the oldest closed first), under the same lock as
Dagster's, and each is opened with `synchronous=NORMAL`: in WAL mode a commit is then synced at the next checkpoint
instead of at once. The database stays consistent whatever happens; a power loss (not a killed process) may lose the
last commits, which a replay writes again when it is run again. The rows and tables are Dagster's own: the UI and
any other process read them as usual.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as db
import yaml
from sqlalchemy.engine import Connection, Engine

from dagster._core.storage.event_log.sqlite.sqlite_event_log import INDEX_SHARD_NAME
from dagster._core.storage.sql import create_engine
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS
from dagster._serdes import ConfigurableClassData

from ml_platform.adapters.event_log import BatchingSqliteEventLogStorage, events_folder

MAX_OPEN_RUNS = 4  # run databases kept open besides the index: a replayed moment writes one run at a time
CONFIG_FILE = "dagster.yaml"


def pooled_event_log(home: Path) -> dict[str, Any]:
    """The instance override that keeps the event log's databases open, when the folder's dagster.yaml configures
    the batching sqlite event log (its folder kept, else the instance's); nothing for any other event log."""
    path = Path(home) / CONFIG_FILE
    settings = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}) if path.is_file() else {}
    event_log = settings.get("event_log_storage") or {}
    if (event_log.get("module"), event_log.get("class")) != (BatchingSqliteEventLogStorage.__module__,
                                                             BatchingSqliteEventLogStorage.__name__):
        return {}
    config = {"base_dir": events_folder(str(home)), **(event_log.get("config") or {})}
    return {"event_log_storage": {"module": __name__, "class": PooledSqliteEventLogStorage.__name__,
                                  "config": config}}


class PooledSqliteEventLogStorage(BatchingSqliteEventLogStorage):
    """The batching sqlite event log, each database it writes kept open (the index and the last few runs')."""

    def __init__(self, base_dir: str | None = None, inst_data: ConfigurableClassData | None = None):
        self._engines: OrderedDict[str, Engine] = OrderedDict()  # used by the parent's __init__ already
        super().__init__(base_dir, inst_data)

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData | None,
                          config_value: Mapping[str, Any]) -> PooledSqliteEventLogStorage:
        return cls(base_dir=config_value.get("base_dir"), inst_data=inst_data)

    def _engine(self, shard: str) -> Engine:
        """The shard's open engine (one connection, kept), created and initialised on first use."""
        engine = self._engines.get(shard)
        if engine is not None:
            self._engines.move_to_end(shard)
            return engine
        # one connection, returned to the pool open after each use (Dagster's lock lets one use it at a time)
        engine = create_engine(self.conn_string_for_shard(shard), poolclass=db.pool.QueuePool, pool_size=1,
                               max_overflow=2, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS,
                                                             "check_same_thread": False})
        db.event.listen(engine, "connect", _synchronous_normal)
        if shard not in self._initialized_dbs:
            self._initdb(engine)
            self._initialized_dbs.add(shard)
        self._engines[shard] = engine
        runs = [name for name in self._engines if name != INDEX_SHARD_NAME]
        for name in runs[:max(0, len(runs) - MAX_OPEN_RUNS)]:
            self._engines.pop(name).dispose()
        return engine

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        with self._db_lock:
            with self._engine(shard).connect() as connection:
                with connection.begin():
                    yield connection

    def close_databases(self) -> None:
        """Close every database kept open (each closed last checkpoints its write-ahead log)."""
        with self._db_lock:
            while self._engines:
                self._engines.popitem(last=False)[1].dispose()

    def wipe(self) -> None:
        self.close_databases()  # the run databases' files are deleted
        super().wipe()

    def dispose(self) -> None:
        self.close_databases()
        super().dispose()


def _synchronous_normal(connection, _record) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
