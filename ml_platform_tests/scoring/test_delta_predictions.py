"""Predictions and monitoring tables as Delta Lake tables (the cluster configuration's, here in a local folder): the
same rows, latest views and versions as the embedded warehouse from the same writes, one commit per scoring, a
failed scoring committing nothing, and a warehouse that holds the table itself refused by name."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from ml_platform.monitoring.store import read_days, record_days_versions, replace_days
from ml_platform.names import FEATURE_TABLES_VARIABLE
from ml_platform.records.versions import PartitionVersion
from ml_platform.scoring.inputs import writable_sql
from ml_platform.scoring.writes import latest_order, prediction_writes
from ml_platform.storage.delta_tables import MONITORING, PREDICTIONS, DeltaStore, DeltaStoreError
from ml_platform.storage.resources import Warehouse
from ml_platform.storage.warehouse import open_warehouse, table_exists

pytest.importorskip("deltalake",
                    reason="the cluster extra is not installed (deltalake missing: pip install -e '.[cluster]')")

MODEL = "m"
DAY_1, DAY_2, DAY_5 = dt.date(2013, 1, 1), dt.date(2013, 1, 2), dt.date(2013, 1, 5)
# (scored_at, [(key, day, score)], the features of the batch): the second scoring scores key a of day 2 again, a
# second of the same day after the first, with a feature the table has not stored yet
SCORINGS = [
    (dt.datetime(2013, 1, 3, 6), [("a", DAY_1, 0.1), ("b", DAY_1, 0.2), ("a", DAY_2, 0.3)], {"x": "DOUBLE"}),
    (dt.datetime(2013, 1, 3, 6, 0, 1), [("a", DAY_2, 0.9)], {"x": "DOUBLE", "y": "VARCHAR"}),
]


def _versions(days: list[dt.date], tag: str) -> dict[str, PartitionVersion]:
    return {day.isoformat(): PartitionVersion(version=f"{tag}-{day}", components={"model_version": tag})
            for day in days}


def _score(connection, name: str, latest: bool, scored_at: dt.datetime, rows: list, features: dict,
           versions: dict | None, fail: bool = False) -> None:
    """What score.py does with a batch, through the same writes: create the table shaped by the first batch, add
    the inputs' new fields, insert the rows by name."""
    frame = pd.DataFrame(rows, columns=["key", "day", "score"])
    frame["x"] = frame["score"] * 10
    frame["y"] = "z"
    connection.register("batch", frame)
    packed = "struct_pack(x := x)"
    select = ("SELECT key, CAST(day AS TIMESTAMP) AS partition_date, score, {inputs} AS inputs, "
              "CAST(? AS TIMESTAMP) AS scored_at, CAST(? AS VARCHAR) AS model_version FROM batch")
    with prediction_writes(connection, name, ["key"] if latest else None, versions, MODEL) as writes:
        connection.execute(f"{writes.create} AS {select.format(inputs=packed)} LIMIT 0",
                           [scored_at, "v1"])
        inputs = writable_sql(connection, writes.table, {name: kind for name, kind in features.items()})
        connection.execute(f"INSERT INTO {writes.table} BY NAME {select.format(inputs=inputs)}", [scored_at, "v1"])
        if fail:
            raise RuntimeError("the scoring failed after its batch")
    connection.unregister("batch")


def _read(connection, sql: str) -> list[tuple]:
    return sorted(connection.execute(sql).fetchall(), key=repr)


def _state(connection) -> dict:
    return {
        "rows": _read(connection, "SELECT key, partition_date, score, inputs, scored_at FROM predictions.m"),
        "latest": _read(connection, 'SELECT key, partition_date, score, inputs FROM predictions."m__latest"'),
        "shadow": _read(connection, 'SELECT key, score FROM predictions."m__shadow"'),
        "versions": _read(connection, "SELECT partition_key, version FROM registry.partition_versions "
                                      "WHERE asset = 'predictions/m'"),
        "newest_shadow_first": connection.execute(
            f'SELECT score FROM predictions."m__shadow" ORDER BY {latest_order(connection, "m__shadow")}'
        ).fetchall()[0][0],
    }


