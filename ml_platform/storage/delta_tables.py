"""Tables kept as Delta Lake tables (delta-rs: no JVM) on an S3-compatible object store or in a local folder.

The cluster configuration keeps its feature tables, its sources (daily and reference) and its entity populations
here instead of in the embedded DuckDB file (docs/scale-out.md), each under the one root the environment names
(`features/<name>`, `sources/<name>`, `populations/<name>`, and their version indexes under `versions/`): every worker
writes its partition (a feature set's), its range of days (a daily source's, a population's partitions) or the whole
table (a reference source's) as one Delta transaction, so workers
never wait for one file's lock, and a worker killed before its commit leaves no trace in the table (its data files,
if any, are referenced by no version).
Concurrent commits to disjoint partitions of one table are resolved by delta-rs itself (optimistic concurrency,
retried); on S3 the commit is made exclusive by a conditional put, which the store must support (AWS S3, MinIO and
moto do).

The store is named by the environment (FEATURE_TABLES_VARIABLE, and OBJECT_STORE_ENDPOINT_VARIABLE for a store
that is not AWS's), read when a step runs, never at import or load.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import threading
import uuid
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Callable, Iterator, Mapping

import duckdb

import pyarrow as pa

from ml_platform.errors import PlatformError
from ml_platform.records.versions import PartitionVersion
from ml_platform.names import (FEATURE_TABLES_VARIABLE, IDENTIFIER, OBJECT_STORE_ENDPOINT_VARIABLE,
                               delta_feature_path, delta_index_path, delta_population_path,
                               delta_population_versions_path, delta_source_path, delta_source_versions_path,
                               delta_table_path, delta_versions_path, feature_asset, latest_view, monitoring_asset,
                               population_asset, quote, registry_table, source_asset, stage_asset, table, table_label)

VERSIONS_TABLE = registry_table("partition_versions")
COMMIT_RETRIES = 100  # concurrent commits to one table (one per worker) each retry at most this often
CREATE_ATTEMPTS = 3  # a write that lost the race to create its table is done again, at most this often in all
# a table created here writes a checkpoint of its log every this many commits (delta-rs's default is 100): a reader
# or writer replays the log from the last checkpoint, one object-store read per commit, and a table taking a
# commit per partition would otherwise replay up to 99 of them on every open
CHECKPOINT_INTERVAL = 10
WRITE_MARK = "write"  # the commit metadata key marking a write that found no table, to find its version after
# how delta-rs (1.x) words the conflicts a table's creation causes to writers that started before it
CREATION_CONFLICTS = ("Metadata changed since last commit", "Protocol changed since last commit")
METADATA_PREFIX = "ml_platform."  # keys of the platform's commit metadata in the Delta log


# a process keeps the rows of the small Delta tables it reads again and again (DeltaStore.readable): tables whose
# data files total at most this, and at most CACHE_LIMIT_BYTES of rows in all, the least recently read dropped first
CACHED_TABLE_BYTES = 256 * 2**20
CACHE_LIMIT_BYTES = 2 * 2**30
_CACHED_TABLES: OrderedDict[tuple[str, int], pa.Table] = OrderedDict()
_CACHE_LOCK = threading.Lock()


class DeltaStoreError(PlatformError, ValueError):
    """The Delta tables' location is not usable: a bad URI or endpoint in the environment, or a warehouse that
    holds one of its tables as a table of its own."""


@dataclass(frozen=True)
class DeltaStore:
    """Where Delta tables live: `s3://bucket/prefix` (with an optional endpoint) or an absolute local folder."""

    root: str
    endpoint: str | None = None

    def __post_init__(self) -> None:
        if self.root.startswith("s3://"):
            if len(self.root) <= len("s3://") or self.root[len("s3://"):].startswith("/"):
                raise DeltaStoreError(f"{FEATURE_TABLES_VARIABLE}={self.root!r} names no bucket: "
                                      f"allowed are s3://BUCKET[/PREFIX] or an absolute local folder")
        elif not os.path.isabs(self.root.removeprefix("file://")):
            raise DeltaStoreError(f"{FEATURE_TABLES_VARIABLE}={self.root!r} is neither s3://BUCKET[/PREFIX] nor an "
                                  f"absolute local folder (file:///path or /path)")
        if self.endpoint is not None and not self.endpoint.startswith(("http://", "https://")):
            raise DeltaStoreError(f"{OBJECT_STORE_ENDPOINT_VARIABLE}={self.endpoint!r} is not an http:// or "
                                  f"https:// URL")

    @property
    def is_object_store(self) -> bool:
        """True for an S3-compatible store, False for a local folder."""
        return self.root.startswith("s3://")

    def uri(self, path: str) -> str:
        """The URI of the table at `path` under the root."""
        return f"{self.root.rstrip('/')}/{path}"

    def storage_options(self) -> dict[str, str]:
        """delta-rs's options for this store: its endpoint, and the exclusive commits S3 needs."""
        if not self.is_object_store:
            return {}
        options = {"conditional_put": "etag", "AWS_REGION": os.environ.get("AWS_REGION", "us-east-1")}
        if self.endpoint:
            options["AWS_ENDPOINT_URL"] = self.endpoint
            options["AWS_ALLOW_HTTP"] = "true" if self.endpoint.startswith("http://") else "false"
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
            if os.environ.get(name):
                options[name] = os.environ[name]
        return options

    def exists(self, path: str) -> bool:
        """True when a Delta table is at `path`."""
        from deltalake import DeltaTable

        return DeltaTable.is_deltatable(self.uri(path), storage_options=self.storage_options())

    def table(self, path: str):
        """The Delta table at `path` (its latest version)."""
        from deltalake import DeltaTable

        return DeltaTable(self.uri(path), storage_options=self.storage_options())

    def version(self, path: str) -> int | None:
        """The latest version of the table at `path`, or None when there is no table."""
        return self.table(path).version() if self.exists(path) else None

    def dataset(self, path: str):
        """The table's latest version as an Arrow dataset (read lazily: DuckDB pushes filters into it)."""
        return self.table(path).to_pyarrow_dataset()

    def readable(self, path: str):
        """The table's latest version for a computation that reads it again and again (every feature partition a
        worker computes reads its sources): an Arrow table kept in this process, read from the store once per table
        version, when its data files total at most CACHED_TABLE_BYTES; otherwise its Arrow dataset. A committed
        version never changes, so the kept rows are exactly the store's; a new commit is a new version, read
        anew."""
        delta = self.table(path)
        key = (self.uri(path), delta.version())
        with _CACHE_LOCK:
            if key in _CACHED_TABLES:
                _CACHED_TABLES.move_to_end(key)
                return _CACHED_TABLES[key]
        sizes = delta.get_add_actions(flatten=True).column("size_bytes").to_pylist()
        if sum(sizes) > CACHED_TABLE_BYTES:
            return delta.to_pyarrow_dataset()
        rows = delta.to_pyarrow_dataset().to_table()
        with _CACHE_LOCK:
            _CACHED_TABLES[key] = rows
            while sum(kept.nbytes for kept in _CACHED_TABLES.values()) > CACHE_LIMIT_BYTES and \
                    len(_CACHED_TABLES) > 1:
                _CACHED_TABLES.popitem(last=False)  # the least recently read
        return rows

    def replace_days(self, path: str, rows: pa.Table, first: dt.date, last: dt.date, date_column: str,
                     metadata: Mapping[str, object]) -> int:
        """Replace the rows of [first, last] in the table at `path` with `rows`, in one commit (created with the
        first write); `metadata` is kept in the commit. Returns the table's new version."""
        import pyarrow.compute as pc

        outside = rows.filter(pc.or_(pc.less(rows[date_column], pa.scalar(first)),
                                     pc.greater(rows[date_column], pa.scalar(last)))).num_rows
        if outside:
            raise ValueError(f"{outside} row(s) for {path} lie outside [{first}, {last}]")
        within = f"{date_column} >= '{first.isoformat()}' AND {date_column} <= '{last.isoformat()}'"
        return self._write(path, rows, metadata, partition_by=[date_column], predicate=within)

    def replace_where(self, path: str, rows: pa.Table, column: str, values: list[dt.date],
                      metadata: Mapping[str, object]) -> int:
        """Replace the rows whose `column` is one of `values` (dates) in the table at `path` with `rows`, in one
        commit (created with the first write), new columns added to the table's schema (a monitoring table's days,
        which need not be adjacent). Returns the table's new version."""
        import pyarrow.compute as pc

        if not values:
            raise ValueError(f"no {column} to replace in {path}")
        outside = rows.filter(pc.invert(pc.is_in(rows[column], pa.array(values, pa.date32())))).num_rows
        if outside:
            raise ValueError(f"{outside} row(s) for {path} have a {column} outside the replaced ones")
        listed = ", ".join(f"'{value.isoformat()}'" for value in sorted(set(values)))
        return self._write(path, rows, metadata, predicate=f"{column} IN ({listed})", schema_mode="merge")

    def append(self, path: str, rows: pa.Table, metadata: Mapping[str, object]) -> int:
        """Add `rows` to the table at `path` in one commit (created with the first write), new columns (and new
        fields of a STRUCT column) added to its schema, earlier rows reading NULL there: an append-only table, a
        model's predictions. `metadata` is kept in the commit. Returns the table's new version."""
        return self._write(path, rows, metadata, mode="append", schema_mode="merge")

    def latest_metadata(self, path: str) -> dict:
        """The platform's metadata of the latest commit of the table at `path`."""
        entry = self.table(path).history(1)[0]
        return {key.removeprefix(METADATA_PREFIX): json.loads(value) for key, value in entry.items()
                if key.startswith(METADATA_PREFIX)}

    def replace_all(self, path: str, rows: pa.Table, metadata: Mapping[str, object]) -> int:
        """Replace every row of the table at `path` with `rows`, in one commit (created with the first write), its
        schema replaced too (as `CREATE OR REPLACE TABLE` replaces a whole table in the warehouse): an unpartitioned
        table loaded whole, a reference source. `metadata` is kept in the commit. Returns the table's new version."""
        return self._write(path, rows, metadata, schema_mode="overwrite")

    def _write(self, path: str, rows: pa.Table, metadata: Mapping[str, object], mode: str = "overwrite",
               **options) -> int:
        """One commit of `rows` to the table at `path` (an `overwrite` unless `mode` says `append`; delta-rs's
        `options`: what it replaces, how the schema may change), made again when it lost the race to create the
        table; returns the table's new version."""
        from deltalake import CommitProperties, DeltaTable, write_deltalake
        from deltalake.exceptions import CommitFailedError, TableNotFoundError

        for attempt in range(1, CREATE_ATTEMPTS + 1):
            try:  # the table opened once: written through, it holds the version its commit made
                table = DeltaTable(self.uri(path), storage_options=self.storage_options())
            except TableNotFoundError:
                table = None
            # a write by URI (the table did not exist when looked for) marks its commit, to find its version after
            written = dict(metadata) if table is not None else {**metadata, WRITE_MARK: uuid.uuid4().hex}
            try:
                write_deltalake(
                    table if table is not None else self.uri(path), rows, mode=mode,
                    storage_options=self.storage_options(),
                    # taken when the write creates the table, and only then
                    configuration=None if table is not None else {
                        "delta.checkpointInterval": str(CHECKPOINT_INTERVAL)},
                    commit_properties=CommitProperties(
                        custom_metadata={METADATA_PREFIX + key: json.dumps(value) for key, value in written.items()},
                        max_commit_retries=COMMIT_RETRIES), **options)
                break
            except CommitFailedError as error:
                # Workers writing the first partitions of a new table at once each try to create it: one creation
                # wins and the others fail on its protocol and metadata (delta-rs does not retry those; besides a
                # creation, only a whole table's replacement with new columns carries them). Their files were never
                # committed; the write is done again against the table that now exists, where concurrent commits of
                # other days do not conflict (a whole replacement simply replaces again). Any other conflict is
                # raised as it is.
                if not any(conflict in str(error) for conflict in CREATION_CONFLICTS) or attempt == CREATE_ATTEMPTS:
                    raise
        if table is not None:
            return table.version()
        # another writer may have committed since (or created the table just before this write): the version is
        # the one of the commit carrying this write's mark, not the table's latest
        mark = json.dumps(written[WRITE_MARK])
        for entry in self.table(path).history():
            if entry.get(METADATA_PREFIX + WRITE_MARK) == mark:
                return int(entry["version"])
        raise DeltaStoreError(f"the write to {self.uri(path)} committed, but no commit of its history carries its "
                              f"mark {mark}")

    def table_names(self, folder: str) -> list[str]:
        """The names of the Delta tables directly under `folder` (e.g. every feature table under `features`)."""
        import pyarrow.fs as pafs

        if self.is_object_store:
            options = self.storage_options()
            filesystem = pafs.S3FileSystem(
                access_key=options.get("AWS_ACCESS_KEY_ID"), secret_key=options.get("AWS_SECRET_ACCESS_KEY"),
                session_token=options.get("AWS_SESSION_TOKEN"), region=options["AWS_REGION"],
                endpoint_override=self.endpoint, scheme="http" if (self.endpoint or "").startswith("http://")
                else "https")
            base = self.uri(folder).removeprefix("s3://")
        else:
            filesystem, base = pafs.LocalFileSystem(), self.uri(folder).removeprefix("file://")
        found = filesystem.get_file_info(pafs.FileSelector(base, allow_not_found=True))
        return sorted(info.base_name for info in found if info.type == pafs.FileType.Directory and
                      filesystem.get_file_info(f"{info.path}/_delta_log").type == pafs.FileType.Directory)

    def commits(self, path: str) -> list[dict]:
        """Every commit of the table at `path`, oldest first: its version, time (ms) and the platform's metadata."""
        found = []
        for entry in reversed(self.table(path).history()):
            platform = {key.removeprefix(METADATA_PREFIX): json.loads(value) for key, value in entry.items()
                        if key.startswith(METADATA_PREFIX)}
            found.append({"version": entry["version"], "timestamp_ms": entry["timestamp"], **platform})
        return found


