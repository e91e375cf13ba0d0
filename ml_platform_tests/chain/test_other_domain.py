"""A model whose rows are not flights: a tiny synthetic shop whose orders may be returned, run end to end by
`ml-platform demo`. Its output, report, plots and Dagster metadata speak of its own entity, never of flights."""

from __future__ import annotations

import datetime as dt
import re
import shutil

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from ml_platform import names
from ml_platform.cli import main
from ml_platform.storage import registry
from ml_platform.storage.warehouse import open_warehouse
from ml_platform_tests.helpers import REPO_ROOT, project_at, write_yaml

pytestmark = pytest.mark.slow  # a chain of Dagster runs

# the demo's domain: none of it may reach the output of a model about something else
DEMO_WORDS = re.compile(r"flight|airport|departure|carrier|weather|delay|plane|airline|nycflights", re.IGNORECASE)

FIRST_DAY, LAST_DAY = dt.date(2021, 1, 1), dt.date(2021, 4, 30)
ORDERS_PER_DAY = 60


def write_orders(path) -> None:
    """Orders of a shop: a returned order is more likely for large baskets in the north, deterministic by seed."""
    generator = np.random.default_rng(7)
    days = pd.date_range(FIRST_DAY, LAST_DAY, freq="D")
    rows = len(days) * ORDERS_PER_DAY
    region = generator.choice(["north", "south", "east", "west"], rows)
    basket = np.round(generator.gamma(2.0, 40.0, rows), 2)
    items = generator.integers(1, 9, rows)
    chance = 1 / (1 + np.exp(-(basket / 40 - 3 + (region == "north") * 1.5)))
    frame = pd.DataFrame({
        "order_id": [f"o{index:06d}" for index in range(rows)],
        "order_date": np.repeat(days.date, ORDERS_PER_DAY),
        "region": region, "basket_value": basket, "items": items,
        "returned": generator.random(rows) < chance})
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)


ORDERS = {
    "spec_version": 1, "kind": "source", "name": "orders",
    "description": "Orders of a small web shop, one row per order, by the day it was placed.",
    "owner": "team:shop-analytics", "trust": "internal",
    "location": {"kind": "file", "path": "data/orders.csv", "format": "csv"},
    "columns": {"order_id": "VARCHAR", "order_date": "DATE", "region": "VARCHAR", "basket_value": "DOUBLE",
                "items": "INTEGER", "returned": {"type": "BOOLEAN", "known": "after_event"}},
    "keys": ["order_id"],
    "partitioning": {"kind": "daily", "date": "order_date", "start": str(FIRST_DAY), "end": str(LAST_DAY)},
}
BASKET = {
    "spec_version": 1, "kind": "feature_set", "name": "basket",
    "description": "What the basket holds and where it ships, known when the order is placed.",
    "owner": "team:shop-analytics", "entity": "orders", "known_by": {"days_before": 0, "time": "00:00"},
    "sql": "SELECT order_id, basket_value AS basket_eur, items AS item_count, region AS ship_region FROM entity",
    "features": {"basket_eur": {"type": "number", "description": "the basket's value"},
                 "item_count": {"type": "number", "description": "items in the basket"},
                 "ship_region": {"type": "category", "description": "the region it ships to"}},
}
RETURNS = {
    "spec_version": 1, "kind": "model", "name": "order_returns",
    "description": "Flags the orders that will be returned, so that they get a call before shipping.",
    "owner": "team:shop-analytics", "entity": "orders",
    "label": {"task": "binary_classification", "expression": "returned"},
    "features": ["basket_eur", "item_count", "ship_region"],
    "split": {"train": {"start": "2021-01-01", "end": "2021-02-28"},
              "validation": {"start": "2021-03-01", "end": "2021-03-31"},
              "test": {"start": "2021-04-01", "end": "2021-04-20"}},
    "algorithm": {"kind": "lightgbm", "seed": 3, "params": {"n_estimators": 40, "num_leaves": 7}},
    "money": {"currency": "EUR", "outcomes": {"true_positive": "12", "false_positive": "-3",
                                              "false_negative": "0", "true_negative": "0"}},
    "gate": {"min_money": -1000000, "min_roc_auc": 0.5},
    "cadence": {"predict_at": {"days_before": 0, "time": "00:00"}},
    "slices": ["region", "basket_eur", "item_count"],
}


def test_a_model_of_orders_speaks_of_orders_and_shows_its_slices(tmp_path, dagster_home, capsys):
    root = tmp_path / "shop"
    write_orders(root / "data" / "orders.csv")
    write_yaml(root / "model_specs" / "sources" / "orders.yaml", ORDERS)
    write_yaml(root / "model_specs" / "features" / "basket.yaml", BASKET)
    write_yaml(root / "model_specs" / "order_returns.yaml", RETURNS)
    shutil.copyfile(REPO_ROOT / "dagster.yaml", root / "dagster.yaml")
    shutil.copyfile(REPO_ROOT / "workspace.yaml", root / "workspace.yaml")

    code = main(["--project", str(root), "demo", "--model", "order_returns", "--score-days", "2"])
    output = capsys.readouterr()
    assert code == 0, output.err
    assert "flags " in output.out and " test rows of 'orders'" in output.out
    assert DEMO_WORDS.findall(output.out + output.err) == [], output.out

    project = project_at(root)
    with open_warehouse(project.storage.warehouse) as connection:
        (evaluation,) = [record for record in registry.evaluations.all(connection)]
    summary = evaluation.summary
    # each declared slice, in the spec's order: a column by value, a continuous feature by decile, a small count
    assert [(table.name, table.binning) for table in summary.slices] == [
        ("region", "values"), ("basket_eur", "deciles"), ("item_count", "values")]
    for table in summary.slices:
        assert sum(row.rows for row in table.rows) == summary.test.rows
        assert sum(row.money for row in table.rows) == pytest.approx(summary.test.money)
    assert {row.slice for row in summary.slices[0].rows} == {"north", "south", "east", "west"}
    assert sorted(row.slice for row in summary.slices[2].rows) == list(range(1, 9))
    assert {"money_by_slice__region", "money_by_slice__basket_eur", "money_by_slice__item_count"} <= set(
        summary.artifacts.plots)

    # the entity's column rides in the snapshot and the predictions file for slicing; a feature is there already
    with open_warehouse(project.storage.warehouse) as connection:
        (snapshot,) = registry.snapshots.all(connection)
        for path in (snapshot.path, summary.artifacts.predictions.path):
            columns = [row[0] for row in connection.execute(
                f"DESCRIBE SELECT * FROM read_parquet('{project.storage.artifacts / path}')").fetchall()]
            assert "slice__region" in columns and not any(
                name in columns for name in ("slice__basket_eur", "slice__item_count", "slice")), columns
    report = (project.storage.artifacts / summary.artifacts.report_markdown.path).read_text(encoding="utf-8")
    assert "## Money by region (test)" in report and "## Money by basket_eur, deciles (test)" in report
    assert DEMO_WORDS.findall(report) == []

    # what the Dagster UI shows: every stage's metadata and every gate check's description
    instance = dg.DagsterInstance.get()
    texts = []
    for stage in names.MODEL_STAGES:
        event = instance.get_latest_materialization_event(names.stage_key(stage, "order_returns"))
        if event is not None:
            texts += [f"{key}: {value.value}" for key, value in event.asset_materialization.metadata.items()]
    for run in instance.get_runs():
        for entry in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION):
            data = entry.dagster_event.event_specific_data
            texts.append(f"{data.check_name}: {data.description}")
    assert len(texts) > 20
    assert [text for text in texts if DEMO_WORDS.search(text)] == []
