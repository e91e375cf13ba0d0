"""Monitoring on January 2013: drift of a scored February day against the champion's training rows, realized money
once labels are known, the drift alarm the retraining sensor reads, and what happens when something is missing."""

from __future__ import annotations

import datetime as dt
import json
import math

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from ml_platform import names
from ml_platform.chain.instance import prepare_instance
from ml_platform.evaluation.predictions_file import read_predictions
from ml_platform.evaluation.realized import ON_TRACK, promised_interval, state_of
from ml_platform.monitoring.alarms import drift_alarm, monitoring_summary
from ml_platform.monitoring.drift import PSI_ALARM, SCORE, feature_psi, psi
from ml_platform.monitoring.outcomes import recorded_spec
from ml_platform.monitoring.reference_store import REFERENCE_FOLDER
from ml_platform.monitoring.store import replace_days
from ml_platform.snapshots.build import read_snapshot
from ml_platform.storage import registry
from ml_platform.storage.artifacts import ArtifactStore
from ml_platform.storage.warehouse import open_warehouse
from ml_platform_tests.evaluation.january import MODEL, Runs, january_project
from ml_platform_tests.monitoring.helpers import champion_scored_on, definition_psi, monitor

# drives chains of Dagster runs: the full suite only (`pytest -m "not slow"` leaves it out)
pytestmark = pytest.mark.slow

FEBRUARY_1, FEBRUARY_2 = dt.date(2013, 2, 1), dt.date(2013, 2, 2)


@pytest.fixture
def runs(tmp_path, monkeypatch) -> Runs:
    """The demo model deployed as champion on January, and February 1 scored."""
    return champion_scored_on(tmp_path, monkeypatch, FEBRUARY_1)


def check_result(run_id: str, name: str) -> dg.AssetCheckEvaluation:
    records = dg.DagsterInstance.get().all_logs(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION)
    return next(record.dagster_event.event_specific_data for record in records
                if record.dagster_event.event_specific_data.check_name == name)


