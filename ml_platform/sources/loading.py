"""Load a source's declared columns into the warehouse, one range of daily partitions at a time."""

from __future__ import annotations

import datetime as dt
import tempfile
import zipfile
from pathlib import Path

import duckdb

from ml_platform.errors import PlatformError
from ml_platform.hashing import canonical_json, short_hash
from ml_platform.names import quote, source_table
from ml_platform.partitions import days
from ml_platform.reuse import remembered, reusing
from ml_platform.sources.checks import conversion_problems
from ml_platform.specs.checks import package_data_dir
from ml_platform.specs.models import DailyPartitioning, PackageDataLocation, SourceSpec
from ml_platform.specs.sql_reach import require_contained_source
from ml_platform.storage.artifacts import file_sha256
from ml_platform.storage.warehouse import date_literal, replace_date_range, row_digests, transaction


class SourceLoadError(PlatformError, RuntimeError):
    """A source file is missing or does not match its spec."""


def source_file(source: SourceSpec, project_dir: Path) -> Path:
    """The file a source is read from."""
    location = source.location
    if isinstance(location, PackageDataLocation):
        folder = package_data_dir(location.package)
        if folder is None:
            raise SourceLoadError(f"source '{source.name}': package {location.package!r} is not installed")
        path = folder / location.path
    else:
        path = project_dir / location.path
    if not path.is_file():
        raise SourceLoadError(f"source '{source.name}': file {path} does not exist")
    return path


def _raw_relation_sql(source: SourceSpec, path: Path, scratch: Path) -> str:
    """SQL that reads the raw file with every declared column as text (or typed, for Parquet)."""
    location = source.location
    if location.format == "parquet":
        return f"SELECT * FROM read_parquet('{_sql_string(path)}')"
    if location.format == "csv_zip":
        with zipfile.ZipFile(path) as archive:
            members = [name for name in archive.namelist() if not name.endswith("/")]
            if len(members) != 1:
                raise SourceLoadError(f"source '{source.name}': {path} must hold exactly one file, holds {members}")
            path = Path(archive.extract(members[0], scratch))
    return (
        f"SELECT * FROM read_csv('{_sql_string(path)}', header = true, all_varchar = true, "
        f"nullstr = '{_sql_string(location.null_string)}')"
    )


REPLAYED_TEXT = "replayed_source_text"  # a replay's raw rows of a file, registered while a day is staged


def _sql_string(text: str | Path) -> str:
    return str(text).replace("'", "''")


def typed_select(source: SourceSpec, raw_sql: str) -> str:
    """SQL casting the raw columns to their declared types and adding derived columns and partition_date."""
    casts = ", ".join(f"CAST({quote(name)} AS {column.type}) AS {quote(name)}" for name, column in source.columns.items())
    typed = f"SELECT {casts} FROM ({raw_sql})"
    extra = [f"CAST(({derived.expression}) AS {derived.type}) AS {quote(name)}"
             for name, derived in source.derived_columns.items()]
    if isinstance(source.partitioning, DailyPartitioning):
        extra.append(f"CAST(({source.partitioning.date}) AS DATE) AS partition_date")
    return f"SELECT *{''.join(', ' + column for column in extra)} FROM ({typed})"


def missing_columns(connection: duckdb.DuckDBPyConnection, source: SourceSpec, raw_sql: str) -> list[str]:
    """Declared columns that the file does not have."""
    present = {row[0] for row in connection.execute(f"DESCRIBE {raw_sql}").fetchall()}
    return [name for name in source.columns if name not in present]


