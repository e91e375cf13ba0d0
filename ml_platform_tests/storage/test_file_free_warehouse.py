"""The cluster configuration with every table in the Delta store and the registries in PostgreSQL needs no warehouse
file: every warehouse connection is a private in-memory one, so processes hold them at once (no lock to wait for),
and the file is never created; a file that exists (an embedded run's) is opened as before."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from ml_platform.monitoring.store import read_days, replace_days
from ml_platform.names import FEATURE_TABLES_VARIABLE, REGISTRY_VARIABLE
from ml_platform.provenance.records import open_registry
from ml_platform.serving import mirror
from ml_platform.storage.resources import Warehouse
from ml_platform.storage.warehouse import file_free, open_warehouse

pytest.importorskip("deltalake",
                    reason="the cluster extra is not installed (deltalake missing: pip install -e '.[cluster]')")

# never contacted here: no registry is read or written; only its being named matters
REGISTRY_URL = "postgresql://nobody@127.0.0.1:9/no_registry"
DAY = dt.date(2013, 1, 1)
PROJECT_ROOT = Path(__file__).resolve().parents[2]

OTHER_PROCESS = textwrap.dedent("""
    import datetime as dt, sys, time
    import pandas as pd
    from ml_platform.monitoring.store import replace_days
    from ml_platform.storage.resources import Warehouse
    started = time.monotonic()
    with Warehouse(database=sys.argv[1]).get_connection() as connection:
        frame = pd.DataFrame({"day": [dt.date(2013, 1, 2)], "status": ["judged"], "computed_at": [dt.datetime(2013, 1, 9)],
                              "run_id": ["other"]})
        replace_days(connection, "m", "outcomes", frame, [dt.date(2013, 1, 2)])
    print(f"{time.monotonic() - started:.1f}")
""")


def _outcomes(day: dt.date, run_id: str) -> pd.DataFrame:
    return pd.DataFrame({"day": [day], "status": ["judged"], "computed_at": [dt.datetime(2013, 1, 9)],
                         "run_id": [run_id]})


def _database_path(connection) -> str | None:
    return connection.execute("SELECT path FROM duckdb_databases() WHERE database_name = current_database()"
                              ).fetchall()[0][0]


@pytest.fixture
def cluster_environment(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv(FEATURE_TABLES_VARIABLE, str(tmp_path / "tables"))
    monkeypatch.setenv(REGISTRY_VARIABLE, REGISTRY_URL)
    return tmp_path / "data" / "warehouse.duckdb"


def test_connections_of_many_processes_at_once_and_no_file(cluster_environment, monkeypatch):
    path = cluster_environment
    assert file_free(path)
    with Warehouse(database=str(path)).get_connection() as connection:
        assert _database_path(connection) is None  # in memory
        replace_days(connection, "m", "outcomes", _outcomes(DAY, "this"), [DAY])
        # another process opens its own connection and commits while this one is open: nothing waits for a lock
        monkeypatch.setenv("PYTHONPATH", str(PROJECT_ROOT))
        other = subprocess.run([sys.executable, "-c", OTHER_PROCESS, str(path)], capture_output=True, text=True,
                               timeout=100)
        assert other.returncode == 0, other.stderr
        assert float(other.stdout.strip()) < 30
    with Warehouse(database=str(path)).get_connection() as connection:
        days = read_days(connection, "m", "outcomes", DAY, DAY + dt.timedelta(days=1))
    assert list(days["run_id"]) == ["this", "other"]
    # the commands' and the server's connections need no file either
    with open_registry(path) as connection:
        assert _database_path(connection) is None
    served = mirror._open(path, 0.0)  # the server's copy reads its tables through this connection
    try:
        assert _database_path(served) is None
    finally:
        served.close()
    with open_warehouse(path) as connection:
        assert _database_path(connection) is None
    assert not path.exists()


def test_a_file_that_exists_is_opened_as_before(cluster_environment, monkeypatch):
    path = cluster_environment
    monkeypatch.delenv(FEATURE_TABLES_VARIABLE)
    with open_warehouse(path):  # an embedded run made it
        pass
    monkeypatch.setenv(FEATURE_TABLES_VARIABLE, str(path.parent.parent / "tables"))
    assert not file_free(path)
    with Warehouse(database=str(path)).get_connection() as connection:
        assert _database_path(connection) == str(path)
        # ... holding its lock: another process cannot open it meanwhile
        other = subprocess.run([sys.executable, "-c", f"import duckdb; duckdb.connect({str(path)!r})"],
                               capture_output=True, text=True, timeout=60)
        assert other.returncode != 0 and "lock" in other.stderr.lower()


@pytest.mark.parametrize("unset", [FEATURE_TABLES_VARIABLE, REGISTRY_VARIABLE])
def test_without_both_stores_the_file_is_used(cluster_environment, monkeypatch, unset):
    path = cluster_environment
    monkeypatch.delenv(unset)
    assert not file_free(path)
    with open_warehouse(path) as connection:
        assert _database_path(connection) == str(path)
    assert path.exists()
