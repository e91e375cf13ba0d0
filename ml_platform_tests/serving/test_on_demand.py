"""Features computed on demand once per day and served state: concurrent first requests of a day share one
computation, later requests (whatever their prediction time) reuse it, and a day is scored once per version and
way of serving."""

from __future__ import annotations

import datetime as dt
import gc
import threading
import time

import pytest

from ml_platform.features.compute import day_groups
from ml_platform.features.library import load_catalog
from ml_platform.names import feature_table
from ml_platform.serving.features import _in_dependency_order, _lanes
from ml_platform.serving.state import ServedState
from ml_platform_tests.evaluation.january import MODEL
from ml_platform_tests.serving.server import serving

pytestmark = pytest.mark.slow

DAY = dt.date(2013, 2, 2)  # precomputed, not batch-scored


def _settled(count, expected: int) -> int:
    """count() once the shadow challenger, scored after each answer has left, has caught up (or after 30 s)."""
    deadline = time.monotonic() + 30
    while count() < expected and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)  # a build beyond the expected one would show now
    return count()


def test_concurrent_on_demand_requests_of_a_day_share_one_computation(scored_project):
    with serving(scored_project) as (client, state):
        reader, catalog = state.current.reader, state.current.catalog
        # the champion answers; the challenger scores the same rows in shadow, with the same features mode
        specs = [state.current.champions[MODEL].spec, state.current.shadows[MODEL].spec]
        computed_sets = len({feature_set.name for spec in specs
                             for feature_set in _in_dependency_order(catalog, catalog.feature_sets_of(spec))})
        keys = sorted(key for key, day in reader.entity_days("flights").items() if day == DAY)[:8]
        assert len(keys) == 8
        status, precomputed = client.predict(MODEL, {"keys": [{"flight_id": key} for key in keys]})
        assert status == 200 and {item["features_served"] for item in precomputed["predictions"]} == {"precomputed"}
        assert _settled(lambda: reader.scored.builds, 2) == 2 and reader.computations.builds == 0

        answers, barrier = [], threading.Barrier(8)

        def request(key: str) -> None:
            barrier.wait()
            answers.append(client.predict(MODEL, {"keys": {"flight_id": key}, "features": "on_demand"}))

        threads = [threading.Thread(target=request, args=(key,)) for key in keys]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert [status for status, _ in answers] == [200] * 8, answers
        assert {answer["predictions"][0]["features_served"] for _, answer in answers} == {"on_demand"}
        # each feature set computed once for the day, not once per request; the day scored once more per version
        assert _settled(lambda: reader.computations.builds, computed_sets) == computed_sets
        assert _settled(lambda: reader.scored.builds, 4) == 4
        health = client.request("GET", "/health")[1]
        assert health["computed_on_demand"] == computed_sets and health["days_scored"] == 4
        # the day's features computed again by the same code give the precomputed scores
        on_demand = {answer["predictions"][0]["keys"]["flight_id"]: answer["predictions"][0]["score"]
                     for _, answer in answers}
        assert [on_demand[key] for key in keys] == [item["score"] for item in precomputed["predictions"]]

        # later requests of that day, on demand with any prediction time or auto, read the same computation
        for body in ({"features": "on_demand", "prediction_time": "2013-02-02T23:00:00"}, {}):
            status, again = client.predict(MODEL, {"keys": [{"flight_id": key} for key in keys], **body})
            assert status == 200, again
            assert [item["score"] for item in again["predictions"]] == [on_demand[key] for key in keys]
            assert {item["features_served"] for item in again["predictions"]} == {"on_demand"}
        assert _settled(lambda: reader.scored.builds, 4) == 4 and reader.computations.builds == computed_sets


