"""`ml-platform explain`: one production prediction and everything that made it."""

from __future__ import annotations

import pytest

from ml_platform.cli import main

from ml_platform_tests.provenance.helpers import SCHEDULE_FEATURES, WEAK_FEATURES, fetch, query

# drives chains of Dagster runs: the full suite only (`pytest -m "not slow"` leaves it out)
pytestmark = pytest.mark.slow


def predictions_of(history, flight_id: str) -> list[dict]:
    """Every prediction of a flight, newest first."""
    rows = query(history.project, "SELECT score, flagged, threshold, model_version, promotion_id, scored_at, "
                                  "dagster_run_id, code_version, inputs FROM predictions.flight_delay "
                                  "WHERE flight_id = ? ORDER BY scored_at DESC", flight_id)
    names = ("score", "flagged", "threshold", "model_version", "promotion_id", "scored_at", "dagster_run_id",
             "code_version", "inputs")
    return [dict(zip(names, row)) for row in rows]


def first_flight(history, day: str) -> str:
    return query(history.project, "SELECT min(flight_id) FROM predictions.flight_delay WHERE partition_date = ?",
                 day)[0][0]


def test_explain_answers_every_question_about_a_prediction_scored_twice(history, capsys):
    flight = first_flight(history, "2013-02-02")
    latest, earlier = predictions_of(history, flight)
    assert latest["model_version"] == history.second and earlier["model_version"] == history.first

    assert main(history.run("explain", "flight_delay", flight)) == 0
    output = capsys.readouterr().out
    model = fetch(history.project, "models", model_version=history.second)
    snapshot = fetch(history.project, "snapshots", model="flight_delay", training_run=history.second_run)
    promotion = fetch(history.project, "promotions", promotion_id=2)
    decision = "FLAGGED" if latest["flagged"] else "not flagged"
    comparison = "≥" if latest["flagged"] else "<"
    expected_lines = [
        f"Prediction of flight_delay for flights flight_id '{flight}', dated 2013-02-02",
        f"  score         {latest['score']:.4f} {comparison} threshold {latest['threshold']:.4f}: {decision}",
        f"  scored at     {latest['scored_at']:%Y-%m-%d %H:%M:%S} UTC by Dagster run {latest['dagster_run_id']}",
        f"  model         {history.second} (lightgbm, seed 13), trained {model.created_at:%Y-%m-%d %H:%M:%S} UTC "
        f"in training run {history.second_run}",
        f"  made live by  promotion #2 at {promotion.promoted_at:%Y-%m-%d %H:%M:%S} UTC of training run "
        f"{history.second_run} (Dagster run {promotion.dagster_run_id}): {promotion.reason}",
        f"  snapshot      {snapshot.snapshot_id}: train 2013-01-01 to 2013-01-20, validation 2013-01-21 to "
        f"2013-01-25, test 2013-01-26 to 2013-01-31; 27,004 rows (train 17,314, validation 4,546, test 5,144)",
        f"  code version  {latest['code_version']} when scoring; {model.card.code_version} when training",
        f"  spec          spec hash {model.spec_hash}, recorded ",
        "Feature values the model saw (4):",
    ]
    for line in expected_lines:
        assert line in output, line
    # the table's inputs hold both revisions' features (one STRUCT); explain shows those of this prediction's spec
    assert list(latest["inputs"]) == [*WEAK_FEATURES, *SCHEDULE_FEATURES] and latest["inputs"]["distance_miles"] is None
    inputs = {name: latest["inputs"][name] for name in SCHEDULE_FEATURES}
    assert "distance_miles" not in output
    for name, value in inputs.items():
        shown = f"{value:.6g}" if isinstance(value, float) else str(value)
        assert any(line.split() == [name, shown, "(flight_schedule)"] for line in output.splitlines()), name
    # the spec as recorded then (revision 2), not today's file, as YAML
    spec = output.split(f"Spec of flight_delay as recorded then (spec hash {model.spec_hash}); --full-spec adds "
                        f"its feature sets and sources:\n")[1]
    for line in ("  features:\n  - departure_hour\n  - day_of_week\n  - carrier_code\n  - origin_airport\n",
                 "    false_positive: '-500'\n", "  algorithm:\n    kind: lightgbm\n    seed: 13\n"):
        assert line in spec, line
    assert output.rstrip().endswith(
        f"Scored 1 other time before, newest first:\n  {earlier['scored_at']:%Y-%m-%d %H:%M:%S} UTC  2013-02-02  "
        f"{history.first}  score {earlier['score']:.4f}  {'FLAGGED' if earlier['flagged'] else 'not flagged'}  "
        f"promotion #1  Dagster run {earlier['dagster_run_id']}")


