"""A label that looks forward (a customer's spend in the 30 days after a visit): its values, when it matures, the
rows a snapshot leaves out (immature, or purged because their window reaches the next split) and the retraining
cut-off that waits for mature labels. A real DuckDB warehouse with the spend project's CSV sources; no Dagster."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from ml_platform import clock
from ml_platform.evaluation.evaluate import evaluate
from ml_platform.evaluation.report import render_report
from ml_platform.automation.cadence import Retraining, decide_retraining, last_labelled_day
from ml_platform.features.labels import label_lag_days, labels_known_through, matures_on
from ml_platform.features.library import load_catalog
from ml_platform.monitoring.outcomes import judged_versions
from ml_platform.partitions import training_run_key
from ml_platform.snapshots.build import SnapshotError, read_snapshot, snapshot_run
from ml_platform.specs.dependencies import dependency_rows
from ml_platform.storage.artifacts import ArtifactStore
from ml_platform.storage.warehouse import open_warehouse, prepare
from ml_platform.training.fit import train_model

from ml_platform_tests.helpers import REPO_ROOT, day
from ml_platform_tests.spend_project import load, write_project

UTC = dt.timezone.utc


@pytest.fixture
def spend(tmp_path: Path):
    """(connection, root) of the written spend project with an empty warehouse."""
    root = write_project(tmp_path / "spend")
    with open_warehouse(root / "warehouse.duckdb") as connection:
        prepare(connection)
        yield connection, root


def snapshot(connection: duckdb.DuckDBPyConnection, root: Path, catalog):
    model = catalog.models["spend"]
    store = ArtifactStore(root=str(root / "artifacts"))
    stored = snapshot_run(connection, store, catalog, model, training_run_key(model, catalog.spec_hash(model)))
    return stored.record, read_snapshot(connection, store, stored.record)


def expected_labels(root: Path) -> pd.Series:
    """Per visit: did its customer spend more than $50 in the 30 days after the visit's day (pandas, not SQL)."""
    visits = pd.read_csv(root / "data" / "visits.csv", parse_dates=["visited_on"])
    purchases = pd.read_csv(root / "data" / "purchases.csv", parse_dates=["purchased_on"])
    pairs = visits.merge(purchases, on="customer_id")
    later = pairs[(pairs["purchased_on"] > pairs["visited_on"])
                  & (pairs["purchased_on"] <= pairs["visited_on"] + pd.Timedelta(days=30))]
    spend = later.groupby("visit_id")["amount"].sum().reindex(visits["visit_id"], fill_value=0.0)
    return spend > 50


def test_the_label_is_the_spend_of_the_next_30_days_and_windows_reaching_the_next_split_are_purged(spend):
    connection, root = spend
    record, rows = snapshot(connection, root, load(connection, root))

    expected = expected_labels(root)
    assert rows["label"].tolist() == expected.loc[rows["visit_id"]].tolist()
    assert 0.2 < rows["label"].mean() < 0.9  # both classes, so the comparison above means something
    windows = record.manifest.label_windows
    # six visits a day: train rows from 2024-03-02 reach validation (from 04-01), validation rows from 04-16 reach
    # the test window (from 05-16)
    assert windows.purged == {"train": 30 * 6, "validation": 30 * 6}
    assert windows.immature_excluded == {"train": 0, "validation": 0, "test": 0}
    assert (windows.horizon_days, windows.mature_through) == (30, "2024-05-31")
    assert record.manifest.rows == {"train": 61 * 6, "validation": 15 * 6, "test": 16 * 6}
    by_split = rows.groupby("split")["partition_date"].agg(["min", "max"])
    assert str(by_split.loc["train", "max"])[:10] == "2024-03-01"
    assert str(by_split.loc["validation", "max"])[:10] == "2024-04-15"
    # the labels' windows are pinned: purchases through the last test day + 30
    assert record.manifest.source_data_versions["purchases"].last == "2024-06-30"


def test_labels_not_mature_by_the_clock_are_left_out_and_counted(spend):
    connection, root = spend
    catalog = load(connection, root)
    with clock.simulated(dt.datetime(2024, 6, 20, 12, tzinfo=UTC)):
        record, rows = snapshot(connection, root, catalog)

    # a visit's label matures 31 days after its day: on 2024-06-20 the labels of visits through 05-20 are
    assert label_lag_days(catalog, catalog.models["spend"]) == 31
    windows = record.manifest.label_windows
    assert (windows.mature_through, windows.as_of) == ("2024-05-20", "2024-06-20")
    assert windows.immature_excluded == {"train": 0, "validation": 0, "test": 11 * 6}
    assert str(rows["partition_date"].max())[:10] == "2024-05-20"
    assert record.manifest.rows["test"] == 5 * 6


def test_labels_wait_for_every_day_of_their_window_to_be_stored(spend):
    connection, root = spend
    catalog = load(connection, root, purchases_through=day("2024-06-15"))
    record, rows = snapshot(connection, root, catalog)

    windows = record.manifest.label_windows
    assert windows.mature_through == "2024-05-16"  # its window ends on 06-15, the last purchases day stored
    assert windows.immature_excluded["test"] == 15 * 6
    assert str(rows["partition_date"].max())[:10] == "2024-05-16"
    assert record.manifest.source_data_versions["purchases"].last == "2024-06-15"


