"""Point in time enforced: a corpus of leaking feature sets, each failing the blocking proof with a message naming
the feature set, the feature, a key, both values and the source whose later rows changed it; honest point-in-time
joins through `available_at` and `prediction_time` pass. The proof on two cursors says what it says on one, and
an error recomputing a cut on either cursor reaches the caller as the first failing cut's."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import duckdb
import pytest

from ml_platform.features.compute import FeatureComputationError, compute_feature_set
from ml_platform.features.library import load_catalog
from ml_platform.features.proof import PointInTimeError, prove_feature_set, prove_feature_sets, sample_cuts
from ml_platform.features.refresh import refresh_feature_set
from ml_platform.features.timing import prediction_time
from ml_platform.partitions import days
from ml_platform.sources.refresh import refresh_source
from ml_platform.specs.models import FeatureSetSpec, KnownBy
from ml_platform.names import feature_asset
from ml_platform.storage.lanes import private_objects
from ml_platform.storage.versions import WHOLE, partition_versions
from ml_platform.storage.warehouse import open_warehouse
from ml_platform_tests.helpers import SPECS, write_yaml

START, END = dt.date(2013, 1, 1), dt.date(2013, 1, 10)


def load_sources(connection, catalog, root: Path, start: dt.date, end: dt.date) -> None:
    """Every source of the catalog loaded: the daily ones for [start, end]."""
    for source in catalog.sources.values():
        if source.is_daily:
            refresh_source(connection, source, root, [day.isoformat() for day in days(start, end)], start, end)
        else:
            refresh_source(connection, source, root, [WHOLE])


def loaded_warehouse(folder: Path, start: dt.date, end: dt.date):
    """(a warehouse file in folder with the repository's sources loaded for [start, end], the catalog): a module
    loads it once and hands each test a copy (`copied`)."""
    catalog = load_catalog(SPECS, SPECS.parent)
    with open_warehouse(folder / "warehouse.duckdb") as connection:
        load_sources(connection, catalog, SPECS.parent, start, end)
    return folder / "warehouse.duckdb", catalog


def copied(warehouse: Path, folder: Path, name: str) -> Path:
    """A copy of the warehouse file, `<name>.duckdb` in folder."""
    path = folder / f"{name}.duckdb"
    path.write_bytes(warehouse.read_bytes())
    return path


def feature_set(name: str, sql: str, features: list[str], reads: list[str], entity: str = "flights",
                known_by: dict | None = None, lookback_days: int = 0) -> dict:
    """A feature set spec document."""
    return {"spec_version": 1, "kind": "feature_set", "name": name, "owner": "team:test",
            "description": f"test feature set {name}", "entity": entity, "reads": reads,
            "lookback_days": lookback_days, "known_by": known_by or {"days_before": 1, "time": "18:00"},
            "sql": sql, "features": {feature: {"type": "number", "description": feature} for feature in features}}


FLIGHT_LEAKS = {
    "same_row_outcome": (  # the flight's own departure delay, reached through history
        "SELECT e.flight_id, h.dep_delay AS own_delay FROM entity e JOIN history.flights h USING (flight_id)",
        ["own_delay"], [], "flights"),
    "same_day_outcomes": (  # the predicted day's delays, averaged
        "SELECT e.flight_id, d.delay AS day_delay FROM entity e LEFT JOIN (SELECT origin, partition_date, "
        "avg(dep_delay) AS delay FROM history.flights GROUP BY ALL) d USING (origin, partition_date)",
        ["day_delay"], [], "flights"),
    "window_through_the_day": (  # a trailing window moved to end on the predicted day
        "SELECT e.flight_id, (SELECT avg(CAST(h.dep_delay > 15 AS INTEGER)) FROM history.flights h "
        "WHERE h.carrier = e.carrier AND h.partition_date BETWEEN e.partition_date - 3 AND e.partition_date) "
        "AS carrier_late_share FROM entity e",
        ["carrier_late_share"], [], "flights"),
    "lag_one_step_short": (  # the whole day before, though the prediction is made at 18:00 that day
        "SELECT e.flight_id, w.temp AS eve_last_temp FROM entity e LEFT JOIN (SELECT origin, partition_date + 1 AS "
        "flight_date, arg_max(temp, observed_at) AS temp FROM weather GROUP BY ALL) w "
        "ON w.origin = e.origin AND w.flight_date = e.partition_date",
        ["eve_last_temp"], ["weather"], "weather"),
}


@pytest.fixture(scope="module")
def flights_warehouse(tmp_path_factory):
    """The repository's sources, January 1-10 loaded once for the module."""
    root = tmp_path_factory.mktemp("pit")
    catalog = load_catalog(SPECS, SPECS.parent)
    with open_warehouse(root / "warehouse.duckdb") as connection:
        load_sources(connection, catalog, SPECS.parent, START, END)
        yield connection, catalog


@pytest.mark.parametrize("name", sorted(FLIGHT_LEAKS))
def test_a_leaking_feature_fails_the_proof_naming_feature_key_values_and_source(flights_warehouse, tmp_path, name):
    connection, catalog = flights_warehouse
    sql, features, reads, culprit = FLIGHT_LEAKS[name]
    spec = FeatureSetSpec.model_validate(feature_set(name, sql, features, reads, lookback_days=3))
    with pytest.raises(PointInTimeError) as raised:
        refresh_feature_set(connection, catalog, spec, START, END)
    message = str(raised.value)
    assert "point in time violated" in message and f"feature set '{name}', feature '{features[0]}'" in message
    assert "stored " in message and "recomputed with every source cut at the prediction time" in message
    first = raised.value.proof.differences[0]
    assert first.sources == (culprit,), message
    assert first.key in message and first.stored != first.recomputed
    # nothing unproven is kept for a snapshot to read
    assert connection.execute(f'SELECT count(*) FROM features."{name}"').fetchall() == [(0,)]
    assert partition_versions(connection, feature_asset(name)) == {}  # the next run computes them again


@pytest.mark.parametrize("known_by", [{"hours_before": 6}, {"days_before": 1}])
def test_a_leak_fails_the_proof_with_known_by_relative_to_the_row_s_time(flights_warehouse, known_by):
    """A flight's time is the start of its local date: 6 hours before is 18:00 the evening before, as the clock
    form; a day before is midnight, so yesterday's last observations are late for both."""
    connection, catalog = flights_warehouse
    sql, features, reads, culprit = FLIGHT_LEAKS["lag_one_step_short"]
    name = f"lag_{next(iter(known_by))}"
    spec = FeatureSetSpec.model_validate(feature_set(name, sql, features, reads, known_by=known_by, lookback_days=3))
    with pytest.raises(PointInTimeError) as raised:
        refresh_feature_set(connection, catalog, spec, START, END)
    first = raised.value.proof.differences[0]
    assert first.sources == (culprit,) and first.cut == dt.datetime.combine(first.day, dt.time()) - dt.timedelta(
        hours=known_by.get("hours_before", 24))
    assert connection.execute(f'SELECT count(*) FROM features."{name}"').fetchall() == [(0,)]


def _without_seconds(message: str) -> str:
    return re.sub(r"\d+\.\d\d s\b", "", message)


def test_a_leak_found_on_two_cursors_is_reported_as_on_one(flights_warehouse):
    connection, catalog = flights_warehouse
    sql, features, reads, culprit = FLIGHT_LEAKS["lag_one_step_short"]  # reads `weather`, no `history.` view
    spec = FeatureSetSpec.model_validate(feature_set("lanes_leak", sql, features, reads, lookback_days=3))
    compute_feature_set(connection, catalog, spec, START, END)
    one = prove_feature_set(connection, catalog, spec, START, END, lanes=1)
    two = prove_feature_set(connection, catalog, spec, START, END, lanes=2)
    assert not two.passed and two.differences[0].sources == (culprit,)
    assert (two.cuts, two.cuts_total, two.rows, two.differing_rows, two.differences) == \
        (one.cuts, one.cuts_total, one.rows, one.differing_rows, one.differences)
    assert _without_seconds(two.message()) == _without_seconds(one.message())
    assert len(two.cuts) == 10 and two.differing_rows > 100


def test_an_error_recomputing_a_cut_on_a_cursor_reaches_the_caller(flights_warehouse):
    connection, catalog = flights_warehouse
    stored = FeatureSetSpec.model_validate(feature_set("lanes_error", "SELECT flight_id, 1 AS one FROM entity",
                                                       ["one"], []))
    compute_feature_set(connection, catalog, stored, START, END)
    failing = stored.model_copy(update={"sql": "SELECT flight_id, CASE WHEN partition_date = DATE '2013-01-01' "
                                               "THEN 1 ELSE error('no cut after ' || CAST(partition_date AS "
                                               "VARCHAR)) END AS one FROM entity"})
    for lanes in (1, 2):  # every cut but the first fails: the second cut's error, whichever cursor ran it
        with pytest.raises(duckdb.Error, match="no cut after 2013-01-02"):
            prove_feature_set(connection, catalog, failing, START, END, lanes=lanes)
        assert private_objects(connection) == []  # nothing left bound: bare names read the warehouse again


def test_several_sets_proven_on_two_cursors_are_reported_as_on_one(flights_warehouse):
    """A set naming a `history.` view (its cuts one after another on one cursor) beside sets that name none."""
    connection, catalog = flights_warehouse
    sets = [catalog.feature_sets["flight_schedule"]]
    for name in ("same_day_outcomes", "lag_one_step_short"):  # the first names history.flights, the second none
        sql, features, reads, _ = FLIGHT_LEAKS[name]
        sets.append(FeatureSetSpec.model_validate(feature_set(f"several_{name}", sql, features, reads,
                                                              lookback_days=3)))
    for spec in sets:
        compute_feature_set(connection, catalog, spec, START, END)
    one = prove_feature_sets(connection, catalog, sets, START, END, max_cuts=6, seed="several|", lanes=1)
    two = prove_feature_sets(connection, catalog, sets, START, END, max_cuts=6, seed="several|", lanes=2)
    assert [proof.passed for proof in two] == [True, False, False]
    assert [(p.feature_set, p.cuts, p.rows, p.differing_rows, p.differences) for p in two] == \
        [(p.feature_set, p.cuts, p.rows, p.differing_rows, p.differences) for p in one]
    assert [_without_seconds(p.message()) for p in two] == [_without_seconds(p.message()) for p in one]


def test_a_set_reading_a_set_it_uses_by_its_bare_name_is_proven_on_two_cursors(flights_warehouse):
    connection, catalog = flights_warehouse
    schedule = catalog.feature_sets["flight_schedule"]
    compute_feature_set(connection, catalog, schedule, START, END)
    spec = FeatureSetSpec.model_validate({**feature_set(
        "twice_the_hour", "SELECT flight_id, departure_hour * 2 AS twice FROM entity JOIN flight_schedule "
        "USING (flight_id)", ["twice"], []), "uses": ["flight_schedule"]})
    compute_feature_set(connection, catalog, spec, START, END)
    proof = prove_feature_set(connection, catalog, spec, START, END, lanes=2)
    assert proof.passed and proof.rows > 8000, proof.message()


def test_an_object_registered_on_the_connection_keeps_the_proof_on_it(flights_warehouse):
    """Delta feature tables are Arrow datasets registered on the warehouse connection: no cursor reads them."""
    connection, catalog = flights_warehouse
    schedule = catalog.feature_sets["flight_schedule"]
    compute_feature_set(connection, catalog, schedule, START, END)
    rows = connection.sql("SELECT * FROM features.flight_schedule").to_arrow_table()
    connection.execute("ALTER TABLE features.flight_schedule RENAME TO flight_schedule_stored")
    connection.register("registered_schedule", rows)
    try:
        connection.execute("CREATE VIEW features.flight_schedule AS SELECT * FROM registered_schedule")
        proof = prove_feature_set(connection, catalog, schedule, START, END, lanes=2)
        assert proof.passed and len(proof.cuts) == 10, proof.message()
    finally:
        connection.execute("DROP VIEW IF EXISTS features.flight_schedule")
        connection.unregister("registered_schedule")
        connection.execute("ALTER TABLE features.flight_schedule_stored RENAME TO flight_schedule")


def test_the_first_set_s_error_is_raised_though_a_later_set_failed_first(flights_warehouse):
    """The cuts of a set naming a `history.` view start first on their cursor; an error of an earlier set's cut
    is still the one raised, as a loop over the sets raises it."""
    connection, catalog = flights_warehouse
    stored = [FeatureSetSpec.model_validate(feature_set(name, "SELECT flight_id, 1 AS one FROM entity", ["one"],
                                                        [])) for name in ("order_first", "order_history")]
    for spec in stored:
        compute_feature_set(connection, catalog, spec, START, END)
    failing = [stored[0].model_copy(update={"sql": "SELECT flight_id, CASE WHEN partition_date < DATE '2013-01-09' "
                                                   "THEN 1 ELSE error('first set failed') END AS one FROM entity"}),
               stored[1].model_copy(update={"sql": "SELECT e.flight_id, error('history set failed') AS one "
                                                   "FROM entity e, (SELECT count(*) FROM history.flights) h"})]
    for lanes in (1, 2):
        with pytest.raises(duckdb.Error, match="first set failed"):
            prove_feature_sets(connection, catalog, failing, START, END, lanes=lanes)


def test_the_demo_features_pass_the_proof_on_every_day(flights_warehouse):
    connection, catalog = flights_warehouse
    for spec in catalog.feature_sets_of(catalog.models["flight_delay"]):  # the weekly example starts in February
        refresh = refresh_feature_set(connection, catalog, spec, START, END)
        proof = prove_feature_set(connection, catalog, spec, START, END, max_cuts=31)
        assert proof.passed, proof.message()
        assert len(proof.cuts) == 10 and proof.rows == refresh.rows > 8000


def test_the_run_cuts_every_source_at_its_latest_prediction_time(flights_warehouse):
    """A single-day run: the same-row outcome leak reads NULL by construction, and the proof agrees."""
    connection, catalog = flights_warehouse
    sql, features, reads, _ = FLIGHT_LEAKS["same_row_outcome"]
    spec = FeatureSetSpec.model_validate(feature_set("same_row_single_day", sql, features, reads))
    day = dt.date(2013, 1, 5)
    refresh = refresh_feature_set(connection, catalog, spec, day, day)
    assert refresh.proof.passed and refresh.rows > 500
    assert connection.execute("SELECT count(*), count(own_delay) FROM features.same_row_single_day"
                              ).fetchall() == [(refresh.rows, 0)]


def test_prediction_time_and_sampling():
    known_by = KnownBy(days_before=1, time="18:00")
    assert prediction_time(known_by, dt.date(2013, 1, 5)) == dt.datetime(2013, 1, 4, 18, 0)
    assert prediction_time(KnownBy(days_before=0, time="06:30"), dt.date(2013, 1, 5)) == dt.datetime(2013, 1, 5, 6, 30)
    all_days = list(days(dt.date(2013, 1, 1), dt.date(2013, 3, 31)))
    sample = sample_cuts("x", all_days, 8)
    assert sample == sample_cuts("x", list(reversed(all_days)), 8) and len(sample) == 8
    assert sample != sample_cuts("y", all_days, 8)
    assert sample_cuts("x", all_days[:5], 8) == all_days[:5]


# --- a second project: customers (a reference table updated in place), visits (the entity) and purchases ---------

SOURCES = {
    "visits": {"columns": {"visit_id": "INTEGER", "customer_id": "INTEGER", "visit_date": "DATE"},
               "keys": ["visit_id"],
               "partitioning": {"kind": "daily", "date": "visit_date", "start": "2024-03-01", "end": "2024-03-10"}},
    "purchases": {"columns": {"purchase_id": "INTEGER", "customer_id": "INTEGER", "purchased_on": "DATE",
                              "amount": "DOUBLE"},
                  "keys": ["purchase_id"],
                  "partitioning": {"kind": "daily", "date": "purchased_on", "start": "2024-03-01",
                                   "end": "2024-03-10"}},
    "customers": {"columns": {"customer_id": "INTEGER", "segment": "VARCHAR", "credit_limit": "DOUBLE",
                              "updated_at": "TIMESTAMP"},
                  "keys": ["customer_id"], "partitioning": {"kind": "none"}, "available_at": "updated_at"},
}


def shop_project(root: Path) -> Path:
    """A project folder with three CSV sources written here; returns its specs folder."""
    data = root / "data"
    data.mkdir(parents=True)
    (data / "visits.csv").write_text("visit_id,customer_id,visit_date\n" + "".join(
        f"{day * 10 + customer},{customer},2024-03-{day:02d}\n" for day in range(1, 11) for customer in (1, 2, 3)))
    (data / "purchases.csv").write_text("purchase_id,customer_id,purchased_on,amount\n" + "".join(
        f"{day * 10 + customer},{customer},2024-03-{day:02d},{10.0 * customer + day}\n"
        for day in range(1, 11) for customer in (1, 2, 3) if (day + customer) % 2))
    # customer 2 was moved to another segment, with a new limit, on 6 March: the old row is gone
    (data / "customers.csv").write_text("customer_id,segment,credit_limit,updated_at\n1,retail,100,2024-01-01 00:00:00\n"
                                        "2,business,900,2024-03-06 09:00:00\n3,retail,150,2024-02-01 00:00:00\n")
    specs = root / "model_specs"
    for name, body in SOURCES.items():
        write_yaml(specs / "sources" / f"{name}.yaml", {
            "spec_version": 1, "kind": "source", "name": name, "description": f"test {name}", "owner": "team:test",
            "trust": "internal", "location": {"kind": "file", "path": f"data/{name}.csv", "format": "csv"},
            "checks": {"min_rows_per_day": 1, "distribution": {"min_history_days": 30}}, **body})
    return specs


SHOP_FEATURES = {
    "customer_spend": (  # every purchase of the customer, the visit's future ones included
        "SELECT e.visit_id, (SELECT sum(p.amount) FROM purchases p WHERE p.customer_id = e.customer_id) AS spend "
        "FROM entity e", ["spend"], ["purchases"], "purchases"),
    "customer_limit": (  # the customer's current row, written after the fact for customer 2
        "SELECT e.visit_id, c.credit_limit AS credit_limit FROM entity e LEFT JOIN customers c USING (customer_id)",
        ["credit_limit"], ["customers"], "customers"),
}


HONEST_SQL = ("SELECT e.visit_id, (SELECT sum(p.amount) FROM purchases p WHERE p.customer_id = e.customer_id "
              "AND p.available_at <= e.prediction_time) AS spend_so_far, c.credit_limit AS credit_limit "
              "FROM entity e LEFT JOIN customers c ON c.customer_id = e.customer_id "
              "AND c.available_at <= e.prediction_time")


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    root = tmp_path_factory.mktemp("shop")
    specs = shop_project(root)
    write_yaml(specs / "features" / "honest_spend.yaml", feature_set(
        "honest_spend", HONEST_SQL, ["spend_so_far", "credit_limit"], ["purchases", "customers"], entity="visits",
        lookback_days=10))
    catalog = load_catalog(specs, root)
    with open_warehouse(root / "warehouse.duckdb") as connection:
        load_sources(connection, catalog, root, dt.date(2024, 3, 1), dt.date(2024, 3, 10))
        yield connection, catalog


@pytest.mark.parametrize("name", sorted(SHOP_FEATURES))
def test_reading_another_source_after_the_prediction_time_fails_the_proof(shop, name):
    connection, catalog = shop
    sql, features, reads, culprit = SHOP_FEATURES[name]
    spec = FeatureSetSpec.model_validate(feature_set(name, sql, features, reads, entity="visits",
                                                     lookback_days=10))
    with pytest.raises(PointInTimeError) as raised:
        refresh_feature_set(connection, catalog, spec, dt.date(2024, 3, 1), dt.date(2024, 3, 10))
    assert raised.value.proof.differences[0].sources == (culprit,), str(raised.value)
    assert f"feature set '{name}', feature '{features[0]}'" in str(raised.value)


def test_a_point_in_time_join_through_available_at_passes(shop):
    """The spec loader accepted `available_at` and `prediction_time` (the shop fixture loads this set from YAML)."""
    connection, catalog = shop
    spec = catalog.feature_sets["honest_spend"]
    refresh = refresh_feature_set(connection, catalog, spec, dt.date(2024, 3, 1), dt.date(2024, 3, 10))
    assert refresh.proof.passed and refresh.rows == 30
    rows = dict(connection.execute("SELECT visit_id, credit_limit FROM features.honest_spend "
                                   "WHERE visit_id % 10 = 2").fetchall())
    assert rows[62] is None and rows[72] == 900.0  # visit of 6 March: predicted 5 March 18:00, before the update


def test_a_source_in_another_time_zone_is_compared_in_the_entity_s_local_time():
    import duckdb

    from ml_platform.features.timing import row_available_sql

    catalog = load_catalog(SPECS, SPECS.parent)
    flights, weather = catalog.sources["flights"], catalog.sources["weather"]
    in_utc = weather.model_copy(update={"partitioning": weather.partitioning.model_copy(update={"timezone": "UTC"}),
                                        "available_at": "observed_at"})
    expression = row_available_sql(in_utc, flights).replace("observed_at", "TIMESTAMP '2013-07-01 12:00:00'")
    assert duckdb.sql(f"SELECT {expression}").fetchall() == [(dt.datetime(2013, 7, 1, 8, 0),)]  # EDT = UTC-4
    assert row_available_sql(weather, flights) == "(observed_at + INTERVAL 1 HOUR)"
    assert row_available_sql(catalog.sources["planes"], flights) == "TIMESTAMP '-infinity'"


@pytest.mark.parametrize("table", ["source.flights", "main.source.flights", "planes", "history.weather"])
def test_feature_sql_reading_past_the_cut_relations_is_refused(flights_warehouse, table):
    connection, catalog = flights_warehouse
    sql = f"SELECT e.flight_id, (SELECT count(*) FROM {table}) AS n FROM entity e"
    spec = FeatureSetSpec.model_validate(feature_set("bypass", sql, ["n"], []))
    # refused before anything runs: by the reach check (the tables a spec may read never include `source.<name>`)
    # or, for what it lets through, by the check that the SQL reads only the cut relations
    with pytest.raises(FeatureComputationError, match=(
            rf"feature set 'bypass': (its SQL reads {table}, past the relations that show only what is known at "
            rf"each row's prediction time|reads '{table}', which is not among the tables it may read|unknown table '{table}')")):
        refresh_feature_set(connection, catalog, spec, START, END)


def test_days_computed_but_not_yet_proven_are_never_reused(flights_warehouse):
    from ml_platform.features.refresh import awaiting_proof
    from ml_platform.features.versions import stale_days
    from ml_platform.storage.versions import record_versions

    connection, catalog = flights_warehouse
    schedule = catalog.feature_sets["flight_schedule"]
    first, last = dt.date(2013, 1, 2), dt.date(2013, 1, 3)
    refresh = refresh_feature_set(connection, catalog, schedule, first, last)  # computed, or reused when proven
    assert stale_days(connection, catalog, schedule, first, last)[1] == {}
    # what a run that died between computing the days and proving them leaves behind
    record_versions(connection, feature_asset("flight_schedule"),
                    {day: awaiting_proof(version) for day, version in refresh.expected.items()})
    stale = stale_days(connection, catalog, schedule, first, last)[1]
    assert sorted(stale) == ["2013-01-02", "2013-01-03"]
    assert refresh_feature_set(connection, catalog, schedule, first, last).proof.passed
    assert stale_days(connection, catalog, schedule, first, last)[1] == {}