def definition_psis(runs: Runs, version: str, day: dt.date, scopes: dict[str, list[str]]) -> dict[str, float]:
    """PSI of every feature and of the score of a day's rows that version scored, by the definition; a feature of
    `scopes` (constant within each day and group of the named features) by its values per day and group."""
    with open_warehouse(runs.project.storage.warehouse) as connection:
        trained = registry.models.by_version(connection, version)
        snapshot = registry.snapshots.get(connection, MODEL, trained.training_run)
        evaluation = registry.evaluations.get(connection, MODEL, trained.training_run)
        artifacts = ArtifactStore(root=str(runs.project.storage.artifacts))
        training = read_snapshot(connection, artifacts, snapshot)
        scores = read_predictions(connection, artifacts, evaluation.summary)
        stored = connection.execute(f"SELECT CAST(to_json(inputs) AS VARCHAR) AS inputs, score FROM "
                                    f"predictions.{MODEL}__latest WHERE partition_date = ? AND model_version = ?",
                                    [day, version]).df()
    features = list(snapshot.manifest.features)
    train = training.loc[training["split"] == "train"].reset_index(drop=True)
    inputs = pd.DataFrame([json.loads(text) for text in stored["inputs"]], columns=features)
    measured = {name: definition_psi(train[name], inputs[name]) for name in features if name not in scopes}
    for name, groups in scopes.items():
        # one value per training day (and group): the first present; the day's own, likewise
        reference = train.groupby(["partition_date", *groups], dropna=False)[name].first()
        current = inputs.groupby(groups, dropna=False)[name].first() if groups else inputs[name].dropna().head(1)
        bins = int(min(10, max(2, len(reference) / train["partition_date"].nunique() * 7 // 5)))
        measured[name] = definition_psi(reference.reset_index(drop=True), current.reset_index(drop=True), bins)
    measured[SCORE] = definition_psi(pd.Series(scores.loc[scores["split"] == "test", "score"].to_numpy(dtype=float)),
                                     pd.Series(stored["score"].to_numpy(dtype=float)))
    return measured


def test_psi_is_zero_for_the_same_population_and_large_for_a_shifted_one():
    generator = np.random.default_rng(0)
    reference = pd.Series(generator.normal(50, 10, 5000))
    assert feature_psi(reference, reference) == pytest.approx(0.0, abs=1e-9)
    assert feature_psi(reference, pd.Series(generator.normal(50, 10, 900))) < 0.1
    assert feature_psi(reference, pd.Series(generator.normal(65, 10, 900))) > PSI_ALARM
    # a feature that stops arriving drifts: missing values are a bin of their own
    assert feature_psi(reference, pd.Series([np.nan] * 900)) > PSI_ALARM
    # categories by their training shares; an unseen category counts too
    carriers = pd.Series(["UA"] * 50 + ["B6"] * 50)
    assert feature_psi(carriers, pd.Series(["UA"] * 90 + ["B6"] * 10)) == pytest.approx(psi([0.5, 0.5, 0, 0],
                                                                                            [0.9, 0.1, 0, 0]))
    assert feature_psi(carriers, pd.Series(["ZZ"] * 100)) > PSI_ALARM
    # by hand: two bins moving from 50/50 to 90/10
    assert psi([0.5, 0.5], [0.9, 0.1]) == pytest.approx(0.4 * math.log(1.8) - 0.4 * math.log(0.2))


def test_a_scored_day_is_measured_against_the_champions_training_rows(runs):
    outcome = monitor(runs, ["monitoring"], FEBRUARY_1, FEBRUARY_1)
    assert outcome.success, outcome.failures
    champion = runs.query("SELECT model_version FROM registry.promotions")[0][0]
    rows = runs.query(f"SELECT feature, psi, rows, model_version FROM monitoring.{MODEL}__drift ORDER BY feature")
    with open_warehouse(runs.project.storage.warehouse) as connection:
        trained = recorded_spec(connection, champion)  # the champion's own features, not today's spec's
    assert sorted(row[0] for row in rows) == sorted([*trained.features, SCORE])
    scored = runs.query(f"SELECT count(*) FROM predictions.{MODEL}__latest WHERE partition_date = DATE '2013-02-01'")
    assert {(row[2], row[3]) for row in rows} == {(scored[0][0], champion)}
    assert all(np.isfinite(row[1]) and row[1] >= 0 for row in rows)
    # features constant within a day (or a day and airport) are found in the training rows
    scopes = dict(runs.query(f"SELECT feature, scope FROM monitoring.{MODEL}__drift WHERE scope <> 'rows'"))
    assert scopes["day_of_week"] == scopes["days_to_holiday"] == "days"
    assert scopes["eve_temp_f"] == scopes["eve_pressure_mb"] == "days x origin_airport", scopes
    assert "departure_hour" not in scopes and "distance_miles" not in scopes
    groups = {name: scope.split(" x ")[1:] for name, scope in scopes.items()}
    # real features of a real day: the definition (bins afresh, each stored value's JSON coded alone) agrees
    assert {row[0]: row[1] for row in rows} == pytest.approx(definition_psis(runs, champion, FEBRUARY_1, groups))
    # the UI: the largest feature PSI as a float, a table of the top ones, and checks that warn
    metadata = dg.DagsterInstance.get().get_latest_materialization_event(
        names.stage_key("monitoring", MODEL)).asset_materialization.metadata
    assert metadata["max_feature_psi"].value == round(max(row[1] for row in rows if row[0] != SCORE), 3)
    assert metadata["prediction_psi"].value == round(next(row[1] for row in rows if row[0] == SCORE), 3)
    assert metadata["top_drift"].value.startswith("| day | feature | PSI, 7 days pooled | rows pooled |")
    for name in ("feature_drift", "prediction_drift"):
        check = check_result(outcome.run_id, name)
        assert check.severity == dg.AssetCheckSeverity.WARN and check.description.startswith("largest PSI ")
    # measuring the day again replaces its rows; the champion's snapshot bins, stored by the first run, are read
    # back: the same PSIs to the bit; removed, they are binned anew: the same PSIs and the same file, byte for byte
    folder = runs.project.storage.artifacts / REFERENCE_FOLDER
    [stored] = folder.glob("*.json")
    written = stored.read_bytes()
    for _ in ("read back", "binned anew"):
        assert monitor(runs, ["monitoring"], FEBRUARY_1, FEBRUARY_1).success
        again = runs.query(f"SELECT feature, psi, rows, model_version FROM monitoring.{MODEL}__drift ORDER BY "
                           f"feature")
        assert again == rows
        assert list(folder.glob("*.json")) == [stored] and stored.read_bytes() == written
        stored.unlink()


def test_realized_money_of_a_labelled_day_against_the_promise(runs):
    outcome = monitor(runs, ["outcomes"], FEBRUARY_1, FEBRUARY_2)
    assert outcome.success, outcome.failures
    stored = {str(row[0]): row[1:] for row in runs.query(
        f"SELECT day, status, realized_money, flagged, true_positives, false_positives, promised_money "
        f"FROM monitoring.{MODEL}__outcomes")}
    # February 2 was not scored: recorded as such, not failed
    assert stored["2013-02-02"][0] == "not scored: no production predictions of 2013-02-02"
    # February 1, measured independently in SQL with the spec's label and money
    expected = runs.query(
        "WITH o AS (SELECT flight_id, (dep_time IS NULL OR dep_delay > 15) AS label, "
        "  0.30 * 75 * coalesce(dep_delay, 180) - 500 AS tp FROM source.flights) "
        "SELECT sum(CASE WHEN p.flagged THEN CASE WHEN o.label THEN o.tp ELSE -500 END ELSE 0 END), "
        "count_if(p.flagged), count_if(p.flagged AND o.label), count_if(p.flagged AND NOT o.label) "
        f"FROM predictions.{MODEL}__latest p JOIN o USING (flight_id) WHERE p.partition_date = DATE '2013-02-01'")[0]
    status, realized, flagged, true_positives, false_positives, promised = stored["2013-02-01"]
    assert status == "labelled"
    assert (realized, flagged, true_positives, false_positives) == pytest.approx(expected)
    with open_warehouse(runs.project.storage.warehouse) as connection:
        champion = registry.promotions.champion(connection, MODEL)
        test = registry.evaluations.find(connection, model_version=champion.model_version).summary.test
    assert promised == pytest.approx(test.money / 6)  # the January test window has 6 days
    check = check_result(outcome.run_id, "realized_money")
    assert check.severity == dg.AssetCheckSeverity.WARN
    # the verdict: realized against the promise of one day, its interval the test window's scaled to one day
    promised_one, low, high = promised_interval(1, 6, test.money, *test.money_interval_95)
    state = state_of(realized, low)
    assert check.description.startswith(f"the trailing 1 judged day(s): {state}: realized {realized:,.0f} USD over "
                                        f"1 judged day(s) (2013-02-01 to 2013-02-01) against a promised "
                                        f"{promised_one:,.0f} (95% interval {low:,.0f} to {high:,.0f}")
    assert check.passed == (state == ON_TRACK)
    assert check.metadata["verdict"].value == state
    metadata = dg.DagsterInstance.get().get_latest_materialization_event(
        names.stage_key("outcomes", MODEL)).asset_materialization.metadata
    assert metadata["verdict"].value == state
    with open_warehouse(runs.project.storage.warehouse) as connection:
        summary = monitoring_summary(connection, MODEL, FEBRUARY_1, FEBRUARY_2)
    assert summary.days_labelled == 1 and summary.realized_money == pytest.approx(realized)
    assert summary.days[0].day == "2013-02-01" and summary.currency == "USD"
    assert [(verdict.state, verdict.days, verdict.model_version) for verdict in summary.verdicts] == [
        (state, 1, champion.model_version)]


def test_a_day_not_scored_is_not_monitored_and_says_so(runs):
    outcome = monitor(runs, ["monitoring"], FEBRUARY_1, FEBRUARY_2)
    assert not outcome.success
    assert any("1 day(s) of 'flight_delay' not scored yet (2013-02-02): materialize flight_delay/predictions" in reason
               for reason in outcome.failures), outcome.failures


def test_a_modified_snapshot_is_refused(runs):
    snapshot = runs.query("SELECT path FROM registry.snapshots s JOIN registry.promotions p USING (training_run)")[0][0]
    path = runs.project.storage.artifacts / snapshot
    path.chmod(0o644)
    with open(path, "ab") as handle:
        handle.write(b"tampered")
    outcome = monitor(runs, ["monitoring"], FEBRUARY_1, FEBRUARY_1)
    assert not outcome.success
    assert any(f"artifact {snapshot} was modified" in reason and "refusing to load it" in reason
               for reason in outcome.failures), outcome.failures


def test_without_a_champion_there_is_nothing_to_monitor(tmp_path, monkeypatch):
    project = january_project(tmp_path / "project")
    monkeypatch.setenv("DAGSTER_HOME", str(project.dagster_home))
    prepare_instance(project)
    outcome = monitor(Runs(project), ["monitoring"], FEBRUARY_1, FEBRUARY_1)
    assert not outcome.success
    assert any("no version of 'flight_delay' has been deployed: nothing is scored, nothing to monitor" in reason
               for reason in outcome.failures), outcome.failures


def test_the_drift_alarm_needs_prediction_drift_on_most_of_the_last_scored_days(runs):
    assert monitor(runs, ["monitoring"], FEBRUARY_1, FEBRUARY_1).success
    # the steadiest feature of February 1, as measured
    feature, measured = runs.query(f"SELECT feature, psi FROM monitoring.{MODEL}__drift WHERE feature <> '{SCORE}' "
                                   f"ORDER BY psi LIMIT 1")[0]
    assert measured <= PSI_ALARM
    with open_warehouse(runs.project.storage.warehouse) as connection:
        champion = registry.promotions.champion(connection, MODEL).model_version
        later = [FEBRUARY_1 + dt.timedelta(days=offset) for offset in range(1, 8)]  # February 2 to 8

        def measured_days(feature_psi: list[float], score_psi: list[float]) -> pd.DataFrame:
            """The later days as the monitoring asset stores them: one feature's PSI and the score's, per day."""
            return pd.DataFrame([{"day": day, "model_version": champion, "feature": name, "psi": value, "rows": 900,
                                  "computed_at": registry.now(), "run_id": "test"}
                                 for name, values in ((feature, feature_psi), (SCORE, score_psi))
                                 for day, value in zip(later, values)])

        calm = [0.05] * 7
        replace_days(connection, MODEL, "drift", measured_days([0.4] * 7, calm), later)
        features_only = drift_alarm(connection, MODEL, later[-1])  # one day's weather is not a reason to retrain
        replace_days(connection, MODEL, "drift", measured_days(calm, [0.3, 0.32, 0.34, 0.36, 0.05, 0.05, 0.05]),
                     later)
        four_days = drift_alarm(connection, MODEL, later[-1])
        replace_days(connection, MODEL, "drift", measured_days([0.4] * 7, [0.3, 0.32, 0.34, 0.36, 0.38, 0.05, 0.05]),
                     later)
        reason = drift_alarm(connection, MODEL, later[-1])
    assert features_only is None
    assert four_days is None
    assert reason == (f"{champion}: prediction drift: PSI of the score (pooled over 7 days) above 0.25 on 5 of the "
                      f"last 7 scored days "
                      f"(max 0.38); features drifting most: {feature} (7 days)"), reason
