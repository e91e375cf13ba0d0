"""Served predictions judged by outcome monitoring: a real server answers on the January project, then a real
Dagster materialization of the outcomes asset judges the logged champion rows beside the batch ones, per channel;
without a log nothing changes; a malformed log line is an error naming the file and the line."""

from __future__ import annotations

import datetime as dt
import json
import time

import dagster as dg
import pytest

from ml_platform import clock, names
from ml_platform.monitoring.outcomes import judge_days, judged_versions
from ml_platform.project import Project
from ml_platform.monitoring.served import ServedLogError, load_served
from ml_platform.serving.log import log_path
from ml_platform.storage.warehouse import open_warehouse, table_exists
from ml_platform_tests.evaluation.january import MODEL, Runs, champion_and_challenger, copy_of
from ml_platform_tests.monitoring.helpers import champion_scored_on, monitor
from ml_platform_tests.serving.server import serving

# a served project and Dagster runs: the full suite only
pytestmark = pytest.mark.slow

FEBRUARY_1, FEBRUARY_2 = dt.date(2013, 2, 1), dt.date(2013, 2, 2)
# the demo spec's label and money per flight (as test_monitoring measures them independently)
LABELS = ("SELECT flight_id, (dep_time IS NULL OR dep_delay > 15) AS label, "
          "0.30 * 75 * coalesce(dep_delay, 180) - 500 AS tp FROM source.flights")


@pytest.fixture
def runs(tmp_path, monkeypatch) -> Runs:
    """The demo model deployed as champion on January, and February 1 scored in batch (February 2 not)."""
    return champion_scored_on(tmp_path, monkeypatch, FEBRUARY_1)


def _metadata() -> dict:
    event = dg.DagsterInstance.get().get_latest_materialization_event(names.stage_key("outcomes", MODEL))
    return {name: value.value for name, value in event.asset_materialization.metadata.items()}


def _expected(runs: Runs, answered: dict[str, dict]) -> tuple[float, int, int, int]:
    """Realized money, flagged, true and false positives of answered rows, from the label SQL by hand."""
    labels = {key: (label, tp) for key, label, tp in runs.query(
        f"WITH o AS ({LABELS}) SELECT * FROM o WHERE flight_id IN ({', '.join('?' * len(answered))})", *answered)}
    money, flagged, true_positives, false_positives = 0.0, 0, 0, 0
    for key, item in answered.items():
        label, tp = labels[key]
        if item["decision"]:
            flagged += 1
            true_positives += bool(label)
            false_positives += not label
            money += tp if label else -500
    return money, flagged, true_positives, false_positives


