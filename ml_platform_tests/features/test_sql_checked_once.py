"""Inside a replay (`reuse.reused`) a feature set's SQL is checked once per spec and catalog, not once per day;
a changed spec is checked again, and a refusal is never kept: every attempt is refused."""

from __future__ import annotations

import duckdb
import pytest

from ml_platform.features import compute
from ml_platform.features.compute import FeatureComputationError, check_feature_set_sql
from ml_platform.features.library import load_catalog
from ml_platform.reuse import reused
from ml_platform_tests.helpers import REPO_ROOT


def test_a_replay_checks_each_feature_set_spec_once_and_refuses_every_time(monkeypatch):
    catalog = load_catalog(REPO_ROOT / "model_specs", REPO_ROOT)
    parsed: list[str] = []
    reads_past_relations = compute.reads_past_relations
    monkeypatch.setattr(compute, "reads_past_relations",
                        lambda connection, catalog, feature_set: parsed.append(feature_set.name)
                        or reads_past_relations(connection, catalog, feature_set))
    connection = duckdb.connect()
    sets = [catalog.feature_sets[name] for name in ("flight_schedule", "origin_weather_eve")]
    for feature_set in sets * 2:  # outside a replay: every call checks
        check_feature_set_sql(connection, catalog, feature_set)
    assert len(parsed) == 4
    with reused():
        for _ in range(3):
            for feature_set in sets:
                check_feature_set_sql(connection, catalog, feature_set)
        assert parsed[4:] == ["flight_schedule", "origin_weather_eve"]
        changed = sets[0].model_copy(update={"sql": sets[0].sql + "\n"})
        check_feature_set_sql(connection, catalog, changed)
        assert parsed[6:] == ["flight_schedule"]
        # SQL that reads a source's table past the cut relations, refused on each attempt
        source = sets[0].entity  # its rows, read from the table rather than from `entity`
        bypassing = sets[0].model_copy(update={"sql": f"SELECT * FROM source.{source}"})
        for _ in range(2):
            with pytest.raises(FeatureComputationError, match=f"reads 'source.{source}', which is not among"):
                check_feature_set_sql(connection, catalog, bypassing)