def delta_store_from_environment(environment: Mapping[str, str] | None = None) -> DeltaStore | None:
    """The Delta tables' store the environment names (feature tables and sources), or None for the embedded
    warehouse (the default)."""
    environment = os.environ if environment is None else environment
    root = environment.get(FEATURE_TABLES_VARIABLE, "").strip()
    if not root:
        return None
    endpoint = environment.get(OBJECT_STORE_ENDPOINT_VARIABLE, "").strip() or None
    return DeltaStore(root=root, endpoint=endpoint)


@dataclass(frozen=True)
class DeltaKind:
    """One kind of warehouse table kept as Delta tables: where its tables and their version indexes lie under the
    store's root, and the schema and version-index assets the warehouse knows them by."""

    schema: str  # the warehouse schema readers find them in: `features`, `source`, `population`
    folder: str  # their folder under the store's root: `features`, `sources`, `populations`
    path: Callable[[str], str]  # a table's path under the root
    versions_path: Callable[[str], str]  # its version index's path under the root
    asset: Callable[[str], str]  # its partitions' asset in the version index: `features/<name>`, `entity/<name>`...
    every: bool  # True when every table of the schema is Delta's (features); False when some may be the file's

    def view(self, name: str) -> str:
        """The view readers see the table as: `features."<name>"`, `source."<name>"`, `population."<name>"`."""
        return table(self.schema, name)

    def dataset_name(self, name: str) -> str:
        """The name its Arrow dataset is registered under on a connection."""
        return f"delta_{self.folder}__{name}"

    def names(self, store: DeltaStore) -> list[str]:
        """The tables of this kind in the store, each name checked to be a spec name."""
        found = store.table_names(self.folder)
        for name in found:
            if not IDENTIFIER.match(name):
                raise DeltaStoreError(f"{store.uri(self.folder + '/' + name)} is not a {self.schema} table: a spec's "
                                      f"name is lowercase letters, digits and underscores")
        return found

    def shadowed(self, store: DeltaStore, name: str) -> DeltaStoreError:
        """The refusal of a warehouse holding, as a table of its own, a table the store holds too."""
        return DeltaStoreError(
            f"the warehouse holds {table_label(self.schema, name)} as a table of its own (written by an embedded run) "
            f"while {FEATURE_TABLES_VARIABLE} names Delta tables in {store.root} that hold it too "
            f"({store.uri(self.path(name))}): use a warehouse of the cluster configuration, or drop the table")

    def held_by_file(self, store: DeltaStore, name: str) -> DeltaStoreError:
        """The refusal of a first write into the store while the warehouse holds the table as one of its own
        (written before the store was named): its earlier rows would stay in the file, split from the new ones."""
        return DeltaStoreError(
            f"the warehouse holds {table_label(self.schema, name)} as a table of its own (written before "
            f"{FEATURE_TABLES_VARIABLE} was set), and {store.uri(self.path(name))} does not exist yet: a table lives "
            f"in one place. Move its rows to the store (or drop the table) and run again, or unset "
            f"{FEATURE_TABLES_VARIABLE}")

    def versions_condition(self, names: list[str]) -> tuple[str, list]:
        """SQL (and its parameters) selecting this kind's mirrored rows of the warehouse's version index: every
        feature set's, but only the Delta sources' and populations' (one loaded into the file before the store was
        named keeps its own versions there)."""
        if self.every:
            return "starts_with(asset, ?)", [f"{self.schema}/"]  # feature_asset's prefix
        return "list_contains(?, asset)", [[self.asset(name) for name in names]]