def _run_scorings(connection) -> None:
    for scored_at, rows, features in SCORINGS:
        days = sorted({day for _, day, _ in rows})
        _score(connection, MODEL, True, scored_at, rows, features, _versions(days, scored_at.isoformat()))
        _score(connection, "m__shadow", False, scored_at, rows, features, None)


@pytest.fixture
def delta_store(tmp_path, monkeypatch) -> DeltaStore:
    store = DeltaStore(root=str(tmp_path / "tables"))
    monkeypatch.setenv(FEATURE_TABLES_VARIABLE, store.root)
    return store


def test_delta_predictions_equal_the_embedded_table_and_its_latest_view(tmp_path, monkeypatch, delta_store):
    monkeypatch.delenv(FEATURE_TABLES_VARIABLE)
    with open_warehouse(tmp_path / "embedded.duckdb") as connection:
        _run_scorings(connection)
        expected = _state(connection)
    monkeypatch.setenv(FEATURE_TABLES_VARIABLE, delta_store.root)
    delta = Warehouse(database=str(tmp_path / "delta.duckdb"))
    with delta.get_connection() as connection:
        _run_scorings(connection)
        within = _state(connection)  # the scoring's own connection sees its commits at once
    with delta.get_connection() as connection:
        got = _state(connection)

    assert expected["latest"] == [("a", dt.datetime(2013, 1, 2), 0.9, {"x": 9.0, "y": "z"}),
                                  ("b", dt.datetime(2013, 1, 1), 0.2, {"x": 2.0, "y": None})]
    assert len(expected["rows"]) == 4 and expected["newest_shadow_first"] == 0.9
    assert expected["versions"] == [("2013-01-01", "2013-01-03T06:00:00-2013-01-01"),
                                    ("2013-01-02", "2013-01-03T06:00:01-2013-01-02")]
    assert within == expected and got == expected

    # one append per scoring, each carrying what names a row for the latest view; the versions after the rows
    commits = delta_store.commits(PREDICTIONS.path(MODEL))
    assert [commit["latest_partition_by"] for commit in commits] == [["key"], ["key"]]
    assert len(delta_store.commits(PREDICTIONS.path("m__shadow"))) == 2
    assert len(delta_store.commits(PREDICTIONS.versions_path(MODEL))) == 2
    assert not delta_store.exists(PREDICTIONS.versions_path("m__shadow"))
    # nothing of the predictions is left in the file: no table, no view, no mirrored version
    with open_warehouse(tmp_path / "delta.duckdb") as connection:
        assert connection.execute("SELECT count(*) FROM information_schema.tables "
                                  "WHERE table_schema = 'predictions'").fetchall()[0][0] == 0
        assert connection.execute("SELECT count(*) FROM registry.partition_versions").fetchall()[0][0] == 0


def test_a_failed_delta_scoring_commits_nothing(tmp_path, delta_store):
    delta = Warehouse(database=str(tmp_path / "delta.duckdb"))
    scored_at, rows, features = SCORINGS[0]
    with delta.get_connection() as connection:
        _score(connection, MODEL, True, scored_at, rows, features, _versions([DAY_1, DAY_2], "first"))
        with pytest.raises(RuntimeError, match="failed after its batch"):
            _score(connection, MODEL, True, scored_at, [("c", DAY_2, 0.5)], features, _versions([DAY_2], "second"),
                   fail=True)
        assert not table_exists(connection, "main", "scored_rows")  # the staged rows are dropped
        assert connection.execute("SELECT count(*) FROM predictions.m").fetchall()[0][0] == 3
    assert delta_store.version(PREDICTIONS.path(MODEL)) == 0
    assert delta_store.version(PREDICTIONS.versions_path(MODEL)) == 0


