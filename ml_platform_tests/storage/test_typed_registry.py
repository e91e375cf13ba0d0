"""The typed registry API on a real DuckDB file: records in, records out, and the same rows as the dict API."""

from __future__ import annotations

import datetime as dt
import functools
import json
import math

import pytest

from ml_platform.records.registry import (
    EvaluationRecord,
    ModelRecord,
    PromotionRecord,
    SnapshotRecord,
    SpecRecord,
)
from ml_platform.storage import registry
from ml_platform.storage.registry import RegistryConflictError
from ml_platform.storage.warehouse import open_warehouse
from ml_platform_tests.records import builders

RUN = builders.TRAINING_RUN


@pytest.fixture
def connection(tmp_path):
    with open_warehouse(tmp_path / "w.duckdb") as connection:
        yield connection


def snapshot_record() -> SnapshotRecord:
    return SnapshotRecord(training_run=RUN, model="flight_delay", snapshot_id="0123456789abcdef",
                          spec_hash="0123456789ab", path="snapshots/flight_delay/x.parquet", sha256="01" * 32,
                          manifest=builders.manifest(), created_at=builders.CREATED)


@functools.cache
def card() -> dict:
    return builders.model_card()  # once: a card records its training_seconds, which differ from run to run


def model_record(run: str = RUN, version: str = builders.MODEL_VERSION) -> ModelRecord:
    return ModelRecord(model_version=version, model="flight_delay", training_run=run, snapshot_id="0123456789abcdef",
                       spec_hash="0123456789ab", path="models/flight_delay/x.model", sha256="02" * 32,
                       card=card(), created_at=builders.CREATED)


def evaluation_record(connection, run: str = RUN, created_at: dt.datetime = builders.CREATED) -> EvaluationRecord:
    summary = builders.stored_summary(connection)
    summary["test"]["precision"] = float("nan")
    summary["training_run"] = run
    return EvaluationRecord(model="flight_delay", training_run=run, model_version=builders.MODEL_VERSION,
                            report_path="reports/flight_delay/x.json", report_sha256="03" * 32, summary=summary,
                            gate_passed=summary["gate_passed"], created_at=created_at)


def promotion_record(connection, promotion_id: int, version: str, promoted_at: dt.datetime) -> PromotionRecord:
    return PromotionRecord(promotion_id=promotion_id, model="flight_delay", model_version=version, training_run=RUN,
                           promoted_at=promoted_at, dagster_run_id="run-1", reason="better",
                           gate=builders.stored_summary(connection)["gate"])


def test_each_record_comes_back_as_it_was_added(connection):
    spec = SpecRecord(spec_hash="0123456789ab", model="flight_delay", payload={"name": "flight_delay", "x": [1, 2.5]},
                      recorded_at=builders.CREATED)
    registry.specs.add(connection, spec)
    registry.snapshots.add(connection, snapshot_record())
    registry.models.add(connection, model_record())
    evaluation = evaluation_record(connection)
    registry.evaluations.add(connection, evaluation)
    assert registry.specs.get(connection, "0123456789ab") == spec
    assert registry.snapshots.get(connection, "flight_delay", RUN) == snapshot_record()
    assert registry.models.get(connection, "flight_delay", RUN) == model_record()
    assert registry.models.by_version(connection, builders.MODEL_VERSION) == model_record()
    back = registry.evaluations.get(connection, "flight_delay", RUN)
    assert math.isnan(back.summary.test.precision)
    assert builders.same(back.plain(), evaluation.plain())  # NaN != NaN, so compared value by value
    assert back.created_at == builders.CREATED and back.created_at.tzinfo is None
    assert registry.snapshots.get(connection, "flight_delay", "other") is None
    assert registry.models.by_version(connection, "nothing") is None


def test_a_second_write_fails_naming_the_stored_record(connection):
    registry.snapshots.add(connection, snapshot_record())
    with pytest.raises(RegistryConflictError) as from_records:
        registry.snapshots.add(connection, snapshot_record().model_copy(update={"snapshot_id": "ffff"}))
    assert registry.snapshots.get(connection, "flight_delay", RUN) == snapshot_record()  # the stored one is kept
    assert str(from_records.value).startswith(
        f"training run '{RUN}' of model 'flight_delay' already has a snapshot (snapshot 0123456789abcdef, created "
        f"2026-11-28 09:30:15 UTC); registry.snapshots is append-only")
    registry.models.add(connection, model_record())
    with pytest.raises(RegistryConflictError, match="already has a trained model"):
        registry.models.add(connection, model_record())