def test_explain_a_prediction_of_the_first_champion_with_its_full_recorded_spec(history, capsys):
    flight = first_flight(history, "2013-02-01")
    assert main(history.run("explain", "flight_delay", flight, "--date", "2013-02-01", "--full-spec")) == 0
    output = capsys.readouterr().out
    promotion = fetch(history.project, "promotions", promotion_id=1)
    assert f"  model         {history.first} (lightgbm, seed 13)" in output
    assert f"  made live by  promotion #1 at {promotion.promoted_at:%Y-%m-%d %H:%M:%S} UTC" in output
    assert "Feature values the model saw (1):\n  distance_miles" in output
    assert "    false_positive: '-5000'\n" in output  # revision 1's money, as recorded
    assert "\n  # feature set flight_schedule\n" in output and "\n  # source flights\n" in output
    assert "  sql: |\n    SELECT\n      flight_id,\n" in output
    assert "other time" not in output


def test_explain_says_which_day_a_key_was_scored_for(history, capsys):
    flight = first_flight(history, "2013-02-02")
    assert main(history.run("explain", "flight_delay", flight, "--date", "2013-02-01")) == 2
    assert capsys.readouterr().err.strip() == (
        f"error: flight_id '{flight}' was not scored for 2013-02-01 by flight_delay; it was scored for 2013-02-02")


def test_explain_a_flight_that_exists_but_was_never_scored(history, capsys):
    flight = query(history.project, "SELECT min(flight_id) FROM source.flights WHERE partition_date = ?",
                   "2013-01-15")[0][0]
    assert main(history.run("explain", "flight_delay", flight)) == 2
    scored = query(history.project, "SELECT count(*) FROM predictions.flight_delay")[0][0]
    assert capsys.readouterr().err.strip() == (
        f"error: flight_id '{flight}' is a flights row dated 2013-01-15, but flight_delay never scored it "
        f"(flight_delay scored {scored:,} rows dated 2013-02-01 to 2013-02-02)")


def test_explain_an_unknown_key_suggests_the_closest_scored_one(history, capsys):
    flight = first_flight(history, "2013-02-01")
    typo = flight[:-1] + "X"
    assert main(history.run("explain", "flight_delay", typo)) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith(f"error: no flights row has flight_id '{typo}'; did you mean '{flight}'? "
                            f"(flight_delay scored ")


@pytest.mark.parametrize("model, message", [
    ("flight_dela", "error: no predictions of model 'flight_dela'; did you mean 'flight_delay'? "
                    "(models with predictions: flight_delay)"),
    ("flight_delay_lr", "error: model 'flight_delay_lr' has training runs but has not scored anything yet "
                        "(models with predictions: flight_delay)"),
])
def test_explain_for_a_model_without_predictions_names_the_models_that_have_some(history, capsys, model, message):
    assert main(history.run("explain", model, "2013-02-01-UA1545-EWR")) == 2
    assert capsys.readouterr().err.strip() == message


def test_explain_refuses_a_date_that_is_not_one(history, capsys):
    with pytest.raises(SystemExit) as stopped:
        main(history.run("explain", "flight_delay", "2013-02-01-UA1545-EWR", "--date", "2013-02-30"))
    assert stopped.value.code == 2
    assert "argument --date: '2013-02-30' is not a date YYYY-MM-DD" in capsys.readouterr().err


def test_explain_checks_the_artifact_of_the_model_that_made_the_prediction(history, tmp_path, capsys):
    flight = first_flight(history, "2013-02-02")
    assert main(history.run("explain", "flight_delay", flight)) == 0
    row = fetch(history.project, "models", model_version=history.second)
    assert f"  artifact      {row.path}: SHA-256 verified" in capsys.readouterr().out

    project = history.copy(tmp_path)
    stored = project.storage.artifacts / row.path
    stored.write_bytes(b"not the model" + stored.read_bytes())
    assert main(["--project", str(project.root), "explain", "flight_delay", flight]) == 1
    captured = capsys.readouterr()
    assert f"  artifact      {row.path}: FAILS its check (TAMPERED): artifact {row.path} was modified" in captured.out
    assert (f"error: the model that made this prediction, {history.second}, fails its integrity check: artifact "
            f"{row.path} was modified: its SHA-256 is ") in captured.err
    # a missing artifact fails the same way
    stored.unlink()
    assert main(["--project", str(project.root), "explain", "flight_delay", flight]) == 1
    assert f"artifact {row.path} is missing from" in capsys.readouterr().err
