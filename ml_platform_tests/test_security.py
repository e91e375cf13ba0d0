"""Tampering and security: spec SQL only reads, identifiers are checked, YAML is loaded safely."""

from __future__ import annotations

import datetime as dt

import pytest

from ml_platform.features.compute import FeatureComputationError, compute_feature_set
from ml_platform.specs.errors import SpecErrors
from ml_platform.features.library import load_catalog
from ml_platform.storage import registry
from ml_platform.storage.warehouse import open_warehouse, quote, table



def test_feature_sql_that_writes_is_refused_at_run_time_too(make_project, tmp_path):
    project = make_project()
    catalog = load_catalog(project.specs_dir, project.root)
    sneaky = catalog.feature_sets["flight_schedule"].model_copy(
        update={"sql": "DELETE FROM registry.promotions; SELECT flight_id FROM entity"})
    with open_warehouse(tmp_path / "warehouse.duckdb") as connection:
        registry.insert(connection, "promotions", {
            "promotion_id": 1, "model": "m", "model_version": "m-1", "training_run": "r", "promoted_at": registry.now(),
            "dagster_run_id": "x", "reason": "test", "gate": {}})
        with pytest.raises(FeatureComputationError, match="must be exactly one SELECT statement, found 2"):
            compute_feature_set(connection, catalog, sneaky, dt.date(2013, 1, 1), dt.date(2013, 1, 1))
        assert connection.execute("SELECT count(*) FROM registry.promotions").fetchall() == [(1,)]


@pytest.mark.parametrize("name", ['x"; DROP TABLE registry.promotions; --', "Flights", "a b", ""])
def test_identifiers_are_validated_before_they_reach_sql(name):
    with pytest.raises(ValueError, match="not a valid identifier"):
        quote(name)
    with pytest.raises(ValueError):
        table("source", name)


def test_yaml_tags_that_would_run_code_are_refused(make_project):
    project = make_project()
    path = project.specs_dir / "sources" / "evil.yaml"
    path.write_text("!!python/object/apply:os.system ['touch pwned']\n")
    with pytest.raises(SpecErrors, match="evil.yaml"):
        load_catalog(project.specs_dir, project.root)
    assert not (project.root / "pwned").exists()


def test_a_modified_model_file_is_refused_before_it_is_loaded(make_project, dagster_home):
    import datetime as dt

    from ml_platform.build import scoring_job_name
    from ml_platform.chain.model_chain import run_chain
    from ml_platform.chain.runner import Chain

    project = make_project()
    result = run_chain(project, "flight_delay", score_days=1, say=lambda line: None)
    with open_warehouse(project.storage.warehouse) as connection:
        path = connection.execute("SELECT path FROM registry.models").fetchall()[0][0]
    artifact = project.storage.artifacts / path
    artifact.write_bytes(artifact.read_bytes().replace(b'num_leaves=31', b'num_leaves=63'))
    assert b'num_leaves=63' in artifact.read_bytes()
    runner = Chain(project, load_catalog(project.specs_dir, project.root), say=lambda line: None)
    outcome = runner.run(scoring_job_name("flight_delay"), "score", date_range=(dt.date(2013, 2, 1),) * 2)
    assert not outcome.success
    assert any(f"artifact {path} was modified" in failure for failure in outcome.failures), outcome.failures
    assert result.champion is not None
