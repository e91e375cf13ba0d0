"""`ml-platform explain --top N` values the top contributions in money on the row's outcome: a threshold decision's
flip (binary) and a quantity decision's change (regression), each figure recomputed here from the source rows and
the spec's money values."""

from __future__ import annotations

import datetime as dt
import math

import pytest

from ml_platform import clock, names
from ml_platform.cli import main
from ml_platform.provenance.explain import explain, explained_money
from ml_platform.storage.artifacts import ArtifactStore
from ml_platform.storage.warehouse import open_warehouse
from ml_platform_tests.evaluation.january import MODEL, Runs, january_project
from ml_platform_tests.evaluation.test_task_chain import REGRESSION

pytestmark = pytest.mark.slow

FEBRUARY_1 = dt.date(2013, 2, 1)


def explained_lines(runs: Runs, flight: str, top: int, capsys) -> list[str]:
    assert main(["--project", str(runs.project.root), "explain", MODEL, flight, "--date", "2013-02-01",
                 "--top", str(top)]) == 0
    output = capsys.readouterr().out
    return output.split("\nIn money")[1].split("\n\n")[0].splitlines()


def contributions_of(runs: Runs, flight: str):
    store = ArtifactStore(root=str(runs.project.storage.artifacts))
    with open_warehouse(runs.project.storage.warehouse) as connection:
        result = explain(connection, MODEL, flight, FEBRUARY_1, store)
        return result, explained_money(connection, runs.project, result, 4)


def test_a_threshold_decision_shows_the_money_of_each_contributions_flip(tmp_path, dagster_home, capsys):
    runs = Runs(january_project(tmp_path / "project"))
    assert runs.train().champion is not None
    assert runs.score(FEBRUARY_1, FEBRUARY_1).success
    table = names.predictions_table(MODEL)
    rows = runs.query(f"SELECT p.flight_id, p.score, p.flagged, p.threshold, f.dep_time IS NULL OR f.dep_delay > 15,"
                      f" f.dep_delay FROM {table} AS p JOIN source.flights AS f USING (flight_id) "
                      f"WHERE p.partition_date = ? ORDER BY p.flight_id", FEBRUARY_1)
    found = {}  # a flagged delayed flight and a flagged punctual one, each with a contribution whose removal flips it
    for flight, score, flagged, threshold, late, delay in rows:
        if not flagged or late in found:
            continue
        result, _ = contributions_of(runs, flight)
        raw = math.log(score / (1 - score))
        if any((1 / (1 + math.exp(-(raw - item.contribution))) >= threshold) != flagged
               for item in result.contributions.contributions[:4]):
            found[late] = (flight, score, threshold, delay, result.contributions)
        if len(found) == 2:
            break
    assert set(found) == {True, False}

    for late, (flight, score, threshold, delay, contributions) in found.items():
        lines = explained_lines(runs, flight, 4, capsys)
        # the spec's money values: flagging a delayed flight saves 0.30 x 75 x its delay minus the 500 it costs;
        # flagging a punctual one costs 500; not flagging costs nothing
        flagged_money = 0.30 * 75 * (180 if delay is None else delay) - 500 if late else -500.0
        assert lines[0] == (f" (on this row's outcome, valued with the spec's money values): the decision taken, "
                            f"flagged, made {flagged_money:,.2f} USD; without each contribution:")
        raw = math.log(score / (1 - score))
        flips = 0
        for line, item in zip(lines[1:], contributions.contributions[:4]):
            still = 1 / (1 + math.exp(-(raw - item.contribution))) >= threshold
            money = flagged_money if still else 0.0
            flips += not still
            decision = "flagged" if still else "not flagged (flips)"
            assert line.split() == [item.feature, "decision", *decision.split()[:-1], decision.split()[-1] + ":",
                                    f"{money:,.2f}", "USD", f"({money - flagged_money:+,.2f}", "USD)"], line
        assert flips >= 1 and len(lines) == 5

    # the evening it was scored, its outcome was not known yet: explain says when it will be
    with clock.simulated(dt.datetime(2013, 1, 31, 23, 0, tzinfo=dt.timezone.utc)):
        _, money = contributions_of(runs, found[True][0])
    assert money.why_not is not None and money.why_not.startswith(
        "its outcome is not known yet (the label of 2013-02-01 is mature on 2013-02-0"), money.why_not


def test_a_quantity_decision_shows_the_money_change_of_removing_each_contribution(tmp_path, dagster_home, capsys):
    runs = Runs(january_project(tmp_path / "project", {MODEL: REGRESSION}))
    assert runs.train().champion is not None
    assert runs.score(FEBRUARY_1, FEBRUARY_1).success
    table = names.predictions_table(MODEL)
    flight, prediction, decision, offset, air_time = runs.query(
        f"SELECT p.flight_id, p.prediction, p.decision, p.decision_parameter, f.air_time FROM {table} AS p "
        f"JOIN source.flights AS f USING (flight_id) WHERE p.partition_date = ? AND f.air_time IS NOT NULL "
        f"ORDER BY p.flight_id LIMIT 1", FEBRUARY_1)[0]
    result, _ = contributions_of(runs, flight)

    lines = explained_lines(runs, flight, 3, capsys)

    # the spec's value: planning below the air time costs 2 a minute, above it 0.5 a minute
    value = lambda planned: -2.0 * (air_time - planned) if planned < air_time else -0.5 * (planned - air_time)
    assert float(decision) == pytest.approx(prediction + offset)
    taken = value(prediction + offset)
    assert lines[0].endswith(f"the decision taken, {prediction + offset:.6g}, made {taken:,.2f} USD; without each "
                             f"contribution:")
    for line, item in zip(lines[1:], result.contributions.contributions[:3]):
        planned = prediction - item.contribution + offset
        assert line.split() == [item.feature, "decision", f"{planned:.6g}:", f"{value(planned):,.2f}", "USD",
                                f"({value(planned) - taken:+,.2f}", "USD)"], line
    assert len(lines) == 4
