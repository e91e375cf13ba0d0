"""The registries in PostgreSQL (ML_PLATFORM_REGISTRY_URL), on a real server started by `.ci/services`: records read
back as written, a second write of an identity refused with the stored one named, promotions from several processes
numbered without a gap or a repeat, bad settings named; and the January chain records in PostgreSQL what the
embedded chain records in its warehouse file."""

from __future__ import annotations

import datetime as dt
import multiprocessing
import os
import uuid

import pytest

from ml_platform.names import REGISTRY_VARIABLE
from ml_platform.records.gate import Gate
from ml_platform.records.registry import ModelRecord
from ml_platform.storage import registry
from ml_platform.storage.registry_postgres import RegistryStoreError, _registry
from ml_platform.storage.warehouse import open_warehouse
from ml_platform_tests.cluster.services import Services, missing_services
from ml_platform_tests.records import builders

pytestmark = [pytest.mark.cluster]


@pytest.fixture(scope="module")
def postgres(tmp_path_factory):
    """PostgreSQL on 127.0.0.1 (with a dask scheduler and no workers: `.ci/services start DIR 0`); its URL."""
    reason = missing_services()
    if reason:
        pytest.skip(reason)
    services = Services(tmp_path_factory.mktemp("registry") / "services", environment=dict(os.environ))
    try:
        yield services.start(workers=0)["ML_PLATFORM_POSTGRES_URL"]
    finally:
        services.stop()


@pytest.fixture
def registry_url(postgres, monkeypatch):
    """A fresh database on that server, named by ML_PLATFORM_REGISTRY_URL for this test."""
    import psycopg2

    name = f"registry_{uuid.uuid4().hex[:8]}"
    server = postgres.replace("postgresql+psycopg2://", "postgresql://")
    connection = psycopg2.connect(server)
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE {name}")
    connection.close()
    url = server.rsplit("/", 1)[0] + f"/{name}"
    _registry.cache_clear()
    monkeypatch.setenv(REGISTRY_VARIABLE, url)
    yield url
    _registry.cache_clear()


def _model_record(training_run: str, card: dict) -> ModelRecord:
    return ModelRecord(model_version=f"flight_delay-{training_run[-12:]}", model="flight_delay",
                       training_run=training_run, snapshot_id="0123456789abcdef", spec_hash="0123456789ab",
                       path=f"models/flight_delay/{'ab' * 32}.model", sha256="ab" * 32, card=card,
                       created_at=dt.datetime(2013, 2, 1, 6, 0))


def _postgres_rows(url: str, sql: str) -> list[tuple]:
    import psycopg2

    with psycopg2.connect(url) as connection, connection.cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchall()


def test_a_record_is_written_in_postgres_read_back_as_written_and_never_replaced(registry_url, tmp_path):
    card = builders.model_card()
    record = _model_record("2013-01-31_0123456789ab", card)
    with open_warehouse(tmp_path / "warehouse.duckdb") as connection:
        registry.models.add(connection, record)
        assert registry.models.get(connection, "flight_delay", record.training_run) == record
        assert registry.models.by_version(connection, record.model_version) == record
        assert registry.models_in(connection, "models", "snapshots") == ["flight_delay"]
        # the warehouse file's own registry holds nothing: the row is in PostgreSQL only
        assert connection.execute("SELECT count(*) FROM registry.models").fetchall() == [(0,)]
        other = record.model_copy(update={"sha256": "cd" * 32})
        with pytest.raises(registry.RegistryConflictError,
                           match=r"training run '2013-01-31_0123456789ab' of model 'flight_delay' already has a "
                                 r"trained model \(flight_delay-0123456789ab, created 2013-02-01 06:00:00 UTC\); "
                                 r"registry.models is append-only"):
            registry.models.add(connection, other)
    assert _postgres_rows(registry_url, "SELECT sha256 FROM registry.models") == [("ab" * 32,)]


def _promote_five(url: str, worker: int, gate: dict) -> list[int]:
    os.environ[REGISTRY_VARIABLE] = url
    import tempfile

    from ml_platform.deployment.promotion import append_promotion

    ids = []
    with tempfile.TemporaryDirectory() as folder, open_warehouse(f"{folder}/warehouse.duckdb") as connection:
        for step in range(5):
            ids.append(append_promotion(connection, "flight_delay", f"flight_delay-{worker:02d}{step:010d}",
                                        f"run-{worker}-{step}", "test", f"worker {worker}",
                                        Gate.model_validate(gate)).promotion_id)
    return ids


