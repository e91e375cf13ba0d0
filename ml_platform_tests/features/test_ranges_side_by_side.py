"""A feature set's ranges of days computed on two cursors at once store what one loop over them stores: the same
rows in the same stored order and the same versions; the writes go in the ranges' order whichever cursor finishes
first; a range that fails leaves the ranges before it written (awaiting the proof) and none after it, and its own
error is the one raised. A set whose SQL names a `history.` view is computed one range after another."""

from __future__ import annotations

import datetime as dt
import re
import threading
import time

import pytest

from ml_platform.features import refresh
from ml_platform.features.compute import FeatureComputationError
from ml_platform.features.refresh import _Turns, awaiting_proof, refresh_feature_set
from ml_platform.names import feature_asset, feature_table
from ml_platform.progress import Progress
from ml_platform.storage.versions import partition_versions
from ml_platform.storage.warehouse import open_warehouse
from ml_platform_tests.features.test_point_in_time import copied, loaded_warehouse

START, END = dt.date(2013, 1, 1), dt.date(2013, 3, 10)  # three ranges: 31, 28 + 3 and 7 days


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    """A warehouse file with the repository's sources loaded for START to END, copied for each test."""
    return loaded_warehouse(tmp_path_factory.mktemp("ranges"), START, END)


def _stored(path, name: str):
    """The table's rows in their stored order (no ORDER BY), and the set's recorded versions."""
    with open_warehouse(path) as connection:
        rows = connection.execute(f"SELECT * FROM {feature_table(name)}").fetchall()
        versions = {day: version.version for day, version in
                    partition_versions(connection, feature_asset(name)).items()}
    return rows, versions


@pytest.mark.parametrize("name", ["flight_schedule", "aircraft_and_destination"])
def test_ranges_on_two_cursors_store_what_one_loop_stores(loaded, tmp_path, monkeypatch, name):
    catalog = loaded[1]
    feature_set = catalog.feature_sets[name]
    assert len(refresh.ranges([day.isoformat() for day in _days(START, END)])) == 3
    side_by_side = copied(loaded[0], tmp_path, "side_by_side")
    chosen = []
    decide = refresh._side_by_side
    monkeypatch.setattr(refresh, "_side_by_side", lambda *args: chosen.append(decide(*args)) or chosen[-1])
    told = {"side_by_side": [], "one_loop": []}
    with open_warehouse(side_by_side) as connection:
        parallel = refresh_feature_set(connection, catalog, feature_set, START, END,
                                       Progress(told["side_by_side"].append, every_seconds=0))
    assert chosen == [True]
    one_loop = copied(loaded[0], tmp_path, "one_loop")
    monkeypatch.setattr(refresh, "_side_by_side", lambda *args: False)
    with open_warehouse(one_loop) as connection:
        sequential = refresh_feature_set(connection, catalog, feature_set, START, END,
                                         Progress(told["one_loop"].append, every_seconds=0))
    # the same progress lines, in the ranges' order (their seconds aside)
    lines = {path: [re.sub(r", \d+ s$", "", line) for line in said] for path, said in told.items()}
    assert lines["side_by_side"] == lines["one_loop"] and len(lines["one_loop"]) == 3
    assert lines["one_loop"][0].startswith(f"features '{name}': 1 of 3 ranges of days computed, up to 2013-01-31 (")
    assert parallel.rows == sequential.rows > 5000 and len(parallel.stale) == len(_days(START, END))
    assert parallel.proof.passed and parallel.proof.cuts == sequential.proof.cuts
    rows, versions = _stored(side_by_side, name)
    assert (rows, versions) == _stored(one_loop, name)
    assert versions == {day: version.version for day, version in parallel.expected.items()}


def test_a_set_reading_a_history_view_is_computed_one_range_after_another(loaded, tmp_path, monkeypatch):
    catalog = loaded[1]
    feature_set = catalog.feature_sets["disruption_history"]
    assert "history." in feature_set.sql
    lanes = []
    monkeypatch.setattr(refresh, "lane_cursors", lambda *args: lanes.append(args) or pytest.fail("lanes used"))
    with open_warehouse(copied(loaded[0], tmp_path, "reading_history")) as connection:
        assert refresh_feature_set(connection, catalog, feature_set, START, END).proof.passed
    assert lanes == []


