"""Feature values do not depend on DuckDB's thread count: a feature summing DOUBLE values over more than one row
group (where DuckDB's parallel sums differ in their last bits from run to run) gives the same rows bit for bit,
hence the same snapshot id and model version, rebuilt from scratch with one thread or two."""

from __future__ import annotations

import datetime as dt

import pytest

from ml_platform.chain.model_chain import run_chain
from ml_platform.chain.runner import Chain
from ml_platform.features.library import load_catalog
from ml_platform.names import DAILY_JOB, REFERENCE_JOB, source_key
from ml_platform.storage import registry, warehouse
from ml_platform.storage.warehouse import open_warehouse
from ml_platform_tests.helpers import january_model, load_yaml, write_yaml

ROW_GROUP = 122_880  # DuckDB's rows per row group: each thread scans whole row groups
SUMMED = {
    "spec_version": 1, "kind": "feature_set", "name": "carrier_miles", "owner": "team:flight-ops-ds",
    "description": "Miles the flight's carrier is scheduled to fly from New York over the loaded year, in DOUBLEs.",
    "entity": "flights", "known_by": {"days_before": 1, "time": "00:00"},
    "sql": "SELECT flight_id, carrier_miles.miles AS carrier_scheduled_miles, carrier_miles.mean AS carrier_mean_leg "
           "FROM entity JOIN (SELECT carrier, sum(distance / 7.0) AS miles, avg(distance * 1.1) AS mean "
           "FROM flights GROUP BY carrier) AS carrier_miles USING (carrier)",
    "features": {"carrier_scheduled_miles": {"type": "number", "description": "sevenths of scheduled miles"},
                 "carrier_mean_leg": {"type": "number", "description": "a carrier's mean leg, in tenths over"}}}


def build(make_project, monkeypatch, threads: int):
    """A project built from scratch on DuckDB connections of the given thread count: its features, snapshot, model."""
    settings = warehouse.connection_settings
    monkeypatch.setattr(warehouse, "connection_settings", lambda path: {**settings(path), "threads": str(threads)})
    model = january_model()
    model["features"] = [*model["features"], "carrier_scheduled_miles", "carrier_mean_leg"]
    project = make_project({"flight_delay": model}, name=f"threads_{threads}")
    write_yaml(project.specs_dir / "features" / "carrier_miles.yaml", SUMMED)
    # the feature sums the whole year's schedule: declared published before the year (else it leaks the schedule
    # of days not yet known at a row's prediction time, and its blocking point-in-time check fails)
    flights = load_yaml(project.specs_dir / "sources" / "flights.yaml")
    write_yaml(project.specs_dir / "sources" / "flights.yaml", {**flights, "available_at": "TIMESTAMP '2012-12-01'"})
    chain = Chain(project, load_catalog(project.specs_dir, project.root), say=lambda line: None)
    assert chain.run(REFERENCE_JOB, "reference").success
    # the whole year's flights: the feature's sums run over several row groups
    assert chain.run(DAILY_JOB, "flights of 2013", date_range=(dt.date(2013, 1, 1), dt.date(2013, 12, 31)),
                     assets=[source_key("flights")]).success, chain.runs[-1].failures
    result = run_chain(project, "flight_delay", score_days=0, say=lambda line: None)
    with open_warehouse(project.storage.warehouse) as connection:
        assert connection.execute("SELECT current_setting('threads')").fetchall() == [(threads,)]
        loaded = connection.execute("SELECT count(*) FROM source.flights").fetchall()[0][0]
        rows = connection.execute("SELECT flight_id, carrier_scheduled_miles, carrier_mean_leg "
                                  "FROM features.carrier_miles ORDER BY flight_id").fetchall()
        model_record = registry.models.get(connection, "flight_delay", result.training_run)
    assert loaded > 2 * ROW_GROUP
    bits = [(key, miles.hex(), mean.hex()) for key, miles, mean in rows]
    return bits, model_record.snapshot_id, model_record.model_version


@pytest.mark.slow
def test_a_feature_summing_doubles_is_identical_with_one_thread_or_two(make_project, dagster_home, monkeypatch):
    one = build(make_project, monkeypatch, threads=1)
    two = build(make_project, monkeypatch, threads=2)
    assert len(one[0]) > 20_000
    assert one[0] == two[0], "feature rows differ in their bits"
    assert (one[1], one[2]) == (two[1], two[2])
