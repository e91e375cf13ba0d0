"""Helpers shared by the tests: the repository's specs, the January model, spec files, and a project's instance.

Plain functions, imported by test modules (conftest.py holds the fixtures only).
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import dagster as dg
import yaml

from ml_platform.chain.instance import open_instance
from ml_platform.project import Project

REPO_ROOT = Path(__file__).resolve().parent.parent
SPECS = REPO_ROOT / "model_specs"

# January 2013: train on the first 20 days, validate on 5, test on the last 6, score February 1-2.
JANUARY_SPLIT = {
    "train": {"start": "2013-01-01", "end": "2013-01-20"},
    "validation": {"start": "2013-01-21", "end": "2013-01-25"},
    "test": {"start": "2013-01-26", "end": "2013-01-31"},
}


def load_yaml(path: Path) -> dict:
    """A spec file as plain data."""
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def write_yaml(path: Path, document: dict) -> Path:
    """Write plain data as a spec file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


def january_model(**overrides) -> dict:
    """The demo model's spec on the January slice, with a gate any working model clears, plus overrides."""
    document = load_yaml(SPECS / "flight_delay.yaml")
    document["split"] = JANUARY_SPLIT
    document["gate"] = {"min_money": -1_000_000_000, "min_roc_auc": 0.5}
    document["algorithm"]["params"]["n_estimators"] = 60
    document.update(overrides)
    if "features" in overrides and "data_dependencies" not in overrides:
        document["data_dependencies"] = {"accept": {
            name: accepted for name, accepted in document["data_dependencies"]["accept"].items()
            if name in sources_behind(document["features"])}}
    return document


def sources_behind(features: list[str]) -> set[str]:
    """The repository's sources that the given features are computed from (through used feature sets too)."""
    sets = {spec["name"]: spec for spec in map(load_yaml, (SPECS / "features").glob("*.yaml"))}
    pending = [name for name, spec in sets.items() if set(spec["features"]) & set(features)]
    seen: set[str] = set()
    while pending:
        name = pending.pop()
        if name not in seen and name in sets:
            seen.add(name)
            pending += sets[name].get("uses", [])
    return {source for name in seen for source in [sets[name]["entity"], *sets[name].get("reads", [])]}


def day(text: str) -> dt.date:
    """A date from ISO text."""
    return dt.date.fromisoformat(text)


def route_load_feature_set(name: str = "route_load", feature: str = "hour_share_of_day") -> dict:
    """A feature set that uses another one (flight_schedule): the share of its day's departures in a flight's hour."""
    return {
        "spec_version": 1, "kind": "feature_set", "name": name, "owner": "team:flight-ops-ds",
        "description": "How busy the flight's origin is in its hour, relative to its day.", "entity": "flights",
        "uses": ["flight_schedule"], "known_by": {"days_before": 1, "time": "00:00"},
        "sql": f"SELECT flight_id, origin_departures_that_hour / origin_departures_that_day AS {feature} "
               f"FROM entity JOIN flight_schedule USING (flight_id)",
        "features": {feature: {"type": "number", "description": "share of the day's departures"}}}


def project_at(root: Path) -> Project:
    """A project at root whose instance folder is the one DAGSTER_HOME names when set (the dagster_home fixture),
    as the command line resolves it; its data stays inside root."""
    home = os.environ.get("DAGSTER_HOME")
    return Project.at(root, dagster_home=Path(home) if home else None)


def instance_of(project: Project) -> dg.DagsterInstance:
    """The project's Dagster instance, as the run chain opens it (its folder, not DAGSTER_HOME)."""
    return open_instance(project)


def asset_runner(assets: dict, resources: dict, instance: dg.DagsterInstance):
    """`run(keys, first=None, last=None, partition=None)`: materialize the assets of `keys` (from `assets` by key) in
    one in-process Dagster run on `instance`, over the partition range [first, last] or one `partition`; asserts
    the run succeeded and returns its result."""
    def run(keys, first=None, last=None, partition=None) -> dg.ExecuteInProcessResult:
        tags = {"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last} \
            if first else {}
        result = dg.materialize([assets[key] for key in keys], resources=resources, instance=instance, tags=tags,
                                partition_key=partition)
        assert result.success
        return result

    return run
