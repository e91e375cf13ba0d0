"""A warehouse file held open by a process that executes many runs (held_open): its connections are new
connections to the open database, what they commit is in the file, a Python function registered through one of
them outlives it, and nothing is held outside the embedded configuration."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys

import duckdb
import pytest

from ml_platform.features.functions import REGISTRY, register_functions
from ml_platform.names import FEATURE_TABLES_VARIABLE, REGISTRY_VARIABLE, RUN_CONFIG_VARIABLE
from ml_platform.storage import warehouse
from ml_platform.storage.warehouse import held_open, holdable, open_warehouse

# another process opening the file, waiting at most a second for its lock
OTHER_PROCESS = """
import sys
from ml_platform.storage.warehouse import open_warehouse
try:
    with open_warehouse(sys.argv[1], wait_seconds=1) as connection:
        print(connection.execute("SELECT count(*) FROM main.kept").fetchall()[0][0])
except TimeoutError as error:
    print("locked:", error)
"""


def other_process_reads(path) -> str:
    return subprocess.run([sys.executable, "-c", OTHER_PROCESS, str(path)], capture_output=True, text=True,
                          check=True).stdout.strip()


@pytest.fixture
def embedded(monkeypatch):
    for name in (FEATURE_TABLES_VARIABLE, REGISTRY_VARIABLE, RUN_CONFIG_VARIABLE):
        monkeypatch.delenv(name, raising=False)


def test_connections_of_a_held_file_share_its_database_and_commit_into_the_file(tmp_path, embedded):
    path = tmp_path / "data" / "warehouse.duckdb"
    with held_open(path) as held:
        assert held
        with open_warehouse(path) as first:
            first.execute("CREATE TABLE main.kept AS SELECT range AS n FROM range(5)")
            first.execute("CREATE TEMP TABLE private_to_first AS SELECT 1 AS one")
            # as `prepare` leaves a connection: bare names resolve to sources and feature sets
            assert first.execute("SELECT current_setting('search_path')").fetchall()[0][0] == "source,features,main"
        with open_warehouse(path) as second:
            assert second.execute("SELECT count(*) FROM kept").fetchall() == [(5,)]
            # a new connection: the first one's temporary objects are gone with it
            with pytest.raises(duckdb.CatalogException):
                second.execute("SELECT * FROM private_to_first")
            # the registries `prepare` made when the file was opened are there
            assert second.execute("SELECT count(*) FROM information_schema.schemata "
                                  "WHERE schema_name = 'features'").fetchall() == [(1,)]
            assert second is not first
        assert len(warehouse._handed) == 0  # closed connections are forgotten
        # the file stays locked by this process: another one waits, then says so
        assert other_process_reads(path).startswith("locked: the warehouse")
        with held_open(path) as again:  # held already: the inner block neither reopens nor releases it
            assert again
        assert other_process_reads(path).startswith("locked:")
    # released at the end, with every committed row in the file
    assert not warehouse._held
    assert other_process_reads(path) == "5"


def test_a_function_registered_through_a_held_connection_outlives_that_connection(tmp_path, embedded):
    # DuckDB registers it for the whole database, but its Python function lives as long as the connection that
    # registered it: through a short-lived connection, the next one called freed memory (a garbage TypeError)
    path = tmp_path / "warehouse.duckdb"
    python = REGISTRY["days_to_us_holiday"].function
    days = [dt.date(2013, 7, 1) + dt.timedelta(days=offset) for offset in range(0, 180, 7)]
    with held_open(path):
        with open_warehouse(path) as first:
            register_functions(first, ["days_to_us_holiday"])
            first.execute("SELECT days_to_us_holiday(DATE '2013-07-01')").fetchall()
        for _ in range(3):
            with open_warehouse(path) as later:
                register_functions(later, ["days_to_us_holiday"])  # present already: not registered again
                values = later.execute(
                    "SELECT days_to_us_holiday(day) FROM unnest(?::DATE[]) AS t(day) ORDER BY day", [days]
                ).fetchall()
                assert [value for value, in values] == [python(day) for day in days]


@pytest.mark.parametrize("variable", [FEATURE_TABLES_VARIABLE, REGISTRY_VARIABLE, RUN_CONFIG_VARIABLE])
def test_nothing_is_held_outside_the_embedded_configuration(tmp_path, embedded, monkeypatch, variable):
    path = tmp_path / "warehouse.duckdb"
    with open_warehouse(path) as connection:
        connection.execute("CREATE TABLE main.kept AS SELECT 1 AS n")
    monkeypatch.setenv(variable, str(tmp_path / "elsewhere"))
    assert not holdable()
    with held_open(path) as held:
        assert not held and not warehouse._held
        # the file is free for another process between the connections
        assert other_process_reads(path) == "1"


def test_holding_says_whether_the_process_holds_a_warehouse_open(tmp_path, embedded):
    assert not warehouse.holding()
    with held_open(tmp_path / "warehouse.duckdb") as held:
        assert held and warehouse.holding()
    assert not warehouse.holding()
