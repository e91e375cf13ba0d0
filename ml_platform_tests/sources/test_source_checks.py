"""Bad data: a load that fails a data check is rejected whole, says why, and leaves the stored rows as they were."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import pytest

from ml_platform.names import DAILY_JOB, REFERENCE_JOB
from ml_platform.chain.runner import Chain
from ml_platform.features.library import load_catalog
from ml_platform.storage.warehouse import open_warehouse

from ml_platform_tests.helpers import write_yaml

# drives chains of Dagster runs: the full suite only (`pytest -m "not slow"` leaves it out)
pytestmark = pytest.mark.slow

DAYS = (dt.date(2013, 1, 1), dt.date(2013, 1, 3))
GOOD = ("day,gate,movements,temperature_f\n"
        "2013-01-01,A1,10,30.5\n2013-01-01,A2,12,31.0\n"
        "2013-01-02,A1,11,28.0\n2013-01-02,A2,9,27.5\n"
        "2013-01-03,A1,14,35.0\n2013-01-03,A2,13,36.0\n")


@pytest.fixture
def gates(make_project, dagster_home):
    """A project with a small daily CSV source of gate movements, loaded once with good data."""
    project = make_project()
    (project.root / "data").mkdir()
    (project.root / "data" / "gates.csv").write_text(GOOD)
    write_yaml(project.specs_dir / "sources" / "gates.yaml", {
        "spec_version": 1, "kind": "source", "name": "gates", "description": "Aircraft movements per gate and day.",
        "owner": "team:data-platform", "trust": "internal",
        "location": {"kind": "file", "path": "data/gates.csv", "format": "csv"},
        "columns": {"day": "DATE", "gate": "VARCHAR", "movements": "INTEGER", "temperature_f": "DOUBLE"},
        "keys": ["day", "gate"],
        "partitioning": {"kind": "daily", "date": "day", "start": "2013-01-01", "end": "2013-12-31",
                         "timezone": "America/New_York"},
        "checks": {"min_rows_per_day": 2, "not_null": ["gate"],
                   "ranges": {"movements": {"min": 0, "max": 500},
                              "temperature_f": {"min": -40, "max": 130, "outside": "set_missing"}}}})
    runner = Chain(project, load_catalog(project.specs_dir, project.root), say=lambda line: None)
    assert runner.run(REFERENCE_JOB, "reference").success
    assert _load(project).success, runner.runs
    return project


def _load(project):
    runner = Chain(project, load_catalog(project.specs_dir, project.root), say=lambda line: None)
    return runner.run(DAILY_JOB, "daily", date_range=DAYS)


def _stored(project):
    with open_warehouse(project.storage.warehouse) as connection:
        return connection.execute("SELECT day, gate, movements, temperature_f FROM source.gates ORDER BY ALL").fetchall()


def _failed_checks(outcome) -> dict[str, str]:
    return {failure.split(" failed: ")[0].removeprefix("data check "): failure.split(" failed: ")[1]
            for failure in outcome.failures if failure.startswith("data check ")}


@pytest.mark.parametrize("content, check, message", [
    (GOOD.replace("2013-01-02,A1,11,28.0\n2013-01-02,A2,9,27.5\n", ""), "row_count",
     "1 day(s) with fewer than 2 row(s): 2013-01-02 (0)"),
    (GOOD.replace("2013-01-03,A2,13,36.0", "2013-01-03,A1,13,36.0"), "unique_keys",
     "1 key(s) appear more than once"),
    (GOOD.replace("2013-01-01,A2,12,31.0", "2013-01-01,A2,lots,31.0"), "schema",
     "column movements: 1 value(s) are not INTEGER (e.g. 'lots')"),
    (GOOD.replace("movements,", "moves,"), "schema", "gates.csv lacks declared column(s) movements"),
    (GOOD.replace("2013-01-02,A1,11,28.0", "2013-01-02,A1,-4,28.0"), "value_ranges",
     "movements: 1 value(s) outside [0.0, 500.0] (seen -4 to 14)"),
    (GOOD.replace("2013-01-02,A1,11", "2013-01-02,,11"), "not_null", "missing values in gate (1)"),
])
def test_bad_data_is_rejected_whole_with_a_failed_check(gates, content, check, message):
    before = _stored(gates)
    (gates.root / "data" / "gates.csv").write_text(content)
    outcome = _load(gates)
    assert not outcome.success
    assert _failed_checks(outcome)[check].startswith(message), outcome.failures
    assert any("source 'gates' rejected, nothing written" in failure for failure in outcome.failures)
    assert _stored(gates) == before
    # the features computed in the same run were blocked, not recomputed on top of rejected data
    steps = {failure.split(":")[0] for failure in outcome.failures}
    assert "source__gates" in steps


def test_a_changed_unit_is_set_missing_where_the_spec_says_so_and_counted(gates):
    (gates.root / "data" / "gates.csv").write_text(GOOD.replace("2013-01-03,A1,14,35.0", "2013-01-03,A1,14,274.8"))
    outcome = _load(gates)
    assert outcome.success
    rows = {(str(day), gate): temperature for day, gate, _, temperature in _stored(gates)}
    assert rows[("2013-01-03", "A1")] is None and rows[("2013-01-03", "A2")] == 36.0
    event = dg.DagsterInstance.get().get_latest_asset_check_evaluation_record(
        dg.AssetCheckKey(dg.AssetKey(["source", "gates"]), "value_ranges"))
    assert event.event.dagster_event.event_specific_data.passed
    assert "temperature_f: 1 value(s) outside [-40.0, 130.0] (seen 27.5 to 274.8), set missing" in \
        event.event.dagster_event.event_specific_data.description
