"""A reload that cannot serve what is served now is not swapped in: the old state keeps answering, /health says
why, and the swap completes on a later poll once the cause is gone (real files and a real server, no mocks)."""

from __future__ import annotations

import time

import duckdb
import pytest

from ml_platform import names
from ml_platform.storage.artifacts import ArtifactStore
from ml_platform.storage.versions import partition_versions, record_versions
from ml_platform.storage.warehouse import connection_settings, open_warehouse, transaction
from ml_platform_tests.evaluation.january import MODEL
from ml_platform_tests.serving.server import serving

pytestmark = pytest.mark.slow

KNOWN = "2013-01-31-9E3314-JFK"


def _until(condition, what: str, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _new_data_recorded(project) -> None:
    """A real change of the warehouse's fingerprint: a day of flights recorded again (as a reload of the same
    source day records it), which makes the server rebuild its state."""
    with open_warehouse(project.storage.warehouse) as connection:
        asset = names.source_asset("flights")
        stored = partition_versions(connection, asset)
        day = sorted(stored)[-1]
        with transaction(connection):
            record_versions(connection, asset, {day: stored[day]})


def _raw(project, sql: str) -> None:
    """One statement on the warehouse file, without open_warehouse (which would create a missing registry)."""
    connection = duckdb.connect(str(project.storage.warehouse),
                                config=connection_settings(project.storage.warehouse))
    try:
        connection.execute(sql)
    finally:
        connection.close()


def test_a_rebuilt_state_that_loses_a_served_model_is_not_swapped_in_until_the_cause_is_gone(private_project):
    with serving(private_project, poll_seconds=0.1) as (client, state):
        version = state.current.champions[MODEL].trained.model_version
        status, answer = client.predict(MODEL, {"keys": {"flight_id": KNOWN}})
        assert status == 200 and answer["model_version"] == version
        score = answer["predictions"][0]["score"]
        old, reloads = state.current, state.reloads

        # the champion's artifact disappears, then new data arrives: the rebuilt state could not serve the model
        artifact = ArtifactStore(root=str(private_project.storage.artifacts)).path_of(
            state.current.champions[MODEL].trained.path)
        aside = artifact.with_name(artifact.name + ".aside")
        artifact.rename(aside)
        _new_data_recorded(private_project)
        _until(lambda: state.last_reload_error is not None, "the failed reload")
        assert state.last_reload_error.startswith(f"ServingError: the rebuilt state cannot serve {MODEL} (")
        assert "is missing from" in state.last_reload_error
        time.sleep(0.5)  # several polls try again and fail again
        assert state.current is old and state.reloads == reloads
        status, answer = client.predict(MODEL, {"keys": {"flight_id": KNOWN}})
        assert status == 200 and (answer["model_version"], answer["predictions"][0]["score"]) == (version, score)
        status, health = client.request("GET", "/health")
        assert status == 200 and health["last_reload_error"] == state.last_reload_error
        assert health["models"][MODEL]["model_version"] == version

        # the artifact is back: the next poll swaps the new state in
        aside.rename(artifact)
        _until(lambda: state.reloads == reloads + 1, "the swap once the artifact is back")
        _until(lambda: state.last_reload_error is None, "the reload error to clear")
        assert state.current is not old
        status, answer = client.predict(MODEL, {"keys": {"flight_id": KNOWN}})
        assert status == 200 and (answer["model_version"], answer["predictions"][0]["score"]) == (version, score)

        # the version index unreadable for a while: no reload, the state serves on; readable again, it clears
        current = state.current
        _raw(private_project, "ALTER TABLE registry.partition_versions RENAME TO partition_versions_away")
        _until(lambda: state.last_reload_error is not None, "the failed look at the version index")
        assert "partition_versions" in state.last_reload_error
        status, answer = client.predict(MODEL, {"keys": {"flight_id": KNOWN}})
        assert status == 200 and answer["predictions"][0]["score"] == score
        _raw(private_project, "ALTER TABLE registry.partition_versions_away RENAME TO partition_versions")
        _until(lambda: state.last_reload_error is None, "the version index readable again")
        assert state.current is current  # same fingerprint as before: nothing to rebuild
