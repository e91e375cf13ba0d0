"""A model file changed behind the artifact store's back is refused before scoring loads it."""

from __future__ import annotations

import datetime as dt

import pytest

from ml_platform.chain.model_chain import run_chain
from ml_platform.chain.runner import Chain
from ml_platform.features.library import load_catalog
from ml_platform.names import scoring_job_name
from ml_platform.storage import registry
from ml_platform.storage.warehouse import open_warehouse

# drives chains of Dagster runs: the full suite only (`pytest -m "not slow"` leaves it out)
pytestmark = pytest.mark.slow


def test_a_modified_model_file_is_refused_before_it_is_loaded(make_project, dagster_home):
    project = make_project()
    result = run_chain(project, "flight_delay", score_days=1, say=lambda line: None)
    assert result.champion is not None
    with open_warehouse(project.storage.warehouse) as connection:
        path = registry.models.by_version(connection, result.champion.model_version).path
    artifact = project.storage.artifacts / path
    artifact.write_bytes(artifact.read_bytes().replace(b'num_leaves=31', b'num_leaves=63'))
    assert b'num_leaves=63' in artifact.read_bytes()
    runner = Chain(project, load_catalog(project.specs_dir, project.root), say=lambda line: None)
    outcome = runner.run(scoring_job_name("flight_delay"), "score", date_range=(dt.date(2013, 2, 1),) * 2)
    assert not outcome.success
    assert any(f"artifact {path} was modified" in failure for failure in outcome.failures), outcome.failures
