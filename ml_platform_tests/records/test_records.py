"""The record types accept what the platform's code really writes, and keep it exactly through JSON."""

from __future__ import annotations

import datetime as dt
import json
import math

import pydantic
import pytest

from ml_platform.records.evaluation import EvaluationSummary, MeasuredSummary
from ml_platform.records.gate import CHECK_ORDER, ChampionComparison, Gate, GateCheck
from ml_platform.records.registry import EvaluationRecord, PromotionRecord
from ml_platform.records.scoring import PredictionProvenance
from ml_platform.records.snapshots import SnapshotManifest
from ml_platform.records.training import ModelCard
from ml_platform.evaluation.evaluate import summarize
from ml_platform.storage.warehouse import open_warehouse
from ml_platform_tests.records import builders


@pytest.fixture
def connection(tmp_path):
    with open_warehouse(tmp_path / "w.duckdb") as connection:
        yield connection


def test_the_summary_of_real_code_validates_and_dumps_back_to_the_same_json(connection):
    written = builders.stored_summary(connection)
    summary = EvaluationSummary.model_validate(written)
    assert builders.same(summary.plain(), written)
    assert summary.test.precision == written["test"]["precision"]
    assert summary.gate.beats_champion.details.champion is None  # nothing promoted yet
    assert [name for name, _ in summary.gate.checks()] == list(CHECK_ORDER)
    assert summary.artifacts.predictions.rows == 1500


def test_what_summarize_measures_validates_before_the_run_fields_are_added():
    model = builders.spec()
    validation, validation_scores = builders.split_rows(["2013-01-21"], seed=1)
    test, test_scores = builders.split_rows(["2013-01-26"], seed=2)
    measured = summarize(model, validation, validation_scores, test, test_scores).plain()
    assert builders.same(MeasuredSummary.model_validate(measured).plain(), measured)
    with pytest.raises(pydantic.ValidationError, match="training_run"):
        EvaluationSummary.model_validate(measured)


def test_nan_metrics_survive_a_json_round_trip(connection):
    written = builders.evaluation_summary(connection)
    written["test"]["precision"] = float("nan")  # nothing flagged
    written["test"]["share_of_perfect"] = float("nan")
    summary = EvaluationSummary.model_validate(written)
    text = summary.model_dump_json()
    assert '"precision":NaN' in text
    back = EvaluationSummary.model_validate_json(text)
    assert math.isnan(back.test.precision) and math.isnan(back.test.share_of_perfect)
    assert builders.same(back.plain(), summary.plain())
    assert builders.same(json.loads(json.dumps(summary.plain())), written)  # Python's json keeps NaN too


@pytest.mark.parametrize("value", [0.1 + 0.2, 1 / 3, 5e-324, 1.7976931348623157e308, -0.0, 123456789.123456789])
def test_floats_come_back_exactly(connection, value):
    written = builders.evaluation_summary(connection)
    written["threshold"] = value
    summary = EvaluationSummary.model_validate(written)
    back = EvaluationSummary.model_validate_json(summary.model_dump_json())
    assert back.threshold == value and math.copysign(1, back.threshold) == math.copysign(1, value)
    assert json.loads(json.dumps(summary.plain()))["threshold"] == value


def test_records_are_frozen_and_reject_unknown_keys():
    manifest = SnapshotManifest.model_validate(builders.manifest())
    with pytest.raises(pydantic.ValidationError, match="frozen"):
        manifest.model = "other"
    with pytest.raises(pydantic.ValidationError, match="extra"):
        SnapshotManifest.model_validate({**builders.manifest(), "reused": True})
    with pytest.raises(pydantic.ValidationError, match="extra"):
        PredictionProvenance(model_version="m-1", spec_hash="s", snapshot_id="x", training_run="r",
                             code_version="c", scored_at=dt.datetime(2026, 1, 1), promotion_id=None,
                             dagster_run_id="run", live_until=None)


def test_a_manifest_keeps_its_shape_and_optional_pins_stay_absent():
    written = builders.manifest()
    assert builders.same(SnapshotManifest.model_validate(written).plain(), written)
    assert SnapshotManifest.model_validate_json(json.dumps(written)).model_dump_json() == \
        SnapshotManifest.model_validate(written).model_dump_json()
    older = {key: value for key, value in written.items() if key not in ("source_data_versions",
                                                                          "feature_data_versions")}
    assert builders.same(SnapshotManifest.model_validate(older).plain(), older)
    assert "feature_data_versions" not in SnapshotManifest.model_validate(older).model_dump_json()


@pytest.mark.parametrize("algorithm", [None, *builders.OTHER_ALGORITHMS], ids=["lightgbm", "logistic", "forest"])
def test_model_cards_of_real_trainings_validate(algorithm):
    written = builders.model_card(algorithm)
    card = ModelCard.model_validate(written)
    assert builders.same(card.plain(), written)
    assert card.environment()["library_versions"] == written["library_versions"]


def test_the_gate_lists_checks_in_order_and_names_failures_and_missing_ones():
    check = {"passed": True, "why": "fine", "details": {"money": 1.0, "floor": 0.0, "currency": "USD"}}
    gate = Gate.model_validate({
        "money_floor": check,
        "predictions_sane": {"passed": False, "why": "constant", "details": {"problems": ["constant"]}},
        "roc_auc_floor": {"passed": True, "why": "ok", "details": {"roc_auc": float("nan"), "floor": 0.5}}})
    assert [name for name, _ in gate.checks()] == ["money_floor", "roc_auc_floor", "predictions_sane"]
    assert [name for name, _ in gate.failures()] == ["predictions_sane"]
    assert gate.missing() == ("beats_champion", "no_leakage") and not gate.passed()
    assert "beats_champion" not in gate.plain()
    assert isinstance(gate.money_floor, GateCheck)
    with pytest.raises(pydantic.ValidationError):
        Gate.model_validate({"money_floor": {**check, "details": {"money": 1.0}}})


def test_champion_comparison_details_of_a_measured_comparison_validate():
    details = {"margin": 0.0, "waived": False, "currency": "USD", "rows": 400, "compared_at": "2026-11-28T09:30:15",
               "champion": "flight_delay-aaaa", "champion_training_run": "2013-01-31_aaaa",
               "champion_promotion_id": 1, "champion_threshold": 0.42, "rows_outside_champion_filter": 0,
               "champion_scores_from": "its own evaluation on the same test rows", "challenger_money": 100.0,
               "champion_money": 90.0, "gain": 10.0, "gain_interval_95": [-5.0, 25.0], "days": 6,
               "window": ["2013-01-26", "2013-01-31"]}
    assert builders.same(ChampionComparison.model_validate(details).plain(), details)


def test_registry_rows_as_the_dict_api_returns_them_validate(connection):
    summary = builders.stored_summary(connection)
    row = {"model": "flight_delay", "training_run": builders.TRAINING_RUN, "model_version": builders.MODEL_VERSION,
           "report_path": "reports/flight_delay/x.json", "report_sha256": "ab" * 32, "summary": summary,
           "gate_passed": summary["gate_passed"], "created_at": builders.CREATED}
    record = EvaluationRecord.model_validate(row)
    assert record.summary.model_version == builders.MODEL_VERSION and record.created_at == builders.CREATED
    promotion = PromotionRecord.model_validate({
        "promotion_id": 1, "model": "flight_delay", "model_version": builders.MODEL_VERSION,
        "training_run": builders.TRAINING_RUN, "promoted_at": builders.CREATED, "dagster_run_id": "run",
        "reason": "first", "gate": summary["gate"]})
    assert promotion.gate == record.summary.gate
