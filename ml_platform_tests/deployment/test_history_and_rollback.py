"""`ml-platform history` and `ml-platform rollback` on a project with two promoted versions."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import pytest

from ml_platform.cli import main
from ml_platform_tests.evaluation.january import MODEL

# drives chains of Dagster runs: the full suite only (`pytest -m "not slow"` leaves it out)
pytestmark = pytest.mark.slow


def cli(runs, capsys, *arguments: str) -> tuple[int, str, str]:
    code = main(["--project", str(runs.project.root), *arguments])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def promotions(runs) -> list[tuple]:
    return runs.query("SELECT promotion_id, model_version, promoted_at, reason, dagster_run_id "
                      "FROM registry.promotions ORDER BY promotion_id")


def between(first: dt.datetime, second: dt.datetime) -> str:
    return (first + (second - first) / 2).isoformat()


@pytest.fixture
def two_promoted(runs, state):
    """The champion, then the challenger promoted over it."""
    assert runs.deploy(state.challenger_run).success
    return runs


def test_rollback_then_history_at_any_time_gives_the_version_live_then(two_promoted, state, capsys):
    runs = two_promoted
    code, out, err = cli(runs, capsys, "rollback", MODEL, "--reason", "complaints from dispatch")
    assert code == 0, err
    assert out.splitlines()[0].startswith(f"{MODEL}: rolled back from {state.challenger} to {state.champion} "
                                          f"(promotion #3 at ")
    log = promotions(runs)
    assert [(row[0], row[1]) for row in log] == [(1, state.champion), (2, state.challenger), (3, state.champion)]
    assert log[2][3] == (f"rollback from {state.challenger} to {state.champion} (promotion #1): "
                         f"complaints from dispatch")
    assert log[2][4] == "ml-platform rollback"
    times = [row[2] for row in log]
    answers = {
        (times[0] - dt.timedelta(hours=1)).isoformat(): "nothing",
        between(times[0], times[1]): state.champion,
        times[1].isoformat(): state.challenger,  # live from the moment of its promotion
        between(times[1], times[2]): state.challenger,
        (times[2] + dt.timedelta(seconds=1)).isoformat(): state.champion,
    }
    for moment, expected in answers.items():
        code, out, err = cli(runs, capsys, "history", MODEL, "--at", moment)
        assert code == 0, err
        first = out.splitlines()[0]
        assert first.startswith("live at ") and f" UTC: {expected}" in first, (moment, first)
    # a time with an offset is converted to UTC
    local = (times[1] + (times[2] - times[1]) / 2).replace(tzinfo=dt.timezone.utc).astimezone(
        dt.timezone(dt.timedelta(hours=-5)))
    code, out, _ = cli(runs, capsys, "history", MODEL, "--at", local.isoformat())
    assert f" UTC: {state.challenger} (promotion #2 at " in out.splitlines()[0]
    # the whole log, newest last, the champion marked
    code, out, _ = cli(runs, capsys, "history", MODEL)
    lines = out.splitlines()
    assert lines[0] == f"{MODEL}: 3 promotion(s), times in UTC, newest last"
    assert lines[1].startswith("  #1   ") and state.champion in lines[1] and "until " in lines[1]
    assert lines[5].startswith("  #3   ") and lines[5].endswith("LIVE (champion)")
    assert lines[6] == f"        reason: {log[2][3]}"
    # the rollback shows on the deployment asset in the UI, and production scores with the rolled-back version
    event = dg.DagsterInstance.get().get_latest_materialization_event(dg.AssetKey([MODEL, "deployment"]))
    assert event.asset_materialization.metadata["outcome"].value == "rolled back"
    assert event.asset_materialization.partition == state.champion_run
    assert runs.score(dt.date(2013, 2, 2), dt.date(2013, 2, 2)).success
    assert runs.query("SELECT DISTINCT model_version, promotion_id FROM predictions.flight_delay__latest "
                      "WHERE partition_date = DATE '2013-02-02'") == [(state.champion, 3)]


def test_rollback_to_a_named_version_and_errors_on_bad_input(two_promoted, state, capsys):
    runs = two_promoted
    code, _, err = cli(runs, capsys, "rollback", MODEL, "--to", "flight_delay-000000000000")
    assert code == 2
    assert err == (f"error: flight_delay-000000000000 was never promoted for '{MODEL}', so it cannot be rolled "
                   f"back to (promoted versions: {state.champion})\n")
    code, _, err = cli(runs, capsys, "rollback", MODEL, "--to", state.challenger)
    assert code == 2 and err == (f"error: {state.challenger} is already the champion of '{MODEL}' "
                                 f"(earlier versions: {state.champion})\n")
    code, _, err = cli(runs, capsys, "rollback", "flight_dealy")
    assert code == 2 and err == f"error: no model named 'flight_dealy' (models: {MODEL})\n"
    code, _, err = cli(runs, capsys, "history", "flight_dealy")
    assert code == 2 and err == f"error: no model named 'flight_dealy' (models: {MODEL})\n"
    code, _, err = cli(runs, capsys, "history", MODEL, "--at", "yesterday")
    assert code == 2 and err.startswith("error: --at 'yesterday' is not an ISO 8601 date or time")
    assert len(promotions(runs)) == 2

    code, out, err = cli(runs, capsys, "rollback", MODEL, "--to", state.champion)
    assert code == 0, err
    assert promotions(runs)[-1][1] == state.champion
    # back again to the version just rolled back from: it was promoted before, so it may be
    code, out, err = cli(runs, capsys, "rollback", MODEL)
    assert code == 0, err
    assert [row[1] for row in promotions(runs)] == [state.champion, state.challenger, state.champion,
                                                     state.challenger]


def test_nothing_to_roll_back_to(runs, state, capsys):
    code, _, err = cli(runs, capsys, "rollback", MODEL)
    assert code == 2
    assert err == (f"error: only {state.champion} has ever been promoted for '{MODEL}': there is no earlier "
                   f"version to roll back to\n")


def test_a_rollback_refused_by_the_deployment_checks_exits_3_blocked(two_promoted, state, capsys):
    runs = two_promoted
    path = runs.query("SELECT path FROM registry.models WHERE model_version = ?", state.champion)[0][0]
    stored = runs.project.storage.artifacts / path
    stored.write_bytes(stored.read_bytes() + b"\0")
    code, _, err = cli(runs, capsys, "rollback", MODEL, "--to", state.champion)
    assert code == 3
    assert err.startswith(f"error: cannot roll back to {state.champion}: artifact {path} was modified")
    assert len(promotions(runs)) == 2
