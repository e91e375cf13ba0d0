"""Fixtures of the cluster configuration's tests: PostgreSQL and dask workers started by `.ci/services`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import pytest

from ml_platform_tests.cluster.services import Services, missing_services


@pytest.fixture
def cluster_services(tmp_path: Path) -> Iterator[Services]:
    """PostgreSQL and a dask scheduler with 2 workers on 127.0.0.1, stopped by their PIDs afterwards.

    Skipped, saying why, only when PostgreSQL's binaries or the cluster extra are not installed (`.ci/run`
    installs both). Nothing starts until the test calls `start`, naming the project the workers load
    (ML_PLATFORM_PROJECT).
    """
    reason = missing_services()
    if reason:
        pytest.skip(reason)
    services = Services(tmp_path / "services", environment=dict(os.environ))
    yield services
    services.stop()
