"""Helpers of the spec tests: a temporary specs folder with the repository's sources and features, and valid
documents written inline that each test breaks in one place."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

from ml_platform.specs.catalog import Catalog
from ml_platform.specs.errors import SpecErrors
from ml_platform.features.library import load_catalog
from ml_platform_tests.helpers import SPECS

WEATHER_OPT_IN = """\
data_dependencies:
  accept:
    weather:
      trust: external_vendor
      reason: public NOAA observations, checked on load
      reviewed_by: data-review@example.com
      reviewed_on: 2026-11-28
"""

VALID_MODEL = """\
spec_version: 1
kind: model
name: flight_delay
description: Flags the departures that will be disrupted.
owner: team:flight-ops-ds
entity: flights
label:
  task: binary_classification
  expression: "dep_time IS NULL OR dep_delay > 15"
features:
  - departure_hour
  - carrier_code
  - origin_airport
  - eve_temp_f
split:
  train: {start: 2013-01-01, end: 2013-08-31}
  validation: {start: 2013-09-01, end: 2013-09-30}
  test: {start: 2013-10-01, end: 2013-10-31}
algorithm:
  kind: lightgbm
  params: {num_leaves: 31}
money:
  currency: USD
  outcomes:
    true_positive: "0.30 * 75 * coalesce(dep_delay, 180) - 500"
    false_positive: "-500"
    false_negative: "0"
    true_negative: "0"
gate: {min_money: 0}
cadence:
  predict_at: {days_before: 1, time: "18:00"}
""" + WEATHER_OPT_IN

VALID_FEATURE_SET = """\
spec_version: 1
kind: feature_set
name: schedule_extra
description: More about the published schedule.
owner: team:flight-ops-ds
entity: flights
known_by: {days_before: 1, time: "00:00"}
sql: SELECT flight_id, hour AS scheduled_hour FROM entity
features:
  scheduled_hour: {type: number, description: scheduled local departure hour}
"""

VALID_SOURCE = """\
spec_version: 1
kind: source
name: delays_export
description: Delays exported by the operations team.
owner: ops@example.com
trust: internal
location: {kind: file, path: data/delays.csv, format: csv}
columns:
  flight_id: VARCHAR
  minutes: DOUBLE
keys: [flight_id]
partitioning: {kind: none}
"""


def edit(text: str, old: str, new: str) -> str:
    """The text with `old`, which must occur exactly once, replaced by `new`."""
    assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times"
    return text.replace(old, new)


def make_specs(root: Path, documents: dict[str, str], repository_model: bool = False) -> Path:
    """A project at root: the repository's sources and features, and the given documents (path -> YAML text)."""
    specs = root / "model_specs"
    shutil.copytree(SPECS / "sources", specs / "sources")
    shutil.copytree(SPECS / "features", specs / "features")
    if repository_model:
        shutil.copyfile(SPECS / "flight_delay.yaml", specs / "flight_delay.yaml")
    for relative, text in documents.items():
        path = specs / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    return root


def load(root: Path) -> Catalog:
    """The project's catalog."""
    return load_catalog(root / "model_specs", root)


def errors_of(root: Path) -> list[str]:
    """The text of every error the project's specs give (the load must fail)."""
    with pytest.raises(SpecErrors) as caught:
        load(root)
    return [str(error) for error in caught.value.errors]