def test_a_failing_range_keeps_the_ranges_before_it_and_writes_none_after_it(loaded, tmp_path, monkeypatch):
    catalog = loaded[1]
    feature_set = catalog.feature_sets["flight_schedule"]
    compute = refresh.compute_feature_set
    started = []
    march = threading.Event()

    def failing_in_february(cursor, catalog, feature_set, first, last, **options):
        started.append(first)
        if first.month == 3:
            march.set()
        if first.month == 2:
            # February fails once March's range is being computed on the other cursor (it then waits for its
            # turn, after February's write, which never comes)
            assert march.wait(60), "March's range was never started"
            raise FeatureComputationError("February broke")
        return compute(cursor, catalog, feature_set, first, last, **options)

    monkeypatch.setattr(refresh, "compute_feature_set", failing_in_february)
    path = copied(loaded[0], tmp_path, "failing")
    with open_warehouse(path) as connection:
        with pytest.raises(FeatureComputationError, match="February broke"):
            refresh_feature_set(connection, catalog, feature_set, START, END)
        expected, _ = refresh.stale_days(connection, catalog, feature_set, START, END)
    rows, versions = _stored(path, "flight_schedule")
    january = [day.isoformat() for day in _days(START, dt.date(2013, 1, 31))]
    assert sorted({row[-1].isoformat() for row in rows}) == january  # partition_date is the last column
    assert versions == {day: awaiting_proof(expected[day]).version for day in january}
    assert sorted(started) == [dt.date(2013, 1, 1), dt.date(2013, 2, 1), dt.date(2013, 3, 4)]


def test_turns_write_in_order_whichever_piece_is_ready_first():
    turns = _Turns()
    written = []

    def piece(index: int, delay: float) -> None:
        time.sleep(delay)
        with turns.failing(index):
            turns.turn(index, lambda: written.append(index) or 0, lambda count: written.append(f"after {index}"))

    threads = [threading.Thread(target=piece, args=(index, delay)) for index, delay in ((2, 0.0), (1, 0.1),
                                                                                        (0, 0.3))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    assert written == [0, "after 0", 1, "after 1", 2, "after 2"]


def test_turns_stop_the_pieces_after_a_failed_one_and_not_those_before_it():
    turns = _Turns()
    outcomes = {}

    def piece(index: int, delay: float, fails: bool = False) -> None:
        time.sleep(delay)
        try:
            with turns.failing(index):
                if fails:
                    raise ValueError(f"piece {index} broke")
                turns.turn(index, lambda: outcomes.__setitem__(index, "written") or 0, lambda count: None)
        except Exception as error:  # noqa: BLE001 - the test reads each piece's error
            outcomes[index] = type(error).__name__

    threads = [threading.Thread(target=piece, args=args) for args in ((3, 0.0), (2, 0.0), (1, 0.2, True),
                                                                      (0, 0.4))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    assert outcomes == {0: "written", 1: "ValueError", 2: "_EarlierRangeFailed", 3: "_EarlierRangeFailed"}


def _days(start: dt.date, end: dt.date) -> list[dt.date]:
    return [start + dt.timedelta(days=offset) for offset in range((end - start).days + 1)]


def test_a_write_turn_is_refused_for_a_population_s_range(loaded):
    """A population's range is written a partition at a time: a turn (one write per range) would be taken once
    per partition and wait for itself."""
    catalog = loaded[1]
    feature_set = next(fs for fs in catalog.feature_sets.values()
                       if catalog.entity_rows(fs.entity).is_population)
    with pytest.raises(ValueError, match="a population's range is written a partition at a time"):
        refresh.compute_feature_set(None, catalog, feature_set, dt.date(2013, 2, 4), dt.date(2013, 2, 24),
                                    writes=lambda write: _Turns().turn(0, write, lambda count: None))
