"""The registries in PostgreSQL (the cluster configuration, docs/scale-out.md): `ML_PLATFORM_REGISTRY_URL`.

With the variable set in a process's environment, the append-only registries (specs, snapshots, models,
evaluations, task evaluations, promotions) are read and written in the schema `registry` of that PostgreSQL
database instead of the warehouse file, so that processes on many machines record training runs and promotions in
one place, each write in its own transaction:
- the same tables, columns and primary keys as the warehouse's (types translated; JSON kept as the same sorted-key
  text), so a second write of an identity fails with the same RegistryConflictError and the stored row is kept;
- a promotion's id is taken and its row appended in one transaction holding the promotions table's lock, so
  promoters on several machines never take the same id;
- tables are created once, under an advisory lock (two processes starting together do not race on CREATE).
The version index of sources stays in the warehouse file with the sources; Delta feature tables keep theirs beside
them in the object store.
"""

from __future__ import annotations

import functools
import re
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator

from ml_platform.errors import PlatformError
from ml_platform.names import REGISTRY_VARIABLE

_TYPES = {"VARCHAR": "TEXT", "DOUBLE": "DOUBLE PRECISION", "JSON": "TEXT"}  # the rest are the same in both
_CREATE_LOCK = 7_302_180_001  # the advisory lock id under which the registry's tables are created


class RegistryStoreError(PlatformError, ValueError):
    """The registries' PostgreSQL database is not usable: a bad URL, a missing driver, a server that refuses."""


def postgres_columns(duckdb_columns: str) -> str:
    """A registry table's DuckDB column definitions in PostgreSQL's types."""
    return re.sub(r"\b(VARCHAR|DOUBLE|JSON)\b", lambda found: _TYPES[found.group(1)], duckdb_columns)


def _dsn(url: str) -> str:
    """libpq's URL from the instance's SQLAlchemy form (`postgresql+psycopg2://`) or a plain `postgresql://`."""
    plain = re.sub(r"^postgres(ql)?(\+psycopg2)?://", "postgresql://", url)
    if not plain.startswith("postgresql://"):
        raise RegistryStoreError(f"{REGISTRY_VARIABLE}={url!r} is not a PostgreSQL URL: allowed are "
                                 f"postgresql://USER[:PASSWORD]@HOST:PORT/DATABASE (or postgresql+psycopg2://...)")
    return plain


@dataclass
class PostgresRegistry:
    """One process's connection to the registries' database (autocommit; a lock serializes its threads)."""

    url: str
    tables: dict[str, str]

    def __post_init__(self) -> None:
        try:
            import psycopg2
        except ImportError as error:
            raise RegistryStoreError(f"{REGISTRY_VARIABLE} names a PostgreSQL database, but psycopg2 is not "
                                     f"installed: install the cluster extra (pip install -e '.[cluster]')") from error
        self._errors = psycopg2
        try:
            self._connection = psycopg2.connect(_dsn(self.url), connect_timeout=10)
        except psycopg2.OperationalError as error:
            raise RegistryStoreError(f"{REGISTRY_VARIABLE}: cannot connect to the registries' database: "
                                     f"{str(error).strip()}") from None
        self._connection.autocommit = True
        self._lock = threading.Lock()
        self._create()

    @contextmanager
    def _transaction(self) -> Iterator[Any]:
        """A cursor in one transaction (this process's threads wait for it): committed when the block ends, rolled
        back when it raises."""
        with self._lock:
            self._connection.autocommit = False
            try:
                with self._connection.cursor() as cursor:
                    yield cursor
                self._connection.commit()
            except BaseException:
                self._connection.rollback()
                raise
            finally:
                self._connection.autocommit = True

    def _create(self) -> None:
        with self._transaction() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", (_CREATE_LOCK,))
            cursor.execute("CREATE SCHEMA IF NOT EXISTS registry")
            for name, columns in self.tables.items():
                cursor.execute(f"CREATE TABLE IF NOT EXISTS registry.{name} ({postgres_columns(columns)})")

    def insert(self, name: str, row: dict[str, Any], conflict: Callable[[], str]) -> None:
        """Append one row; `conflict()` says why when its identity is already stored (RegistryConflictError)."""
        from ml_platform.storage.registry import RegistryConflictError

        columns = ", ".join(row)
        marks = ", ".join("%s" for _ in row)
        values = [list(value) if isinstance(value, tuple) else value for value in row.values()]
        try:
            with self._lock, self._connection.cursor() as cursor:
                cursor.execute(f"INSERT INTO registry.{name} ({columns}) VALUES ({marks})", values)
        except self._errors.errors.UniqueViolation:
            raise RegistryConflictError(conflict()) from None

    def rows(self, name: str, clause: str, order: str, values: list[Any]) -> tuple[list[str], list[tuple]]:
        """(column names, rows) of `SELECT * FROM registry.<name> WHERE clause ORDER BY ...` (`?` placeholders)."""
        with self._lock, self._connection.cursor() as cursor:
            cursor.execute(f"SELECT * FROM registry.{name} WHERE {clause.replace('?', '%s')}{order}", values)
            return [description[0] for description in cursor.description], cursor.fetchall()

    def scalar_rows(self, sql: str) -> list[tuple]:
        """The rows of a read-only query over the registry's tables."""
        with self._lock, self._connection.cursor() as cursor:
            cursor.execute(sql)
            return cursor.fetchall()

    def append_numbered(self, name: str, id_column: str, build: Callable[[int], dict[str, Any]],
                        conflict: Callable[[dict], str]) -> dict[str, Any]:
        """Take the next id and append the row `build(id)` in one transaction that holds the table's lock."""
        from ml_platform.storage.registry import RegistryConflictError

        row: dict[str, Any] = {}
        try:
            with self._transaction() as cursor:
                cursor.execute(f"LOCK TABLE registry.{name} IN SHARE ROW EXCLUSIVE MODE")
                cursor.execute(f"SELECT coalesce(max({id_column}), 0) + 1 FROM registry.{name}")
                row = build(cursor.fetchone()[0])
                values = [list(value) if isinstance(value, tuple) else value for value in row.values()]
                cursor.execute(f"INSERT INTO registry.{name} ({', '.join(row)}) "
                               f"VALUES ({', '.join('%s' for _ in row)})", values)
        except self._errors.errors.UniqueViolation:
            raise RegistryConflictError(conflict(row)) from None
        return row


@functools.lru_cache(maxsize=4)
def _registry(url: str, tables: tuple[tuple[str, str], ...]) -> PostgresRegistry:
    return PostgresRegistry(url, dict(tables))


def postgres_registry(tables: dict[str, str]) -> PostgresRegistry | None:
    """The registries' PostgreSQL database this process's environment names (one connection per process), or None
    when the registries are in the warehouse file (the default)."""
    import os

    url = os.environ.get(REGISTRY_VARIABLE, "").strip()
    return _registry(url, tuple(tables.items())) if url else None
