"""The beats_champion gate check, deployment's own verification, and shadow scoring, on January 2013."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import pandas as pd
import pytest

from ml_platform import names
from ml_platform.evaluation.comparison import beats_champion
from ml_platform.evaluation.money import OutcomeValues
from ml_platform.evaluation.predictions_file import read_predictions
from ml_platform.monitoring.store import replace_days
from ml_platform.scoring.shadow import shadow_comparison
from ml_platform.features.library import load_catalog
from ml_platform.storage import registry
from ml_platform.storage.artifacts import ArtifactStore
from ml_platform.storage.warehouse import open_warehouse
from ml_platform_tests.helpers import january_model, load_yaml, write_yaml
from ml_platform_tests.evaluation.january import MODEL, latest_event, strong_model, useless_model

# drives chains of Dagster runs: the full suite only (`pytest -m "not slow"` leaves it out)
pytestmark = pytest.mark.slow

FEBRUARY = (dt.date(2013, 2, 1), dt.date(2013, 2, 2))


def check_evaluation(run_id: str, name: str) -> dg.AssetCheckEvaluation:
    records = dg.DagsterInstance.get().all_logs(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION)
    return next(record.dagster_event.event_specific_data for record in records
                if record.dagster_event.event_specific_data.check_name == name)


def test_a_worse_model_is_blocked_by_the_champion_which_keeps_scoring(runs, state):
    worse = runs.train(useless_model())
    assert not worse.outcome.success
    gate = worse.evaluation.summary.gate
    assert [name for name, _ in gate.failures()] == ["beats_champion"]
    assert gate.beats_champion.details.champion == state.champion
    assert gate.beats_champion.details.gain < 0
    assert any(failure.startswith("gate check beats_champion failed: does not beat the champion by the margin of "
                                  "0 USD: ") for failure in worse.outcome.failures), worse.outcome.failures
    # the UI names the check, the champion and the money
    check = check_evaluation(worse.outcome.run_id, "beats_champion")
    assert not check.passed and state.champion in check.description
    assert check.metadata["champion"].value == state.champion
    # nothing was promoted; the champion keeps scoring
    assert worse.champion.model_version == state.champion
    assert runs.query("SELECT count(*) FROM registry.promotions") == [(1,)]
    assert runs.score(*FEBRUARY).success
    scored = runs.query("SELECT DISTINCT model_version FROM predictions.flight_delay__latest "
                        "WHERE partition_date = DATE '2013-02-02'")
    assert scored == [(state.champion,)]


def test_a_better_model_beats_the_champion_on_the_same_rows(runs, state):
    with open_warehouse(runs.project.storage.warehouse) as connection:
        champion = registry.evaluations.get(connection, MODEL, state.champion_run)
        challenger = registry.evaluations.get(connection, MODEL, state.challenger_run)
    check = challenger.summary.gate.beats_champion
    details = check.details
    assert check.passed, check.why
    assert details.champion == state.champion and details.rows == challenger.summary.test.rows
    # the champion, scored again with its own spec and threshold on the same rows, makes exactly its own test money
    assert details.champion_money == champion.summary.test.money
    assert details.challenger_money == challenger.summary.test.money
    assert details.gain > 0 and 0 < details.gain_interval_95[0] < details.gain
    assert check.why.startswith("beats the champion by at least 0 USD, clear of 0: ")

    # the same comparison with a margin larger than the gain fails, saying so
    catalog = load_catalog(runs.project.specs_dir, runs.project.root)
    model = catalog.models[MODEL]
    demanding = model.model_copy(update={"gate": model.gate.model_copy(
        update={"min_gain_over_champion": details.gain + 1})})
    store = ArtifactStore(root=str(runs.project.storage.artifacts))
    with open_warehouse(runs.project.storage.warehouse) as connection:
        rows = read_predictions(connection, store, challenger.summary)
        test = rows[rows["split"] == "test"].reset_index(drop=True)
        values = OutcomeValues(test["money_if_flagged"].to_numpy(), test["money_if_not_flagged"].to_numpy())
        result = beats_champion(connection, store, catalog, demanding, state.challenger, test, values,
                                test["flagged"].to_numpy(), seed=model.algorithm.seed)
    assert not result.passed
    assert result.why.startswith(f"does not beat the champion by the margin of {details.gain + 1:,.0f} USD")

    # deployment re-verifies the stored gate and promotes it
    deployed = runs.deploy(state.challenger_run)
    assert deployed.success, deployed.failures
    assert runs.query("SELECT model_version FROM registry.promotions ORDER BY promotion_id") == [
        (state.champion,), (state.challenger,)]


def test_a_champion_whose_features_changed_is_compared_through_its_stored_test_predictions(runs, state):
    # the champion was trained on aircraft_and_destination; its SQL changes; the challenger does not use it
    path = runs.project.specs_dir / "features" / "aircraft_and_destination.yaml"
    document = load_yaml(path)
    assert "planes.seats " in document["sql"]
    document["sql"] = document["sql"].replace("planes.seats ", "planes.seats * 1 ")
    write_yaml(path, document)
    challenger = january_model(features=["departure_hour", "carrier_code", "eve_day_precip_in",
                                         "carrier_disruption_rate_14d"])
    trained = runs.train(challenger)
    check = trained.evaluation.summary.gate.beats_champion
    # the champion cannot score with today's features, but its evaluation kept its scores for these very rows
    assert check.details.champion == state.champion
    assert check.details.champion_scores_from == "its own evaluation on the same test rows"
    assert "cannot be scored" not in check.why
    assert trained.outcome.success == check.passed
    # a waiver in the spec still lets a model deploy without the comparison
    challenger["gate"]["min_gain_over_champion"] = None
    challenger["algorithm"]["seed"] = 5
    waived = runs.train(challenger)
    check = waived.evaluation.summary.gate.beats_champion
    assert check.passed and check.details.waived
    assert check.why.startswith("waived by the spec (gate.min_gain_over_champion is null), so it passes")


def test_deployment_compares_again_when_the_champion_changed_since_the_evaluation(runs, state):
    other = strong_model()
    other["algorithm"]["seed"] = 7  # as good as the challenger, within noise
    evaluated = runs.train(other, deploy=False)
    assert evaluated.outcome.success, evaluated.outcome.failures
    assert evaluated.evaluation.summary.gate.beats_champion.details.champion == state.champion
    assert runs.deploy(state.challenger_run).success
    refused = runs.deploy(evaluated.training_run)
    assert not refused.success and refused.refused and refused.blocked  # blocked by the gate, not broken
    assert any(f"the champion changed since it was evaluated (compared with {state.champion}, now "
               f"{state.challenger}) and, compared again, beats_champion fails: " in failure
               for failure in refused.failures), refused.failures
    assert runs.query("SELECT count(*) FROM registry.promotions") == [(2,)]


def test_the_challenger_scores_in_shadow_and_is_compared_in_money(runs, state):
    assert runs.score(*FEBRUARY).success
    shadow = runs.query("SELECT model_version, count(*), count(promotion_id), any_value(shadowing), "
                        "count(DISTINCT code_version) FROM predictions.flight_delay__shadow GROUP BY ALL")
    production = runs.query("SELECT count(*) FROM predictions.flight_delay__latest "
                            "WHERE partition_date BETWEEN DATE '2013-02-01' AND DATE '2013-02-02'")
    assert shadow == [(state.challenger, production[0][0], 0, state.champion, 1)]
    # the comparison, measured independently in SQL on the same rows
    expected = runs.query(
        "WITH o AS (SELECT flight_id, (dep_time IS NULL OR dep_delay > 15) AS label, "
        "  0.30 * 75 * coalesce(dep_delay, 180) - 500 AS tp FROM source.flights) "
        "SELECT sum(CASE WHEN p.flagged THEN CASE WHEN o.label THEN o.tp ELSE -500 END ELSE 0 END), "
        "       sum(CASE WHEN s.flagged THEN CASE WHEN o.label THEN o.tp ELSE -500 END ELSE 0 END), count(*) "
        "FROM predictions.flight_delay__latest p JOIN predictions.flight_delay__shadow s USING (flight_id) "
        "JOIN o USING (flight_id)")[0]
    catalog = load_catalog(runs.project.specs_dir, runs.project.root)
    with open_warehouse(runs.project.storage.warehouse) as connection:
        comparison = shadow_comparison(connection, catalog, catalog.models[MODEL], state.challenger)
    assert (comparison["champion_money"], comparison["challenger_money"], comparison["rows"]) == expected
    assert comparison["days"] == 2 and comparison["champions"] == [state.champion]
    low, high = comparison["gain_interval_95"]
    assert low <= comparison["gain"] <= high
    metadata = latest_event(names.stage_key("predictions", MODEL)).asset_materialization.metadata
    assert metadata["shadow_model_version"].value == state.challenger
    assert metadata["shadow_comparison"].value.startswith(f"on {expected[2]:,} labelled rows of 2 day(s)")
    assert metadata["shadow_gain_USD"].value == round(comparison["gain"])


def _store_losing_week(connection, champion: str, last_day: dt.date) -> float:
    """Seven judged production days of the champion up to last_day, each losing 1,000 USD; returns the total."""
    test = registry.evaluations.find(connection, model_version=champion).summary.test
    first, end = (dt.date.fromisoformat(day) for day in test.window)
    days = (end - first).days + 1
    low, high = test.money_interval_95
    rows = [{"day": last_day - dt.timedelta(days=offset), "status": "labelled", "model_version": champion,
             "rows_scored": 100, "labelled_rows": 100, "flagged": 10, "true_positives": 2, "false_positives": 8,
             "realized_money": -1000.0, "promised_money": test.money / days, "promised_money_by_rows": 0.0,
             "promised_low": low / days, "promised_high": high / days, "test_days": days, "currency": "USD",
             "computed_at": dt.datetime(2013, 2, 1), "run_id": "test"} for offset in range(7)]
    replace_days(connection, MODEL, "outcomes", pd.DataFrame(rows), [row["day"] for row in rows])
    return -7000.0


def _compare(runs, connection, evaluation):
    catalog = load_catalog(runs.project.specs_dir, runs.project.root)
    model = catalog.models[MODEL]
    store = ArtifactStore(root=str(runs.project.storage.artifacts))
    rows = read_predictions(connection, store, evaluation.summary)
    test = rows[rows["split"] == "test"].reset_index(drop=True)
    values = OutcomeValues(test["money_if_flagged"].to_numpy(), test["money_if_not_flagged"].to_numpy())
    return test, beats_champion(connection, store, catalog, model, evaluation.model_version, test, values,
                                test["flagged"].to_numpy(), seed=model.algorithm.seed)


def test_the_champions_realized_money_is_part_of_the_comparison_and_says_so(runs, state):
    with open_warehouse(runs.project.storage.warehouse) as connection:
        challenger = registry.evaluations.get(connection, MODEL, state.challenger_run)
        test, before = _compare(runs, connection, challenger)
        # no realized money yet: the comparison says it is not known, and the interval rule decides
        assert before.passed and before.details.rule == "clearly better"
        assert before.details.champion_realized_verdict is None
        assert "the champion's realized money is not known for 7 judged days" in before.why
        end = pd.Timestamp(test["partition_date"].max()).date()
        realized = _store_losing_week(connection, state.champion, end)
        _, after = _compare(runs, connection, challenger)
        # days judged after the test window are not evidence for it
        _store_losing_week(connection, state.champion, end + dt.timedelta(days=30))
        _, unchanged = _compare(runs, connection, challenger)
    details = after.details
    assert after.passed and details.rule == "champion under water"
    assert details.champion_realized_verdict == "losing money" and details.champion_realized_money == realized
    assert details.champion_realized_window == ((end - dt.timedelta(days=6)).isoformat(), end.isoformat())
    assert after.why.startswith("beats a champion under water by at least 0 USD on the point estimate (the interval "
                                "requirement is dropped because the champion is losing money in production)")
    assert "in production the champion is losing money: realized -7,000 USD over 7 judged day(s)" in after.why
    assert unchanged.details.champion_realized_window == details.champion_realized_window


def test_a_worse_challenger_stays_blocked_by_a_champion_losing_money(runs, state):
    worse = runs.train(useless_model())
    assert not worse.outcome.success
    with open_warehouse(runs.project.storage.warehouse) as connection:
        test, _ = _compare(runs, connection, worse.evaluation)
        _store_losing_week(connection, state.champion, pd.Timestamp(test["partition_date"].max()).date())
        _, check = _compare(runs, connection, worse.evaluation)
    assert not check.passed and check.details.rule == "champion under water"
    assert check.why.startswith("does not beat the champion, even under water")