def test_a_warehouse_holding_the_predictions_table_is_refused_by_name(tmp_path, monkeypatch, delta_store):
    monkeypatch.delenv(FEATURE_TABLES_VARIABLE)
    path = tmp_path / "warehouse.duckdb"
    scored_at, rows, features = SCORINGS[0]
    with open_warehouse(path) as connection:
        _score(connection, MODEL, True, scored_at, rows, features, None)  # an embedded run's table
        replace_days(connection, MODEL, "outcomes", _outcomes([DAY_1], 1.0), [DAY_1])
    monkeypatch.setenv(FEATURE_TABLES_VARIABLE, delta_store.root)
    with Warehouse(database=str(path)).get_connection() as connection:
        with pytest.raises(DeltaStoreError, match=r"the warehouse holds predictions\.m as a table of its own .*"
                                                  r"tables/predictions/m does not exist yet"):
            _score(connection, MODEL, True, scored_at, rows, features, None)
        with pytest.raises(DeltaStoreError, match=r"monitoring\.m__outcomes as a table of its own .*"
                                                  r"tables/monitoring/m__outcomes does not exist yet"):
            replace_days(connection, MODEL, "outcomes", _outcomes([DAY_1], 2.0), [DAY_1])
    assert not delta_store.exists(PREDICTIONS.path(MODEL))
    assert not delta_store.exists(MONITORING.path("m__outcomes"))


def _outcomes(days: list[dt.date], realized: float) -> pd.DataFrame:
    return pd.DataFrame({"day": days, "status": "judged", "model_version": "v1", "rows_scored": 10,
                         "realized_money": realized, "currency": "EUR",
                         "computed_at": dt.datetime(2013, 1, 9), "run_id": "r"})


def _monitor(connection) -> tuple:
    replace_days(connection, MODEL, "outcomes", _outcomes([DAY_1, DAY_2, DAY_5], 1.0), [DAY_1, DAY_2, DAY_5])
    # days again, not adjacent: day 1 replaced, day 5 emptied (measured again, nothing found), day 2 kept
    replace_days(connection, MODEL, "outcomes", _outcomes([DAY_1], 2.0), [DAY_1, DAY_5])
    record_days_versions(connection, MODEL, "outcomes", _versions([DAY_1, DAY_5], "judged"))
    frame = read_days(connection, MODEL, "outcomes", DAY_1, DAY_5)
    versions = _read(connection, "SELECT partition_key, version FROM registry.partition_versions "
                                 "WHERE asset = 'outcomes/m'")
    return frame, versions


def test_delta_monitoring_days_equal_the_embedded_table(tmp_path, monkeypatch, delta_store):
    monkeypatch.delenv(FEATURE_TABLES_VARIABLE)
    with open_warehouse(tmp_path / "embedded.duckdb") as connection:
        expected_frame, expected_versions = _monitor(connection)
    monkeypatch.setenv(FEATURE_TABLES_VARIABLE, delta_store.root)
    delta = Warehouse(database=str(tmp_path / "delta.duckdb"))
    with delta.get_connection() as connection:
        got_frame, got_versions = _monitor(connection)
    with delta.get_connection() as connection:
        again = read_days(connection, MODEL, "outcomes", DAY_1, DAY_5)

    assert list(expected_frame["realized_money"]) == [2.0, 1.0]
    assert expected_versions == [("2013-01-01", "judged-2013-01-01"), ("2013-01-05", "judged-2013-01-05")]
    pd.testing.assert_frame_equal(got_frame, expected_frame)
    pd.testing.assert_frame_equal(again, expected_frame)
    assert got_versions == expected_versions
    assert len(delta_store.commits(MONITORING.path("m__outcomes"))) == 2
    assert delta_store.exists(MONITORING.versions_path("m__outcomes"))
    with open_warehouse(tmp_path / "delta.duckdb") as connection:
        assert not table_exists(connection, "monitoring", "m__outcomes")