FEATURES = DeltaKind("features", "features", delta_feature_path, delta_versions_path, feature_asset, every=True)
SOURCES = DeltaKind("source", "sources", delta_source_path, delta_source_versions_path, source_asset, every=False)
POPULATIONS = DeltaKind("population", "populations", delta_population_path, delta_population_versions_path,
                        population_asset, every=False)
PREDICTIONS = DeltaKind("predictions", "predictions", partial(delta_table_path, "predictions"),
                        partial(delta_index_path, "predictions"), partial(stage_asset, "predictions"), every=False)
MONITORING = DeltaKind("monitoring", "monitoring", partial(delta_table_path, "monitoring"),
                       partial(delta_index_path, "monitoring"), monitoring_asset, every=False)
DELTA_KINDS = (FEATURES, SOURCES, POPULATIONS, PREDICTIONS, MONITORING)

SHADOW_SUFFIX = "__shadow"  # names.shadow_table_name's: a challenger's predictions, which have no latest view
LATEST_KEYS = "latest_partition_by"  # a predictions commit's metadata: the columns its latest view partitions by
# the newest prediction first, in a Delta table's view, which has no insertion order (a warehouse table's latest
# view orders by rowid): the later scoring, then the later partition of one scoring
DELTA_LATEST_ORDER = "scored_at DESC, partition_date DESC"
# every connection's installed Delta views, by id(connection): what delta_views' block drops when it ends
_INSTALLED: dict[int, list[tuple[DeltaKind, str, list[str]]]] = {}