def test_a_days_feature_sets_computed_on_two_cursors_equal_the_precomputed_partitions(scored_project):
    state = ServedState(scored_project)
    served = state.current
    try:
        reader, catalog = served.reader, served.catalog
        sets = catalog.feature_sets_of(served.champions[MODEL].spec)
        # the set calling a registered function (days_to_us_holiday) last: its group goes to the second cursor
        order = sorted(sets, key=lambda feature_set: bool(feature_set.functions))
        assert order[-1].functions and len(day_groups(order)) >= 2

        def stored() -> dict:
            with served.connection.cursor() as cursor:
                return {fs.name: [repr(row) for row in cursor.execute(
                    f"SELECT * FROM {feature_table(fs.name)} WHERE partition_date = ? ORDER BY 1", [DAY]).fetchall()]
                    for fs in sets}

        precomputed = stored()
        assert all(len(rows) > 500 for rows in precomputed.values())
        reader._compute_day(order, DAY)
        first, second = _lanes(day_groups(order), reader._histories)
        assert first and order[-1] in [fs for group in second for fs in group]
        assert stored() == precomputed
        assert reader.computations.builds == len(sets)
    finally:
        served.connection.close()


def test_groups_naming_the_same_history_view_stay_on_one_cursor(scored_project):
    catalog = load_catalog(scored_project.specs_dir, scored_project.root)
    a, b, c = (catalog.feature_sets[name] for name in ("flight_schedule", "disruption_history", "aircraft_and_destination"))
    # a and c apart, b with the cursor already naming history.flights, all on one when both cursors name it
    assert _lanes([[a], [c]], {a.name: [], c.name: []}) == ([[a]], [[c]])
    assert _lanes([[b], [a], [c]], {a.name: [], b.name: ["flights"], c.name: ["flights"]}) == ([[b], [c]], [[a]])
    assert _lanes([[b], [a], [c]], {a.name: ["flights"], b.name: ["weather"], c.name: ["flights", "weather"]}) == \
        ([[b], [a], [c]], [])


def test_the_busier_cursors_largest_group_gives_a_set_naming_no_history_view_to_the_other(scored_project):
    catalog = load_catalog(scored_project.specs_dir, scored_project.root)
    a, b, c, d = (catalog.feature_sets[name] for name in ("aircraft_and_destination", "disruption_history",
                                                          "origin_weather_eve", "flight_schedule"))
    free = {fs.name: [] for fs in (a, b, c, d)}
    # the demo's day: three sets of one binding, one of another; the last set naming no view moves over
    assert _lanes([[a, b, c], [d]], {**free, b.name: ["flights"]}) == ([[a, b]], [[d], [c]])
    # one group alone: split while the busier cursor's work falls (3 sets + a binding -> 2 + 1 and 1 + 1)
    assert _lanes([[a, b, c]], free) == ([[a, b]], [[c]])
    # a set naming a view stays; when every set of the largest group names one, nothing moves
    assert _lanes([[a, b, c]], {a.name: ["flights"], b.name: ["flights"], c.name: ["weather"]}) == ([[a, b, c]], [])
    # two sets and a binding against one set and a binding: moving one would not lower the busier cursor's work
    assert _lanes([[a, b], [d]], free) == ([[a, b]], [[d]])


def test_a_served_state_is_warmed_and_frozen_before_its_first_request(scored_project):
    """What a first request would wait for is built with the state: the entity's key index and the on-demand
    preparation of every served model's feature sets; then every object alive is frozen out of the collector's
    walks (`state.settle`), so that a full collection no longer stalls requests for tens of milliseconds."""
    gc.unfreeze()
    state = ServedState(scored_project)
    served = state.current
    try:
        reader, catalog = served.reader, served.catalog
        specs = [*(model.spec for model in served.champions.values()), *(model.spec for model in served.shadows.values())]
        prepared = {feature_set.name for spec in specs for feature_set in catalog.feature_sets_of(spec)}
        assert reader.checked.builds == len(prepared) and all(name in reader.checked for name in prepared)
        assert reader.computations.builds == 0 and reader.scored.builds == 0  # nothing computed or scored yet
        assert "flights" in reader._entity_days and len(reader._entity_days["flights"]) > 10_000
        assert gc.get_freeze_count() > 10_000

        def walked(thing) -> bool:  # in one of the generations a collection walks (frozen ones are in none)
            return any(obj is thing for obj in gc.get_objects())

        # the state's objects are tracked but frozen, and a full collection leaves them there (the freeze count
        # itself may fall: frozen objects are still freed by reference counting)
        assert gc.is_tracked(reader) and not walked(reader) and not walked(reader._entity_days)
        gc.collect()
        assert not walked(reader) and not walked(reader._entity_days)
    finally:
        served.connection.close()
        gc.unfreeze()
