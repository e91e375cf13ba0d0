"""Dagster's sqlite event log, writing each batch of events in one transaction per database.

Written for Dagster 1.13.27: it subclasses `SqliteEventLogStorage` and writes its tables (`SqlEventLogStorageTable`,
`AssetCheckExecutionsTable`) through private methods (`_event_to_row`, `_store_asset_event_tags`,
`_store_asset_event`, `_event_insert_timestamp`), and overrides `_initdb` (called by `_connect` with the engine of
a database not yet initialised in this process); re-check each against another version
(ml_platform_tests/adapters/test_dagster_version.py).

A run over a range of daily partitions records two events per asset and day: the run plans each partition, then
its step reports each partition materialized. Dagster hands these to the event log in batches (one per run plan,
one per step output) when `DAGSTER_EVENT_BATCH_SIZE` is set, but its sqlite storage writes a batch one event at a
time: a new engine, a compiled INSERT and a commit per event, in the run's database and again in the index. That
cost 28 ms per asset partition, most of the demo's daily run and 36 minutes of a 30-year backfill.

`BatchingSqliteEventLogStorage` writes the same rows to the same tables: a batch's events go to the run's
database in one INSERT, and to the index in one transaction with their asset tags, their asset-check
executions and the asset-key rows (each asset key written once per event type, by the batch's last event of
that type, which leaves the row as writing every event in turn would). Events of any other kind, and batches
mixing runs, go through Dagster's own per-event path. A batch whose index write fails is taken back out of the
run's database before the error reaches Dagster, which then writes the events one at a time: each is recorded once.

Every run has a database of its own, and Dagster initialises each new one by reading every Alembic migration
script to learn the head revision, then creating the tables and stamping it: about 70 ms a run, a twentieth of a
replayed day. Here a new run's database is a byte copy of one that Dagster initialised once in this process (the
same tables, indexes, write-ahead-log mode and Alembic stamp), put in place only if no file of that name exists;
a database that exists is left as it is when it is stamped with an Alembic revision (Dagster's initialisation
would leave it so too, after reading the scripts), and initialised Dagster's way when it is not.
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import dagster as dg
import sqlalchemy as db
from dagster._core.events import DagsterEventType
from dagster._core.events.log import EventLogEntry
from dagster._core.instance.ref import _event_logs_directory
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus
from dagster._core.storage.event_log import SqliteEventLogStorage
from dagster._core.storage.event_log.sqlite.sqlite_event_log import INDEX_SHARD_NAME
from dagster._core.storage.event_log.schema import AssetCheckExecutionsTable, SqlEventLogStorageTable
from dagster._core.storage.sql import create_engine
from dagster._core.storage.sqlite import create_db_conn_string
from dagster._serdes import ConfigurableClassData
from dagster_shared.serdes import serialize_value

from ml_platform.adapters.stamped_storage import is_stamped

# Events written in bulk; each appears in Dagster's batches (planned partitions, a step's partition results).
BATCHED = frozenset({
    DagsterEventType.ASSET_MATERIALIZATION,
    DagsterEventType.ASSET_OBSERVATION,
    DagsterEventType.ASSET_MATERIALIZATION_PLANNED,
    DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED,
})
# Dagster sends events in batches only while this is set; a run's planned partitions and a step's partition
# results are each one batch when they number fewer.
BATCH_SIZE = "10000"


def events_folder(home: str) -> str:
    """The folder of an instance's run databases and event index: `<home>/history/runs/`."""
    return _event_logs_directory(home)