def test_a_run_whose_test_window_has_no_mature_label_is_refused(spend):
    connection, root = spend
    catalog = load(connection, root)
    with clock.simulated(dt.datetime(2024, 6, 10, 12, tzinfo=UTC)), pytest.raises(SnapshotError) as caught:
        snapshot(connection, root, catalog)

    assert str(caught.value).startswith(
        "training run '2024-05-31_") and str(caught.value).endswith(
        "of 'spend': no row of its test window (2024-05-16 to 2024-05-31) has a usable label on 2024-06-10: a "
        "row's label is mature 31 day(s) after its day (horizon 30 day(s), then the day's end) and needs every day "
        "of its window stored in purchases, visits; labels are usable through 2024-05-10")


def test_maturity_of_one_day_by_the_clock_and_by_the_stored_window(spend):
    connection, root = spend
    catalog = load(connection, root, purchases_through=day("2024-06-15"))
    model = catalog.models["spend"]

    assert matures_on(catalog, model, day("2024-05-01")) == day("2024-06-01")
    assert labels_known_through(connection, catalog, model, day("2024-05-01"), day("2024-05-31")) is None
    assert labels_known_through(connection, catalog, model, day("2024-05-01"), day("2024-06-01")) == day("2024-05-01")
    assert labels_known_through(connection, catalog, model, day("2024-05-16"), day("2024-08-01")) == day("2024-05-16")
    assert labels_known_through(connection, catalog, model, day("2024-05-17"), day("2024-08-01")) is None


def test_retraining_waits_for_mature_labels(spend):
    connection, root = spend
    catalog = load(connection, root)
    model = catalog.models["spend"]

    # with the outcome known the next morning (the demo's rule) June 25 would have cut a run off on May 31
    assert last_labelled_day(connection, catalog, model, day("2024-06-25")) == day("2024-05-25")
    decision = decide_retraining(connection, catalog, model, day("2024-06-25"), [])
    assert isinstance(decision, Retraining)
    assert (decision.cutoff, decision.reason) == (day("2024-04-30"), "first training run: data through 2024-04-30")
    # every label is mature by July; the purchases stored through June 30 cap the labelled run at May 31
    assert last_labelled_day(connection, catalog, model, day("2024-08-01")) == day("2024-05-31")


def test_the_demo_label_matures_the_morning_after_and_keeps_its_spec_hash():
    catalog = load_catalog(REPO_ROOT / "model_specs", REPO_ROOT)
    model = catalog.models["flight_delay"]

    assert label_lag_days(catalog, model) == 1
    assert catalog.spec_hash(model) == "5b8c306affc0"
    assert catalog.model_payload(model)["model"]["label"] == {
        "task": "binary_classification", "expression": "dep_time IS NULL OR dep_delay > 15"}


def test_the_evaluation_report_says_how_many_rows_were_purged_and_left_out(spend):
    connection, root = spend
    catalog = load(connection, root)
    model = catalog.models["spend"]
    store = ArtifactStore(root=str(root / "artifacts"))
    training_run = training_run_key(model, catalog.spec_hash(model))
    with clock.simulated(dt.datetime(2024, 6, 20, 12, tzinfo=UTC)):
        snapshot_run(connection, store, catalog, model, training_run)
    train_model(connection, store, catalog, model, training_run)
    summary = evaluate(connection, store, catalog, model, training_run).summary

    assert summary.label_windows.purged == {"train": 180, "validation": 180}
    assert summary.test.rows == 5 * 6
    assert ("The label reads the 30 days after each row's day. Purged because their label window reaches the next "
            "window: 180 training rows (into validation) and 180 validation rows (into test). Left out because "
            "their label was not mature on 2024-06-20 (labels usable through 2024-05-20): 0 train, 0 validation, "
            "66 test.") in render_report(summary)


def test_outcomes_of_a_day_are_judged_again_once_its_labels_mature(spend):
    connection, root = spend
    catalog = load(connection, root)
    model = catalog.models["spend"]
    with clock.simulated(dt.datetime(2024, 6, 1, 12, tzinfo=UTC)):
        before = judged_versions(connection, catalog, model, day("2024-05-01"), day("2024-05-02"))
    with clock.simulated(dt.datetime(2024, 6, 2, 12, tzinfo=UTC)):
        after = judged_versions(connection, catalog, model, day("2024-05-01"), day("2024-05-02"))

    assert "labels_not_mature" not in before["2024-05-01"].components
    assert before["2024-05-02"].components["labels_not_mature"] is True
    assert after["2024-05-01"] == before["2024-05-01"] and after["2024-05-02"] != before["2024-05-02"]
    assert len(after["2024-05-02"].components["label_window"]["purchases"]) == 30


def test_the_label_s_source_is_a_dependency_of_the_model_that_feeds_no_feature(tmp_path):
    root = write_project(tmp_path / "spend")
    catalog = load_catalog(root / "model_specs", root)

    assert dependency_rows(catalog, catalog.models["spend"]) == [
        ("purchases", "internal", "daily", "label (aggregates over the horizon)", "none (the label only)",
         "not needed (internal)"),
        ("visits", "internal", "daily", "entity (rows, label, money)", "all", "not needed (internal)")]