def test_promotions_give_the_log_in_order_the_champion_and_the_next_id(connection):
    assert registry.promotions.champion(connection, "flight_delay") is None
    assert registry.promotions.next_id(connection) == 1
    first = promotion_record(connection, 1, "flight_delay-aaaa", dt.datetime(2026, 11, 28, 9))
    second = promotion_record(connection, 2, "flight_delay-bbbb", dt.datetime(2026, 11, 28, 10))
    registry.promotions.add(connection, second)
    registry.promotions.add(connection, first)  # written out of order: the log still follows promotion_id
    assert registry.promotions.log(connection, "flight_delay") == [first, second]
    assert registry.promotions.champion(connection, "flight_delay") == second
    assert registry.promotions.next_id(connection) == 3
    with pytest.raises(RegistryConflictError, match="promotion #2 already exists"):
        registry.promotions.add(connection, second)


def test_evaluations_of_a_model_are_ordered_by_creation(connection):
    late = evaluation_record(connection, "2013-02-28_bbbb", dt.datetime(2026, 11, 28, 12))
    early = evaluation_record(connection, "2013-01-31_aaaa", dt.datetime(2026, 11, 28, 8))
    registry.evaluations.add(connection, late)
    registry.evaluations.add(connection, early)
    assert [record.training_run for record in registry.evaluations.all(connection, model="flight_delay")] == \
        ["2013-01-31_aaaa", "2013-02-28_bbbb"]


def _stored_row(connection, table: str, **where) -> dict:
    """A registry row as SQL reads it, its JSON columns decoded with Python's json."""
    clause = " AND ".join(f"{column} = ?" for column in where)
    cursor = connection.execute(f"SELECT * FROM registry.{table} WHERE {clause}", list(where.values()))
    row = dict(zip([column[0] for column in cursor.description], cursor.fetchall()[0]))
    return {key: json.loads(value) if key in ("summary", "card", "manifest", "gate", "payload") else value
            for key, value in row.items()}


def test_records_are_stored_as_plain_sorted_json_any_sql_reader_can_read(connection):
    evaluation = evaluation_record(connection)
    registry.evaluations.add(connection, evaluation)
    registry.models.add(connection, model_record())
    row = _stored_row(connection, "evaluations", model="flight_delay", training_run=RUN)
    assert builders.same(row, evaluation.plain())
    assert row["summary"]["gate"]["beats_champion"]["details"]["champion"] is None
    assert "money_interval_95_rows" in row["summary"]["test"] and "report_markdown" in row["summary"]["artifacts"]
    assert builders.same(_stored_row(connection, "models", model_version=builders.MODEL_VERSION),
                         model_record().plain())
    stored = connection.execute("SELECT card FROM registry.models").fetchall()[0][0]
    assert stored == json.dumps(model_record().card.plain(), sort_keys=True)
    # DuckDB's own JSON functions read the same columns
    threshold = connection.execute("SELECT CAST(summary->>'threshold' AS DOUBLE) FROM registry.evaluations").fetchall()
    assert threshold[0][0] == evaluation.summary.threshold


def test_rows_written_as_json_text_by_sql_read_back_as_records(connection):
    summary = builders.stored_summary(connection)
    summary["test"]["recall"] = float("nan")
    row = {"model": "flight_delay", "training_run": RUN, "model_version": builders.MODEL_VERSION,
           "report_path": "reports/x.json", "report_sha256": "04" * 32, "summary": summary,
           "gate_passed": summary["gate_passed"], "created_at": builders.CREATED}
    connection.execute("INSERT INTO registry.evaluations BY NAME SELECT ? AS model, ? AS training_run, "
                       "? AS model_version, ? AS report_path, ? AS report_sha256, ? AS summary, ? AS gate_passed, "
                       "? AS created_at", [row["model"], row["training_run"], row["model_version"],
                                           row["report_path"], row["report_sha256"],
                                           json.dumps(summary, sort_keys=True), row["gate_passed"],
                                           row["created_at"]])
    record = registry.evaluations.get(connection, "flight_delay", RUN)
    assert math.isnan(record.summary.test.recall) and builders.same(record.plain(), row)
    with pytest.raises(RegistryConflictError):
        registry.evaluations.add(connection, record)


def test_partition_versions_read_back_as_records(connection):
    from ml_platform.records.versions import PartitionVersion
    from ml_platform.storage.versions import partition_versions, record_versions

    record_versions(connection, "source/weather",
                    {"2013-01-01": PartitionVersion(version="abcd", components={"content": "x"})})
    assert partition_versions(connection, "source/weather")["2013-01-01"].components == {"content": "x"}
    assert partition_versions(connection, "source/weather", ["2013-01-02"]) == {}
