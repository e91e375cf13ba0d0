"""A process keeps the rows of a small Delta table it reads again and again (every feature partition a worker
computes reads its sources): read from the store once per table version, exactly the store's rows, read anew after a
commit; a table too large to keep is read as a dataset, as before."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pyarrow.dataset as pads
import pytest

from ml_platform.storage import delta_tables
from ml_platform.storage.delta_tables import DeltaStore

deltalake = pytest.importorskip("deltalake",
                                reason="the cluster extra is not installed (deltalake missing: pip install -e "
                                       "'.[cluster]')")

PATH = "sources/flights"


def _day(day: dt.date, values: list[int]) -> pa.Table:
    return pa.table({"partition_date": pa.array([day] * len(values), pa.date32()), "value": values})


def _sorted(rows) -> list[dict]:
    return sorted(rows.to_pylist(), key=lambda row: (row["partition_date"], row["value"]))


def test_rows_kept_per_version_and_read_anew_after_a_commit(tmp_path, monkeypatch):
    monkeypatch.setattr(delta_tables, "_CACHED_TABLES", type(delta_tables._CACHED_TABLES)())
    store = DeltaStore(root=str(tmp_path / "tables"))
    first, second = dt.date(2013, 1, 1), dt.date(2013, 1, 2)
    store.replace_days(PATH, _day(first, [1, 2]), first, first, "partition_date", {})
    store.replace_days(PATH, _day(second, [3]), second, second, "partition_date", {})

    kept = store.readable(PATH)
    assert isinstance(kept, pa.Table)
    assert _sorted(kept) == _sorted(store.dataset(PATH).to_table())
    with monkeypatch.context() as patched:  # the same version: its rows are not read from the store again
        patched.setattr(deltalake.DeltaTable, "to_pyarrow_dataset",
                        lambda self, *args, **kwargs: pytest.fail("read from the store again"))
        assert store.readable(PATH) is kept

    store.replace_days(PATH, _day(second, [4, 5]), second, second, "partition_date", {})  # a new version
    again = store.readable(PATH)
    assert again is not kept
    assert [row["value"] for row in _sorted(again)] == [1, 2, 4, 5]


def test_a_table_too_large_to_keep_is_read_as_a_dataset(tmp_path, monkeypatch):
    monkeypatch.setattr(delta_tables, "_CACHED_TABLES", type(delta_tables._CACHED_TABLES)())
    monkeypatch.setattr(delta_tables, "CACHED_TABLE_BYTES", 10)
    store = DeltaStore(root=str(tmp_path / "tables"))
    day = dt.date(2013, 1, 1)
    store.replace_days(PATH, _day(day, [1, 2, 3]), day, day, "partition_date", {})
    found = store.readable(PATH)
    assert isinstance(found, pads.Dataset) and not delta_tables._CACHED_TABLES
    assert _sorted(found.to_table()) == _sorted(store.dataset(PATH).to_table())


def test_the_least_recently_read_table_goes_first_beyond_the_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(delta_tables, "_CACHED_TABLES", type(delta_tables._CACHED_TABLES)())
    store = DeltaStore(root=str(tmp_path / "tables"))
    day = dt.date(2013, 1, 1)
    for name in ("a", "b"):
        store.replace_days(f"sources/{name}", _day(day, list(range(1000))), day, day, "partition_date", {})
    one = store.readable("sources/a")
    monkeypatch.setattr(delta_tables, "CACHE_LIMIT_BYTES", one.nbytes + 1)  # room for one table
    store.readable("sources/b")
    assert [uri.rsplit("/", 1)[-1] for uri, _ in delta_tables._CACHED_TABLES] == ["b"]