class BatchingSqliteEventLogStorage(SqliteEventLogStorage):
    """Sqlite event log whose batches cost one transaction per database (in config.base_dir, else DAGSTER_HOME's)."""

    def __init__(self, base_dir: str | None = None, inst_data: ConfigurableClassData | None = None):
        if base_dir is None:
            home = os.environ.get("DAGSTER_HOME")
            if not home:
                raise dg.DagsterInvariantViolationError(
                    f"event_log_storage {__name__}.{type(self).__name__}: "
                    "config.base_dir is not set and DAGSTER_HOME is not set; set either to the instance folder")
            base_dir = events_folder(home)
        super().__init__(base_dir, inst_data)
        # Read by Dagster at every event; an operator's own setting wins.
        os.environ.setdefault("DAGSTER_EVENT_BATCH_SIZE", BATCH_SIZE)

    @classmethod
    def config_type(cls) -> dict:
        return {"base_dir": dg.Field(dg.StringSource, is_required=False,
                                     description="Folder of the run databases (default: DAGSTER_HOME/history/runs)")}

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData | None,
                          config_value: Mapping[str, Any]) -> BatchingSqliteEventLogStorage:
        return cls(base_dir=config_value.get("base_dir"), inst_data=inst_data)

    def _initdb(self, engine, for_index_shard: bool = False) -> None:
        """A new run's database copied from a fresh one, a stamped one left as it is (see the module's docstring);
        the rest as Dagster does."""
        initialise = super()._initdb
        path = engine.url.database
        if path and is_stamped(path):
            return  # Dagster's initialisation leaves a stamped database as it is (after reading Alembic's scripts)
        if for_index_shard or not path or Path(path).stem == INDEX_SHARD_NAME or \
                not _place_fresh_database(path, initialise):
            initialise(engine, for_index_shard=for_index_shard)

    def store_event_batch(self, events: Sequence[EventLogEntry]) -> None:
        """Write a batch of one run's planned and materialized partitions in one transaction per database."""
        if len({event.run_id for event in events}) != 1 or not all(
                event.is_dagster_event and event.dagster_event_type in BATCHED for event in events):
            super().store_event_batch(events)
            return
        rows = [self._event_to_row(event) for event in events]
        with self.run_connection(events[0].run_id) as connection:
            run_ids = self._insert(connection, rows)
        try:
            self._store_index_batch(events, rows)
        except Exception:
            # Dagster answers a failed batch by writing its events one at a time: take the batch back out of the
            # run's database first, so that each event is recorded once.
            with self.run_connection(events[0].run_id) as connection:
                connection.execute(SqlEventLogStorageTable.delete().where(SqlEventLogStorageTable.c.id.in_(run_ids)))
            raise

    @staticmethod
    def _insert(connection, rows: list[dict]) -> list[int]:
        """Insert event rows in one statement; their ids, in order."""
        result = connection.execute(
            SqlEventLogStorageTable.insert().returning(SqlEventLogStorageTable.c.id, sort_by_parameter_order=True),
            rows)
        ids = [row[0] for row in result.fetchall()]
        if len(ids) != len(rows) or any(event_id is None for event_id in ids):
            raise dg.DagsterInvariantViolationError(
                f"the event log returned {len(ids)} ids for a batch of {len(rows)} events")
        return ids

    def _store_index_batch(self, events: Sequence[EventLogEntry], rows: list[dict]) -> None:
        """The index's copy of the batch, with its asset tags, asset-key rows and planned check executions."""
        with self.index_transaction() as connection:
            event_ids = self._insert(connection, rows)
            asset_events = [(event, event_id) for event, event_id in zip(events, event_ids)
                            if event.dagster_event_type != DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED]
            if asset_events:
                self._store_asset_event_tags(connection, [event for event, _ in asset_events],
                                             [event_id for _, event_id in asset_events])
            for event, event_id in _last_of_each_kind(asset_events):
                self._store_asset_event(connection, event, event_id)
            checks = [(event, event_id) for event, event_id in zip(events, event_ids)
                      if event.dagster_event_type == DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED]
            if checks:
                connection.execute(AssetCheckExecutionsTable.insert(), self._planned_check_rows(checks))

    def _planned_check_rows(self, checks: list[tuple[EventLogEntry, int]]) -> list[dict]:
        """Rows of asset_check_executions for planned checks, as Dagster writes them one event at a time."""
        rows = []
        for event, event_id in checks:
            planned = event.get_dagster_event().event_specific_data
            partitions = planned.partitions_subset.get_partition_keys() if planned.partitions_subset else [None]
            serialized, timestamp = serialize_value(event), self._event_insert_timestamp(event)
            rows.extend({"asset_key": planned.asset_key.to_string(), "check_name": planned.check_name,
                         "partition": partition, "run_id": event.run_id,
                         "execution_status": AssetCheckExecutionRecordStatus.PLANNED.value,
                         "evaluation_event": serialized, "evaluation_event_timestamp": timestamp,
                         "evaluation_event_storage_id": event_id} for partition in partitions)
        return rows


_fresh: dict[str, bytes] = {}  # "run": an empty run database as Dagster initialised it, in this process
_fresh_lock = threading.Lock()


def _fresh_database(initialise: Callable[[Any], None]) -> bytes:
    """The bytes of an empty run database that `initialise` (Dagster's `_initdb`) set up, made once per process."""
    with _fresh_lock:
        if "run" not in _fresh:
            with tempfile.TemporaryDirectory(prefix="ml-platform-run-database-") as folder:
                engine = create_engine(create_db_conn_string(folder, "run"), poolclass=db.pool.NullPool)
                try:
                    initialise(engine)
                finally:
                    engine.dispose()
                path = Path(folder) / "run.db"
                left = [name for name in ("run.db-wal", "run.db-journal") if (Path(folder) / name).exists()]
                if left:  # every connection closed: the log must have been checkpointed into the file
                    raise dg.DagsterInvariantViolationError(
                        f"an initialised run database kept {', '.join(left)} after its connections closed")
                _fresh["run"] = path.read_bytes()
        return _fresh["run"]


def _place_fresh_database(path: str, initialise: Callable[[Any], None]) -> bool:
    """Put a fresh run database at path, unless a file of that name (or its log) exists or appears meanwhile: True
    when it was put there, False to leave it to Dagster (which then opens what is there)."""
    if any(os.path.exists(path + suffix) for suffix in ("", "-wal", "-shm", "-journal")):
        return False
    content = _fresh_database(initialise)
    incoming = f"{path}.{os.getpid()}-{threading.get_ident()}.incoming"
    try:
        with open(incoming, "wb") as output:
            output.write(content)
            output.flush()
            os.fsync(output.fileno())
        os.link(incoming, path)  # fails if the name exists: another process's database is never replaced
    except FileExistsError:
        return False
    finally:
        Path(incoming).unlink(missing_ok=True)
    return True


def _last_of_each_kind(events: list[tuple[EventLogEntry, int]]) -> list[tuple[EventLogEntry, int]]:
    """Per asset key and event type the last event, in batch order.

    An asset-key row's columns written by an event depend only on the event's type, so writing these leaves the
    row exactly as writing every event in turn would.
    """
    last: dict[tuple[str, DagsterEventType], int] = {}
    for position, (event, _) in enumerate(events):
        last[(event.get_dagster_event().asset_key.to_string(), event.dagster_event_type)] = position
    return [events[position] for position in sorted(last.values())]