def test_promotions_from_several_processes_take_every_id_once(registry_url, tmp_path, monkeypatch):
    monkeypatch.delenv(REGISTRY_VARIABLE)  # the gate's comparison reads no champion from the shared registry
    with open_warehouse(tmp_path / "warehouse.duckdb") as connection:
        gate = builders.evaluation_summary(connection)["gate"]
    context = multiprocessing.get_context("spawn")
    with context.Pool(4) as pool:
        taken = pool.starmap(_promote_five, [(registry_url, worker, gate) for worker in range(4)])
        # the workers leave when the queue says there is no more work: leaving the block's terminate() nothing to
        # signal (a test run whose shell left SIGTERM ignored hands that to every child, and a terminated worker
        # waiting on the queue's lock then never ends: seen once in CI, hung until killed)
        pool.close()
        pool.join()
    assert sorted(sum(taken, [])) == list(range(1, 21)), taken
    stored = _postgres_rows(registry_url, "SELECT promotion_id, reason FROM registry.promotions ORDER BY 1")
    assert [row[0] for row in stored] == list(range(1, 21))
    for worker, ids in enumerate(taken):
        assert ids == sorted(ids) and {reason for promotion_id, reason in stored if promotion_id in ids} == {
            f"worker {worker}"}


def test_bad_registry_settings_are_named(postgres, monkeypatch, tmp_path):
    _registry.cache_clear()
    monkeypatch.setenv(REGISTRY_VARIABLE, "mysql://registry@127.0.0.1/registry")
    with open_warehouse(tmp_path / "warehouse.duckdb") as connection:
        with pytest.raises(RegistryStoreError, match="ML_PLATFORM_REGISTRY_URL='mysql://registry@127.0.0.1/registry' "
                                                     "is not a PostgreSQL URL"):
            registry.models.all(connection)
        monkeypatch.setenv(REGISTRY_VARIABLE, postgres.rsplit("/", 1)[0] + "/no_such_database")
        with pytest.raises(RegistryStoreError, match="cannot connect to the registries' database: .*no_such_database"):
            registry.promotions.champion(connection, "flight_delay")
    _registry.cache_clear()


@pytest.mark.slow  # two chains of the January model
def test_the_chain_records_in_postgres_what_the_embedded_chain_records_in_its_file(
        registry_url, make_project, monkeypatch):
    from ml_platform.chain.model_chain import run_chain
    from ml_platform.deployment.history import known_models
    from ml_platform.provenance.records import known_versions

    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.delenv(REGISTRY_VARIABLE)
    embedded, shared = make_project(name="embedded"), make_project(name="shared")
    run_chain(embedded, "flight_delay", score_days=2, say=lambda line: None)
    with open_warehouse(embedded.storage.warehouse) as connection:
        expected = {name: [(row[0], row[1]) for row in connection.execute(sql).fetchall()] for name, sql in _QUERIES}
    monkeypatch.setenv(REGISTRY_VARIABLE, registry_url)
    run_chain(shared, "flight_delay", score_days=2, say=lambda line: None)

    got = {name: [(row[0], row[1]) for row in _postgres_rows(registry_url, sql)] for name, sql in _QUERIES}
    assert expected["models"] and expected["promotions"] == [("flight_delay", 1)]
    assert got == expected
    with open_warehouse(shared.storage.warehouse) as connection:
        for table in ("specs", "snapshots", "models", "evaluations", "promotions"):
            assert connection.execute(f"SELECT count(*) FROM registry.{table}").fetchall() == [(0,)], table
        # the readers of the CLI find them there, and the predictions name the champion PostgreSQL recorded
        assert known_models(connection) == ["flight_delay"]
        assert known_versions(connection) == [expected["models"][0][1].split(":")[0]]
        champion = registry.promotions.champion(connection, "flight_delay")
        scored = connection.execute("SELECT DISTINCT model_version FROM predictions.flight_delay").fetchall()
    assert scored == [(champion.model_version,)]


_QUERIES = (
    ("specs", "SELECT model, spec_hash FROM registry.specs ORDER BY 2"),
    ("snapshots", "SELECT model, snapshot_id || ':' || sha256 FROM registry.snapshots ORDER BY 2"),
    ("models", "SELECT model, model_version || ':' || sha256 FROM registry.models ORDER BY 2"),
    ("evaluations", "SELECT model, model_version || ':' || CAST(gate_passed AS VARCHAR) FROM registry.evaluations "
                    "ORDER BY 2"),
    ("promotions", "SELECT model, promotion_id FROM registry.promotions ORDER BY 2"),
)
