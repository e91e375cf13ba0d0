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


def test_a_second_write_fails_with_the_dict_apis_message(connection):
    registry.snapshots.add(connection, snapshot_record())
    row = {**snapshot_record().plain(), "snapshot_id": "ffff"}
    with pytest.raises(RegistryConflictError) as from_dicts:
        registry.insert(connection, "snapshots", row)
    with pytest.raises(RegistryConflictError) as from_records:
        registry.snapshots.add(connection, snapshot_record().model_copy(update={"snapshot_id": "ffff"}))
    assert str(from_records.value) == str(from_dicts.value)
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


def test_records_written_typed_read_back_through_the_dict_api_unchanged(connection):
    evaluation = evaluation_record(connection)
    registry.evaluations.add(connection, evaluation)
    registry.models.add(connection, model_record())
    row = registry.fetch_one(connection, "evaluations", model="flight_delay", training_run=RUN)
    assert builders.same(row, evaluation.plain())
    assert row["summary"]["gate"]["beats_champion"]["details"]["champion"] is None
    assert "money_interval_95_rows" in row["summary"]["test"] and "report_markdown" in row["summary"]["artifacts"]
    assert builders.same(registry.fetch_one(connection, "models", model_version=builders.MODEL_VERSION),
                         model_record().plain())
    # the stored JSON text is the one the dict API writes: sorted keys, Python's json
    stored = connection.execute("SELECT card FROM registry.models").fetchall()[0][0]
    assert stored == json.dumps(model_record().card.plain(), sort_keys=True)


def test_rows_written_by_the_dict_api_read_back_as_records(connection):
    summary = builders.stored_summary(connection)
    summary["test"]["recall"] = float("nan")
    row = {"model": "flight_delay", "training_run": RUN, "model_version": builders.MODEL_VERSION,
           "report_path": "reports/x.json", "report_sha256": "04" * 32, "summary": summary,
           "gate_passed": summary["gate_passed"], "created_at": builders.CREATED}
    registry.insert(connection, "evaluations", row)
    registry.insert(connection, "promotions", {
        "promotion_id": registry.next_promotion_id(connection), "model": "flight_delay",
        "model_version": builders.MODEL_VERSION, "training_run": RUN, "promoted_at": builders.CREATED,
        "dagster_run_id": "run-1", "reason": "first", "gate": summary["gate"]})
    registry.insert(connection, "snapshots", snapshot_record().plain())
    record = registry.evaluations.get(connection, "flight_delay", RUN)
    assert math.isnan(record.summary.test.recall) and builders.same(record.plain(), row)
    assert registry.promotions.champion(connection, "flight_delay").gate == record.summary.gate
    assert registry.snapshots.get(connection, "flight_delay", RUN) == snapshot_record()
    with pytest.raises(RegistryConflictError):
        registry.evaluations.add(connection, record)


def test_partition_versions_read_back_as_records(connection):
    from ml_platform.records.versions import PartitionVersion
    from ml_platform.storage.versions import partition_versions, record_versions

    record_versions(connection, "source/weather",
                    {"2013-01-01": PartitionVersion(version="abcd", components={"content": "x"})})
    assert partition_versions(connection, "source/weather")["2013-01-01"].components == {"content": "x"}
    assert partition_versions(connection, "source/weather", ["2013-01-02"]) == {}
