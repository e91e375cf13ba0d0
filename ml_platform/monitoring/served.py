"""Realized money of served predictions: the champion's answers that the online server logged
(`<data folder>/serving/<model>.served.jsonl`, one JSON line per answered row), judged once the day's labels are
known, beside the batch predictions and never mixed into their figures.

The log lies beside the warehouse (`storage.resources.StoragePaths`: both in the project's data folder). Shadow
rows (a challenger scoring the same request) are never judged. A key answered several times on one day counts
once in the served channel, at its latest answer (as the batch's `__latest` view keeps a key's latest prediction);
a key served and also batch-scored counts once in each channel. A day's served rows are judged with the model
version that answered most of its keys, as the batch's day is; rows answered by another version that day are
counted, not judged. A missing or empty log is the normal case (no server ran): nothing is added. A malformed line
is an error naming the file and the line.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import duckdb
import pandas as pd

from ml_platform import names
from ml_platform.errors import PlatformError
from ml_platform.evaluation.realized import JUDGED
from ml_platform.evaluation.realized_rows import outcomes_sql, realized_per_row
from ml_platform.features.compute import entity_table
from ml_platform.features.labels import labels_known_through, local_today, matures_on
from ml_platform.names import quote
from ml_platform.scoring.score import uses_task_scoring
from ml_platform.specs.catalog import Catalog
from ml_platform.specs.models import ModelSpec
from ml_platform.storage.warehouse import date_literal, table_exists

SERVED_VIEW = "served_champion_rows"  # the temporary table of one judgement: the log's champion rows of the range
# the fields every logged line carries, with what each must hold (the serving log's format, serving/log.py)
REQUIRED = {"shadow": "true or false", "partition_date": "an ISO date", "model_version": "a string",
            "served_at": "an ISO time", "keys": "an object of the entity's key columns"}


class ServedLogError(PlatformError, ValueError):
    """A line of a served-predictions log cannot be read."""


def log_file(connection: duckdb.DuckDBPyConnection, model: str) -> Path | None:
    """The model's served-predictions log beside the connection's warehouse file (None for an in-memory one)."""
    path = connection.execute("SELECT path FROM duckdb_databases() WHERE database_name = current_database()"
                              ).fetchall()[0][0]
    if not path:
        return None
    return Path(path).parent / names.SERVING_FOLDER / names.served_log_name(model)


def _line_problem(text: str, keys: list[str]) -> str | None:
    """What is wrong with one line of the log, or None."""
    try:
        row = json.loads(text)
    except json.JSONDecodeError as error:
        return f"not valid JSON ({error})"
    if not isinstance(row, dict):
        return f"must be a JSON object, got {type(row).__name__}"
    missing = [field for field in REQUIRED if row.get(field) is None]
    if missing:
        return f"missing {', '.join(missing)} (each line needs {', '.join(REQUIRED)})"
    if not isinstance(row["shadow"], bool):
        return f"shadow: must be {REQUIRED['shadow']}, got {row['shadow']!r}"
    for field, parse in (("partition_date", dt.date.fromisoformat), ("served_at", dt.datetime.fromisoformat)):
        try:
            parse(str(row[field]))
        except ValueError:
            return f"{field}: must be {REQUIRED[field]}, got {row[field]!r}"
    if not isinstance(row["keys"], dict) or any(row["keys"].get(key) is None for key in keys):
        return f"keys: must be an object with {', '.join(keys)}, got {row['keys']!r}"
    return None


def _malformed(path: Path, keys: list[str], reason: str) -> ServedLogError:
    """The error naming the first unreadable line of the log (found line by line, as DuckDB's line numbers are not
    reliable), or the file and DuckDB's reason when every line reads on its own."""
    with open(path, encoding="utf-8") as handle:
        for number, text in enumerate(handle, start=1):
            if not text.strip():
                continue  # an empty line holds no row (DuckDB's reader skips it too)
            problem = _line_problem(text, keys)
            if problem:
                return ServedLogError(f"{path}, line {number}: {problem}")
    return ServedLogError(f"{path}: the served-predictions log cannot be read: {reason}")