def _install(connection: duckdb.DuckDBPyConnection, store: DeltaStore, kind: DeltaKind, name: str) -> list[str]:
    """Register the Delta table's latest version on the connection and (re)create its view, and for a model's
    predictions its latest view; returns the views made."""
    connection.register(kind.dataset_name(name), store.dataset(kind.path(name)))
    views = [kind.view(name)]
    connection.execute(f'CREATE OR REPLACE VIEW {views[0]} AS SELECT * FROM "{kind.dataset_name(name)}"')
    if kind is PREDICTIONS and not name.endswith(SHADOW_SUFFIX):
        keys = store.latest_metadata(kind.path(name)).get(LATEST_KEYS)
        if not keys:
            raise DeltaStoreError(f"{store.uri(kind.path(name))}'s latest commit does not say which columns name a "
                                  f"row ({METADATA_PREFIX}{LATEST_KEYS}): it was not written by the platform's "
                                  f"scoring")
        views.append(latest_view(name))
        connection.execute(
            f'CREATE OR REPLACE VIEW {views[1]} AS SELECT * FROM "{kind.dataset_name(name)}" QUALIFY row_number() '
            f"OVER (PARTITION BY {', '.join(quote(key) for key in keys)} ORDER BY {DELTA_LATEST_ORDER}) = 1")
    return views


