"""Workers that write the first partitions of a new Delta table at the same moment all commit their days.

Found by the 4-worker backfill benchmark (stop 24): each writer of a table that did not exist yet tried to create
it; one creation won and delta-rs failed the others with "Protocol/Metadata changed since last commit", which it
does not retry, so a step failed. `DeltaStore.replace_days` does such a write again against the created table.
A real local Delta table, eight threads released together by a barrier (delta-rs releases the GIL while it writes).
"""

from __future__ import annotations

import datetime as dt
import threading

import pyarrow as pa
import pytest

pytest.importorskip("deltalake",
                    reason="the cluster extra is not installed (deltalake missing: pip install -e '.[cluster]')")

from ml_platform.storage.delta_tables import DeltaStore  # noqa: E402

WRITERS = 8
FIRST = dt.date(2013, 1, 1)


def _rows(day: dt.date, value: int) -> pa.Table:
    return pa.table({"partition_date": pa.array([day] * 3, pa.date32()), "value": pa.array([value] * 3)})


def test_writers_racing_to_create_a_table_all_commit_their_days(tmp_path):
    store = DeltaStore(root=str(tmp_path / "store"))
    barrier = threading.Barrier(WRITERS)
    failures: list[str] = []

    def write(index: int) -> None:
        day = FIRST + dt.timedelta(days=index)
        rows = _rows(day, index)
        barrier.wait()
        try:
            store.replace_days("features/racing", rows, day, day, "partition_date", {"writer": index})
        except Exception as error:  # noqa: BLE001 - any failure of a writer is what this test reports
            failures.append(f"writer {index}: {type(error).__name__}: {error}")

    threads = [threading.Thread(target=write, args=(index,)) for index in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert failures == []
    table = store.table("features/racing")
    assert table.version() == WRITERS - 1  # one creation, then one commit per other day: no commit lost or doubled
    stored = table.to_pyarrow_table().to_pydict()
    assert sorted(zip(stored["partition_date"], stored["value"])) == sorted(
        (FIRST + dt.timedelta(days=index), index) for index in range(WRITERS) for _ in range(3))


def test_a_conflict_on_an_existing_table_is_not_hidden(tmp_path):
    """Only the lost creation is written again: on a table that already existed a failed commit is raised. Two
    writers replacing the same day at once both touch that day's files; delta-rs retries such a commit, and when
    both succeed the day holds exactly one writer's rows, never both."""
    store = DeltaStore(root=str(tmp_path / "store"))
    store.replace_days("features/one", _rows(FIRST, -1), FIRST, FIRST, "partition_date", {})
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def write(value: int) -> None:
        barrier.wait()
        try:
            store.replace_days("features/one", _rows(FIRST, value), FIRST, FIRST, "partition_date", {})
            outcomes.append("committed")
        except Exception as error:  # noqa: BLE001
            outcomes.append(type(error).__name__)

    threads = [threading.Thread(target=write, args=(value,)) for value in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert all(outcome in ("committed", "CommitFailedError") for outcome in outcomes), outcomes
    values = set(store.table("features/one").to_pyarrow_table()["value"].to_pylist())
    assert values in ({1}, {2}), values