def load_served(connection: duckdb.DuckDBPyConnection, catalog: Catalog, model: ModelSpec, start: dt.date,
                end: dt.date) -> int:
    """Load the log's champion rows of [start, end] into the temporary table SERVED_VIEW (keys typed as the
    entity stores them, the decision as JSON text); returns the rows loaded, 0 with no table when there is no log
    or no such row."""
    connection.execute(f"DROP TABLE IF EXISTS {SERVED_VIEW}")
    path = log_file(connection, model.name)
    if path is None or not path.exists() or path.stat().st_size == 0:
        return 0
    keys = list(catalog.entity_rows(model.entity).keys)
    relation = connection.sql(f"SELECT {', '.join(quote(key) for key in keys)} FROM "
                              f"{entity_table(catalog, model.entity)} LIMIT 0")
    types = dict(zip(relation.columns, (str(kind) for kind in relation.types)))
    selected = ", ".join(f"CAST(json_extract_string(keys, '$.{key}') AS {types[key]}) AS {quote(key)}"
                         for key in keys)
    source = (f"read_json({_string(path)}, format = 'newline_delimited', columns = {{shadow: 'JSON', "
              f"partition_date: 'DATE', model_version: 'VARCHAR', served_at: 'TIMESTAMP', keys: 'JSON', "
              f"score: 'DOUBLE', decision: 'JSON', request_id: 'VARCHAR'}})")
    missing_key = " OR ".join(f"json_extract(keys, {_string('$.' + key)}) IS NULL" for key in keys)
    try:
        nulls = connection.execute(
            f"SELECT count(*) FROM {source} WHERE json_type(shadow) IS DISTINCT FROM 'BOOLEAN' OR json_type(keys) IS "
            f"DISTINCT FROM 'OBJECT' OR partition_date IS NULL OR model_version IS NULL "
            f"OR served_at IS NULL OR {missing_key}").fetchall()[0][0]
        if nulls:
            raise _malformed(path, keys, f"{nulls} line(s) lack a required field or hold a wrong kind of value")
        connection.execute(
            f"CREATE TEMP TABLE {SERVED_VIEW} AS SELECT {selected}, partition_date, model_version, served_at, "
            f"score, CAST(decision AS VARCHAR) AS decision, request_id FROM {source} WHERE NOT CAST(shadow AS BOOLEAN) "
            f"AND partition_date BETWEEN {date_literal(start)} AND {date_literal(end)}")
    except (duckdb.InvalidInputException, duckdb.ConversionException) as error:
        raise _malformed(path, keys, str(error).splitlines()[0]) from error
    return connection.execute(f"SELECT count(*) FROM {SERVED_VIEW}").fetchall()[0][0]


def _string(value) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def served_marks(connection: duckdb.DuckDBPyConnection, catalog: Catalog, model: ModelSpec, start: dt.date,
                 end: dt.date) -> dict[str, str]:
    """{day: mark} of the days of [start, end] with served champion rows: their count and the latest served_at,
    so that a day judged before more rows were served is judged again. Empty without a log."""
    if not load_served(connection, catalog, model, start, end):
        return {}
    try:
        return {day.isoformat(): f"{count} to {latest.isoformat()}" for day, count, latest in connection.execute(
            f"SELECT partition_date, count(*), max(served_at) FROM {SERVED_VIEW} GROUP BY 1").fetchall()}
    finally:
        connection.execute(f"DROP TABLE IF EXISTS {SERVED_VIEW}")