def stage_source(connection: duckdb.DuckDBPyConnection, source: SourceSpec, project_dir: Path,
                 start: dt.date | None = None, end: dt.date | None = None) -> tuple[str, list[str]]:
    """Read the source's rows (of [start, end] for a daily source) into a temporary table, unchecked.

    Returns the staged table's name and the schema problems found (then nothing is staged).

    Inside a replay (`reuse.reused`), which loads one day after another of the same file, a text file's raw rows
    (every column as text, as `_raw_relation_sql` reads them) are read, and unzipped, once per file and spec, and
    each day's rows are typed and filtered from them by the same SQL as from the file: the same values.
    """
    # the loader refuses such SQL already; a spec built in code must not run it (a replay checks a spec once)
    if reusing():
        remembered(f"source SQL contained: {source.name}", source.model_dump_json(),
                   lambda: require_contained_source(source) or True)
    else:
        require_contained_source(source)
    path = source_file(source, project_dir)
    key = _schema_key(source, path) if reusing() else None
    with tempfile.TemporaryDirectory(prefix="ml_platform-source-") as scratch:
        read: list[str] = []

        def raw_sql() -> str:  # the file's relation, unzipped into the scratch folder on first use only
            if not read:
                read.append(_raw_relation_sql(source, path, Path(scratch)))
            return read[0]

        problems = _schema_problems(connection, source, path, raw_sql()) if key is None else remembered(
            # each load of a replay reads the same file: its whole file is checked once
            "source schema problems", key, lambda: _schema_problems(connection, source, path, raw_sql()))
        if problems:
            return "", problems
        text = None
        if key is not None and source.location.format != "parquet":
            text = remembered("source raw rows", key, lambda: connection.sql(raw_sql()).to_arrow_table())
            connection.register(REPLAYED_TEXT, text)
        try:
            select = typed_select(source, f"SELECT * FROM {REPLAYED_TEXT}" if text is not None else raw_sql())
            if start is not None:
                select = (f"SELECT * FROM ({select}) WHERE partition_date BETWEEN {date_literal(start)} "
                          f"AND {date_literal(end)}")
            connection.execute(f"CREATE OR REPLACE TEMP TABLE staged_source AS {select}")
        finally:
            if text is not None:
                connection.unregister(REPLAYED_TEXT)
    return "staged_source", []


def _schema_problems(connection: duckdb.DuckDBPyConnection, source: SourceSpec, path: Path,
                     raw_sql: str) -> list[str]:
    """The whole file's schema problems: declared columns it lacks, else values that do not convert."""
    missing = missing_columns(connection, source, raw_sql)
    if missing:
        return [f"{path.name} lacks declared column(s) {', '.join(missing)}"]
    return conversion_problems(connection, source, raw_sql)


def _schema_key(source: SourceSpec, path: Path) -> tuple[str, str, str]:
    """What the schema problems depend on: the file (its path and bytes) and the source's location and columns."""
    return str(path), file_sha256(path), canonical_json(source.model_dump(mode="json",
                                                                          include={"location", "columns"}))


def publish_staged(connection: duckdb.DuckDBPyConnection, source: SourceSpec, staged: str,
                   start: dt.date | None = None, end: dt.date | None = None) -> int:
    """Replace the stored rows (of [start, end]) with the staged ones, in one transaction; returns rows written."""
    target = source_table(source.name)
    if start is not None:
        written = replace_date_range(connection, target, f"SELECT * FROM {staged}", start, end)
    else:
        with transaction(connection):
            connection.execute(f"CREATE OR REPLACE TABLE {target} AS SELECT * FROM {staged}")
        written = connection.execute(f"SELECT count(*) FROM {target}").fetchall()[0][0]
    connection.execute(f"DROP TABLE {staged}")
    return written


def file_fingerprint(source: SourceSpec, project_dir: Path) -> str:
    """SHA-256 (first 16 hex digits) of the source file's bytes."""
    return file_sha256(source_file(source, project_dir))[:16]


def source_spec_hash(source: SourceSpec) -> str:
    """The hash of a source's spec: its asset's code version."""
    return short_hash(canonical_json(source.without_availability()))  # availability changes no loaded row


def load_fingerprint(source: SourceSpec, project_dir: Path) -> dict[str, str]:
    """What a load reads: {"spec": the spec's hash, "file": the file's}; unchanged, a stored load is reused."""
    return {"spec": source_spec_hash(source), "file": file_fingerprint(source, project_dir)}


def content_versions(connection: duckdb.DuckDBPyConnection, source: SourceSpec, start: dt.date | None = None,
                     end: dt.date | None = None, table: str | None = None) -> dict[str, str]:
    """An order-independent hash of the stored rows (or of `table`'s, the same rows staged): per day of
    [start, end] for a daily source, else whole."""
    target = table or source_table(source.name)
    if start is None:
        count, digest = row_digests(connection, target)[0]
        return {"": f"{count}:{digest:016x}"}
    found = {day.isoformat(): f"{count}:{digest:016x}"
             for day, count, digest in row_digests(connection, target, start, end, by_day=True)}
    return {day.isoformat(): found.get(day.isoformat(), "0:empty") for day in days(start, end)}