def refresh_view(connection: duckdb.DuckDBPyConnection, store: DeltaStore, kind: DeltaKind, name: str) -> None:
    """Show the Delta table's newest version in the connection, after a commit made through it (a scoring's, a
    monitoring day's), its version index mirrored again; dropped with the other views when the connection's
    delta_views block ends."""
    installed = _INSTALLED.get(id(connection))
    if installed is None:
        raise RuntimeError("refresh_view needs a connection inside delta_views' block")
    installed[:] = [entry for entry in installed if entry[:2] != (kind, name)]
    installed.append((kind, name, _install(connection, store, kind, name)))
    mirror_versions(connection, store, kind, [entry[1] for entry in installed if entry[0] is kind])


def is_delta_view(connection: duckdb.DuckDBPyConnection, schema: str, name: str) -> bool:
    """True when `<schema>.<name>` is one of the connection's views of a Delta table (the cluster configuration),
    False for a table of the warehouse's own or none."""
    return any(kind.schema == schema and name in _view_names(kind, entry_name)
               for kind, entry_name, _ in _INSTALLED.get(id(connection), []))


def _view_names(kind: DeltaKind, name: str) -> tuple[str, ...]:
    """The bare names of the views a Delta table of `kind` shows as: its own, and a model's latest view."""
    if kind is PREDICTIONS and not name.endswith(SHADOW_SUFFIX):
        return (name, f"{name}__latest")
    return (name,)