def test_served_predictions_are_judged_beside_the_batch_ones_once_labels_are_known(runs):
    project = runs.project
    batch_keys = [row[0] for row in runs.query(f"SELECT flight_id FROM {names.latest_view(MODEL)} WHERE "
                                               f"partition_date = DATE '2013-02-01' ORDER BY 1 LIMIT 30")]
    february_2 = [row[0] for row in runs.query("SELECT flight_id FROM source.flights WHERE partition_date = "
                                               "DATE '2013-02-02' ORDER BY 1 LIMIT 20")]
    # no log, then an empty one (a server that answered nothing): monitoring as before, no served table
    path = log_path(project.data_dir, MODEL)
    for make in (lambda: None, lambda: path.parent.mkdir(parents=True) or path.write_text("")):
        make()
        outcome = monitor(runs, ["outcomes"], FEBRUARY_1, FEBRUARY_2)
        assert outcome.success, outcome.failures
        assert not any(name.startswith("served") or name == "channels" for name in _metadata())
        with open_warehouse(project.storage.warehouse) as connection:
            assert not table_exists(connection, "monitoring", f"{MODEL}__served_outcomes")
            before = judged_versions(connection, runs.chain().catalog, runs.chain().catalog.models[MODEL],
                                     FEBRUARY_1, FEBRUARY_2)
    batch_before = runs.query(f"SELECT day, status, rows_scored, labelled_rows, realized_money, flagged "
                              f"FROM monitoring.{MODEL}__outcomes ORDER BY day")

    with serving(project) as (client, _):
        # Feb 1 keys also batch-scored (the first ten asked twice, once on demand), Feb 2 keys served only
        status, first = client.predict(MODEL, {"keys": [{"flight_id": key} for key in batch_keys[:10]],
                                               "features": "on_demand"})
        assert status == 200, first
        status, second = client.predict(MODEL, {"keys": [{"flight_id": key} for key in batch_keys + february_2]})
        assert status == 200, second
        client.request("GET", "/health")
        time.sleep(1.0)  # the shadow challenger is scored after each answer; let it log
    answered = {item["keys"]["flight_id"]: item for item in second["predictions"]}
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert sum(not line["shadow"] for line in lines) == 60 and sum(line["shadow"] for line in lines) == 60

    with open_warehouse(project.storage.warehouse) as connection:
        after = judged_versions(connection, runs.chain().catalog, runs.chain().catalog.models[MODEL],
                                FEBRUARY_1, FEBRUARY_2)
    assert after != before  # the days are judged again once rows were served
    outcome = monitor(runs, ["outcomes"], FEBRUARY_1, FEBRUARY_2)
    assert outcome.success, outcome.failures

    # the batch channel's figures are exactly what they were: served rows never enter them
    assert runs.query(f"SELECT day, status, rows_scored, labelled_rows, realized_money, flagged "
                      f"FROM monitoring.{MODEL}__outcomes ORDER BY day") == batch_before
    stored = {str(row[0]): row[1:] for row in runs.query(
        f"SELECT day, status, model_version, served_lines, rows_served, other_version_rows, also_batch_scored, "
        f"labelled_rows, waiting_rows, realized_money, flagged, true_positives, false_positives, "
        f"promised_money_by_rows, currency FROM monitoring.{MODEL}__served_outcomes")}
    assert set(stored) == {"2013-02-01", "2013-02-02"}
    for day, keys, batch_scored, lines_of_day in (("2013-02-01", batch_keys, 30, 40), ("2013-02-02", february_2, 0, 20)):
        (status, version, served_lines, rows_served, other, also_batch, labelled, waiting, realized, flagged,
         true_positives, false_positives, promised, currency) = stored[day]
        # a key answered twice counts once; a key also batch-scored counts in each channel, once
        assert (served_lines, rows_served, other, also_batch) == (lines_of_day, len(keys), 0, batch_scored)
        assert version == second["model_version"] and currency == "USD"
        assert status == "labelled" and (labelled, waiting) == (len(keys), 0)
        expected = _expected(runs, {key: answered[key] for key in keys})
        assert (realized, flagged, true_positives, false_positives) == pytest.approx(expected)
        assert promised > 0
    metadata = _metadata()
    assert (metadata["served_rows"], metadata["served_labelled_rows"], metadata["served_waiting_rows"]) == (50, 50, 0)
    assert metadata["served_realized_money"] == round(stored["2013-02-01"][8] + stored["2013-02-02"][8])
    assert "| 2013-02-01 | batch |" in metadata["channels"] and "| 2013-02-02 | served |" in metadata["channels"]
    assert "| 2013-02-02 | batch |" not in metadata["channels"]  # not batch-scored

    # at noon of February 2 its labels are not known yet: its served rows are waiting, and say until when
    catalog = runs.chain().catalog
    with clock.simulated(dt.datetime(2013, 2, 2, 12, tzinfo=dt.timezone.utc)):
        with open_warehouse(project.storage.warehouse) as connection:
            waiting = judge_days(connection, catalog, catalog.models[MODEL], FEBRUARY_1, FEBRUARY_2, "noon").served
    by_day = {str(row.day): row for row in waiting.itertuples()}
    assert (by_day["2013-02-02"].labelled_rows, by_day["2013-02-02"].waiting_rows) == (0, 20)
    assert by_day["2013-02-02"].status.startswith("labels not mature: the labels of 2013-02-02 are mature on ")
    assert (by_day["2013-02-01"].status, by_day["2013-02-01"].labelled_rows) == ("labelled", 30)

    # a malformed line fails the materialization, naming the file and the line; fixed, it judges again
    good = path.read_text()
    path.write_text(good + '{"request_id": "x", "shadow": fal\n')
    outcome = monitor(runs, ["outcomes"], FEBRUARY_1, FEBRUARY_2)
    assert not outcome.success
    assert any(f"{path}, line {len(lines) + 1}: not valid JSON" in reason for reason in outcome.failures), \
        outcome.failures
    path.write_text(good)
    assert monitor(runs, ["outcomes"], FEBRUARY_1, FEBRUARY_2).success


@pytest.fixture(scope="module")
def copied(tmp_path_factory) -> Project:
    """A copy of the January project, to read logs written beside its warehouse (nothing is run)."""
    return copy_of(champion_and_challenger(), tmp_path_factory.mktemp("served_log") / "project")


def _first_line() -> dict:
    return {"request_id": "r1", "served_at": "2013-02-01T08:00:00", "model": MODEL, "shadow": False,
            "shadowing": None, "keys": {"flight_id": "2013-02-01-AA1-JFK"}, "partition_date": "2013-02-01",
            "prediction_time": None, "score": 0.5, "decision": True, "decision_parameter": 0.4,
            "features_served": "precomputed", "inputs": {}, "model_version": "v1"}


@pytest.mark.parametrize("bad, message", [
    ("not json at all", "line 3: not valid JSON (Expecting value: line 1 column 1 (char 0))"),
    ("[1, 2]", "line 3: must be a JSON object, got list"),
    (json.dumps({**_first_line(), "shadow": None}), "line 3: missing shadow (each line needs shadow, "
                                                    "partition_date, model_version, served_at, keys)"),
    (json.dumps({**_first_line(), "shadow": "no"}), "line 3: shadow: must be true or false, got 'no'"),
    (json.dumps({**_first_line(), "partition_date": "Feb 1"}),
     "line 3: partition_date: must be an ISO date, got 'Feb 1'"),
    (json.dumps({**_first_line(), "keys": {"flight": "x"}}),
     "line 3: keys: must be an object with flight_id, got {'flight': 'x'}"),
])
def test_a_malformed_log_line_is_an_error_naming_the_file_and_the_line(bad, message, copied):
    project = copied
    path = log_path(project.data_dir, MODEL)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_first_line()) + "\n\n" + bad + "\n" + json.dumps(_first_line()) + "\n")
    catalog = Runs(project).chain().catalog
    with open_warehouse(project.storage.warehouse) as connection:
        with pytest.raises(ServedLogError) as raised:
            load_served(connection, catalog, catalog.models[MODEL], FEBRUARY_1, FEBRUARY_2)
    assert str(raised.value) == f"{path}, {message}"