def served_day(connection: duckdb.DuckDBPyConnection, catalog: Catalog, model: ModelSpec, day: dt.date,
               spec_of, promise_of) -> dict | None:
    """The served channel of one day (SERVED_VIEW loaded): rows served, labelled and still waiting, the realized
    money of the labelled ones and the promise for as many rows; None when no champion row of the day was served.
    `spec_of(version)` gives a version's recorded spec, `promise_of(version)` its evaluation's promise."""
    keys = list(catalog.entity_rows(model.entity).keys)
    key_list = ", ".join(quote(key) for key in keys)
    lines = connection.execute(f"SELECT count(*) FROM {SERVED_VIEW} WHERE partition_date = {date_literal(day)}"
                               ).fetchall()[0][0]
    if not lines:
        return None
    # the latest answer per key (ties: the later request id, so that the choice is stable)
    latest = (f"SELECT * FROM {SERVED_VIEW} WHERE partition_date = {date_literal(day)} QUALIFY row_number() OVER "
              f"(PARTITION BY {key_list} ORDER BY served_at DESC, request_id DESC) = 1")
    versions = connection.execute(f"SELECT model_version, count(*) FROM ({latest}) GROUP BY 1 ORDER BY 2 DESC, 1"
                                  ).fetchall()
    version, rows = versions[0]
    counts = {"served_lines": int(lines), "rows_served": int(rows),
              "other_version_rows": int(sum(count for _, count in versions[1:])), "model_version": version}
    batch = names.latest_view(model.name)
    counts["also_batch_scored"] = int(connection.execute(
        f"SELECT count(*) FROM ({latest}) AS served WHERE model_version = ? AND EXISTS (SELECT 1 FROM {batch} AS "
        f"batch WHERE batch.partition_date = {date_literal(day)} AND "
        f"{' AND '.join(f'batch.{quote(key)} = served.{quote(key)}' for key in keys)})", [version]).fetchall()[0][0]) \
        if table_exists(connection, "predictions", model.name) else 0
    spec = spec_of(version)
    if labels_known_through(connection, catalog, spec, day, local_today(catalog, spec)) is None:
        return {**counts, "labelled_rows": 0, "waiting_rows": int(rows),
                "status": f"labels not mature: the labels of {day} are mature on {matures_on(catalog, spec, day)}"}
    frame = connection.execute(
        f"WITH served AS (SELECT {key_list}, score, decision FROM ({latest}) WHERE model_version = ?), "
        f"outcomes AS ({outcomes_sql(catalog, spec, day, day)}) SELECT * FROM served LEFT JOIN outcomes "
        f"USING ({key_list})", [version]).df()
    labelled = frame[frame["label"].notna()].reset_index(drop=True)
    counts.update({"labelled_rows": len(labelled), "waiting_rows": len(frame) - len(labelled)})
    if labelled.empty:
        return {**counts, "status": f"no labels yet: none of the {len(frame)} rows served on {day} has a known label"}
    labelled["decision"] = [json.loads(text) for text in labelled["decision"]]
    money = realized_per_row(spec, labelled, "score", "decision")
    figures = {}  # counted as the batch channel counts them (monitoring.outcomes.day_outcomes)
    if not uses_task_scoring(spec):
        flags, label = labelled["decision"].to_numpy(dtype=bool), labelled["label"].to_numpy(dtype=bool)
        figures = {"flagged": int(flags.sum()), "true_positives": int((flags & label).sum()),
                   "false_positives": int((flags & ~label).sum())}
    elif spec.money.decision.kind in ("top", "threshold"):
        figures = {"flagged": int(labelled["decision"].astype(bool).sum())}
    promised = promise_of(version)
    return {**counts, **figures, "status": JUDGED[0] if len(labelled) == len(frame) else JUDGED[1],
            "realized_money": float(money.sum()), "promised_money_by_rows": promised.per_row * len(labelled),
            "currency": promised.currency}


def served_frame(rows: list[dict], computed_at, run_id: str) -> pd.DataFrame:
    """The served channel's rows as stored (every column, also when there is no row)."""
    columns = ["day", "status", "model_version", "served_lines", "rows_served", "other_version_rows",
               "also_batch_scored", "labelled_rows", "waiting_rows", "flagged", "true_positives", "false_positives",
               "realized_money", "promised_money_by_rows", "currency"]
    frame = pd.DataFrame(rows, columns=columns)
    frame["computed_at"], frame["run_id"] = computed_at, run_id
    return frame
