"""A small second project with a label that looks forward: will a visiting customer spend more than $50 in the
30 days after the visit? Visits and purchases are CSV files written by the test (daily sources, first half of 2024).

Plain functions: write the project, load its sources and features into a real DuckDB warehouse, no Dagster.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd

from ml_platform.features.library import load_catalog
from ml_platform.features.refresh import refresh_feature_set
from ml_platform.partitions import days
from ml_platform.sources.refresh import refresh_source
from ml_platform.specs.catalog import Catalog

from ml_platform_tests.helpers import write_yaml

FIRST, LAST = dt.date(2024, 1, 1), dt.date(2024, 6, 30)
HEADER = {"spec_version": 1, "owner": "team:shop-ds"}


def source(name: str, columns: dict, keys: list[str], date: str, description: str) -> dict:
    """A daily CSV source of the project."""
    return {**HEADER, "kind": "source", "name": name, "description": description, "trust": "internal",
            "location": {"kind": "file", "path": f"data/{name}.csv", "format": "csv"},
            "columns": columns, "keys": keys,
            "partitioning": {"kind": "daily", "date": date, "start": FIRST.isoformat(), "end": LAST.isoformat()}}


def spend_model(**label) -> dict:
    """The model: a visit is positive when its customer spends more than $50 in the next 30 days."""
    return {
        **HEADER, "kind": "model", "name": "spend", "entity": "visits",
        "description": "Flags the visits whose customer will spend more than $50 in the 30 days after the visit.",
        "label": {"task": "binary_classification", "expression": "spend_next_30_days > 50",
                  "horizon": {"days": 30},
                  "aggregates": {"spend_next_30_days": {"source": "purchases", "match": {"customer_id": "customer_id"},
                                                        "expression": "sum(amount)", "default": 0}},
                  **label},
        "features": ["pages_viewed"],
        "split": {"train": {"start": "2024-01-01", "end": "2024-03-31"},
                  "validation": {"start": "2024-04-01", "end": "2024-05-15"},
                  "test": {"start": "2024-05-16", "end": "2024-05-31"}},
        "algorithm": {"kind": "logistic_regression"},
        "money": {"currency": "USD", "outcomes": {
            "true_positive": "0.1 * spend_next_30_days - 2", "false_positive": "-2", "false_negative": "0",
            "true_negative": "0"}},
        "gate": {"min_money": -1000000},
        "cadence": {"predict_at": {"days_before": 0, "time": "00:00"}, "retraining": "monthly"},
    }


def write_project(root: Path, model: dict | None = None) -> Path:
    """Write the specs and the CSV files (one purchase and six visits a day, fixed seed) under root."""
    specs = root / "model_specs"
    write_yaml(specs / "sources" / "visits.yaml", source(
        "visits", {"visit_id": "BIGINT", "customer_id": "BIGINT", "visited_on": "DATE", "pages": "INTEGER"},
        ["visit_id"], "visited_on", "Visits of customers to the shop's site."))
    write_yaml(specs / "sources" / "purchases.yaml", source(
        "purchases", {"purchase_id": "BIGINT", "customer_id": "BIGINT", "purchased_on": "DATE",
                      "amount": {"type": "DOUBLE", "known": "after_event"}},
        ["purchase_id"], "purchased_on", "Purchases of customers."))
    write_yaml(specs / "features" / "visit_pages.yaml", {
        **HEADER, "kind": "feature_set", "name": "visit_pages", "entity": "visits",
        "description": "What a visit looked at.", "known_by": {"days_before": 0, "time": "00:00"},
        "sql": "SELECT visit_id, pages AS pages_viewed FROM entity",
        "features": {"pages_viewed": {"type": "number", "description": "pages viewed in the visit"}}})
    write_yaml(specs / "spend.yaml", model if model is not None else spend_model())
    rng = np.random.default_rng(7)
    all_days = days(FIRST, LAST)
    visits = pd.DataFrame({"visit_id": range(6 * len(all_days)),
                           "customer_id": rng.integers(1, 21, 6 * len(all_days)),
                           "visited_on": np.repeat(all_days, 6),
                           "pages": rng.integers(1, 30, 6 * len(all_days))})
    purchases = pd.DataFrame({"purchase_id": range(len(all_days)), "customer_id": rng.integers(1, 21, len(all_days)),
                              "purchased_on": all_days, "amount": rng.uniform(10, 100, len(all_days)).round(2)})
    (root / "data").mkdir(parents=True, exist_ok=True)
    visits.to_csv(root / "data" / "visits.csv", index=False)
    purchases.to_csv(root / "data" / "purchases.csv", index=False)
    return root


def load(connection, root: Path, purchases_through: dt.date = LAST) -> Catalog:
    """Load both sources (purchases only through `purchases_through`) and the feature set; the catalog."""
    catalog = load_catalog(root / "model_specs", root)
    for name, last in (("visits", LAST), ("purchases", purchases_through)):
        keys = [day.isoformat() for day in days(FIRST, last)]
        loaded = refresh_source(connection, catalog.sources[name], root, keys, FIRST, last)
        assert not loaded.failures(), loaded.rejection(name)
    refresh_feature_set(connection, catalog, catalog.feature_sets["visit_pages"], FIRST, LAST)
    return catalog