@contextmanager
def delta_views(connection: duckdb.DuckDBPyConnection, store: DeltaStore) -> Iterator[dict[str, list[str]]]:
    """Every Delta table of the store readable in the warehouse connection, a feature set's as `features.<name>`,
    a source's (daily or reference) as `source.<name>`, a population's as `population.<name>`, a model's
    predictions as `predictions.<name>` (and its latest prediction per row as `predictions.<name>__latest`) and its
    monitoring tables as `monitoring.<name>__<kind>` (a view over the table's latest version, read through Arrow),
    for the block's duration; the names shown, per schema.

    The assets that read these rows (snapshots, scoring, monitoring) then run their SQL unchanged, and find the
    partitions' versions (which staleness and snapshots use) in the warehouse's version index, mirrored from the
    Delta ones. The views exist only while the connection that registered their Arrow datasets is open: dropped
    when the block ends, and the mirrored versions deleted (a view a crashed process left behind fails loudly when
    read, and the next connection replaces it)."""
    shown = {kind.schema: kind.names(store) for kind in DELTA_KINDS}
    for kind in DELTA_KINDS:
        for name in shown[kind.schema]:
            existing = connection.execute(
                "SELECT table_type FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
                [kind.schema, name]).fetchall()
            if existing and existing[0][0] != "VIEW":
                raise kind.shadowed(store, name)
    installed: list[tuple[DeltaKind, str, list[str]]] = []
    _INSTALLED[id(connection)] = installed
    mirrored = []
    try:
        for kind in DELTA_KINDS:
            for name in shown[kind.schema]:
                installed.append((kind, name, _install(connection, store, kind, name)))
            mirrored.append(kind)
            mirror_versions(connection, store, kind, shown[kind.schema])
        yield shown
    finally:
        _INSTALLED.pop(id(connection), None)
        for kind in mirrored:  # the embedded configuration must never take these versions for its own tables' rows
            condition, parameters = kind.versions_condition(sorted(
                set(shown[kind.schema]) | {name for entry_kind, name, _ in installed if entry_kind is kind}))
            connection.execute(f"DELETE FROM {VERSIONS_TABLE} WHERE {condition}", parameters)
        for kind, name, views in installed:
            for view in reversed(views):
                connection.execute(f"DROP VIEW IF EXISTS {view}")
            connection.unregister(kind.dataset_name(name))


def version_index(versions: Mapping[str, PartitionVersion], table_version: int | None) -> pa.Table:
    """The rows of a Delta version index for the given partitions' versions, each naming the table's version that
    holds the partition's rows (partitions of days: a key's first ten characters are its day)."""
    from ml_platform import clock

    keys = sorted(versions)
    return pa.table({
        "partition_date": pa.array([dt.date.fromisoformat(key[:10]) for key in keys], pa.date32()),
        "partition_key": keys,
        "version": [versions[key].version for key in keys],
        "components": [json.dumps(versions[key].components, sort_keys=True) for key in keys],
        "recorded_at": pa.array([clock.now()] * len(keys), pa.timestamp("us")),
        "table_version": pa.array([table_version] * len(keys), pa.int64()),
    })


def mirror_versions(connection: duckdb.DuckDBPyConnection, store: DeltaStore, kind: DeltaKind,
                    names: list[str]) -> None:
    """Replace this kind's rows of the connection's version index with the Delta version indexes' of `names`, in
    one transaction: with Delta tables the Delta index is the truth (each partition's row committed after its
    rows), and the warehouse's copy is refreshed on every connection, so it never lags behind for long."""
    from ml_platform.storage.warehouse import transaction

    condition, parameters = kind.versions_condition(names)
    with transaction(connection):
        connection.execute(f"DELETE FROM {VERSIONS_TABLE} WHERE {condition}", parameters)
        for name in names:
            if not store.exists(kind.versions_path(name)):
                continue  # rows committed, versions not yet (a process died between the two commits): stale
            connection.register("delta_partition_versions", store.table(kind.versions_path(name)).to_pyarrow_table())
            try:
                connection.execute(f"INSERT INTO {VERSIONS_TABLE} SELECT ?, partition_key, version, "
                                   f"CAST(components AS JSON), recorded_at FROM delta_partition_versions",
                                   [kind.asset(name)])
            finally:
                connection.unregister("delta_partition_versions")
